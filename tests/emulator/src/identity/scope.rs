//! Parsing the `scope` parameter and deciding what a token grants (`GRAPH.md` §1.6).

use crate::directory::{App, KNOWN_GRAPH_PERMISSIONS};
use crate::identity::error::AadError;
use crate::seed::{GRAPH_APP_ID, GRAPH_RESOURCE};

/// The OpenID Connect scopes (not resource permissions).
pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A parsed `scope` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScopeRequest {
    /// Graph permissions named explicitly (canonical case).
    pub(crate) permissions: Vec<String>,
    /// OIDC scopes requested.
    pub(crate) oidc: Vec<String>,
    /// `https://graph.microsoft.com/.default` was requested.
    pub(crate) default: bool,
    /// The client spelled Graph scopes with the resource prefix.
    pub(crate) prefixed: bool,
}

impl ScopeRequest {
    /// Whether `offline_access` was requested (a refresh token is returned).
    pub(crate) fn offline(&self) -> bool {
        self.oidc.iter().any(|s| s == "offline_access")
    }

    /// Whether `openid` was requested (an id token is returned).
    pub(crate) fn openid(&self) -> bool {
        self.oidc.iter().any(|s| s == "openid")
    }
}

fn canonical_permission(name: &str) -> Option<&'static str> {
    KNOWN_GRAPH_PERMISSIONS
        .iter()
        .copied()
        .find(|p| p.eq_ignore_ascii_case(name))
}

fn invalid(scope: &str) -> AadError {
    AadError::invalid_scope(format!(
        "The provided value for the input parameter 'scope' is not valid. The scope '{scope}' is not valid."
    ))
}

/// Parses a space-separated `scope` value.
pub(crate) fn parse(raw: &str) -> Result<ScopeRequest, AadError> {
    let mut request = ScopeRequest::default();
    let mut other_resource_scopes = 0usize;
    for scope in raw.split_whitespace() {
        let lower = scope.to_ascii_lowercase();
        if let Some(oidc) = OIDC_SCOPES.iter().find(|s| **s == lower) {
            if !request.oidc.iter().any(|s| s == oidc) {
                request.oidc.push((*oidc).to_string());
            }
            continue;
        }
        let (resource, name) = match scope.rsplit_once('/') {
            Some((resource, name))
                if resource.contains(':') || resource.contains('.') || resource.len() == 36 =>
            {
                (Some(resource), name)
            }
            Some(_) => return Err(invalid(scope)),
            None => (None, scope),
        };
        if let Some(resource) = resource {
            let is_graph = resource
                .trim_end_matches('/')
                .eq_ignore_ascii_case(GRAPH_RESOURCE)
                || resource.eq_ignore_ascii_case(GRAPH_APP_ID);
            if !is_graph {
                if resource
                    .to_ascii_lowercase()
                    .starts_with("https://outlook.office")
                {
                    other_resource_scopes += 1;
                    continue;
                }
                return Err(AadError::invalid_resource(resource));
            }
            request.prefixed = true;
        }
        if name.eq_ignore_ascii_case(".default") {
            request.default = true;
            continue;
        }
        match canonical_permission(name) {
            Some(permission) => {
                if !request.permissions.iter().any(|p| p == permission) {
                    request.permissions.push(permission.to_string());
                }
            }
            None => return Err(invalid(scope)),
        }
    }
    if other_resource_scopes > 0 {
        if !request.permissions.is_empty() || request.default {
            return Err(AadError::new(
                "invalid_request",
                700_022,
                "The provided value for the input parameter scope is not valid because it contains more \
                 than one resource. Scope is not valid.",
            ));
        }
        // A resource the seeded apps have no consent for.
        request.permissions.push("__other_resource__".into());
    }
    if request.default && !request.permissions.is_empty() {
        return Err(AadError::invalid_scope(format!(
            "The provided value for the input parameter 'scope' is not valid. The scope '{raw}' does not \
             exist. '/.default' cannot be combined with resource-specific scopes."
        )));
    }
    Ok(request)
}

/// What a delegated token grants: the Graph permissions (all consented ones, as Entra issues
/// them) or AADSTS65001 when something requested is not consented.
pub(crate) fn grant_delegated(app: &App, request: &ScopeRequest) -> Result<Vec<String>, AadError> {
    let consented = |p: &String| app.delegated.iter().any(|d| d == p);
    if request.permissions.iter().any(|p| !consented(p))
        || (request.default && app.delegated.is_empty())
        || (request.permissions.is_empty()
            && !request.default
            && app.delegated.is_empty()
            && request.oidc.is_empty())
    {
        return Err(AadError::consent_missing(app.client_id, app.name));
    }
    Ok(app.delegated.iter().map(|s| (*s).to_string()).collect())
}

