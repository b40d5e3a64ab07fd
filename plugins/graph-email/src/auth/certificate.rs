//! App-only sign-in with a certificate: loading the certificate and its private key from the
//! `ClientCertificate` file (PEM with the certificate and a PKCS#8 or PKCS#1 key, possibly
//! encrypted: PKCS#8 PBES2, or OpenSSL's traditional `Proc-Type: 4,ENCRYPTED`; or PKCS#12
//! `.pfx`/`.p12`), checking locally that the key belongs to the
//! certificate, and signing the client assertion JWT of the Microsoft identity platform
//! (learn.microsoft.com/entra/identity-platform/certificate-credentials).
//!
//! Crates: `pem` splits PEM files, RustCrypto `pkcs8` decrypts encrypted PKCS#8 (PBES2),
//! `p12-keystore` opens PKCS#12, `x509-parser` reads the certificate, and `ring` (already the
//! TLS provider) signs with RSA-PSS or PKCS#1 v1.5 in constant time.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailhost_plugin_api::ProviderError;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use serde_json::json;

use crate::security::Secret;
use crate::settings::{
    CLIENT_ASSERTION_ALGORITHM, CLIENT_CERTIFICATE, CLIENT_CERTIFICATE_PASSWORD,
};

/// How long a client assertion is valid (Microsoft: 5 to 10 minutes after `nbf`).
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

/// The client assertion's signature algorithm.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    /// RSA-PSS with SHA-256, header `x5t#S256` (Microsoft's current format; the default).
    Ps256,
    /// RSA PKCS#1 v1.5 with SHA-256, header `x5t` (SHA-1 thumbprint; older documentation).
    Rs256,
}

impl AssertionAlgorithm {
    /// The setting value and JWT `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ps256 => "PS256",
            Self::Rs256 => "RS256",
        }
    }

    /// Reads the setting value.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_uppercase().as_str() {
            "PS256" => Some(Self::Ps256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }
}

/// Why the certificate file could not be used. Every case is found before any request.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The file cannot be read.
    #[error("the file {} cannot be read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither PEM nor PKCS#12.
    #[error("the file {} is neither PEM nor PKCS#12 (.pfx/.p12): {detail}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the parsers said.
        detail: String,
    },
    /// No certificate in the file.
    #[error("the file {} holds no certificate (BEGIN CERTIFICATE)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No private key in the file.
    #[error("the file {} holds no private key (BEGIN PRIVATE KEY, BEGIN ENCRYPTED PRIVATE KEY or BEGIN RSA PRIVATE KEY)", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key or file is encrypted and no password is set.
    #[error("the private key in {} is encrypted and {CLIENT_CERTIFICATE_PASSWORD} is not set", path.display())]
    PasswordNeeded {
        /// The file.
        path: PathBuf,
    },
    /// The password does not decrypt the key or file.
    #[error("{CLIENT_CERTIFICATE_PASSWORD} does not decrypt {} (wrong password, or an encryption this program cannot read: {detail})", path.display())]
    CannotDecrypt {
        /// The file.
        path: PathBuf,
        /// What the decryption said.
        detail: String,
    },
    /// An OpenSSL "traditional" encrypted RSA key with a cipher this program does not read.
    #[error("the private key in {} is an OpenSSL traditional encrypted RSA key with the cipher '{cipher}', which this program does not read (it reads AES-128/192/256-CBC and DES-EDE3-CBC)", path.display())]
    LegacyEncryption {
        /// The file.
        path: PathBuf,
        /// The `DEK-Info` cipher.
        cipher: String,
    },
    /// The key is not an RSA key ring accepts.
    #[error("the private key in {} is not a usable RSA key ({detail}); Microsoft Entra client assertions are signed with RSA keys of 2048 bits or more", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// ring's reason.
        detail: String,
    },
    /// A certificate that does not parse.
    #[error("the certificate in {} does not parse: {detail}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        detail: String,
    },
    /// The private key belongs to none of the certificates.
    #[error("the private key in {} does not belong to its certificate ({subject})", path.display())]
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// The subject of the (first) certificate.
        subject: String,
    },
}

