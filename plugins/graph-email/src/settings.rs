//! The provider's system settings (System Configuration) and staff custom fields (Staff
//! Maintenance): their declarations for `describe`, and their parsed, validated form for a call.

use std::time::Duration;

use mailhost_plugin_api::{
    ProviderError, Setting, SettingKind, SettingSpec, StaffMember, find_setting,
};
use url::Url;

use crate::auth::certificate::AssertionAlgorithm;
use crate::security::{self, Secret};

/// `ClientID`: the application (client) ID of the app registration.
pub const CLIENT_ID: &str = "ClientID";
/// `TenantID`: the directory (tenant) ID or a verified domain.
pub const TENANT_ID: &str = "TenantID";
/// `RedirectURI`: the public-client redirect URI registered for the app.
pub const REDIRECT_URI: &str = "RedirectURI";
/// `Authority`: the Microsoft identity platform host (national clouds, the emulator).
pub const AUTHORITY: &str = "Authority";
/// `GraphEndpoint`: the Microsoft Graph host (national clouds, the emulator).
pub const GRAPH_ENDPOINT: &str = "GraphEndpoint";
/// `ClientSecret`: when set, the provider signs in app-only with client credentials.
pub const CLIENT_SECRET: &str = "ClientSecret";
/// `ClientCertificate`: path of a PEM (certificate + private key) or PKCS#12 file; when set,
/// the provider signs in app-only with a certificate (it wins over `ClientSecret`).
pub const CLIENT_CERTIFICATE: &str = "ClientCertificate";
/// `ClientCertificatePassword`: the password of an encrypted key or PKCS#12 file.
pub const CLIENT_CERTIFICATE_PASSWORD: &str = "ClientCertificatePassword";
/// `ClientAssertionAlgorithm`: PS256 (`x5t#S256`, default) or RS256 (`x5t`).
pub const CLIENT_ASSERTION_ALGORITHM: &str = "ClientAssertionAlgorithm";
/// `AlternateFromMode`: how an alternate From address is sent.
pub const ALTERNATE_FROM_MODE: &str = "AlternateFromMode";
/// `DelegatedScopes`: the Graph permissions requested at delegated sign-in.
pub const DELEGATED_SCOPES: &str = "DelegatedScopes";
/// `ConnectTimeoutSeconds`: TCP + TLS connect timeout.
pub const CONNECT_TIMEOUT: &str = "ConnectTimeoutSeconds";
/// `RequestTimeoutSeconds`: timeout of one HTTP request (one upload chunk, one sendMail).
pub const REQUEST_TIMEOUT: &str = "RequestTimeoutSeconds";
/// `MaxRetries`: how many times a throttled or temporarily failed request is retried.
pub const MAX_RETRIES: &str = "MaxRetries";
/// `MaxRetryWaitSeconds`: the most time one send spends waiting between retries.
pub const MAX_RETRY_WAIT: &str = "MaxRetryWaitSeconds";
/// `SaveToSentItems`: keep a copy of each sent email in the sending mailbox's Sent Items.
pub const SAVE_TO_SENT_ITEMS: &str = "SaveToSentItems";
/// `ReconcileWaitSeconds`: how long the Sent Items copy may take to appear before an email
/// whose outcome was in doubt counts as not sent.
pub const RECONCILE_WAIT: &str = "ReconcileWaitSeconds";
/// `MessagesPerMinute`: Exchange Online's per-mailbox message rate (0 = no limit).
pub const MESSAGES_PER_MINUTE: &str = "MessagesPerMinute";
/// `RecipientsPerDay`: Exchange Online's recipients per mailbox in any 24 hours (0 = no limit).
pub const RECIPIENTS_PER_DAY: &str = "RecipientsPerDay";
/// `RecipientsPerMessage`: Exchange Online's recipients per message (0 = no limit).
pub const RECIPIENTS_PER_MESSAGE: &str = "RecipientsPerMessage";
/// `ConcurrentRequests`: Outlook's concurrent requests per app and mailbox (0 = no limit).
pub const CONCURRENT_REQUESTS: &str = "ConcurrentRequests";
/// Staff custom field `NonInteractive`: sign in with username and password (ROPC).
pub const NON_INTERACTIVE: &str = "NonInteractive";

