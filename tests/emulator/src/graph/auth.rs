//! Bearer-token authentication, target mailbox resolution and permission checks for Graph.

use axum::http::{HeaderMap, header};

use crate::directory::{Directory, Mailbox, Right};
use crate::graph::error::GraphError;
use crate::mailbox::{Recipient, StoredMessage};
use crate::state::Inner;
use crate::time::now_unix;

/// Who is calling.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// A user signed in to an app (`scp`).
    Delegated {
        client_id: String,
        user: String,
        scopes: Vec<String>,
    },
    /// The app itself (`roles`).
    App {
        client_id: String,
        roles: Vec<String>,
    },
}

impl Principal {
    /// The app's client id.
    pub(crate) fn client_id(&self) -> &str {
        match self {
            Self::Delegated { client_id, .. } | Self::App { client_id, .. } => client_id,
        }
    }

    fn has_scope(&self, permission: &str) -> bool {
        match self {
            Self::Delegated { scopes, .. } => {
                scopes.iter().any(|s| s.eq_ignore_ascii_case(permission))
            }
            Self::App { roles, .. } => roles.iter().any(|s| s.eq_ignore_ascii_case(permission)),
        }
    }
}

/// The bearer token of a request, if any (`None` when absent or empty).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or(value)
        .trim();
    (!token.is_empty() && !token.eq_ignore_ascii_case("bearer")).then_some(token)
}

/// Validates the `Authorization` header.
pub(crate) fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<Principal, GraphError> {
    let token = bearer(headers).ok_or_else(GraphError::token_empty)?;
    let stored = inner
        .tokens
        .access
        .get(token)
        .ok_or_else(GraphError::token_invalid)?;
    if now_unix() >= stored.expires_at {
        return Err(GraphError::token_expired());
    }
    Ok(match &stored.user {
        Some(user) => Principal::Delegated {
            client_id: stored.client_id.clone(),
            user: user.clone(),
            scopes: stored.scopes.clone(),
        },
        None => Principal::App {
            client_id: stored.client_id.clone(),
            roles: stored.roles.clone(),
        },
    })
}

/// `/me` or `/users/{id | userPrincipalName}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Me,
    User(String),
}