impl CertificateError {
    /// The user-facing error: what is wrong and what to do.
    pub fn to_provider_error(&self) -> ProviderError {
        let fix = match self {
            Self::Unreadable { .. } => format!(
                "set {CLIENT_CERTIFICATE} to the path of a file mailhost can read (mailhost config set graph-email {CLIENT_CERTIFICATE} /path/to/app.pem)"
            ),
            Self::Format { .. } | Self::NoCertificate { .. } | Self::NoKey { .. } => format!(
                "give {CLIENT_CERTIFICATE} one file with the certificate and its private key: a PEM file with both blocks (cat cert.pem key.pem > app.pem) or a PKCS#12 .pfx exported with its private key"
            ),
            Self::PasswordNeeded { .. } => format!(
                "set the password with `mailhost config set graph-email {CLIENT_CERTIFICATE_PASSWORD} --value-stdin`"
            ),
            Self::CannotDecrypt { .. } => format!(
                "set the right password with `mailhost config set graph-email {CLIENT_CERTIFICATE_PASSWORD} --value-stdin`; if it is right, re-export the file with AES (openssl pkcs12 -export ... or openssl pkcs8 -topk8 -v2 aes256)"
            ),
            Self::LegacyEncryption { .. } => "convert the key to encrypted PKCS#8: `openssl pkcs8 -topk8 -v2 aes256 -in key.pem -out key-pkcs8.pem`, then put it with the certificate in one file".to_string(),
            Self::UnsupportedKey { .. } => "create an RSA certificate of 2048 bits or more (openssl req -x509 -newkey rsa:2048 ...), upload its public part to the app registration and set ClientCertificate to it".to_string(),
            Self::BadCertificate { .. } => format!(
                "export the certificate again (PEM or .pfx) and set {CLIENT_CERTIFICATE} to it"
            ),
            Self::KeyMismatch { .. } => format!(
                "put the certificate together with the private key it was made with in {CLIENT_CERTIFICATE} (compare `openssl x509 -noout -modulus -in cert.pem | sha256sum` with `openssl rsa -noout -modulus -in key.pem | sha256sum`)"
            ),
        };
        ProviderError::configuration(format!(
            "graph-email setting {CLIENT_CERTIFICATE}: {self}: {fix}"
        ))
        .with_code(format!("setting:{CLIENT_CERTIFICATE}"))
    }
}

/// A loaded client certificate: its DER, facts for messages, and the private key.
pub struct ClientCertificate {
    der: Vec<u8>,
    key: RsaKeyPair,
    /// The certificate's subject.
    pub subject: String,
    /// Unix seconds of the certificate's `notAfter`.
    pub not_after: i64,
    /// Unix seconds of the certificate's `notBefore`.
    pub not_before: i64,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("sha256", &self.thumbprint_sha256_hex())
            .field("key", &"***")
            .finish()
    }
}

/// A private key found in a file, before it is matched to a certificate.
enum KeyDer {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
    /// PKCS#1 decrypted from OpenSSL's traditional encryption: if it does not parse, the
    /// password was wrong (the padding check lets about 1 in 256 wrong passwords through).
    DecryptedPkcs1(Vec<u8>),
}

