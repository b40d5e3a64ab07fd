//! TLS for the API listener: the PEM certificate chain and private key named in serve.toml,
//! loaded into a rustls server configuration (ring provider, TLS 1.2 and 1.3, HTTP/1.1).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsFiles;

/// A loaded certificate and key, ready to accept connections.
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig { .. }")
    }
}

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("[http] {what} {}: {reason}; name a readable PEM file in serve.toml", path.display())]
    File {
        /// `tls_cert` or `tls_key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key is readable by every user.
    #[error(
        "[http] tls_key {} is readable by other users: run `chmod 600 {}` (or 640 with a group the service user is in)", path.display(), path.display()
    )]
    KeyReadable {
        /// The key file.
        path: PathBuf,
    },
    /// rustls refused the pair (a key that does not match the certificate, for one).
    #[error("[http] the TLS certificate and key cannot be used together: {0}")]
    Rustls(String),
}

impl TlsConfig {
    /// Loads `files`.
    ///
    /// # Errors
    /// [`TlsError`] naming the file and what to do.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let file_error = |what: &'static str, path: &Path, reason: String| TlsError::File {
            what,
            path: path.to_path_buf(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(&files.cert)
            .and_then(|items| items.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error("tls_cert", &files.cert, e.to_string()))?;
        if certs.is_empty() {
            return Err(file_error(
                "tls_cert",
                &files.cert,
                "holds no CERTIFICATE block".into(),
            ));
        }
        key_is_private(&files.key)?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| file_error("tls_key", &files.key, e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor for one connection.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

#[cfg(unix)]
fn key_is_private(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|e| TlsError::File {
        what: "tls_key",
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(TlsError::KeyReadable {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn key_is_private(_path: &Path) -> Result<(), TlsError> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a self-signed certificate for 127.0.0.1/localhost and its key (0600) into
    /// `dir`; returns the files.
    pub(crate) fn write_test_pair(dir: &Path) -> TlsFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let files = TlsFiles {
            cert: dir.join("api.pem"),
            key: dir.join("api.key"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        crate::config::files::chmod(&files.key, 0o600).unwrap();
        files
    }

    #[test]
    fn loads_a_pair_and_refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_test_pair(dir.path());
        TlsConfig::load(&files).unwrap();
        crate::config::files::chmod(&files.key, 0o644).unwrap();
        let error = TlsConfig::load(&files).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        let missing = TlsFiles {
            cert: dir.path().join("none.pem"),
            key: files.key.clone(),
        };
        let error = TlsConfig::load(&missing).unwrap_err().to_string();
        assert!(
            error.contains("tls_cert") && error.contains("none.pem"),
            "{error}"
        );
        std::fs::write(&files.cert, "not pem").unwrap();
        let error = TlsConfig::load(&files).unwrap_err().to_string();
        assert!(error.contains("CERTIFICATE"), "{error}");
    }
}
