//! The `id_token` (an unsigned but well-formed JWT, `alg: none`) and `client_info` values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::directory::Mailbox;
use crate::seed;

/// The v2.0 issuer for the seeded tenant at `base_url`.
pub(crate) fn issuer(base_url: &str) -> String {
    format!("{base_url}/{}/v2.0", seed::TENANT_ID)
}

/// An OIDC id token for `user`, audience `client_id`.
pub(crate) fn id_token(
    base_url: &str,
    client_id: &str,
    user: &Mailbox,
    nonce: Option<&str>,
    now: u64,
) -> String {
    let header = json!({"typ": "JWT", "alg": "none"});
    let mut claims = json!({
        "aud": client_id,
        "iss": issuer(base_url),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "name": user.name,
        "oid": user.id,
        "preferred_username": user.upn,
        "email": user.upn,
        "sub": user.id,
        "tid": seed::TENANT_ID,
        "ver": "2.0",
    });
    if let (Some(nonce), Some(map)) = (nonce, claims.as_object_mut()) {
        map.insert("nonce".into(), json!(nonce));
    }
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// `client_info`: base64url of `{"uid": oid, "utid": tid}` (MSAL's home account id is `uid.utid`).
pub(crate) fn client_info(user: &Mailbox) -> String {
    URL_SAFE_NO_PAD.encode(json!({"uid": user.id, "utid": seed::TENANT_ID}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;

    #[test]
    fn id_token_decodes() {
        let dir = Directory::seed();
        let user = dir.mailbox(seed::USER_UPN).unwrap();
        let token = id_token("https://127.0.0.1:1", "client", user, Some("n0nce"), 100);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["preferred_username"], seed::USER_UPN);
        assert_eq!(claims["nonce"], "n0nce");
        assert_eq!(
            claims["iss"],
            format!("https://127.0.0.1:1/{}/v2.0", seed::TENANT_ID)
        );
        let info: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(client_info(user)).unwrap()).unwrap();
        assert_eq!(info["uid"], seed::USER_ID);
    }
}