impl ClientCertificate {
    /// Loads `path`, decrypting with `password` when needed.
    ///
    /// # Errors
    /// See [`CertificateError`].
    pub fn load(path: &Path, password: Option<&Secret>) -> Result<Self, CertificateError> {
        let bytes = std::fs::read(path).map_err(|source| CertificateError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(path, &bytes, password)
    }

    /// Reads a PEM or PKCS#12 file already in memory (`path` is for messages).
    ///
    /// # Errors
    /// See [`CertificateError`].
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        password: Option<&Secret>,
    ) -> Result<Self, CertificateError> {
        let path_buf = path.to_path_buf();
        let looks_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
        let (certs, key) = if looks_pem {
            read_pem(path, bytes, password)?
        } else {
            read_pkcs12(path, bytes, password)?
        };
        if certs.is_empty() {
            return Err(CertificateError::NoCertificate { path: path_buf });
        }
        let key = key.ok_or_else(|| CertificateError::NoKey {
            path: path_buf.clone(),
        })?;
        let key = match key {
            KeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(&der),
            KeyDer::Pkcs1(der) => RsaKeyPair::from_der(&der),
            KeyDer::DecryptedPkcs1(der) => {
                RsaKeyPair::from_der(&der).map_err(|_| CertificateError::CannotDecrypt {
                    path: path_buf.clone(),
                    detail: "the decrypted key does not parse".into(),
                })?;
                RsaKeyPair::from_der(&der)
            }
        }
        .map_err(|e| CertificateError::UnsupportedKey {
            path: path_buf.clone(),
            detail: e.to_string(),
        })?;
        let public = key.public().as_ref().to_vec();
        let mut first_subject = None;
        for der in certs {
            let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
                CertificateError::BadCertificate {
                    path: path_buf.clone(),
                    detail: e.to_string(),
                }
            })?;
            let subject = cert.subject().to_string();
            if cert.public_key().subject_public_key.data.as_ref() == public.as_slice() {
                let not_after = cert.validity().not_after.timestamp();
                let not_before = cert.validity().not_before.timestamp();
                return Ok(Self {
                    der: der.clone(),
                    key,
                    subject,
                    not_after,
                    not_before,
                });
            }
            first_subject.get_or_insert(subject);
        }
        Err(CertificateError::KeyMismatch {
            path: path_buf,
            subject: first_subject.unwrap_or_default(),
        })
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// `x5t#S256`: base64url of the SHA-256 of the certificate's DER.
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.der))
    }

    /// `x5t`: base64url of the SHA-1 of the certificate's DER.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.der,
        ))
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Entra admin center shows it.
    pub fn thumbprint_hex(&self) -> String {
        hex::encode_upper(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.der,
        ))
    }

    /// The SHA-256 thumbprint in upper-case hex.
    pub fn thumbprint_sha256_hex(&self) -> String {
        hex::encode_upper(ring::digest::digest(&ring::digest::SHA256, &self.der))
    }

    /// A one-line description for messages: subject, thumbprint and expiry.
    pub fn describe(&self) -> String {
        format!(
            "certificate '{}' (thumbprint {}, expires {})",
            self.subject,
            self.thumbprint_hex(),
            crate::auth::certificate::date(self.not_after)
        )
    }

    /// Signs a client assertion for `client_id` at the token endpoint `audience`.
    ///
    /// # Errors
    /// An internal error when signing fails (it does not for a key ring accepted).
    pub fn assertion(
        &self,
        algorithm: AssertionAlgorithm,
        audience: &str,
        client_id: &str,
        now: i64,
    ) -> Result<String, ProviderError> {
        let header = match algorithm {
            AssertionAlgorithm::Ps256 => {
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256()})
            }
            AssertionAlgorithm::Rs256 => {
                json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t()})
            }
        };
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let encoding: &'static dyn signature::RsaEncoding = match algorithm {
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                encoding,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| {
                ProviderError::internal(format!(
                    "signing the client assertion with {} failed",
                    self.describe()
                ))
            })?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// `YYYY-MM-DD` of Unix seconds (UTC).
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

