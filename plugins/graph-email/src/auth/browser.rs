//! Browser sign-in (`mailhost login ID --browser`): the authorization-code grant with PKCE S256
//! and a checked `state`.
//!
//! * `RedirectURI` blank (the `…/common/oauth2/nativeclient` URI the set-up guide registers) or
//!   any other `https://` URI: the sign-in address is shown (and opened unless `SignInNoOpen`),
//!   and the user pastes the address the browser ended on; its `code` and `state` are read.
//! * `RedirectURI` = `http://localhost[:port][/path]` or `http://127.0.0.1…`: the provider
//!   listens on 127.0.0.1 (a random port when none is given), the browser comes back by itself,
//!   and is answered with a short page.
//!
//! Before the browser is opened the provider loads the sign-in address once itself, so an
//! unregistered redirect URI (AADSTS50011), an unknown app or tenant is explained at once.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailhost_plugin_api::ProviderError;
use reqwest::Method;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use super::endpoint::{self, TokenResponse};
use super::errors::{Flow, explain};
use crate::Context;
use crate::http::{Request, Safety};
use crate::security::Secret;
use crate::settings::{CLIENT_ID, REDIRECT_URI};

/// The host-provided sign-in setting that selects the flow: `device-code` (default) or `browser`.
pub const SIGN_IN_MODE: &str = "SignInMode";
/// The host-provided sign-in setting: `true` = print the address instead of opening a browser.
pub const SIGN_IN_NO_OPEN: &str = "SignInNoOpen";
/// How long the provider waits for the browser (or the pasted address).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Opens an address in a browser.
pub type Opener = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;
/// Reads one line the person typed or pasted.
pub type LineReader = Box<dyn Fn() -> std::io::Result<String> + Send + Sync>;

/// How the sign-in talks to the person: opening a browser and reading the pasted address.
pub struct BrowserIo {
    /// Opens `url` in a browser (`xdg-open` / `open` / `start` by default).
    pub open: Opener,
    /// Reads one line the person typed or pasted (standard input by default).
    pub read_line: LineReader,
    /// How long to wait for the browser or the pasted address.
    pub wait: Duration,
}

impl std::fmt::Debug for BrowserIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserIo")
            .field("wait", &self.wait)
            .finish()
    }
}

impl Default for BrowserIo {
    fn default() -> Self {
        Self {
            open: Box::new(open_in_browser),
            read_line: Box::new(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Ok(line)
            }),
            wait: DEFAULT_WAIT,
        }
    }
}

/// Opens `url` with the desktop's handler.
fn open_in_browser(url: &str) -> Result<(), String> {
    let (program, args): (&str, Vec<&str>) = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("rundll32", vec!["url.dll,FileProtocolHandler", url])
    } else {
        ("xdg-open", vec![url])
    };
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("{program}: {e}"))
}

/// Where the browser comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Redirect {
    /// The person pastes the address the browser ended on.
    Paste(String),
    /// A listener on 127.0.0.1; `host` as the admin wrote it (localhost or 127.0.0.1).
    Loopback {
        host: String,
        port: u16,
        path: String,
    },
}

fn redirect_of(redirect_uri: &str) -> Result<Redirect, ProviderError> {
    let bad = |why: &str| {
        ProviderError::configuration(format!(
            "graph-email setting {REDIRECT_URI} '{redirect_uri}' {why}: leave it blank (https://login.microsoftonline.com/common/oauth2/nativeclient) or set http://localhost[:port][/path] as registered under App registrations > the app > Authentication > Mobile and desktop applications (mailhost config set graph-email {REDIRECT_URI} ...)"
        ))
        .with_code(format!("setting:{REDIRECT_URI}"))
    };
    let url = Url::parse(redirect_uri).map_err(|_| bad("is not a URL"))?;
    match (url.scheme(), url.host_str()) {
        ("https", Some(_)) => Ok(Redirect::Paste(redirect_uri.to_string())),
        ("http", Some(host @ ("localhost" | "127.0.0.1"))) => Ok(Redirect::Loopback {
            host: host.to_string(),
            port: url.port().unwrap_or(0),
            path: if url.path() == "/" && !redirect_uri.trim_end().ends_with('/') {
                String::new()
            } else {
                url.path().to_string()
            },
        }),
        ("http", _) => Err(bad(
            "is plain http:// to a host that is not this computer (Microsoft allows http:// only for localhost)",
        )),
        _ => Err(bad("is not an https:// or http://localhost address")),
    }
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    URL_SAFE_NO_PAD.encode(buf)
}