/// The default `Authority`.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The default `GraphEndpoint`.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
/// The redirect URI used when `RedirectURI` is blank.
pub const DEFAULT_REDIRECT_URI: &str =
    "https://login.microsoftonline.com/common/oauth2/nativeclient";

/// The default `DelegatedScopes`: Entra returns every consented Graph permission with it
/// (Mail.ReadWrite for large attachments, Mail.Send.Shared for other mailboxes).
pub const DEFAULT_DELEGATED_SCOPES: &str = "Mail.Send";
const DEFAULT_CONNECT_TIMEOUT: u64 = 10;
const DEFAULT_REQUEST_TIMEOUT: u64 = 120;
const DEFAULT_MAX_RETRIES: u64 = 4;
const DEFAULT_MAX_RETRY_WAIT: u64 = 120;
const DEFAULT_RECONCILE_WAIT: u64 = 120;
/// The default `MessagesPerMinute`.
pub const DEFAULT_MESSAGES_PER_MINUTE: u64 = 30;
/// The default `RecipientsPerDay`.
pub const DEFAULT_RECIPIENTS_PER_DAY: u64 = 10_000;
/// The default `RecipientsPerMessage`.
pub const DEFAULT_RECIPIENTS_PER_MESSAGE: u64 = 500;
/// The default `ConcurrentRequests`.
pub const DEFAULT_CONCURRENT_REQUESTS: u64 = 4;

