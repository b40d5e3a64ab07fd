//! Certificate credentials: the certificates registered on an app (seed and admin API) and the
//! verification of a client assertion JWT as the Microsoft identity platform does it
//! (learn.microsoft.com/entra/identity-platform/certificate-credentials; `GRAPH.md` §7):
//! `alg` PS256 or RS256, the key found by `x5t#S256` (SHA-256) or `x5t` (SHA-1) among the app's
//! certificates, the signature checked with that certificate's public key, `iss` = `sub` =
//! client id, `aud` = the token endpoint, `nbf` (else `iat`) and `exp` around now (5 minutes
//! of clock skew), and, when the emulator is configured to, each `jti` accepted once. The
//! service itself accepts a repeated assertion while it is valid (MSAL for Python reuses one
//! for 9 minutes), so replay refusal is a switch for tests of clients that promise a fresh
//! assertion per request.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature;
use serde_json::Value;

use crate::identity::error::AadError;

/// Clock skew allowed on `nbf` and `exp`.
pub(crate) const CLOCK_SKEW_SECS: i64 = 300;

/// A certificate uploaded to an app registration ("Certificates & secrets > Certificates").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegisteredCertificate {
    pub(crate) der: Vec<u8>,
    /// PKCS#1 `RSAPublicKey` DER from the certificate's subject public key info.
    public_key: Vec<u8>,
    sha1: Vec<u8>,
    sha256: Vec<u8>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) subject: String,
}

impl RegisteredCertificate {
    /// Reads a certificate from PEM (`BEGIN CERTIFICATE`) or base64 DER text, as the portal's
    /// upload and Graph's `keyCredentials.key` take it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let der = match pem::parse(text) {
            Ok(block) if block.tag() == "CERTIFICATE" => block.into_contents(),
            Ok(block) => return Err(format!("a {} is not a certificate", block.tag())),
            Err(_) => STANDARD
                .decode(text.split_whitespace().collect::<String>())
                .map_err(|e| format!("neither a PEM certificate nor base64 DER: {e}"))?,
        };
        Self::from_der(der)
    }

    /// Reads a DER certificate.
    pub(crate) fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let (public_key, not_before, not_after, subject) = {
            let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
            (
                cert.public_key().subject_public_key.data.to_vec(),
                cert.validity().not_before.timestamp(),
                cert.validity().not_after.timestamp(),
                cert.subject().to_string(),
            )
        };
        Ok(Self {
            sha1: ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der)
                .as_ref()
                .to_vec(),
            sha256: ring::digest::digest(&ring::digest::SHA256, &der)
                .as_ref()
                .to_vec(),
            der,
            public_key,
            not_before,
            not_after,
            subject,
        })
    }

    /// The SHA-1 thumbprint in upper-case hex (the portal's "Thumbprint").
    pub(crate) fn thumbprint(&self) -> String {
        hex::encode_upper(&self.sha1)
    }
}

/// What the token request's URL and time say an assertion must match.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub(crate) client_id: &'a str,
    /// Every `aud` accepted: the v2.0 (and v1) token endpoint under each alias of the tenant.
    pub(crate) audiences: Vec<String>,
    pub(crate) now: i64,
    /// Refuse a `jti` presented before (off by default: the service accepts MSAL's reuse of
    /// an assertion for up to 9 minutes).
    pub(crate) reject_replay: bool,
}

/// Used `jti` values per client, each kept until its assertion's `exp` (+ skew).
#[derive(Debug, Default)]
pub(crate) struct UsedAssertions {
    seen: HashMap<(String, String), i64>,
}

fn malformed(detail: &str) -> AadError {
    AadError::new(
        "invalid_client",
        50_027,
        format!("JWT token is invalid or malformed. {detail}"),
    )
}

fn signature_failed(detail: &str) -> AadError {
    AadError::new("invalid_client", 700_027, detail.to_string())
}

fn decode_part(part: &str) -> Result<Value, AadError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| malformed("A part is not base64url."))?;
    serde_json::from_slice(&bytes).map_err(|_| malformed("A part is not JSON."))
}