/// The PKCE verifier and its S256 challenge (RFC 7636).
pub fn pkce_pair() -> (String, String) {
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// What came back from the browser.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Callback {
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

/// Reads `code`, `state`, `error`, `error_description` from a pasted address, a query string
/// (`?code=…`) or a fragment.
pub fn parse_callback(text: &str) -> Callback {
    let text = text.trim();
    let query = match Url::parse(text) {
        Ok(url) => url
            .query()
            .filter(|q| q.contains('='))
            .or(url.fragment())
            .unwrap_or("")
            .to_string(),
        Err(_) => text.trim_start_matches(['?', '#']).to_string(),
    };
    let mut callback = Callback::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "code" => callback.code = value,
            "state" => callback.state = value,
            "error" => callback.error = value,
            "error_description" => callback.error_description = value,
            _ => {}
        }
    }
    callback
}

/// Runs the browser sign-in and redeems the code.
///
/// # Errors
/// A configuration error for a bad `RedirectURI`; the explained failure otherwise.
pub async fn acquire(
    ctx: &Context<'_>,
    scopes: &str,
    no_open: bool,
    io: &BrowserIo,
) -> Result<TokenResponse, ProviderError> {
    let staff = &ctx.staff.id;
    let redirect = redirect_of(&ctx.settings.redirect_uri)?;
    let listener = match &redirect {
        Redirect::Loopback { port, .. } => Some(
            tokio::net::TcpListener::bind(("127.0.0.1", *port))
                .await
                .map_err(|e| {
                    ProviderError::configuration(format!(
                        "cannot listen on 127.0.0.1:{port} for the browser's return ({e}): close the program using that port, or set {REDIRECT_URI} to http://localhost without a port (a free port is then chosen; Microsoft ignores the port of loopback redirect URIs)"
                    ))
                })?,
        ),
        Redirect::Paste(_) => None,
    };
    let redirect_uri = match (&redirect, &listener) {
        (Redirect::Loopback { host, path, .. }, Some(listener)) => {
            let port = listener
                .local_addr()
                .map_err(|e| ProviderError::internal(format!("the listener has no address: {e}")))?
                .port();
            format!("http://{host}:{port}{path}")
        }
        _ => ctx.settings.redirect_uri.clone(),
    };
    let (verifier, challenge) = pkce_pair();
    let state = random_b64(16);
    let mut url = ctx.settings.authority_endpoint("authorize");
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("client_id", &ctx.settings.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", scopes)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("client_info", "1");
        let hint = ctx.staff.sign_in_name();
        if !hint.is_empty() {
            query.append_pair("login_hint", hint);
        }
    }
    probe(ctx, &url, &redirect_uri).await?;

    let opened = if no_open {
        false
    } else {
        match (io.open)(url.as_str()) {
            Ok(()) => true,
            Err(error) => {
                log::info!("graph-email: could not open a browser ({error}); showing the address");
                false
            }
        }
    };
    let how = if opened {
        "A browser was opened at the Microsoft sign-in page; if it did not appear, open this address"
    } else {
        "Open this address in a browser"
    };
    let callback = match (&redirect, listener) {
        (Redirect::Loopback { .. }, Some(listener)) => {
            mailhost_plugin_api::host::notify(&format!(
                "{how} and sign in as {} (staff {staff}; Microsoft sign-in for graph-email); mailhost waits up to {} minutes for the browser to come back to {redirect_uri}:\n{url}",
                ctx.staff.sign_in_name(),
                io.wait.as_secs().div_ceil(60)
            ));
            wait_for_browser(listener, &redirect_uri, io.wait, ctx).await?
        }
        _ => {
            mailhost_plugin_api::host::notify(&format!(
                "{how} and sign in as {} (staff {staff}; Microsoft sign-in for graph-email):\n{url}\nThe browser then ends on a page at {redirect_uri} (it may look blank). Copy the whole address from the browser's address bar and paste it here, then press Enter:",
                ctx.staff.sign_in_name()
            ));
            read_pasted(io, ctx).await?
        }
    };
    check_callback(ctx, &callback, &state)?;
    let Some(code) = callback.code else {
        return Err(ProviderError::authentication(format!(
            "the address the browser ended on carries no sign-in code (?code=…): run `mailhost login {staff} --browser` again and paste the whole address after signing in"
        ))
        .with_code("NoAuthorizationCode"));
    };
    let form = vec![
        ("grant_type", Secret::new("authorization_code")),
        ("client_id", Secret::new(ctx.settings.client_id.clone())),
        ("code", Secret::new(code)),
        ("redirect_uri", Secret::new(redirect_uri)),
        ("code_verifier", Secret::new(verifier)),
        ("scope", Secret::new(scopes)),
        ("client_info", Secret::new("1")),
    ];
    let response = endpoint::post(ctx, "token", form)
        .await
        .map_err(|e| explain(ctx, Flow::Browser, e.into()))?;
    endpoint::token_from(&response).map_err(|e| explain(ctx, Flow::Browser, e))
}