/// The system settings the provider declares.
pub fn system_settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            CLIENT_ID,
            SettingKind::STRING,
            "Application (client) ID of the app registration (Entra admin center > App registrations > your app > Overview)",
        )
        .required(),
        SettingSpec::new(
            TENANT_ID,
            SettingKind::STRING,
            "Directory (tenant) ID GUID or verified domain such as contoso.onmicrosoft.com (App registration > Overview); 'organizations' also works for delegated sign-in",
        )
        .required(),
        SettingSpec::new(
            REDIRECT_URI,
            SettingKind::STRING,
            "Public-client redirect URI registered under Authentication (blank: https://login.microsoftonline.com/common/oauth2/nativeclient); device code and password sign-in do not send it",
        ),
        SettingSpec::new(
            AUTHORITY,
            SettingKind::URL,
            "Microsoft identity platform host; change only for national clouds (https://login.microsoftonline.us) or the local emulator",
        )
        .default_value(DEFAULT_AUTHORITY),
        SettingSpec::new(
            GRAPH_ENDPOINT,
            SettingKind::URL,
            "Microsoft Graph host; change only for national clouds (https://graph.microsoft.us) or the local emulator",
        )
        .default_value(DEFAULT_GRAPH_ENDPOINT),
        SettingSpec::new(
            CLIENT_SECRET,
            SettingKind::STRING,
            "Client secret (App registration > Certificates & secrets); when set, mail is sent app-only with the Mail.Send application permission",
        )
        .secret(),
        SettingSpec::new(
            CLIENT_CERTIFICATE,
            SettingKind::STRING,
            "Path of the app's certificate with its private key: a PEM file (certificate + PKCS#8 or PKCS#1 key, the key may be encrypted) or a PKCS#12 .pfx/.p12; its public part must be uploaded under App registrations > the app > Certificates & secrets > Certificates. When set, mail is sent app-only and the certificate wins over ClientSecret",
        ),
        SettingSpec::new(
            CLIENT_CERTIFICATE_PASSWORD,
            SettingKind::STRING,
            "Password of an encrypted private key or .pfx in ClientCertificate",
        )
        .secret(),
        SettingSpec::new(
            CLIENT_ASSERTION_ALGORITHM,
            SettingKind::STRING,
            "How the certificate signs the client assertion: PS256 (RSA-PSS, header x5t#S256; Microsoft's current format) or RS256 (PKCS#1 v1.5, header x5t) for older set-ups",
        )
        .default_value("PS256"),
        SettingSpec::new(
            ALTERNATE_FROM_MODE,
            SettingKind::STRING,
            "How an alternate From address is sent: 'users-endpoint' (POST /users/{from}/sendMail; copy saved in that mailbox's Sent Items; needs Full Access + Send As) or 'from-property' (POST /me/sendMail with 'from'; needs Send As or Send on behalf)",
        )
        .default_value(AlternateFromMode::UsersEndpoint.as_str()),
        SettingSpec::new(
            DELEGATED_SCOPES,
            SettingKind::STRING,
            "Microsoft Graph permissions requested at delegated sign-in, space separated (offline_access openid profile are always added); '.default' requests the permissions configured on the app registration",
        )
        .default_value(DEFAULT_DELEGATED_SCOPES),
        SettingSpec::new(
            CONNECT_TIMEOUT,
            SettingKind::INTEGER,
            "Seconds to wait for a connection to Microsoft (including TLS)",
        )
        .default_value(&DEFAULT_CONNECT_TIMEOUT.to_string()),
        SettingSpec::new(
            REQUEST_TIMEOUT,
            SettingKind::INTEGER,
            "Seconds to wait for one HTTP request (one sendMail, one 3.75 MiB upload chunk)",
        )
        .default_value(&DEFAULT_REQUEST_TIMEOUT.to_string()),
        SettingSpec::new(
            MAX_RETRIES,
            SettingKind::INTEGER,
            "How many times a throttled (429) or temporarily failed (503, 504) request is retried before the email is left for a later retry",
        )
        .default_value(&DEFAULT_MAX_RETRIES.to_string()),
        SettingSpec::new(
            MAX_RETRY_WAIT,
            SettingKind::INTEGER,
            "The most seconds one send waits in total between retries (Retry-After included)",
        )
        .default_value(&DEFAULT_MAX_RETRY_WAIT.to_string()),
        SettingSpec::new(
            SAVE_TO_SENT_ITEMS,
            SettingKind::BOOL,
            "true: keep a copy of each email in the sending mailbox's Sent Items (mailhost finds it there to prove an email whose outcome was in doubt was sent); false: no copy, and such emails stay 'unknown' (exactly-once is given up)",
        )
        .default_value("true"),
        SettingSpec::new(
            RECONCILE_WAIT,
            SettingKind::INTEGER,
            "Seconds the Sent Items copy may take to appear: an email whose outcome was in doubt and that is still not in Sent Items this long after its first attempt counts as not sent (and may be sent again)",
        )
        .default_value(&DEFAULT_RECONCILE_WAIT.to_string()),
        SettingSpec::new(
            MESSAGES_PER_MINUTE,
            SettingKind::INTEGER,
            "Sending limit: messages per minute per sending mailbox (Exchange Online: 30); 0 = no limit",
        )
        .default_value(&DEFAULT_MESSAGES_PER_MINUTE.to_string()),
        SettingSpec::new(
            RECIPIENTS_PER_DAY,
            SettingKind::INTEGER,
            "Sending limit: recipients per sending mailbox in any 24 hours (Exchange Online: 10000; going past it blocks the mailbox for up to a day); 0 = no limit",
        )
        .default_value(&DEFAULT_RECIPIENTS_PER_DAY.to_string()),
        SettingSpec::new(
            RECIPIENTS_PER_MESSAGE,
            SettingKind::INTEGER,
            "Sending limit: recipients (To + Cc + Bcc) per message (Exchange Online: 500); 0 = no limit",
        )
        .default_value(&DEFAULT_RECIPIENTS_PER_MESSAGE.to_string()),
        SettingSpec::new(
            CONCURRENT_REQUESTS,
            SettingKind::INTEGER,
            "Sending limit: concurrent Graph requests per app and mailbox (Outlook: 4; more are answered 429); 0 = no limit",
        )
        .default_value(&DEFAULT_CONCURRENT_REQUESTS.to_string()),
    ]
}

/// The staff custom fields the provider declares.
pub fn staff_fields() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            NON_INTERACTIVE,
            SettingKind::BOOL,
            "true: sign in silently with the staff member's username and password (ROPC; no MFA); false: sign in once with 'mailhost login <staff id>' (device code, MFA-capable)",
        )
        .default_value("false"),
    ]
}

/// How a message whose From differs from the staff member's own address is sent.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum AlternateFromMode {
    /// `POST /users/{from}/sendMail` (saves to that mailbox's Sent Items; Full Access + Send As).
    UsersEndpoint,
    /// `POST /me/sendMail` with the `from` property (Send As or Send on behalf).
    FromProperty,
}