/// Verifies `assertion` for an app whose registered certificates are `certificates`.
pub(crate) fn verify(
    assertion: &str,
    assertion_type: Option<&str>,
    certificates: &[RegisteredCertificate],
    expected: &Expected<'_>,
    used: &mut UsedAssertions,
) -> Result<(), AadError> {
    if assertion_type != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return Err(AadError::new(
            "invalid_request",
            9_002_313,
            "Invalid request. Request is malformed or invalid: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        ));
    }
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_part, claims_part, signature_part] = parts.as_slice() else {
        return Err(malformed("The assertion has not three parts."));
    };
    let header = decode_part(header_part)?;
    let claims = decode_part(claims_part)?;
    let algorithm: &'static dyn signature::VerificationAlgorithm = match header["alg"].as_str() {
        Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        other => {
            return Err(signature_failed(&format!(
                "Client assertion failed signature validation. [Reason - The algorithm '{}' is not supported; use PS256 or RS256.]",
                other.unwrap_or("")
            )));
        }
    };
    let thumbprint = |name: &str| {
        header[name]
            .as_str()
            .and_then(|t| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok())
    };
    let (by_sha256, by_sha1) = (thumbprint("x5t#S256"), thumbprint("x5t"));
    if by_sha256.is_none() && by_sha1.is_none() {
        return Err(signature_failed(
            "Client assertion failed signature validation. [Reason - The header has neither x5t#S256 nor x5t.]",
        ));
    }
    let shown = by_sha256
        .as_deref()
        .or(by_sha1.as_deref())
        .map(hex::encode_upper)
        .unwrap_or_default();
    let certificate = certificates
        .iter()
        .find(|c| {
            by_sha256.as_deref() == Some(c.sha256.as_slice())
                || by_sha1.as_deref() == Some(c.sha1.as_slice())
        })
        .ok_or_else(|| {
            signature_failed(&format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                expected.client_id
            ))
        })?;
    if certificate.not_after < expected.now {
        return Err(signature_failed(&format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key used is expired., Thumbprint of key used by client: '{}']",
            certificate.thumbprint()
        )));
    }
    let signature_bytes = URL_SAFE_NO_PAD
        .decode(signature_part.trim_end_matches('='))
        .map_err(|_| malformed("The signature is not base64url."))?;
    signature::UnparsedPublicKey::new(algorithm, &certificate.public_key)
        .verify(
            format!("{header_part}.{claims_part}").as_bytes(),
            &signature_bytes,
        )
        .map_err(|_| signature_failed("Client assertion failed signature validation."))?;
    let claim = |name: &str| claims[name].as_str().unwrap_or("");
    if !claim("iss").eq_ignore_ascii_case(expected.client_id)
        || !claim("sub").eq_ignore_ascii_case(expected.client_id)
    {
        return Err(AadError::new(
            "invalid_client",
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let audience = claim("aud");
    if !expected
        .audiences
        .iter()
        .any(|a| a.eq_ignore_ascii_case(audience))
    {
        return Err(AadError::new(
            "invalid_client",
            700_023,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    // Microsoft's documentation lists nbf, but the service accepts assertions without it (MSAL
    // for Python sends only iat and exp): then iat stands in for it.
    // NumericDate may be fractional (MSAL for Python sends time.time() floats).
    let seconds = |name: &str| claims[name].as_f64().map(|v| v as i64);
    let Some(exp) = seconds("exp") else {
        return Err(malformed("The assertion lacks exp."));
    };
    let nbf = seconds("nbf").or_else(|| seconds("iat")).unwrap_or(exp);
    if expected.now + CLOCK_SKEW_SECS < nbf || expected.now - CLOCK_SKEW_SECS > exp {
        return Err(AadError::new(
            "invalid_client",
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                crate::time::iso8601(u64::try_from(expected.now).unwrap_or(0)),
                crate::time::iso8601(u64::try_from(nbf).unwrap_or(0)),
                crate::time::iso8601(u64::try_from(exp).unwrap_or(0)),
            ),
        ));
    }
    let jti = claim("jti");
    if jti.is_empty() {
        return Err(malformed("The assertion lacks jti."));
    }
    used.seen.retain(|_, until| *until >= expected.now);
    let key = (expected.client_id.to_ascii_lowercase(), jti.to_string());
    if expected.reject_replay && used.seen.contains_key(&key) {
        return Err(signature_failed(&format!(
            "Client assertion has already been used: jti '{jti}' was presented before. Sign a new assertion for every token request."
        )));
    }
    used.seen.insert(key, exp + CLOCK_SKEW_SECS);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    #[test]
    fn the_seed_certificate_parses() {
        let cert = RegisteredCertificate::parse(seed::CERT_DAEMON_CERTIFICATE_PEM).unwrap();
        assert_eq!(cert.thumbprint().len(), 40);
        assert!(cert.not_after > cert.not_before);
        assert!(cert.subject.contains("mailhost-daemon-cert"));
        let b64 = STANDARD.encode(&cert.der);
        assert_eq!(RegisteredCertificate::parse(&b64).unwrap(), cert);
        assert!(RegisteredCertificate::parse("nonsense!").is_err());
    }

    #[test]
    fn malformed_assertions_are_refused() {
        let cert = RegisteredCertificate::parse(seed::CERT_DAEMON_CERTIFICATE_PEM).unwrap();
        let expected = Expected {
            client_id: "c",
            audiences: vec!["aud".into()],
            now: 0,
            reject_replay: true,
        };
        let mut used = UsedAssertions::default();
        let jwt = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        let e = verify(
            "a.b",
            Some(jwt),
            std::slice::from_ref(&cert),
            &expected,
            &mut used,
        )
        .unwrap_err();
        assert_eq!(e.code, 50_027);
        let e = verify(
            "a.b.c",
            None,
            std::slice::from_ref(&cert),
            &expected,
            &mut used,
        )
        .unwrap_err();
        assert_eq!(e.code, 9_002_313);
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"PS256","x5t#S256":"AAAA"}"#);
        let claims = URL_SAFE_NO_PAD.encode("{}");
        let e = verify(
            &format!("{header}.{claims}.AAAA"),
            Some(jwt),
            std::slice::from_ref(&cert),
            &expected,
            &mut used,
        )
        .unwrap_err();
        assert_eq!(e.code, 700_027);
        assert!(e.message.contains("not registered"), "{}", e.message);
    }
}
