//! The emulated directory: the tenant, its app registrations, users, mailboxes and the mailbox
//! rights between them. Built from [`crate::seed`].

use crate::identity::assertion::RegisteredCertificate;
use crate::seed;

/// Microsoft's fixed tenant id for personal (MSA) accounts, the `consumers` tenant.
pub(crate) const CONSUMERS_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The delegated Graph permissions the emulator knows; any other name is an invalid scope.
pub(crate) const KNOWN_GRAPH_PERMISSIONS: &[&str] = &[
    "Mail.Send",
    "Mail.Send.Shared",
    "Mail.ReadWrite",
    "Mail.ReadWrite.Shared",
    "Mail.Read",
    "Mail.Read.Shared",
    "Mail.ReadBasic",
    "User.Read",
    "User.ReadBasic.All",
    "User.Read.All",
    "Calendars.Read",
    "Files.ReadWrite",
];

/// An app registration.
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) client_id: &'static str,
    pub(crate) name: &'static str,
    /// "Allow public client flows" (ROPC, device code without a secret).
    pub(crate) public_client: bool,
    pub(crate) secret: Option<&'static str>,
    /// A confidential client: authenticates with a secret or a certificate, not as public.
    pub(crate) confidential: bool,
    /// Certificates uploaded under "Certificates & secrets > Certificates".
    pub(crate) certificates: Vec<RegisteredCertificate>,
    /// Delegated Graph permissions with admin consent.
    pub(crate) delegated: &'static [&'static str],
    /// Application Graph permissions (roles) granted.
    pub(crate) application: &'static [&'static str],
    pub(crate) redirect_uris: &'static [&'static str],
}

/// What kind of recipient a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MailboxKind {
    /// A licensed user who can sign in.
    User,
    /// A shared mailbox (no sign-in).
    Shared,
}

/// A user or shared mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Mailbox {
    pub(crate) id: &'static str,
    pub(crate) upn: &'static str,
    pub(crate) name: &'static str,
    pub(crate) password: Option<&'static str>,
    pub(crate) mfa_required: bool,
    pub(crate) kind: MailboxKind,
}

/// A right one user holds on another mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Right {
    SendAs,
    SendOnBehalf,
    FullAccess,
}

/// The whole directory.
#[derive(Debug, Clone)]
pub(crate) struct Directory {
    pub(crate) apps: Vec<App>,
    pub(crate) mailboxes: Vec<Mailbox>,
    /// (trustee UPN, mailbox UPN, right).
    pub(crate) rights: Vec<(&'static str, &'static str, Right)>,
}

const PUBLIC_REDIRECTS: &[&str] = &[
    seed::NATIVE_CLIENT_REDIRECT_URI,
    seed::LOOPBACK_REDIRECT_URI,
];
const MAILHOST_DELEGATED: &[&str] = &[
    "Mail.ReadWrite",
    "Mail.ReadWrite.Shared",
    "Mail.Send",
    "Mail.Send.Shared",
    "User.Read",
];

impl Directory {
    /// The seed directory documented in `README.md`.
    pub(crate) fn seed() -> Self {
        let apps = vec![
            App {
                client_id: seed::MAILHOST_CLIENT_ID,
                name: seed::MAILHOST_APP_NAME,
                public_client: true,
                secret: None,
                confidential: false,
                certificates: Vec::new(),
                delegated: MAILHOST_DELEGATED,
                application: &[],
                redirect_uris: PUBLIC_REDIRECTS,
            },
            App {
                client_id: seed::NO_PUBLIC_CLIENT_ID,
                name: seed::NO_PUBLIC_CLIENT_APP_NAME,
                public_client: false,
                secret: None,
                confidential: false,
                certificates: Vec::new(),
                delegated: MAILHOST_DELEGATED,
                application: &[],
                redirect_uris: PUBLIC_REDIRECTS,
            },
            App {
                client_id: seed::NO_CONSENT_CLIENT_ID,
                name: seed::NO_CONSENT_APP_NAME,
                public_client: true,
                secret: None,
                confidential: false,
                certificates: Vec::new(),
                delegated: &[],
                application: &[],
                redirect_uris: PUBLIC_REDIRECTS,
            },
            App {
                client_id: seed::READ_ONLY_CLIENT_ID,
                name: seed::READ_ONLY_APP_NAME,
                public_client: true,
                secret: None,
                confidential: false,
                certificates: Vec::new(),
                delegated: &["Mail.Read", "User.Read"],
                application: &[],
                redirect_uris: PUBLIC_REDIRECTS,
            },
            App {
                client_id: seed::DAEMON_CLIENT_ID,
                name: seed::DAEMON_APP_NAME,
                public_client: false,
                secret: Some(seed::DAEMON_CLIENT_SECRET),
                confidential: true,
                certificates: Vec::new(),
                delegated: &[],
                application: &["Mail.Send", "Mail.ReadWrite"],
                redirect_uris: &[],
            },
            App {
                client_id: seed::NO_ROLE_DAEMON_CLIENT_ID,
                name: seed::NO_ROLE_DAEMON_APP_NAME,
                public_client: false,
                secret: Some(seed::NO_ROLE_DAEMON_CLIENT_SECRET),
                confidential: true,
                certificates: Vec::new(),
                delegated: &[],
                application: &[],
                redirect_uris: &[],
            },
            App {
                client_id: seed::CERT_DAEMON_CLIENT_ID,
                name: seed::CERT_DAEMON_APP_NAME,
                public_client: false,
                secret: None,
                confidential: true,
                certificates: RegisteredCertificate::parse(seed::CERT_DAEMON_CERTIFICATE_PEM)
                    .into_iter()
                    .collect(),
                delegated: &[],
                application: &["Mail.Send", "Mail.ReadWrite"],
                redirect_uris: &[],
            },
        ];
        let user = |id, upn, name, password, mfa_required| Mailbox {
            id,
            upn,
            name,
            password: Some(password),
            mfa_required,
            kind: MailboxKind::User,
        };
        let shared = |id, upn, name| Mailbox {
            id,
            upn,
            name,
            password: None,
            mfa_required: false,
            kind: MailboxKind::Shared,
        };
        let mailboxes = vec![
            user(
                seed::USER_ID,
                seed::USER_UPN,
                seed::USER_NAME,
                seed::USER_PASSWORD,
                false,
            ),
            user(
                seed::MFA_USER_ID,
                seed::MFA_USER_UPN,
                seed::MFA_USER_NAME,
                seed::MFA_USER_PASSWORD,
                true,
            ),
            user(
                seed::RECIPIENT_ID,
                seed::RECIPIENT_UPN,
                seed::RECIPIENT_NAME,
                seed::RECIPIENT_PASSWORD,
                false,
            ),
            shared(
                seed::SHARED_MAILBOX_ID,
                seed::SHARED_MAILBOX,
                seed::SHARED_MAILBOX_NAME,
            ),
            // Diego is a person, but nobody signs in as him in the seed.
            shared(
                seed::ON_BEHALF_MAILBOX_ID,
                seed::ON_BEHALF_MAILBOX,
                seed::ON_BEHALF_MAILBOX_NAME,
            ),
            shared(
                seed::NO_RIGHTS_MAILBOX_ID,
                seed::NO_RIGHTS_MAILBOX,
                seed::NO_RIGHTS_MAILBOX_NAME,
            ),
        ];
        let rights = vec![
            (seed::USER_UPN, seed::SHARED_MAILBOX, Right::SendAs),
            (seed::USER_UPN, seed::SHARED_MAILBOX, Right::FullAccess),
            (seed::USER_UPN, seed::ON_BEHALF_MAILBOX, Right::SendOnBehalf),
        ];
        Self {
            apps,
            mailboxes,
            rights,
        }
    }