impl AlternateFromMode {
    /// The setting value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersEndpoint => "users-endpoint",
            Self::FromProperty => "from-property",
        }
    }
}

/// The system settings of one call, parsed and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `ClientID`.
    pub client_id: String,
    /// `TenantID`.
    pub tenant: String,
    /// `RedirectURI` (default applied).
    pub redirect_uri: String,
    /// `Authority`, without a trailing slash.
    pub authority: Url,
    /// `GraphEndpoint`, without a trailing slash.
    pub graph: Url,
    /// `ClientSecret`, if set.
    pub client_secret: Option<Secret>,
    /// `ClientCertificate`, if set.
    pub client_certificate: Option<std::path::PathBuf>,
    /// `ClientCertificatePassword`, if set.
    pub client_certificate_password: Option<Secret>,
    /// `ClientAssertionAlgorithm`.
    pub assertion_algorithm: AssertionAlgorithm,
    /// `AlternateFromMode`.
    pub alternate_from: AlternateFromMode,
    /// `DelegatedScopes`: permission names (bare, `.default`, or full URIs).
    pub delegated_scopes: Vec<String>,
    /// `ConnectTimeoutSeconds`.
    pub connect_timeout: Duration,
    /// `RequestTimeoutSeconds`.
    pub request_timeout: Duration,
    /// `MaxRetries`.
    pub max_retries: u32,
    /// `MaxRetryWaitSeconds`.
    pub max_retry_wait: Duration,
    /// `SaveToSentItems`.
    pub save_to_sent_items: bool,
    /// `ReconcileWaitSeconds`.
    pub reconcile_wait: Duration,
    /// `ConcurrentRequests` (0 = no limit).
    pub concurrent_requests: u64,
}