/// Loads the sign-in address once without a browser: Microsoft answers an unregistered redirect
/// URI, an unknown app or tenant with an error page naming the AADSTS code.
async fn probe(ctx: &Context<'_>, url: &Url, redirect_uri: &str) -> Result<(), ProviderError> {
    let client = match ctx.http.client(ctx.settings.connect_timeout) {
        Ok(client) => client,
        Err(_) => return Ok(()),
    };
    // prompt=login: the probe never completes a sign-in, even where a session exists.
    let mut url = url.clone();
    url.query_pairs_mut().append_pair("prompt", "login");
    let request = Request::new(Method::GET, url, Safety::Idempotent);
    let Ok(response) = ctx.http.execute(&client, &request, &ctx.policy()).await else {
        // The browser will show what is wrong; the probe is only a shortcut.
        return Ok(());
    };
    let body = String::from_utf8_lossy(&response.body);
    let client_id = &ctx.settings.client_id;
    if body.contains("AADSTS50011") {
        return Err(ProviderError::configuration(format!(
            "the redirect URI {redirect_uri} is not registered for the app {client_id} (AADSTS50011): in the Microsoft Entra admin center open App registrations > the app > Authentication > Add a platform > Mobile and desktop applications and add {} (Microsoft ignores the port of http://localhost URIs), or set {REDIRECT_URI} to a URI that is registered (mailhost config set graph-email {REDIRECT_URI} ...)",
            registered_form(redirect_uri)
        ))
        .with_code("AADSTS50011"));
    }
    if body.contains("AADSTS700016") {
        return Err(ProviderError::configuration(format!(
            "application {client_id} was not found in tenant {} (AADSTS700016): check the {CLIENT_ID} and TenantID settings against the app registration's Overview page",
            ctx.settings.tenant
        ))
        .with_code("AADSTS700016"));
    }
    if body.contains("AADSTS90002") {
        return Err(ProviderError::configuration(format!(
            "tenant '{}' was not found (AADSTS90002): set TenantID to the directory (tenant) ID GUID or a verified domain",
            ctx.settings.tenant
        ))
        .with_code("AADSTS90002"));
    }
    Ok(())
}

/// The redirect URI as an admin registers it: a loopback URI without its port.
fn registered_form(redirect_uri: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) if url.scheme() == "http" => {
            let _ = url.set_port(None);
            let text = url.to_string();
            if redirect_uri.ends_with('/') || url.path() != "/" {
                text
            } else {
                text.trim_end_matches('/').to_string()
            }
        }
        _ => redirect_uri.to_string(),
    }
}

