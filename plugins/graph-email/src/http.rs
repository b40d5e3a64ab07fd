//! The HTTP client (one pooled reqwest client per connect timeout, rustls with the OS roots and
//! `SSL_CERT_FILE`, `HTTPS_PROXY`/`NO_PROXY` from the environment) and the retry policy.
//!
//! Retry rule: a request is retried only when the service said it was not accepted (429, 503,
//! 504, honouring `Retry-After`) or the connection could not be opened. A request that must not
//! run twice (sendMail, send draft) is retried here only on 429; a 5xx or a failure after its
//! body may have been sent goes back to the caller, which looks in Sent Items before repeating.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::Url;

use crate::security::{Secret, safe_url};

/// How a request may be repeated.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum Safety {
    /// Repeating it has no effect the user would see (token requests, uploads, drafts).
    Idempotent,
    /// It must not run twice (sendMail, send draft): retried only when the service said it was
    /// not accepted.
    AtMostOnce,
}

/// The body of a request.
#[derive(Clone)]
pub enum Body {
    /// No body (`Content-Length: 0`).
    Empty,
    /// `application/x-www-form-urlencoded`; may hold secrets, so never logged.
    Form(Vec<(&'static str, Secret)>),
    /// `application/json`.
    Json(Vec<u8>),
    /// Raw bytes with a content type (upload chunks).
    Bytes(Vec<u8>, &'static str),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Form(fields) => {
                let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
                write!(f, "Form({names:?})")
            }
            Self::Json(bytes) => write!(f, "Json({} bytes)", bytes.len()),
            Self::Bytes(bytes, kind) => write!(f, "Bytes({} bytes, {kind})", bytes.len()),
        }
    }
}

/// One HTTP request, rebuilt for every attempt.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL (logged without its query string).
    pub url: Url,
    /// The bearer token, if any.
    pub bearer: Option<Secret>,
    /// Extra headers (never secrets).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
    /// Whether the request may be repeated.
    pub safety: Safety,
}

impl Request {
    /// A request with no body, no token and no extra headers.
    pub fn new(method: Method, url: Url, safety: Safety) -> Self {
        Self {
            method,
            url,
            bearer: None,
            headers: Vec::new(),
            body: Body::Empty,
            safety,
        }
    }

    /// Sets the bearer token.
    #[must_use]
    pub fn bearer(mut self, token: &Secret) -> Self {
        self.bearer = Some(token.clone());
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// A response, read to the end.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Graph's `request-id` header, for support cases.
    pub fn request_id(&self) -> Option<String> {
        header_text(&self.headers, "request-id")
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The `Retry-After` the response carries.
    pub fn retry_after(&self) -> Option<Duration> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|v| !v.is_empty())
}

/// Why a request produced no usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection could not be opened: the service never saw the request.
    #[error("could not connect to {url}: {detail}")]
    Connect {
        /// The URL (no query).
        url: String,
        /// What failed.
        detail: String,
    },
    /// The request failed or timed out after it may have reached the service, and it must not
    /// be repeated.
    #[error(
        "the connection to {url} failed after the request was sent ({detail}); the service may have acted on it"
    )]
    UnknownOutcome {
        /// The URL (no query).
        url: String,
        /// What failed.
        detail: String,
    },
    /// A repeatable request failed on the network on every try.
    #[error("the request to {url} failed: {detail}")]
    Network {
        /// The URL (no query).
        url: String,
        /// What failed.
        detail: String,
    },
    /// The service kept answering 429/503/504.
    #[error("{url} answered HTTP {} after {attempts} tries", .response.status.as_u16())]
    Exhausted {
        /// The URL (no query).
        url: String,
        /// How many requests were made.
        attempts: u32,
        /// When to try again, as the service said or as the backoff would wait.
        retry_after: Option<Duration>,
        /// The last response.
        response: Box<Response>,
    },
    /// The HTTP client could not be built (TLS roots, proxy settings).
    #[error("the HTTP client could not be set up: {0}")]
    Client(String),
}

/// How long and how often to retry.
#[derive(Debug, Copy, Clone)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max_retries: u32,
    /// The most time spent waiting between tries, in total.
    pub max_wait: Duration,
    /// The first backoff when the service gives no `Retry-After`.
    pub base: Duration,
    /// The largest single backoff.
    pub cap: Duration,
    /// Timeout of one request.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based) with no `Retry-After`: capped
    /// exponential with up to half a base of random jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .base
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX));
        let jitter_ms = u64::try_from(self.base.as_millis() / 2).unwrap_or(0);
        let jitter = Duration::from_millis(rand::random_range(0..=jitter_ms));
        exponential.min(self.cap) + jitter
    }
}

/// Whether a status says the request was not accepted and may be repeated later.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 503 | 504)
}

/// Parses `Retry-After`: delay seconds or an HTTP-date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The pooled HTTP clients, one per connect timeout (reqwest sets it per client).
#[derive(Debug, Default)]
pub struct Http {
    clients: Mutex<HashMap<Duration, reqwest::Client>>,
}