impl Settings {
    /// Parses and checks the settings the host handed over.
    ///
    /// # Errors
    /// A configuration error naming the setting and how to fix it.
    pub fn parse(settings: &[Setting]) -> Result<Self, ProviderError> {
        let client_id = required(settings, CLIENT_ID)?;
        let tenant = required(settings, TENANT_ID)?;
        if tenant.contains(['/', '?', '#', ' ']) {
            return Err(config(
                TENANT_ID,
                format!(
                    "'{tenant}' is not a tenant ID: use the directory (tenant) ID GUID or a verified domain such as contoso.onmicrosoft.com"
                ),
            ));
        }
        let authority = base_url(settings, AUTHORITY, DEFAULT_AUTHORITY)?;
        let graph = base_url(settings, GRAPH_ENDPOINT, DEFAULT_GRAPH_ENDPOINT)?;
        let alternate_from = match find_setting(settings, ALTERNATE_FROM_MODE)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("users-endpoint") => AlternateFromMode::UsersEndpoint,
            Some("from-property") => AlternateFromMode::FromProperty,
            Some(other) => {
                return Err(config(
                    ALTERNATE_FROM_MODE,
                    format!("'{other}' is not a mode: use users-endpoint or from-property"),
                ));
            }
        };
        Ok(Self {
            client_id,
            tenant,
            redirect_uri: find_setting(settings, REDIRECT_URI)
                .unwrap_or(DEFAULT_REDIRECT_URI)
                .trim()
                .to_string(),
            authority,
            graph,
            client_secret: find_setting(settings, CLIENT_SECRET).map(|s| Secret::new(s.trim())),
            client_certificate: find_setting(settings, CLIENT_CERTIFICATE)
                .map(|p| std::path::PathBuf::from(p.trim())),
            // A password may legitimately begin or end with spaces: kept as given.
            client_certificate_password: settings
                .iter()
                .find(|s| s.key.as_str() == CLIENT_CERTIFICATE_PASSWORD && !s.value.is_empty())
                .map(|s| Secret::new(s.value.as_str())),
            assertion_algorithm: crate::auth::certificate::parse_algorithm(find_setting(
                settings,
                CLIENT_ASSERTION_ALGORITHM,
            ))
            .map_err(|message| config(CLIENT_ASSERTION_ALGORITHM, message))?,
            alternate_from,
            delegated_scopes: {
                let scopes: Vec<String> = find_setting(settings, DELEGATED_SCOPES)
                    .unwrap_or(DEFAULT_DELEGATED_SCOPES)
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if scopes.iter().any(|s| s.contains(['"', '\'', '\r', '\n'])) {
                    return Err(config(
                        DELEGATED_SCOPES,
                        "holds characters that are not allowed in scopes".into(),
                    ));
                }
                scopes
            },
            connect_timeout: Duration::from_secs(number(
                settings,
                CONNECT_TIMEOUT,
                DEFAULT_CONNECT_TIMEOUT,
                1,
                600,
            )?),
            request_timeout: Duration::from_secs(number(
                settings,
                REQUEST_TIMEOUT,
                DEFAULT_REQUEST_TIMEOUT,
                1,
                3600,
            )?),
            max_retries: u32::try_from(number(settings, MAX_RETRIES, DEFAULT_MAX_RETRIES, 0, 20)?)
                .unwrap_or(u32::MAX),
            max_retry_wait: Duration::from_secs(number(
                settings,
                MAX_RETRY_WAIT,
                DEFAULT_MAX_RETRY_WAIT,
                0,
                3600,
            )?),
            save_to_sent_items: match find_setting(settings, SAVE_TO_SENT_ITEMS) {
                None => true,
                Some(v) => {
                    SettingKind::BOOL.normalize(v).map_err(|_| {
                        config(SAVE_TO_SENT_ITEMS, format!("'{v}' is not true or false"))
                    })? == "true"
                }
            },
            reconcile_wait: Duration::from_secs(number(
                settings,
                RECONCILE_WAIT,
                DEFAULT_RECONCILE_WAIT,
                0,
                86_400,
            )?),
            concurrent_requests: number(
                settings,
                CONCURRENT_REQUESTS,
                DEFAULT_CONCURRENT_REQUESTS,
                0,
                1000,
            )?,
        })
    }

    /// Whether the provider signs in app-only (client credentials with a certificate or secret).
    pub fn app_only(&self) -> bool {
        self.client_secret.is_some() || self.client_certificate.is_some()
    }

    /// `{Authority}/{tenant}/oauth2/v2.0/{endpoint}`.
    pub fn authority_endpoint(&self, endpoint: &str) -> Url {
        join(
            &self.authority,
            &format!("{}/oauth2/v2.0/{endpoint}", self.tenant),
        )
    }

    /// `{Authority}/{path}`.
    pub fn authority_url(&self, path: &str) -> Url {
        join(&self.authority, path)
    }

    /// `{GraphEndpoint}/v1.0/{path}`.
    pub fn graph_url(&self, path: &str) -> Url {
        join(
            &self.graph,
            &format!("v1.0/{}", path.trim_start_matches('/')),
        )
    }

    /// The Graph resource as scopes name it: scheme, host and port, no trailing slash.
    pub fn graph_resource(&self) -> String {
        self.graph.as_str().trim_end_matches('/').to_string()
    }

    /// The authority as cache keys and messages name it.
    pub fn authority_name(&self) -> String {
        self.authority.as_str().trim_end_matches('/').to_string()
    }

    /// Whether `TenantID` is a multi-tenant alias on which ROPC and client credentials fail.
    pub fn tenant_is_multi_tenant_alias(&self) -> bool {
        matches!(
            self.tenant.to_ascii_lowercase().as_str(),
            "common" | "consumers"
        )
    }

    /// Checks that credentials may be sent to the authority and bearer tokens to Graph.
    ///
    /// # Errors
    /// A configuration error for plain `http://` to a host that is not loopback.
    pub fn check_transport(&self) -> Result<(), ProviderError> {
        security::check_transport(&self.authority, AUTHORITY)?;
        security::check_transport(&self.graph, GRAPH_ENDPOINT)
    }
}

/// What the provider reads from a staff member.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The staff ID in the host.
    pub id: String,
    /// The staff member's own address.
    pub email: String,
    /// The display name (may be empty).
    pub display_name: String,
    /// The sign-in name (may be empty).
    pub username: String,
    /// The password, if stored.
    pub password: Option<Secret>,
    /// `NonInteractive`.
    pub non_interactive: bool,
}