async fn read_pasted(io: &BrowserIo, ctx: &Context<'_>) -> Result<Callback, ProviderError> {
    let staff = &ctx.staff.id;
    let deadline = Instant::now() + io.wait;
    loop {
        let read = tokio::task::block_in_place(|| (io.read_line)());
        let line = read.map_err(|e| {
            ProviderError::authentication(format!(
                "could not read the pasted address ({e}): run `mailhost login {staff} --browser` in a terminal and paste the address there"
            ))
        })?;
        if line.is_empty() {
            return Err(ProviderError::authentication(format!(
                "no address was pasted (end of input): run `mailhost login {staff} --browser` again and paste the address the browser ended on"
            ))
            .with_code("NoAuthorizationCode"));
        }
        let callback = parse_callback(&line);
        if callback.code.is_some() || callback.error.is_some() {
            return Ok(callback);
        }
        if line.contains("AADSTS50011") {
            return Err(ProviderError::configuration(format!(
                "the redirect URI {} is not registered for the app {} (AADSTS50011): add it under App registrations > the app > Authentication > Mobile and desktop applications",
                ctx.settings.redirect_uri, ctx.settings.client_id
            ))
            .with_code("AADSTS50011"));
        }
        if Instant::now() > deadline {
            return Err(timed_out(ctx, io.wait));
        }
        mailhost_plugin_api::host::notify(
            "That is not the address the browser ended on (it has no ?code=…); paste the whole address from the address bar:",
        );
    }
}

fn timed_out(ctx: &Context<'_>, wait: Duration) -> ProviderError {
    let staff = &ctx.staff.id;
    ProviderError::authentication(format!(
        "the browser did not come back within {} seconds: run `mailhost login {staff} --browser` again and finish signing in; if the browser showed AADSTS50011, add {} under App registrations > the app > Authentication > Mobile and desktop applications",
        wait.as_secs(),
        registered_form(&ctx.settings.redirect_uri)
    ))
    .with_code("BrowserTimeout")
}

