//! The relay's certificate: loaded from PEM files at start and again on SIGHUP (a renewed
//! certificate is picked up without a restart; a reload that fails keeps the old one).
//! rustls with the ring provider, TLS 1.2 and 1.3.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsFiles;

/// Why the certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or has no certificate.
    #[error("smtp.tls_cert {}: {why}; name a PEM file with the certificate chain", path.display())]
    Cert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The key file is missing, unreadable or has no key.
    #[error("smtp.tls_key {}: {why}; name a PEM file with the private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The key does not go with the certificate, or rustls refused them.
    #[error("smtp.tls_cert and smtp.tls_key cannot be used together: {0}")]
    Config(String),
}

/// Builds an acceptor from the two files.
///
/// # Errors
/// See [`TlsError`].
pub fn load(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let cert_error = |why: String| TlsError::Cert {
        path: files.cert.clone(),
        why,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        why: e.to_string(),
    })?;
    check_key_mode(&files.key);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn check_key_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        log::warn!(
            "smtp.tls_key {} is readable by other users: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

/// The acceptor in use, swapped on reload.
pub struct TlsState {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsState {
    /// Loads the files.
    ///
    /// # Errors
    /// See [`TlsError`].
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let acceptor = load(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(acceptor),
        })
    }

    /// The acceptor for a new handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the files again; on failure the old certificate stays.
    ///
    /// # Errors
    /// See [`TlsError`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = load(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
        Ok(())
    }
}
