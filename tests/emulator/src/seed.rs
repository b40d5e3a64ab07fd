//! The default directory the emulator starts with: one tenant, its app registrations, users and
//! mailboxes. Every id, address, password and secret is a public constant so that tests, the
//! `mailhost demo` command and third-party provider authors can code against them.
//!
//! These values are stable: other crates depend on them. Add new constants rather than change
//! existing ones.
//!
//! Summary (see `tests/emulator/README.md` for the table):
//!
//! * tenant [`TENANT_ID`] / [`TENANT_DOMAIN`];
//! * app [`MAILHOST_CLIENT_ID`] (`mailhost`): public client flows on, delegated `Mail.ReadWrite`,
//!   `Mail.ReadWrite.Shared`, `Mail.Send`, `Mail.Send.Shared` with admin consent;
//! * app [`NO_PUBLIC_CLIENT_ID`]: same permissions, public client flows off (AADSTS7000218);
//! * app [`NO_CONSENT_CLIENT_ID`]: public client, nothing consented (AADSTS65001);
//! * app [`READ_ONLY_CLIENT_ID`]: public client, only delegated `Mail.Read` consented (a token
//!   without `Mail.Send`, for `403 ErrorAccessDenied`);
//! * app [`DAEMON_CLIENT_ID`] + [`DAEMON_CLIENT_SECRET`]: confidential, application `Mail.Send`
//!   and `Mail.ReadWrite` granted;
//! * app [`NO_ROLE_DAEMON_CLIENT_ID`] + [`NO_ROLE_DAEMON_CLIENT_SECRET`]: confidential, no
//!   application permission (`NoPermissionsInAccessToken`);
//! * users [`USER_UPN`] (normal, password, no MFA: the NonInteractive service account),
//!   [`MFA_USER_UPN`] (MFA required), [`RECIPIENT_UPN`];
//! * mailboxes [`SHARED_MAILBOX`] (user has Send As + Full Access), [`ON_BEHALF_MAILBOX`] (user
//!   has Send on behalf, no Full Access), [`NO_RIGHTS_MAILBOX`] (no rights).

/// The tenant's directory (object) id.
pub const TENANT_ID: &str = "4a1f02b3-ac88-4da9-a06a-c0209713e7b8";
/// The tenant's initial domain; every seeded address is in it.
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// The tenant's display name.
pub const TENANT_NAME: &str = "Contoso";

/// The Microsoft Graph resource (audience) and scope prefix.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Microsoft Graph's well-known application id (appears in `WWW-Authenticate`).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// The redirect URI registered on every public client app (embedded-browser native client).
pub const NATIVE_CLIENT_REDIRECT_URI: &str =
    "https://login.microsoftonline.com/common/oauth2/nativeclient";
/// The loopback redirect URI also registered on the public client apps (port is ignored when
/// matching, as Entra does for loopback redirect URIs).
pub const LOOPBACK_REDIRECT_URI: &str = "http://localhost";

// ----------------------------------------------------------------------------- applications

/// App `mailhost`: public client flows on; delegated Mail.ReadWrite, Mail.ReadWrite.Shared,
/// Mail.Send, Mail.Send.Shared (plus User.Read) with admin consent granted.
pub const MAILHOST_CLIENT_ID: &str = "97f09e66-64c3-4482-9740-fc23b72778f7";
/// Display name of [`MAILHOST_CLIENT_ID`].
pub const MAILHOST_APP_NAME: &str = "mailhost";

/// App `mailhost-no-public-client`: the same consented permissions as `mailhost`, but "Allow
/// public client flows" is off, so ROPC and device code fail with AADSTS7000218 (401).
pub const NO_PUBLIC_CLIENT_ID: &str = "58b482a4-cacb-4494-b7ed-2261bd68f292";
/// Display name of [`NO_PUBLIC_CLIENT_ID`].
pub const NO_PUBLIC_CLIENT_APP_NAME: &str = "mailhost-no-public-client";

/// App `mailhost-no-consent`: public client flows on, no permission consented, so any Graph
/// scope fails with AADSTS65001 (`invalid_grant`, suberror `consent_required`).
pub const NO_CONSENT_CLIENT_ID: &str = "c5c96db7-1680-4bb8-9751-585f143d7167";
/// Display name of [`NO_CONSENT_CLIENT_ID`].
pub const NO_CONSENT_APP_NAME: &str = "mailhost-no-consent";

