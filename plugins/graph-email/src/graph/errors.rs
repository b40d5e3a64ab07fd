//! Graph error bodies (`{"error":{"code","message","innerError"}}`) and transport failures
//! turned into errors a user can act on.

use mailhost_plugin_api::ProviderError;

use crate::Context;
use crate::auth::Mode;
use crate::http::{HttpError, Response};
use crate::settings::{AUTHORITY, CLIENT_SECRET, CONNECT_TIMEOUT, GRAPH_ENDPOINT, REQUEST_TIMEOUT};

/// A Graph error body, with the innermost code found.
#[derive(Debug, Clone, Default)]
pub struct GraphError {
    /// HTTP status.
    pub status: u16,
    /// The outer `code`.
    pub code: String,
    /// Every code, outer first (nested `innerError`s may carry more specific ones).
    pub codes: Vec<String>,
    /// `message`.
    pub message: String,
    /// The `request-id` header (or the one in `innerError`).
    pub request_id: Option<String>,
}

impl GraphError {
    /// Reads the error a response carries.
    pub fn from_response(response: &Response) -> Self {
        let mut error = Self {
            status: response.status.as_u16(),
            request_id: response.request_id(),
            ..Self::default()
        };
        let Some(json) = response.json() else {
            error.code = match error.status {
                413 => "RequestEntityTooLarge".into(),
                _ => format!("HTTP{}", error.status),
            };
            return error;
        };
        let mut node = json.get("error");
        while let Some(current) = node {
            if let Some(code) = current.get("code").and_then(|c| c.as_str()) {
                error.codes.push(code.to_string());
            }
            if let Some(message) = current
                .get("message")
                .and_then(|m| m.as_str())
                .filter(|_| error.message.is_empty())
            {
                error.message = message.to_string();
            }
            if error.request_id.is_none() {
                error.request_id = current
                    .get("request-id")
                    .and_then(|r| r.as_str())
                    .map(str::to_string);
            }
            node = current
                .get("innerError")
                .or_else(|| current.get("innererror"));
        }
        error.code = error
            .codes
            .first()
            .cloned()
            .unwrap_or_else(|| format!("HTTP{}", error.status));
        error
    }

    fn has(&self, code: &str) -> bool {
        self.codes.iter().any(|c| c.eq_ignore_ascii_case(code))
            || self.code.eq_ignore_ascii_case(code)
    }

    fn said(&self) -> String {
        let mut said = String::new();
        if !self.message.is_empty() {
            said.push_str(&format!(" (Graph said: {}", self.message.trim()));
            if let Some(id) = &self.request_id {
                said.push_str(&format!("; request-id {id}"));
            }
            said.push(')');
        } else if let Some(id) = &self.request_id {
            said.push_str(&format!(" (request-id {id})"));
        }
        said
    }
}

/// What a failed Graph request was doing, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Doing<'a> {
    /// The request in words, such as `sendMail`.
    pub what: &'a str,
    /// The mailbox the message is sent from.
    pub from: &'a str,
    /// How the call signed in.
    pub mode: Mode,
    /// Whether a delegated call acts in another user's mailbox (`/users/{from}`).
    pub other_mailbox: bool,
}