fn read_pem(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<(Vec<Vec<u8>>, Option<KeyDer>), CertificateError> {
    let blocks = pem::parse_many(bytes).map_err(|e| CertificateError::Format {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut certs = Vec::new();
    let mut key = None;
    for block in blocks {
        match block.tag() {
            "CERTIFICATE" => certs.push(block.contents().to_vec()),
            "PRIVATE KEY" if key.is_none() => key = Some(KeyDer::Pkcs8(block.contents().to_vec())),
            "RSA PRIVATE KEY" if key.is_none() => {
                let encrypted = block
                    .headers()
                    .get("Proc-Type")
                    .is_some_and(|v| v.contains("ENCRYPTED"));
                if !encrypted {
                    key = Some(KeyDer::Pkcs1(block.contents().to_vec()));
                    continue;
                }
                let Some(password) = password else {
                    return Err(CertificateError::PasswordNeeded {
                        path: path.to_path_buf(),
                    });
                };
                let dek_info = block.headers().get("DEK-Info").unwrap_or("");
                let plain =
                    legacy::decrypt(dek_info, password.expose().as_bytes(), block.contents())
                        .map_err(|detail| match detail {
                            legacy::Failure::Unsupported(cipher) => {
                                CertificateError::LegacyEncryption {
                                    path: path.to_path_buf(),
                                    cipher,
                                }
                            }
                            legacy::Failure::Decrypt(detail) => CertificateError::CannotDecrypt {
                                path: path.to_path_buf(),
                                detail,
                            },
                        })?;
                key = Some(KeyDer::DecryptedPkcs1(plain));
            }
            "ENCRYPTED PRIVATE KEY" if key.is_none() => {
                let Some(password) = password else {
                    return Err(CertificateError::PasswordNeeded {
                        path: path.to_path_buf(),
                    });
                };
                let info =
                    pkcs8::EncryptedPrivateKeyInfoRef::try_from(block.contents()).map_err(|e| {
                        CertificateError::Format {
                            path: path.to_path_buf(),
                            detail: e.to_string(),
                        }
                    })?;
                let plain = info.decrypt(password.expose().as_bytes()).map_err(|e| {
                    CertificateError::CannotDecrypt {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    }
                })?;
                key = Some(KeyDer::Pkcs8(plain.as_bytes().to_vec()));
            }
            "EC PRIVATE KEY" if key.is_none() => {
                return Err(CertificateError::UnsupportedKey {
                    path: path.to_path_buf(),
                    detail: "an elliptic-curve key".into(),
                });
            }
            _ => {}
        }
    }
    Ok((certs, key))
}

/// OpenSSL's "traditional" PEM encryption (`Proc-Type: 4,ENCRYPTED` + `DEK-Info: CIPHER,IV`):
/// the key is `EVP_BytesToKey(MD5, salt = first 8 bytes of the IV, one round)` of the password,
/// the body is CBC with PKCS#7 padding. What `openssl rsa -aes256 -traditional` writes.
mod legacy {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
    use md5::{Digest, Md5};

    /// Why decryption failed.
    pub(super) enum Failure {
        /// A cipher not read here.
        Unsupported(String),
        /// A wrong password or damaged data.
        Decrypt(String),
    }

    fn derive(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
        let mut key = Vec::with_capacity(len + 16);
        let mut previous: Vec<u8> = Vec::new();
        while key.len() < len {
            let mut md5 = Md5::new();
            md5.update(&previous);
            md5.update(password);
            md5.update(salt);
            previous = md5.finalize().to_vec();
            key.extend_from_slice(&previous);
        }
        key.truncate(len);
        key
    }

    fn cbc<C>(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Failure>
    where
        cbc::Decryptor<C>: KeyIvInit + BlockModeDecrypt,
        C: cbc::cipher::BlockCipherDecrypt,
    {
        cbc::Decryptor::<C>::new_from_slices(key, iv)
            .map_err(|e| Failure::Decrypt(e.to_string()))?
            .decrypt_padded_vec::<Pkcs7>(data)
            .map_err(|_| Failure::Decrypt("wrong password (the padding does not check)".into()))
    }

    pub(super) fn decrypt(
        dek_info: &str,
        password: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let (cipher, iv) = dek_info
            .split_once(',')
            .ok_or_else(|| Failure::Unsupported(dek_info.to_string()))?;
        let cipher = cipher.trim().to_ascii_uppercase();
        let iv =
            hex::decode(iv.trim()).map_err(|e| Failure::Decrypt(format!("DEK-Info IV: {e}")))?;
        if iv.len() < 8 {
            return Err(Failure::Decrypt("DEK-Info IV is too short".into()));
        }
        let salt = &iv[..8];
        match cipher.as_str() {
            "AES-128-CBC" => cbc::<aes::Aes128>(&derive(password, salt, 16), &iv, data),
            "AES-192-CBC" => cbc::<aes::Aes192>(&derive(password, salt, 24), &iv, data),
            "AES-256-CBC" => cbc::<aes::Aes256>(&derive(password, salt, 32), &iv, data),
            "DES-EDE3-CBC" => cbc::<des::TdesEde3>(&derive(password, salt, 24), &iv, data),
            other => Err(Failure::Unsupported(other.to_string())),
        }
    }
}

fn read_pkcs12(
    path: &Path,
    bytes: &[u8],
    password: Option<&Secret>,
) -> Result<(Vec<Vec<u8>>, Option<KeyDer>), CertificateError> {
    let password = password.map_or("", |p| p.expose());
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| match e {
        p12_keystore::error::Error::MacError(_)
        | p12_keystore::error::Error::UnpadError
        | p12_keystore::error::Error::Pkcs5Error(_)
            if password.is_empty() =>
        {
            CertificateError::PasswordNeeded {
                path: path.to_path_buf(),
            }
        }
        p12_keystore::error::Error::MacError(_)
        | p12_keystore::error::Error::UnpadError
        | p12_keystore::error::Error::Pkcs5Error(_)
        | p12_keystore::error::Error::UnsupportedEncryptionScheme
        | p12_keystore::error::Error::UnsupportedMacAlgorithm => CertificateError::CannotDecrypt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        },
        other => CertificateError::Format {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })?;
    let mut certs = Vec::new();
    let mut key = None;
    for (_, entry) in store.entries() {
        match entry {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                if key.is_none() {
                    key = Some(KeyDer::Pkcs8(chain.key().as_der().to_vec()));
                }
                certs.extend(chain.certs().iter().map(|c| c.as_der().to_vec()));
            }
            p12_keystore::KeyStoreEntry::Certificate(cert) => certs.push(cert.as_der().to_vec()),
            _ => {}
        }
    }
    Ok((certs, key))
}

/// Reads the `ClientAssertionAlgorithm` value, for settings.
///
/// # Errors
/// A message for the settings parser.
pub fn parse_algorithm(text: Option<&str>) -> Result<AssertionAlgorithm, String> {
    match text {
        None => Ok(AssertionAlgorithm::Ps256),
        Some(text) => AssertionAlgorithm::parse(text).ok_or_else(|| {
            format!(
                "'{text}' is not an algorithm: use PS256 (x5t#S256, the default) or RS256 (x5t) for {CLIENT_ASSERTION_ALGORITHM}"
            )
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_798_761_600), "2027-01-01");
    }

    #[test]
    fn algorithms_parse() {
        assert_eq!(parse_algorithm(None), Ok(AssertionAlgorithm::Ps256));
        assert_eq!(
            parse_algorithm(Some("rs256")),
            Ok(AssertionAlgorithm::Rs256)
        );
        assert!(parse_algorithm(Some("ES256")).is_err());
    }

    const PASSWORD: &str = "Fixture-Passw0rd!";

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/emulator/certificates")
            .join(name)
    }

    fn load(name: &str, password: Option<&str>) -> Result<ClientCertificate, CertificateError> {
        ClientCertificate::load(&fixture(name), password.map(Secret::new).as_ref())
    }

    #[test]
    fn every_format_loads_the_same_certificate() {
        let plain = load("app.pem", None).unwrap();
        for (name, password) in [
            ("app-pkcs1.pem", None),
            ("app-encrypted.pem", Some(PASSWORD)),
            ("app.pfx", Some(PASSWORD)),
            ("app-legacy-encrypted.pem", Some(PASSWORD)),
        ] {
            let other = load(name, password).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(other.x5t_s256(), plain.x5t_s256(), "{name}");
        }
        assert!(plain.subject.contains("mailhost-daemon-cert"), "{plain:?}");
        assert!(plain.not_after > plain.not_before);
        assert_eq!(plain.thumbprint_hex().len(), 40);
        assert!(!format!("{plain:?}").contains("BEGIN"));
    }

    #[test]
    fn passwords_and_mismatches_are_found_before_any_request() {
        assert!(matches!(
            load("app-encrypted.pem", None),
            Err(CertificateError::PasswordNeeded { .. })
        ));
        assert!(matches!(
            load("app-encrypted.pem", Some("wrong")),
            Err(CertificateError::CannotDecrypt { .. })
        ));
        assert!(matches!(
            load("app.pfx", None),
            Err(CertificateError::PasswordNeeded { .. })
        ));
        assert!(matches!(
            load("app-legacy-encrypted.pem", None),
            Err(CertificateError::PasswordNeeded { .. })
        ));
        assert!(matches!(
            load("app-legacy-encrypted.pem", Some("wrong")),
            Err(CertificateError::CannotDecrypt { .. })
        ));
        assert!(matches!(
            load("app.pfx", Some("wrong")),
            Err(CertificateError::CannotDecrypt { .. })
        ));
        let mismatch = load("mismatch.pem", None).unwrap_err();
        assert!(
            matches!(mismatch, CertificateError::KeyMismatch { .. }),
            "{mismatch}"
        );
        assert!(
            mismatch.to_provider_error().message.contains("-modulus"),
            "{mismatch}"
        );
        assert!(matches!(
            load("cert.pem", None),
            Err(CertificateError::NoKey { .. })
        ));
        assert!(matches!(
            load("key.pem", None),
            Err(CertificateError::NoCertificate { .. })
        ));
    }

    fn verify(
        token: &str,
        certificate: &ClientCertificate,
        alg: &'static dyn signature::VerificationAlgorithm,
    ) -> (serde_json::Value, serde_json::Value) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let (_, cert) = x509_parser::parse_x509_certificate(certificate.der()).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        signature::UnparsedPublicKey::new(alg, public)
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .expect("the signature verifies with the certificate's public key");
        let decode = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        (decode(parts[0]), decode(parts[1]))
    }

    #[test]
    fn assertions_follow_microsofts_format() {
        let certificate = load("app.pem", None).unwrap();
        let aud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
        let token = certificate
            .assertion(AssertionAlgorithm::Ps256, aud, "client-1", 1_000)
            .unwrap();
        let (header, claims) = verify(&token, &certificate, &signature::RSA_PSS_2048_8192_SHA256);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t#S256"], certificate.x5t_s256());
        assert!(header.get("x5t").is_none());
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["nbf"], 1_000);
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_600);
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
        let again = certificate
            .assertion(AssertionAlgorithm::Ps256, aud, "client-1", 1_000)
            .unwrap();
        let (_, again) = verify(&again, &certificate, &signature::RSA_PSS_2048_8192_SHA256);
        assert_ne!(again["jti"], claims["jti"], "a fresh jti per assertion");

        let token = certificate
            .assertion(AssertionAlgorithm::Rs256, aud, "client-1", 1_000)
            .unwrap();
        let (header, _) = verify(&token, &certificate, &signature::RSA_PKCS1_2048_8192_SHA256);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["x5t"], certificate.x5t());
    }

    #[test]
    fn garbage_is_named() {
        let error = ClientCertificate::from_bytes(Path::new("x.pem"), b"hello", None).unwrap_err();
        assert!(matches!(error, CertificateError::Format { .. }), "{error}");
        let message = error.to_provider_error().message.to_string();
        assert!(message.contains("ClientCertificate"), "{message}");
        let error = ClientCertificate::load(Path::new("/nonexistent/app.pem"), None).unwrap_err();
        assert!(matches!(error, CertificateError::Unreadable { .. }));
    }
}
