//! AUTH PLAIN (RFC 4616) and AUTH LOGIN: decoding what the client sends into a user name and a
//! password. The password goes straight into a [`Secret`], whose `Debug` prints nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailhost_plugin_api::Secret;

/// A decoded credential.
#[derive(Debug)]
pub struct Credentials {
    /// The user name (a staff ID or address).
    pub user: String,
    /// The password.
    pub password: Secret,
}

/// Why a SASL response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Not base64.
    #[error("the response is not valid base64")]
    Base64,
    /// Not `[authzid] NUL authcid NUL password` in UTF-8.
    #[error("the response is not 'authzid NUL user NUL password' in UTF-8")]
    Format,
    /// An authorization identity other than the user.
    #[error("acting for another user (an authorization identity) is not supported")]
    Authzid,
}

/// Decodes base64 text of a SASL response; `=` alone is the empty response.
///
/// # Errors
/// Not base64.
pub fn decode(text: &str) -> Result<Vec<u8>, SaslError> {
    let text = text.trim();
    if text == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(text).map_err(|_| SaslError::Base64)
}

/// Decodes an AUTH PLAIN response.
///
/// # Errors
/// Not base64, not three NUL-separated UTF-8 parts, or an authorization identity that differs
/// from the user.
pub fn plain(text: &str) -> Result<Credentials, SaslError> {
    let bytes = decode(text)?;
    let mut parts = bytes.split(|&b| b == 0);
    let (Some(authz), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Format);
    };
    let authz = std::str::from_utf8(authz).map_err(|_| SaslError::Format)?;
    let user = std::str::from_utf8(user).map_err(|_| SaslError::Format)?;
    let password = std::str::from_utf8(password).map_err(|_| SaslError::Format)?;
    if user.is_empty() {
        return Err(SaslError::Format);
    }
    if !authz.is_empty() && authz != user {
        return Err(SaslError::Authzid);
    }
    Ok(Credentials {
        user: user.to_string(),
        password: Secret::new(password.to_string()),
    })
}

/// Decodes one AUTH LOGIN line (the user name or the password) as UTF-8 text.
///
/// # Errors
/// Not base64 or not UTF-8.
pub fn login_part(text: &str) -> Result<String, SaslError> {
    String::from_utf8(decode(text)?).map_err(|_| SaslError::Format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_forms() {
        let c = plain(&STANDARD.encode("\0adele\0pw")).unwrap();
        assert_eq!((c.user.as_str(), c.password.expose()), ("adele", "pw"));
        let c = plain(&STANDARD.encode("adele\0adele\0pw")).unwrap();
        assert_eq!(c.user, "adele");
        assert_eq!(
            plain(&STANDARD.encode("bob\0adele\0pw")).unwrap_err(),
            SaslError::Authzid
        );
        assert_eq!(plain("!!").unwrap_err(), SaslError::Base64);
        assert_eq!(
            plain(&STANDARD.encode("adele:pw")).unwrap_err(),
            SaslError::Format
        );
        assert_eq!(login_part("YWRlbGU=").unwrap(), "adele");
    }
}