/// The `scope` string of a token response.
pub(crate) fn response_scope(granted: &[String], request: &ScopeRequest) -> String {
    let mut parts: Vec<String> = granted
        .iter()
        .map(|p| {
            if request.prefixed {
                format!("{GRAPH_RESOURCE}/{p}")
            } else {
                p.clone()
            }
        })
        .collect();
    for oidc in &request.oidc {
        if oidc != "offline_access" {
            parts.push(oidc.clone());
        }
    }
    parts.join(" ")
}

/// Checks a client-credentials scope: exactly one `{resource}/.default`.
pub(crate) fn check_client_credentials(raw: &str) -> Result<(), AadError> {
    let scopes: Vec<&str> = raw.split_whitespace().collect();
    match scopes.as_slice() {
        [] => Err(AadError::missing_parameter("scope")),
        [one] => {
            let Some((resource, name)) = one.rsplit_once('/') else {
                return Err(client_credentials_scope(one));
            };
            if !name.eq_ignore_ascii_case(".default") {
                return Err(client_credentials_scope(one));
            }
            let resource = resource.trim_end_matches('/');
            if resource.eq_ignore_ascii_case(GRAPH_RESOURCE)
                || resource.eq_ignore_ascii_case(GRAPH_APP_ID)
            {
                Ok(())
            } else {
                Err(AadError::invalid_resource(resource))
            }
        }
        _ => Err(client_credentials_scope(raw)),
    }
}

fn client_credentials_scope(scope: &str) -> AadError {
    AadError::invalid_scope(format!(
        "The provided value for scope {scope} is not valid. Client credential flows must have a scope \
         value with /.default suffixed to the resource identifier (application ID URI)."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::seed;

    #[test]
    fn parses_short_prefixed_and_oidc_scopes() {
        let r =
            parse("https://graph.microsoft.com/Mail.Send openid offline_access profile").unwrap();
        assert_eq!(r.permissions, vec!["Mail.Send"]);
        assert!(r.prefixed && r.offline() && r.openid());
        let r = parse("mail.send Mail.ReadWrite").unwrap();
        assert_eq!(r.permissions, vec!["Mail.Send", "Mail.ReadWrite"]);
        assert!(!r.prefixed);
        assert!(
            parse("https://graph.microsoft.com/.default")
                .unwrap()
                .default
        );
    }

    #[test]
    fn rejects_bad_scopes() {
        assert_eq!(parse("Mail.Bogus").unwrap_err().code, 70_011);
        assert_eq!(
            parse("https://graph.microsoft.com/.default Mail.Send")
                .unwrap_err()
                .code,
            70_011
        );
        assert_eq!(
            parse("https://unknown.example/x").unwrap_err().code,
            500_011
        );
        assert_eq!(
            check_client_credentials("Mail.Send").unwrap_err().code,
            70_011
        );
        assert_eq!(check_client_credentials("").unwrap_err().code, 900_144);
        assert!(check_client_credentials("https://graph.microsoft.com/.default").is_ok());
    }

    #[test]
    fn grants_all_consented_or_requires_consent() {
        let dir = Directory::seed();
        let mailhost = dir.app(seed::MAILHOST_CLIENT_ID).unwrap();
        let granted = grant_delegated(mailhost, &parse("Mail.Send").unwrap()).unwrap();
        assert!(granted.contains(&"Mail.ReadWrite".to_string()));
        assert_eq!(
            grant_delegated(mailhost, &parse("Mail.Read").unwrap())
                .unwrap_err()
                .code,
            65_001
        );
        let none = dir.app(seed::NO_CONSENT_CLIENT_ID).unwrap();
        let err = grant_delegated(none, &parse("Mail.Send").unwrap()).unwrap_err();
        assert_eq!((err.code, err.suberror), (65_001, Some("consent_required")));
        let request = parse("https://graph.microsoft.com/Mail.Send openid offline_access").unwrap();
        let scope = response_scope(&["Mail.Send".into()], &request);
        assert_eq!(scope, "https://graph.microsoft.com/Mail.Send openid");
    }
}