    /// Resolves a tenant path segment.
    pub(crate) fn tenant(&self, segment: &str) -> TenantSegment {
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "common" => TenantSegment::Common,
            "organizations" => TenantSegment::Organizations,
            "consumers" => TenantSegment::Consumers,
            _ if lower == seed::TENANT_ID || lower == seed::TENANT_DOMAIN => TenantSegment::Tenant,
            _ if lower == CONSUMERS_TENANT_ID => TenantSegment::Consumers,
            _ => TenantSegment::Unknown,
        }
    }

    /// The app with this client id.
    /// Adds a user mailbox (for load tests that need many mailboxes). Directory entries are
    /// `'static` like the seed's, so the strings are leaked: a few bytes per mailbox, for the
    /// life of a test process.
    pub(crate) fn add_user_mailbox(&mut self, upn: &str, name: &str) {
        if self.mailbox(upn).is_some() {
            return;
        }
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        self.mailboxes.push(Mailbox {
            id: leak(uuid::Uuid::new_v4().to_string()),
            upn: leak(upn.to_ascii_lowercase()),
            name: leak(name.to_string()),
            password: None,
            mfa_required: false,
            kind: MailboxKind::User,
        });
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id.trim()))
    }

    /// A user or mailbox by UPN / primary address (case-insensitive) or object id.
    pub(crate) fn mailbox(&self, id_or_upn: &str) -> Option<&Mailbox> {
        let key = id_or_upn.trim();
        self.mailboxes
            .iter()
            .find(|m| m.upn.eq_ignore_ascii_case(key) || m.id.eq_ignore_ascii_case(key))
    }

    /// Whether `trustee` holds `right` on `mailbox` (both UPNs).
    pub(crate) fn has_right(&self, trustee: &str, mailbox: &str, right: Right) -> bool {
        self.rights.iter().any(|(t, m, r)| {
            t.eq_ignore_ascii_case(trustee) && m.eq_ignore_ascii_case(mailbox) && *r == right
        })
    }

    /// Whether an address is in the tenant's domain.
    pub(crate) fn is_internal_domain(address: &str) -> bool {
        address
            .rsplit_once('@')
            .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(seed::TENANT_DOMAIN))
    }
}

/// What a `{tenant}` path segment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantSegment {
    Common,
    Organizations,
    Consumers,
    /// The seeded tenant, by GUID or domain.
    Tenant,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_tenants_and_mailboxes() {
        let dir = Directory::seed();
        assert_eq!(dir.tenant(seed::TENANT_ID), TenantSegment::Tenant);
        assert_eq!(dir.tenant("CONTOSO.onmicrosoft.com"), TenantSegment::Tenant);
        assert_eq!(dir.tenant("common"), TenantSegment::Common);
        assert_eq!(
            dir.tenant("fabrikam.onmicrosoft.com"),
            TenantSegment::Unknown
        );
        assert_eq!(
            dir.mailbox("ALEX@contoso.onmicrosoft.com").map(|m| m.id),
            Some(seed::USER_ID)
        );
        assert_eq!(
            dir.mailbox(seed::SHARED_MAILBOX_ID).map(|m| m.upn),
            Some(seed::SHARED_MAILBOX)
        );
        assert!(dir.has_right(seed::USER_UPN, seed::SHARED_MAILBOX, Right::SendAs));
        assert!(!dir.has_right(seed::USER_UPN, seed::ON_BEHALF_MAILBOX, Right::FullAccess));
        assert!(Directory::is_internal_domain("x@Contoso.onmicrosoft.com"));
        assert!(!Directory::is_internal_domain("x@example.com"));
    }
}