/// Resolves the mailbox a request addresses.
pub(crate) fn resolve_target(
    dir: &Directory,
    principal: &Principal,
    target: &Target,
) -> Result<Mailbox, GraphError> {
    match (target, principal) {
        (Target::Me, Principal::App { .. }) => Err(GraphError::me_with_app_token()),
        (Target::Me, Principal::Delegated { user, .. }) => dir
            .mailbox(user)
            .cloned()
            .ok_or_else(|| GraphError::invalid_user(user)),
        (Target::User(id), _) => dir
            .mailbox(id)
            .cloned()
            .ok_or_else(|| GraphError::invalid_user(id)),
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// `Mail.Send` (own) / `Mail.Send.Shared` + Full Access (other mailbox).
    Send,
    /// `Mail.ReadWrite` (own) / `Mail.ReadWrite.Shared` + Full Access (other mailbox).
    ReadWrite,
    /// `Mail.Read` or `Mail.ReadWrite` (own) / their `.Shared` forms + Full Access (other).
    Read,
}

/// Authenticates the caller, resolves the mailbox `target` names and checks that the caller may
/// act on it for `need`.
pub(crate) fn authorized_mailbox(
    inner: &Inner,
    headers: &HeaderMap,
    target: &Target,
    need: Need,
) -> Result<(Principal, Mailbox), GraphError> {
    let principal = authenticate(inner, headers)?;
    let mailbox = resolve_target(&inner.directory, &principal, target)?;
    authorize(&inner.directory, &principal, &mailbox, need)?;
    Ok((principal, mailbox))
}

/// Checks the principal's permissions on `mailbox`.
pub(crate) fn authorize(
    dir: &Directory,
    principal: &Principal,
    mailbox: &Mailbox,
    need: Need,
) -> Result<(), GraphError> {
    match principal {
        Principal::App { roles, .. } => {
            if roles.is_empty() {
                return Err(GraphError::no_permissions());
            }
            let allowed = match need {
                Need::Send => principal.has_scope("Mail.Send"),
                Need::ReadWrite => principal.has_scope("Mail.ReadWrite"),
                Need::Read => {
                    principal.has_scope("Mail.Read") || principal.has_scope("Mail.ReadWrite")
                }
            };
            if allowed {
                Ok(())
            } else {
                Err(GraphError::access_denied())
            }
        }
        Principal::Delegated { user, .. } => {
            let own = mailbox.upn.eq_ignore_ascii_case(user);
            let allowed = match (need, own) {
                (Need::Send, true) => principal.has_scope("Mail.Send"),
                (Need::Send, false) => principal.has_scope("Mail.Send.Shared"),
                (Need::ReadWrite, true) => principal.has_scope("Mail.ReadWrite"),
                (Need::ReadWrite, false) => principal.has_scope("Mail.ReadWrite.Shared"),
                (Need::Read, true) => {
                    principal.has_scope("Mail.Read") || principal.has_scope("Mail.ReadWrite")
                }
                (Need::Read, false) => {
                    principal.has_scope("Mail.Read.Shared")
                        || principal.has_scope("Mail.ReadWrite.Shared")
                }
            };
            if !allowed {
                return Err(GraphError::access_denied());
            }
            if !own && !dir.has_right(user, mailbox.upn, Right::FullAccess) {
                return Err(GraphError::access_denied());
            }
            Ok(())
        }
    }
}

/// Sets `from` and `sender` the way Exchange does from mailbox rights: Send As (`from` ==
/// `sender`), Send on behalf (`sender` = the acting user), else `ErrorSendAsDenied`.
pub(crate) fn resolve_from(
    dir: &Directory,
    principal: &Principal,
    mailbox: &Mailbox,
    message: &mut StoredMessage,
) -> Result<(), GraphError> {
    let acting = match principal {
        Principal::Delegated { user, .. } => dir
            .mailbox(user)
            .cloned()
            .ok_or_else(|| GraphError::invalid_user(user))?,
        Principal::App { .. } => mailbox.clone(),
    };
    let from_address = message
        .from
        .as_ref()
        .map(|r| r.address().trim().to_string())
        .unwrap_or_else(|| mailbox.upn.to_string());
    let Some(owner) = dir.mailbox(&from_address).cloned() else {
        return Err(GraphError::send_as_denied());
    };
    let recipient = |m: &Mailbox| Recipient::new(m.upn, Some(m.name.to_string()));
    if owner.upn.eq_ignore_ascii_case(acting.upn) {
        message.from = Some(recipient(&owner));
        message.sender = Some(recipient(&owner));
        return Ok(());
    }
    if matches!(principal, Principal::Delegated { .. }) && !principal.has_scope("Mail.Send.Shared")
    {
        return Err(GraphError::access_denied());
    }
    if dir.has_right(acting.upn, owner.upn, Right::SendAs) {
        message.from = Some(recipient(&owner));
        message.sender = Some(recipient(&owner));
        Ok(())
    } else if dir.has_right(acting.upn, owner.upn, Right::SendOnBehalf) {
        message.from = Some(recipient(&owner));
        message.sender = Some(recipient(&acting));
        Ok(())
    } else {
        Err(GraphError::send_as_denied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::message::empty_message;
    use crate::seed;

    fn alex(scopes: &[&str]) -> Principal {
        Principal::Delegated {
            client_id: seed::MAILHOST_CLIENT_ID.into(),
            user: seed::USER_UPN.into(),
            scopes: scopes.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    fn from(
        dir: &Directory,
        principal: &Principal,
        mailbox: &str,
        from: Option<&str>,
    ) -> Result<StoredMessage, GraphError> {
        let mailbox = dir.mailbox(mailbox).unwrap().clone();
        let mut m = empty_message();
        m.from = from.map(|f| Recipient::new(f, None));
        resolve_from(dir, principal, &mailbox, &mut m).map(|()| m)
    }

    #[test]
    fn send_as_on_behalf_and_denied() {
        let dir = Directory::seed();
        let p = alex(&["Mail.Send", "Mail.Send.Shared"]);
        let own = from(&dir, &p, seed::USER_UPN, None).unwrap();
        assert_eq!(own.sender_address().as_deref(), Some(seed::USER_UPN));
        let send_as = from(&dir, &p, seed::USER_UPN, Some(seed::SHARED_MAILBOX)).unwrap();
        assert_eq!(send_as.from_address(), send_as.sender_address());
        assert_eq!(
            send_as.from_address().as_deref(),
            Some(seed::SHARED_MAILBOX)
        );
        let behalf = from(&dir, &p, seed::USER_UPN, Some(seed::ON_BEHALF_MAILBOX)).unwrap();
        assert_eq!(
            behalf.from_address().as_deref(),
            Some(seed::ON_BEHALF_MAILBOX)
        );
        assert_eq!(behalf.sender_address().as_deref(), Some(seed::USER_UPN));
        assert!(behalf.is_on_behalf());
        assert_eq!(
            from(&dir, &p, seed::USER_UPN, Some(seed::NO_RIGHTS_MAILBOX))
                .unwrap_err()
                .code,
            "ErrorSendAsDenied"
        );
        assert_eq!(
            from(&dir, &p, seed::USER_UPN, Some("x@example.com"))
                .unwrap_err()
                .code,
            "ErrorSendAsDenied"
        );
        let no_shared = alex(&["Mail.Send"]);
        assert_eq!(
            from(&dir, &no_shared, seed::USER_UPN, Some(seed::SHARED_MAILBOX))
                .unwrap_err()
                .code,
            "ErrorAccessDenied"
        );
        // Sending through /users/{shared}/sendMail: from defaults to the mailbox; Send As applies.
        assert!(from(&dir, &p, seed::SHARED_MAILBOX, None).is_ok());
    }

    #[test]
    fn permissions_and_full_access() {
        let dir = Directory::seed();
        let shared = dir.mailbox(seed::SHARED_MAILBOX).unwrap().clone();
        let behalf = dir.mailbox(seed::ON_BEHALF_MAILBOX).unwrap().clone();
        let own = dir.mailbox(seed::USER_UPN).unwrap().clone();
        let p = alex(&["Mail.Send", "Mail.Send.Shared", "Mail.ReadWrite"]);
        assert!(authorize(&dir, &p, &own, Need::Send).is_ok());
        assert!(authorize(&dir, &p, &shared, Need::Send).is_ok());
        assert_eq!(
            authorize(&dir, &p, &behalf, Need::Send).unwrap_err().code,
            "ErrorAccessDenied"
        );
        let reader = alex(&["Mail.Read"]);
        assert_eq!(
            authorize(&dir, &reader, &own, Need::Send).unwrap_err().code,
            "ErrorAccessDenied"
        );
        let app = Principal::App {
            client_id: "x".into(),
            roles: vec![],
        };
        assert_eq!(
            authorize(&dir, &app, &own, Need::Send).unwrap_err().code,
            "NoPermissionsInAccessToken"
        );
        assert_eq!(
            resolve_target(&dir, &app, &Target::Me)
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
    }
}