/// Turns a Graph error response into a user-facing error.
pub fn graph_error(ctx: &Context<'_>, doing: Doing<'_>, response: &Response) -> ProviderError {
    let error = GraphError::from_response(response);
    let staff = &ctx.staff.id;
    let user = ctx.staff.sign_in_name();
    let from = doing.from;
    let said = error.said();
    let kind_of_permission = if doing.mode == Mode::AppOnly {
        "application"
    } else {
        "delegated"
    };
    let base = if error.has("ErrorSendAsDenied") {
        let trustee = if doing.mode == Mode::AppOnly {
            "the app"
        } else {
            user
        };
        ProviderError::permission(format!(
            "{trustee} may not send as {from}: an Exchange admin must grant the right in Exchange admin center > Recipients > Mailboxes > {from} > Delegation > Send as (or Send on behalf), or run `Add-RecipientPermission {from} -AccessRights SendAs -Trustee {user}`; sending through /users/{from}/sendMail (AlternateFromMode=users-endpoint) also needs Full Access (`Add-MailboxPermission {from} -User {user} -AccessRights FullAccess`), while AlternateFromMode=from-property needs only Send As or Send on behalf"
        ))
    } else if error.has("ErrorInvalidRecipients") || error.has("ErrorInvalidRecipientAddress") {
        ProviderError::recipient(
            "Microsoft Graph refused a recipient: give each recipient as one address (not 'a@x.com;b@x.com') and check that internal addresses exist",
        )
    } else if error.has("ErrorMessageSizeExceeded")
        || error.has("RequestEntityTooLarge")
        || error.status == 413
    {
        ProviderError::too_large(format!(
            "the email is larger than the mailbox {from} may send (attachments count about a third larger once encoded): send smaller attachments, or have an Exchange admin raise the mailbox's maximum send size (Exchange admin center > Mailboxes > {from} > Mail flow settings > Message size restrictions, up to 150 MB)"
        ))
    } else if error.has("NoPermissionsInAccessToken") {
        ProviderError::permission(format!(
            "the app {} has no Microsoft Graph permission in its token: add the {kind_of_permission} permission Mail.Send (and Mail.ReadWrite for large attachments) under App registrations > the app > API permissions and click 'Grant admin consent'",
            ctx.settings.client_id
        ))
    } else if (error.has("ErrorAccessDenied") || error.has("AccessDenied")) && doing.other_mailbox {
        ProviderError::permission(format!(
            "{user} may not use the mailbox {from} through /users/{from} (AlternateFromMode=users-endpoint needs Full Access and Send As): an Exchange admin must grant Full Access (Exchange admin center > Recipients > Mailboxes > {from} > Delegation > Read and manage (Full Access), or `Add-MailboxPermission {from} -User {user} -AccessRights FullAccess`) and Send as (`Add-RecipientPermission {from} -AccessRights SendAs -Trustee {user}`); or set AlternateFromMode=from-property (mailhost config set graph-email AlternateFromMode from-property), which needs only Send As or Send on behalf"
        ))
    } else if error.has("ErrorAccessDenied")
        || error.has("AccessDenied")
        || error.has("Authorization_RequestDenied")
    {
        ProviderError::permission(format!(
            "access denied to {} for {from}: the app {} needs the {kind_of_permission} Microsoft Graph permission Mail.Send (Mail.ReadWrite for large attachments{}) with admin consent (App registrations > the app > API permissions; delegated permissions for user sign-in, application permissions for app-only with {CLIENT_SECRET}); for app-only an Exchange Application Access Policy may also exclude this mailbox",
            doing.what,
            ctx.settings.client_id,
            if doing.mode == Mode::AppOnly {
                ""
            } else {
                "; Mail.Send.Shared for other mailboxes"
            }
        ))
    } else if error.has("MailboxNotEnabledForRESTAPI") || error.has("MailboxNotSupportedForRESTAPI")
    {
        ProviderError::configuration(format!(
            "the mailbox {from} cannot be used with Microsoft Graph (no Exchange Online licence, a guest, inactive, soft-deleted or on-premises): assign a licence with Exchange Online in Microsoft 365 admin center > Users > Active users > the user > Licenses and apps"
        ))
    } else if error.has("ErrorQuotaExceeded") {
        ProviderError::permission(format!(
            "the mailbox {from} is full: free space in it (its Sent Items keep a copy of each email) or ask an admin to raise its quota"
        ))
    } else if error.has("InvalidInternetMessageHeaderCollection") {
        ProviderError::invalid_message(
            "Microsoft Graph refused the custom headers: at most 5, each named X-something"
                .to_string(),
        )
    } else if error.has("ErrorInvalidUser")
        || error.has("ResourceNotFound")
        || error.has("ErrorNonExistentMailbox")
    {
        ProviderError::configuration(format!(
            "the mailbox {from} was not found in the tenant: check the From address, or the staff member's email (`mailhost staff set {staff} --email ...`)"
        ))
    } else if error.status == 401 {
        ProviderError::authentication(format!(
            "Microsoft Graph did not accept the sign-in of staff {staff} even after a fresh token: run `mailhost login {staff}`, and check that {GRAPH_ENDPOINT} ({}) and {AUTHORITY} ({}) belong to the same cloud",
            ctx.settings.graph_resource(),
            ctx.settings.authority_name()
        ))
    } else if error.status == 403 {
        ProviderError::permission(format!(
            "Microsoft Graph refused {} for {from}: check the app's {kind_of_permission} permissions and the mailbox rights",
            doing.what
        ))
    } else if error.status == 404 {
        ProviderError::configuration(format!(
            "Microsoft Graph did not find what {} needs for {from}: check the From address and the {GRAPH_ENDPOINT} setting ({})",
            doing.what,
            ctx.settings.graph_resource()
        ))
    } else if error.status >= 500 {
        ProviderError::transient(format!(
            "Microsoft Graph failed on {}; the email can be retried later",
            doing.what
        ))
    } else {
        ProviderError::invalid_message(format!(
            "Microsoft Graph refused {} (HTTP {})",
            doing.what, error.status
        ))
    };
    let mut out = ProviderError::new(base.kind, format!("{}{said}", base.message))
        .with_code(error.code.clone());
    if let Some(retry) = response.retry_after() {
        out = out.with_retry_after(retry);
    }
    out
}