/// App `mailhost-reader`: public client flows on, only delegated `Mail.Read` (and `User.Read`)
/// consented. Its tokens lack `Mail.Send`: sendMail answers 403 ErrorAccessDenied.
pub const READ_ONLY_CLIENT_ID: &str = "fe5fe3fd-7712-4459-8874-09d2e20854c3";
/// Display name of [`READ_ONLY_CLIENT_ID`].
pub const READ_ONLY_APP_NAME: &str = "mailhost-reader";

/// App `mailhost-daemon`: confidential client with a secret; application permissions
/// `Mail.Send` and `Mail.ReadWrite` granted (client credentials, `/users/{id}/sendMail`).
pub const DAEMON_CLIENT_ID: &str = "e85c7bb6-e570-4ae1-bcfe-da165ca21175";
/// Display name of [`DAEMON_CLIENT_ID`].
pub const DAEMON_APP_NAME: &str = "mailhost-daemon";
/// The client secret of [`DAEMON_CLIENT_ID`].
pub const DAEMON_CLIENT_SECRET: &str = "dmn~8Q~contoso-daemon-secret-0001";

/// App `mailhost-daemon-norole`: confidential client with a secret and no application
/// permission; its app-only tokens carry no roles (`NoPermissionsInAccessToken`).
pub const NO_ROLE_DAEMON_CLIENT_ID: &str = "835a4f76-d489-425c-bf93-9c19b63b33b9";
/// Display name of [`NO_ROLE_DAEMON_CLIENT_ID`].
pub const NO_ROLE_DAEMON_APP_NAME: &str = "mailhost-daemon-norole";
/// The client secret of [`NO_ROLE_DAEMON_CLIENT_ID`].
pub const NO_ROLE_DAEMON_CLIENT_SECRET: &str = "nrl~3X~contoso-norole-secret-0002";

/// App `mailhost-daemon-cert`: confidential client whose credential is a certificate
/// ([`CERT_DAEMON_CERTIFICATE_PEM`] is registered on it; no secret); application permissions
/// `Mail.Send` and `Mail.ReadWrite` granted. More certificates can be registered with
/// `Emulator::add_app_certificate` / `POST /_emulator/apps/{client_id}/certificates`.
pub const CERT_DAEMON_CLIENT_ID: &str = "3c1d2a8e-5b7f-4e0a-9d61-7f2b8c4e9a10";
/// Display name of [`CERT_DAEMON_CLIENT_ID`].
pub const CERT_DAEMON_APP_NAME: &str = "mailhost-daemon-cert";
/// The certificate registered on [`CERT_DAEMON_CLIENT_ID`] (public part only). Its private key
/// is the test fixture `certificates/key.pem` (see [`certificate_fixture`]).
pub const CERT_DAEMON_CERTIFICATE_PEM: &str = include_str!("../certificates/cert.pem");
/// The password of the encrypted test fixtures (`app-encrypted.pem`, `app.pfx`).
pub const CERTIFICATE_FIXTURE_PASSWORD: &str = "Fixture-Passw0rd!";

/// A test-only certificate file of this crate's `certificates/` folder: `app.pem` (certificate +
/// PKCS#8 key), `app-pkcs1.pem`, `app-encrypted.pem` and `app.pfx` (password
/// [`CERTIFICATE_FIXTURE_PASSWORD`]), `app-legacy-encrypted.pem` (OpenSSL traditional
/// encryption), `mismatch.pem` (the certificate with another key), `unregistered.pem` (a
/// certificate registered nowhere, with its key), `cert.pem`, `key.pem`. Never use these keys
/// outside tests.
pub fn certificate_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("certificates")
        .join(name)
}

// ----------------------------------------------------------------------------- users

/// The normal user: password sign-in, no MFA (the NonInteractive service account). Has Send As
/// + Full Access on [`SHARED_MAILBOX`] and Send on behalf on [`ON_BEHALF_MAILBOX`].
pub const USER_UPN: &str = "alex@contoso.onmicrosoft.com";
/// Object id of [`USER_UPN`].
pub const USER_ID: &str = "63285040-5980-463a-8177-54ad770a0134";
/// Password of [`USER_UPN`].
pub const USER_PASSWORD: &str = "Alex-Passw0rd!";
/// Display name of [`USER_UPN`].
pub const USER_NAME: &str = "Alex Wilber";

/// A user for whom MFA is required: ROPC with the right password answers AADSTS50076
/// (`interaction_required` + `claims`); device code and authorization code succeed.
pub const MFA_USER_UPN: &str = "megan@contoso.onmicrosoft.com";
/// Object id of [`MFA_USER_UPN`].
pub const MFA_USER_ID: &str = "59cb6fd1-d4da-4a18-86d0-76f9d88f474c";
/// Password of [`MFA_USER_UPN`].
pub const MFA_USER_PASSWORD: &str = "Megan-Passw0rd!";
/// Display name of [`MFA_USER_UPN`].
pub const MFA_USER_NAME: &str = "Megan Bowen";