/// Serves the loopback redirect until the browser comes back to `redirect_uri`'s path.
async fn wait_for_browser(
    listener: tokio::net::TcpListener,
    redirect_uri: &str,
    wait: Duration,
    ctx: &Context<'_>,
) -> Result<Callback, ProviderError> {
    let expected_path = Url::parse(redirect_uri)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| "/".into());
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept()).await;
        let Ok(Ok((mut stream, _))) = accepted else {
            if accepted.is_err() {
                return Err(timed_out(ctx, wait));
            }
            continue;
        };
        let mut head = Vec::with_capacity(2048);
        let mut buf = [0u8; 2048];
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        if !matches!(read, Ok(Ok(()))) {
            continue;
        }
        let text = String::from_utf8_lossy(&head);
        let target = text
            .lines()
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let same_path = path == expected_path
            || (expected_path == "/" && path.is_empty())
            || (path == "/" && expected_path.is_empty());
        if !same_path {
            let _ = respond(&mut stream, "404 Not Found", "Not found.").await;
            continue;
        }
        let callback = parse_callback(&format!("?{query}"));
        let page = if callback.error.is_some() {
            format!(
                "Sign-in failed: {}. You can close this window and return to mailhost.",
                escape(
                    callback
                        .error_description
                        .as_deref()
                        .unwrap_or("see mailhost")
                )
            )
        } else {
            "You are signed in to mailhost. You can close this window.".to_string()
        };
        let _ = respond(&mut stream, "200 OK", &page).await;
        if callback.code.is_some() || callback.error.is_some() {
            return Ok(callback);
        }
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    text: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mailhost sign-in</title></head><body><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Checks `state` and turns a redirect error into the fix.
fn check_callback(
    ctx: &Context<'_>,
    callback: &Callback,
    state: &str,
) -> Result<(), ProviderError> {
    let staff = &ctx.staff.id;
    let client = &ctx.settings.client_id;
    if callback.state.as_deref() != Some(state) {
        return Err(ProviderError::authentication(format!(
            "the address the browser came back with belongs to another sign-in (its state does not match): run `mailhost login {staff} --browser` again and use only the address of that sign-in (an old or forwarded link is refused)"
        ))
        .with_code("StateMismatch"));
    }
    let Some(error) = callback.error.as_deref() else {
        return Ok(());
    };
    let said = callback
        .error_description
        .as_deref()
        .map(|d| format!(" (Microsoft said: {})", d.lines().next().unwrap_or(d)))
        .unwrap_or_default();
    let out = match error {
        "access_denied" => ProviderError::authentication(format!(
            "the sign-in for staff {staff} was cancelled or declined in the browser: run `mailhost login {staff} --browser` again and accept"
        )),
        "consent_required" => ProviderError::permission(format!(
            "the app {client} has no consent for the permissions graph-email asks for: an admin must open Microsoft Entra admin center > App registrations > the app > API permissions, add Microsoft Graph delegated Mail.Send (Mail.ReadWrite for large attachments), then click 'Grant admin consent for <tenant>'"
        )),
        "interaction_required" | "login_required" => ProviderError::authentication(format!(
            "Microsoft needs staff {staff} to complete the sign-in interactively (multi-factor authentication or a Conditional Access step): run `mailhost login {staff} --browser` again and finish every step in the browser"
        )),
        "unauthorized_client" | "invalid_client" => ProviderError::configuration(format!(
            "the app {client} may not use this sign-in: in App registrations > the app > Authentication add the Mobile and desktop platform with {} and set 'Allow public client flows' to Yes",
            registered_form(&ctx.settings.redirect_uri)
        )),
        "temporarily_unavailable" | "server_error" => ProviderError::transient(format!(
            "the Microsoft sign-in service failed: run `mailhost login {staff} --browser` again in a moment"
        )),
        other => ProviderError::authentication(format!(
            "the browser sign-in for staff {staff} failed ({other}): run `mailhost login {staff} --browser` again"
        )),
    };
    Err(ProviderError::new(out.kind, format!("{}{said}", out.message)).with_code(error.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_parse_from_addresses_and_queries() {
        let c = parse_callback(
            " https://login.microsoftonline.com/common/oauth2/nativeclient?code=abc%2Fd&state=s1&session_state=x\n",
        );
        assert_eq!(c.code.as_deref(), Some("abc/d"));
        assert_eq!(c.state.as_deref(), Some("s1"));
        let c = parse_callback(
            "?error=access_denied&error_description=AADSTS65004%3A+declined&state=s",
        );
        assert_eq!(c.error.as_deref(), Some("access_denied"));
        assert_eq!(
            c.error_description.as_deref(),
            Some("AADSTS65004: declined")
        );
        let c = parse_callback("http://localhost:1234/#code=f&state=g");
        assert_eq!(c.code.as_deref(), Some("f"));
        assert_eq!(parse_callback("hello"), Callback::default());
    }

    #[test]
    fn redirect_uris_choose_the_path_back() {
        assert_eq!(
            redirect_of(crate::settings::DEFAULT_REDIRECT_URI).unwrap(),
            Redirect::Paste(crate::settings::DEFAULT_REDIRECT_URI.into())
        );
        assert_eq!(
            redirect_of("http://localhost").unwrap(),
            Redirect::Loopback {
                host: "localhost".into(),
                port: 0,
                path: String::new()
            }
        );
        assert_eq!(
            redirect_of("http://127.0.0.1:8400/cb").unwrap(),
            Redirect::Loopback {
                host: "127.0.0.1".into(),
                port: 8400,
                path: "/cb".into()
            }
        );
        assert!(redirect_of("http://example.com/cb").is_err());
        assert!(redirect_of("ftp://x").is_err());
        assert_eq!(registered_form("http://localhost:5555"), "http://localhost");
        assert_eq!(
            registered_form("http://localhost:5555/cb"),
            "http://localhost/cb"
        );
    }

    #[test]
    fn pkce_is_s256_of_the_verifier() {
        let (verifier, challenge) = pkce_pair();
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            challenge,
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        );
        assert_ne!(pkce_pair().0, verifier);
    }
}