/// Turns a transport failure into a user-facing error.
pub fn http_error(error: HttpError, service: &str, ctx: &Context<'_>) -> ProviderError {
    match error {
        HttpError::Connect { url, detail } => ProviderError::transient(format!(
            "could not connect to {service} at {url} ({detail}): check the network and any proxy (HTTPS_PROXY, NO_PROXY), the {AUTHORITY}/{GRAPH_ENDPOINT} settings, and {CONNECT_TIMEOUT}"
        ))
        .with_code("ConnectFailed"),
        HttpError::UnknownOutcome { url, detail } => ProviderError::unknown_outcome(format!(
            "the connection to {service} ({url}) failed after the email was handed over ({detail}), so Microsoft may or may not have sent it: check the Sent Items of the sending mailbox before retrying (staff {}); raise {REQUEST_TIMEOUT} if this repeats",
            ctx.staff.id
        ))
        .with_code("UnknownOutcome"),
        HttpError::Network { url, detail } => ProviderError::transient(format!(
            "the request to {service} ({url}) failed ({detail}); it can be retried later (raise {REQUEST_TIMEOUT} for slow links)"
        ))
        .with_code("NetworkError"),
        HttpError::Exhausted { url, attempts, retry_after, response } => {
            let graph = GraphError::from_response(&response);
            let code = if graph.codes.is_empty() {
                response.status.as_u16().to_string()
            } else {
                graph.code.clone()
            };
            let wait = retry_after.map(|d| format!("; Microsoft asked to wait {} s", d.as_secs())).unwrap_or_default();
            let message = if response.status.as_u16() == 429 {
                format!(
                    "{service} is throttling requests ({url} answered 429 {attempts} times{wait}); the email was not sent and can be retried later (mailhost email retry)"
                )
            } else {
                format!(
                    "{service} is temporarily unavailable ({url} answered {} {attempts} times{wait}); the email was not sent and can be retried later",
                    response.status.as_u16()
                )
            };
            if response.status.as_u16() == 429 {
                ProviderError::throttled(message, retry_after).with_code(code)
            } else {
                let mut error = ProviderError::transient(message).with_code(code);
                if let Some(retry) = retry_after {
                    error = error.with_retry_after(retry);
                }
                error
            }
        }
        HttpError::Client(detail) => ProviderError::configuration(format!(
            "the HTTP client could not be set up ({detail}): check SSL_CERT_FILE and the proxy variables (HTTPS_PROXY, NO_PROXY)"
        ))
        .with_code("HttpClient"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mailhost_plugin_api::{ErrorKind, Setting};
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    use super::*;
    use crate::http::Http;
    use crate::settings::{Settings, Staff};

    fn check(status: u16, code: &str, kind: ErrorKind, needle: &str) {
        let settings = Settings::parse(&[
            Setting::new("ClientID", "app"),
            Setting::new("TenantID", "contoso.com"),
        ])
        .unwrap();
        let staff = Staff {
            id: "s1".into(),
            email: "alex@contoso.com".into(),
            display_name: String::new(),
            username: "alex@contoso.com".into(),
            password: None,
            non_interactive: false,
        };
        let http = Http::default();
        let ctx = Context {
            http: &http,
            settings: &settings,
            staff: &staff,
        };
        let mut headers = HeaderMap::new();
        headers.insert("request-id", "rid-1".parse().unwrap());
        let response = Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: format!(r#"{{"error":{{"code":"{code}","message":"msg of {code}"}}}}"#)
                .into_bytes(),
        };
        let doing = Doing {
            what: "sendMail",
            from: "hr@contoso.com",
            mode: Mode::Interactive,
            other_mailbox: false,
        };
        let error = graph_error(&ctx, doing, &response);
        assert_eq!(error.kind, kind, "{code}: {error}");
        assert_eq!(error.code.as_str(), code);
        assert!(error.message.contains(needle), "{code}: {error}");
        assert!(error.message.contains("rid-1"), "{code}: {error}");
    }

    #[test]
    fn graph_codes_name_the_fix() {
        check(
            403,
            "ErrorSendAsDenied",
            ErrorKind::PERMISSION,
            "Add-RecipientPermission hr@contoso.com -AccessRights SendAs -Trustee alex@contoso.com",
        );
        check(
            403,
            "ErrorSendAsDenied",
            ErrorKind::PERMISSION,
            "Delegation > Send as",
        );
        check(
            400,
            "ErrorInvalidRecipients",
            ErrorKind::RECIPIENT,
            "one address",
        );
        check(
            400,
            "ErrorMessageSizeExceeded",
            ErrorKind::TOO_LARGE,
            "Message size restrictions",
        );
        check(
            413,
            "RequestEntityTooLarge",
            ErrorKind::TOO_LARGE,
            "smaller attachments",
        );
        check(
            403,
            "ErrorAccessDenied",
            ErrorKind::PERMISSION,
            "delegated Microsoft Graph permission Mail.Send",
        );
        check(
            403,
            "NoPermissionsInAccessToken",
            ErrorKind::PERMISSION,
            "Grant admin consent",
        );
        check(
            404,
            "MailboxNotEnabledForRESTAPI",
            ErrorKind::CONFIGURATION,
            "licence",
        );
        check(
            400,
            "InvalidInternetMessageHeaderCollection",
            ErrorKind::INVALID_MESSAGE,
            "at most 5",
        );
        check(500, "generalException", ErrorKind::TRANSIENT, "retried");
    }

    #[test]
    fn nested_codes_are_found() {
        let response = Response {
            status: StatusCode::FORBIDDEN,
            headers: HeaderMap::new(),
            body: br#"{"error":{"code":"accessDenied","message":"m","innerError":{"code":"ErrorSendAsDenied","request-id":"r2"}}}"#.to_vec(),
        };
        let error = GraphError::from_response(&response);
        assert!(error.has("ErrorSendAsDenied"));
        assert_eq!(error.request_id.as_deref(), Some("r2"));
    }
}