impl Http {
    /// The pooled client for `connect_timeout`.
    ///
    /// # Errors
    /// [`HttpError::Client`] when TLS or proxy set-up fails.
    pub fn client(&self, connect_timeout: Duration) -> Result<reqwest::Client, HttpError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| HttpError::Client("client pool lock poisoned".into()))?;
        if let Some(client) = clients.get(&connect_timeout) {
            return Ok(client.clone());
        }
        // reqwest reads HTTP(S)_PROXY/NO_PROXY from the environment by default; the
        // rustls-native-roots feature loads the OS store and honours SSL_CERT_FILE.
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("mailhost-graph-email/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::Client(error_chain(&e)))?;
        clients.insert(connect_timeout, client.clone());
        Ok(client)
    }

    /// Runs `request`, retrying as [`RetryPolicy`] and [`Safety`] allow. Any final status other
    /// than an exhausted 429/503/504 is returned as a [`Response`] for the caller to judge.
    ///
    /// # Errors
    /// See [`HttpError`].
    pub async fn execute(
        &self,
        client: &reqwest::Client,
        request: &Request,
        policy: &RetryPolicy,
    ) -> Result<Response, HttpError> {
        let shown = safe_url(&request.url);
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(client, request, policy, attempt, &shown).await;
            let (wait, last) = match outcome {
                // A 5xx to a request that must not run twice may have been acted on: the caller
                // looks before repeating it.
                Ok(response)
                    if request.safety == Safety::AtMostOnce
                        && response.status.is_server_error() =>
                {
                    return Ok(response);
                }
                Ok(response) if is_retryable_status(response.status) => {
                    let wait = response
                        .retry_after()
                        .unwrap_or_else(|| policy.backoff(attempt - 1));
                    (wait, Ok(response))
                }
                Ok(response) => return Ok(response),
                Err(AttemptError::Connect(detail)) => (
                    policy.backoff(attempt - 1),
                    Err(HttpError::Connect {
                        url: shown.clone(),
                        detail,
                    }),
                ),
                Err(AttemptError::AfterSend(detail)) => {
                    if request.safety == Safety::AtMostOnce {
                        return Err(HttpError::UnknownOutcome { url: shown, detail });
                    }
                    (
                        policy.backoff(attempt - 1),
                        Err(HttpError::Network {
                            url: shown.clone(),
                            detail,
                        }),
                    )
                }
            };
            let retries_left = attempt <= policy.max_retries;
            let within_budget = waited + wait <= policy.max_wait;
            if !(retries_left && within_budget) {
                log::debug!(
                    "{} {shown}: giving up after {attempt} tries ({:.1} s)",
                    request.method,
                    started.elapsed().as_secs_f64()
                );
                return match last {
                    Ok(response) => Err(HttpError::Exhausted {
                        url: shown,
                        attempts: attempt,
                        retry_after: Some(wait),
                        response: Box::new(response),
                    }),
                    Err(error) => Err(error),
                };
            }
            log::debug!(
                "{} {shown}: retry {attempt} of {} in {} ms",
                request.method,
                policy.max_retries,
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        request: &Request,
        policy: &RetryPolicy,
        attempt: u32,
        shown: &str,
    ) -> Result<Response, AttemptError> {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .timeout(policy.timeout)
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true");
        if attempt > 1 {
            builder = builder.header("Retry-Attempt", (attempt - 1).to_string());
        }
        if let Some(token) = &request.bearer {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    AttemptError::Connect("the access token is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        builder = match &request.body {
            Body::Empty => builder.header(reqwest::header::CONTENT_LENGTH, "0"),
            Body::Form(fields) => {
                let encoded = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter().map(|(k, v)| (*k, v.expose())))
                    .finish();
                builder
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(encoded)
            }
            Body::Json(bytes) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Bytes(bytes, kind) => builder
                .header(reqwest::header::CONTENT_TYPE, *kind)
                .body(bytes.clone()),
        };
        let started = Instant::now();
        log::trace!(
            "{} {shown} (client-request-id {client_request_id}, try {attempt}, body {:?})",
            request.method,
            request.body
        );
        let response = builder.send().await.map_err(|e| {
            let detail = error_chain(&e);
            log::debug!("{} {shown}: {detail}", request.method);
            if e.is_connect() {
                AttemptError::Connect(detail)
            } else {
                AttemptError::AfterSend(detail)
            }
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        // A failure while reading the body leaves the status, which is what matters.
        let body = match response.bytes().await {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => {
                log::debug!(
                    "{} {shown}: reading the response body failed: {}",
                    request.method,
                    error_chain(&e)
                );
                Vec::new()
            }
        };
        let response = Response {
            status,
            headers,
            body,
        };
        log::debug!(
            "{} {shown} -> {} in {} ms (request-id {})",
            request.method,
            status.as_u16(),
            started.elapsed().as_millis(),
            response.request_id().unwrap_or_else(|| "-".into())
        );
        Ok(response)
    }
}

enum AttemptError {
    Connect(String),
    AfterSend(String),
}

/// An error and its sources on one line (reqwest's top-level message alone says little).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    // reqwest includes the full URL, which for upload sessions carries an authtoken.
    strip_queries(&text)
}

/// Removes `?query` parts of any URL in `text`.
fn strip_queries(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('?') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        let end = after
            .find(|c: char| c.is_whitespace() || c == ')' || c == '"' || c == '\'')
            .unwrap_or(after.len());
        out.push_str("?…");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let later = SystemTime::now() + Duration::from_secs(30);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).expect("HTTP-date parses");
        assert!(
            parsed <= Duration::from_secs(30) && parsed >= Duration::from_secs(28),
            "{parsed:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            max_wait: Duration::from_secs(100),
            base: Duration::from_millis(500),
            cap: Duration::from_secs(8),
            timeout: Duration::from_secs(1),
        };
        assert!(policy.backoff(0) < Duration::from_millis(751));
        assert!(policy.backoff(0) >= Duration::from_millis(500));
        assert!(policy.backoff(40) <= Duration::from_millis(8250));
    }

    #[test]
    fn queries_are_stripped_from_errors() {
        assert_eq!(
            strip_queries("error sending request for url (http://x/up?authtoken=abc): timed out"),
            "error sending request for url (http://x/up?…): timed out"
        );
    }

    #[test]
    fn form_bodies_do_not_show_values() {
        let body = Body::Form(vec![("password", Secret::new("hunter2"))]);
        assert_eq!(format!("{body:?}"), "Form([\"password\"])");
    }
}