/// A recipient user (also a valid sign-in, password, no MFA).
pub const RECIPIENT_UPN: &str = "lynne@contoso.onmicrosoft.com";
/// Object id of [`RECIPIENT_UPN`].
pub const RECIPIENT_ID: &str = "144037de-a8b8-43df-af6b-48631bd61e57";
/// Password of [`RECIPIENT_UPN`].
pub const RECIPIENT_PASSWORD: &str = "Lynne-Passw0rd!";
/// Display name of [`RECIPIENT_UPN`].
pub const RECIPIENT_NAME: &str = "Lynne Robbins";

// ----------------------------------------------------------------------------- mailboxes

/// A shared mailbox on which [`USER_UPN`] has **Send As** and **Full Access**.
pub const SHARED_MAILBOX: &str = "sales@contoso.onmicrosoft.com";
/// Object id of [`SHARED_MAILBOX`].
pub const SHARED_MAILBOX_ID: &str = "2589f376-6231-4648-8391-dfb53e5579e1";
/// Display name of [`SHARED_MAILBOX`].
pub const SHARED_MAILBOX_NAME: &str = "Contoso Sales";

/// A mailbox on which [`USER_UPN`] has **Send on behalf** only (no Full Access): recipients see
/// "Alex Wilber on behalf of Diego Siciliani" (`sender` = Alex, `from` = Diego).
pub const ON_BEHALF_MAILBOX: &str = "diego@contoso.onmicrosoft.com";
/// Object id of [`ON_BEHALF_MAILBOX`].
pub const ON_BEHALF_MAILBOX_ID: &str = "d4cd9c86-6261-4b33-9765-bde13d57c3c9";
/// Display name of [`ON_BEHALF_MAILBOX`].
pub const ON_BEHALF_MAILBOX_NAME: &str = "Diego Siciliani";

/// A mailbox on which [`USER_UPN`] has no rights (`403 ErrorSendAsDenied`).
pub const NO_RIGHTS_MAILBOX: &str = "hr@contoso.onmicrosoft.com";
/// Object id of [`NO_RIGHTS_MAILBOX`].
pub const NO_RIGHTS_MAILBOX_ID: &str = "85de7c14-9015-4d9f-a4b7-f167e9d25eca";
/// Display name of [`NO_RIGHTS_MAILBOX`].
pub const NO_RIGHTS_MAILBOX_NAME: &str = "Contoso HR";

/// An address outside the tenant; mail to any such address lands in the external sink.
pub const EXTERNAL_RECIPIENT: &str = "someone@example.com";

// ----------------------------------------------------------------------------- limits

/// Default access-token lifetime in seconds (`expires_in`).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME_SECS: u64 = 3599;
/// Device-code lifetime in seconds (`expires_in` of `/devicecode`).
pub const DEVICE_CODE_LIFETIME_SECS: u64 = 900;
/// Device-code polling interval in seconds (`interval` of `/devicecode`).
pub const DEVICE_CODE_INTERVAL_SECS: u64 = 5;
/// Maximum Graph request body (bytes) before `413`.
pub const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Inline attachments must be smaller than this (bytes, decoded).
pub const MAX_INLINE_ATTACHMENT_BYTES: usize = 3 * 1024 * 1024;
/// Upload sessions are for attachments of at least this size (bytes).
pub const MIN_UPLOAD_SESSION_BYTES: u64 = 3 * 1024 * 1024;
/// Maximum attachment size through an upload session (bytes).
pub const MAX_UPLOAD_SESSION_BYTES: u64 = 150 * 1024 * 1024;
/// Maximum bytes in one upload-session `PUT`.
pub const MAX_UPLOAD_CHUNK_BYTES: u64 = 4 * 1024 * 1024;
/// Default maximum total message size (bytes) before `ErrorMessageSizeExceeded` (Exchange's
/// default MaxSendSize; attachments count base64-inflated, as Exchange measures them). Raise it
/// (up to [`MAX_UPLOAD_SESSION_BYTES`]) with the config API to send very large attachments.
pub const MAX_MESSAGE_BYTES: u64 = 35 * 1024 * 1024;
/// Concurrent requests allowed per app + mailbox before `429 ApplicationThrottled`.
pub const MAILBOX_CONCURRENCY_LIMIT: usize = 4;