impl Staff {
    /// Reads the staff member the host handed over.
    pub fn from_api(staff: &StaffMember) -> Self {
        Self {
            id: staff.id.to_string(),
            email: staff.email.trim().to_string(),
            display_name: staff.display_name.trim().to_string(),
            username: staff.username.trim().to_string(),
            password: staff
                .password
                .as_ref()
                .map(|p| p.as_str())
                .into_option()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            non_interactive: staff.flag(NON_INTERACTIVE),
        }
    }

    /// The name the user signs in with: the username, else the address.
    pub fn sign_in_name(&self) -> &str {
        if self.username.is_empty() {
            &self.email
        } else {
            &self.username
        }
    }

    /// Whether `address` is the staff member's own (address or username).
    pub fn owns(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.email)
            || (!self.username.is_empty() && address.eq_ignore_ascii_case(&self.username))
    }
}

fn config(key: &str, message: String) -> ProviderError {
    ProviderError::configuration(format!(
        "graph-email setting {key}: {message} (mailhost config set graph-email {key} VALUE)"
    ))
    .with_code(format!("setting:{key}"))
}

fn required(settings: &[Setting], key: &str) -> Result<String, ProviderError> {
    find_setting(settings, key)
        .map(|v| v.trim().to_string())
        .ok_or_else(|| {
            config(
                key,
                "is required and not set; copy it from the app registration's Overview page in the Microsoft Entra admin center".into(),
            )
        })
}

fn base_url(settings: &[Setting], key: &str, default: &str) -> Result<Url, ProviderError> {
    let text = find_setting(settings, key).unwrap_or(default).trim();
    let url = Url::parse(text).map_err(|e| config(key, format!("'{text}' is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(config(
            key,
            format!("'{text}' is not an absolute https:// URL"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(
            key,
            format!("'{text}' must not carry a query or fragment"),
        ));
    }
    Ok(url)
}

fn number(
    settings: &[Setting],
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ProviderError> {
    let Some(text) = find_setting(settings, key) else {
        return Ok(default);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(config(
            key,
            format!("'{text}' is not a whole number from {min} to {max}"),
        )),
    }
}

/// Appends `path` to `base`'s path (keeping any path prefix `base` has).
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    url
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<Setting> {
        pairs.iter().map(|(k, v)| Setting::new(k, v)).collect()
    }

    #[test]
    fn defaults_apply() {
        let parsed = Settings::parse(&settings(&[(CLIENT_ID, "app"), (TENANT_ID, "contoso.com")]))
            .expect("valid settings");
        assert_eq!(
            parsed.authority_endpoint("token").as_str(),
            "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
        );
        assert_eq!(
            parsed.graph_url("/me/sendMail").as_str(),
            "https://graph.microsoft.com/v1.0/me/sendMail"
        );
        assert_eq!(parsed.graph_resource(), "https://graph.microsoft.com");
        assert_eq!(parsed.redirect_uri, DEFAULT_REDIRECT_URI);
        assert_eq!(parsed.alternate_from, AlternateFromMode::UsersEndpoint);
        assert!(!parsed.app_only());
    }

    #[test]
    fn missing_required_setting_is_named() {
        let error = Settings::parse(&settings(&[(CLIENT_ID, "app")])).unwrap_err();
        assert_eq!(error.kind, mailhost_plugin_api::ErrorKind::CONFIGURATION);
        assert!(error.message.contains("TenantID"), "{error}");
        assert!(
            error
                .message
                .contains("mailhost config set graph-email TenantID"),
            "{error}"
        );
    }

    #[test]
    fn emulator_base_keeps_port() {
        let parsed = Settings::parse(&settings(&[
            (CLIENT_ID, "app"),
            (TENANT_ID, "t"),
            (GRAPH_ENDPOINT, "http://127.0.0.1:8080/"),
        ]))
        .expect("valid settings");
        assert_eq!(parsed.graph_resource(), "http://127.0.0.1:8080");
        assert_eq!(
            parsed.graph_url("me/sendMail").as_str(),
            "http://127.0.0.1:8080/v1.0/me/sendMail"
        );
    }

    #[test]
    fn bad_mode_is_refused() {
        let error = Settings::parse(&settings(&[
            (CLIENT_ID, "app"),
            (TENANT_ID, "t"),
            (ALTERNATE_FROM_MODE, "sideways"),
        ]))
        .unwrap_err();
        assert!(error.message.contains("AlternateFromMode"), "{error}");
    }
}
