//! The router against the fake engine, request by request (`tower::ServiceExt::oneshot`), and
//! the listener itself over loopback, plain and TLS.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::fake::{FakeEngine, STAFF};
use super::{HttpState, routes, tokens};

struct Api {
    state: HttpState,
    engine: Arc<FakeEngine>,
    token: String,
}

impl Api {
    fn new() -> Self {
        Self::with_limit(1024 * 1024)
    }

    fn with_limit(limit: usize) -> Self {
        let engine = Arc::new(FakeEngine::new());
        let (token, _) =
            tokens::create(crate::front::http::Backend::outbox(engine.as_ref()), "test").unwrap();
        let state = HttpState::new(engine.clone(), limit);
        Self {
            state,
            engine,
            token,
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = routes::router(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    async fn json(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, headers, body) = self.call(request).await;
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/json",
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn authed(&self, method: &str, uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
    }

    fn post_email(&self, body: &Value) -> Request<Body> {
        self.authed("POST", "/v1/emails")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    fn stored(&self) -> usize {
        crate::front::http::Backend::outbox(self.engine.as_ref())
            .list(None, None)
            .unwrap()
            .len()
    }
}

fn email() -> Value {
    json!({"staff": STAFF, "to": ["bob@example.com"], "subject": "Hello", "body": "Hi Bob"})
}

#[tokio::test]
async fn a_posted_email_is_recorded_and_can_be_read_back() {
    let api = Api::new();
    let (status, headers, body) = api.call(api.post_email(&email())).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let accepted: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(
        headers[header::LOCATION],
        format!("/v1/emails/{id}").as_str()
    );
    assert_eq!(accepted.as_object().unwrap().len(), 2, "{accepted}");

    let (status, record) = api
        .json(
            api.authed("GET", &format!("/v1/emails/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stored = crate::front::http::Backend::outbox(api.engine.as_ref())
        .get(id)
        .unwrap();
    let mut shown = serde_json::to_value(&stored).unwrap();
    shown["attempt_log"] = json!([]);
    assert_eq!(record, shown, "as email show --json");
    assert_eq!(record["to"][0]["address"], "bob@example.com");

    let (status, listing) = api
        .json(
            api.authed("GET", "/v1/emails?status=queued&limit=5")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listing["emails"][0]["id"], id);
    let (_, none) = api
        .json(
            api.authed("GET", "/v1/emails?status=sent")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(none["emails"], json!([]));
}

#[tokio::test]
async fn listing_is_newest_first_and_limited() {
    let api = Api::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut body = email();
        body["subject"] = json!(format!("n{i}"));
        let (_, accepted) = api.json(api.post_email(&body)).await;
        ids.push(accepted["id"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (_, listing) = api
        .json(
            api.authed("GET", "/v1/emails?limit=2")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let got: Vec<&str> = listing["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[2].as_str(), ids[1].as_str()]);
    for bad in [
        "/v1/emails?limit=0",
        "/v1/emails?limit=x",
        "/v1/emails?status=done",
        "/v1/emails?color=red",
    ] {
        let (status, body) = api
            .json(api.authed("GET", bad).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query");
    }
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let api = Api::new();
    let no_token = Request::builder()
        .method("POST")
        .uri("/v1/emails")
        .body(Body::from(email().to_string()))
        .unwrap();
    let (status, headers, body) = api.call(no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    for value in [
        "Bearer mh_wrong",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        &api.token,
    ] {
        let request = Request::builder()
            .uri("/v1/emails")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = api.call(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
    }
    assert_eq!(api.stored(), 0);
    // A revoked token stops working at once.
    tokens::revoke(
        crate::front::http::Backend::outbox(api.engine.as_ref()),
        "test",
    )
    .unwrap();
    let (status, _) = api.json(api.post_email(&email())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Public routes need none.
    for uri in ["/healthz", "/metrics", "/openapi.json"] {
        let (status, _, _) = api
            .call(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn bad_input_is_4xx_json_and_nothing_is_recorded() {
    let api = Api::new();
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            api.authed("POST", "/v1/emails").body(Body::from("{\"staff\": ")).unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            api.post_email(&json!({"staff": STAFF, "to": "bob@example.com"})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            api.post_email(&json!({"staff": STAFF, "to": ["bob@example.com"], "colour": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            api.post_email(&json!({"staff": "nobody", "to": ["bob@example.com"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            api.post_email(&json!({"staff": STAFF, "to": ["not an address"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            api.post_email(&json!({"staff": STAFF, "to": ["b@example.com"], "subject": "a\r\nBcc: x@evil.example"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_email",
        ),
        (
            api.post_email(&json!({"staff": STAFF, "to": ["b@example.com"], "headers": {"X-A": "1\nBcc: x@evil.example"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_header",
        ),
        (
            api.authed("POST", "/v1/emails")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(email().to_string()))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            api.authed("POST", "/v1/emails")
                .header("Idempotency-Key", "has space")
                .body(Body::from(email().to_string()))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
        (
            api.authed("GET", "/v1/emails/nope").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            api.authed("GET", "/v2/anything").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            api.authed("DELETE", "/v1/emails").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (got, body) = api.json(request).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(api.stored(), 0, "nothing recorded for bad input");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let api = Api::with_limit(1000);
    let mut body = email();
    body["body"] = json!("x".repeat(2000));
    let (status, value) = api.json(api.post_email(&body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(value["error"]["code"], "body_too_large");
    // Without a Content-Length header (above) the bytes are counted; with one, it is believed.
    let text = body.to_string();
    let request = api
        .authed("POST", "/v1/emails")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, text.len())
        .body(Body::from(text))
        .unwrap();
    let (status, _) = api.json(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(api.stored(), 0);
}

#[tokio::test]
async fn attachments_are_decoded() {
    let api = Api::new();
    let mut body = email();
    body["attachments"] = json!([{"name": "report.pdf", "content_base64": "JVBERi0xLjQK"}]);
    let (status, accepted) = api.json(api.post_email(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let record = crate::front::http::Backend::outbox(api.engine.as_ref())
        .get(accepted["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(record.attachments[0].name, "report.pdf");
    assert_eq!(record.attachments[0].size, 9);
    assert_eq!(record.attachments[0].content_type, "application/pdf");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_email_even_when_concurrent() {
    let api = Arc::new(Api::new());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let api = Arc::clone(&api);
        tasks.push(tokio::spawn(async move {
            let request = api
                .authed("POST", "/v1/emails")
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", "order-42")
                .body(Body::from(email().to_string()))
                .unwrap();
            api.json(request).await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one email for one key: {ids:?}");
    assert_eq!(api.stored(), 1);
    let mut different = email();
    different["subject"] = json!("another email");
    let request = api
        .authed("POST", "/v1/emails")
        .header(header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", "order-42")
        .body(Body::from(different.to_string()))
        .unwrap();
    let (status, body) = api.json(request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(api.stored(), 1);
    let (_, other) = api.json(api.post_email(&email())).await;
    assert_ne!(other["id"], ids[0].as_str(), "no key: a new email");
}

#[tokio::test]
async fn retry_answers_202_404_and_409() {
    let api = Api::new();
    let (_, accepted) = api.json(api.post_email(&email())).await;
    let id = accepted["id"].as_str().unwrap();
    let (status, body) = api
        .json(
            api.authed("POST", &format!("/v1/emails/{id}/retry"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["id"], id);
    let (status, _) = api
        .json(
            api.authed("POST", "/v1/emails/0000ffff/retry")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let outbox = crate::front::http::Backend::outbox(api.engine.as_ref());
    outbox.claim(id).unwrap();
    outbox
        .finish_sent(id, &mailhost_plugin_api::Receipt::default())
        .unwrap();
    let (status, body) = api
        .json(
            api.authed("POST", &format!("/v1/emails/{id}/retry"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = api
        .json(
            api.authed("POST", &format!("/v1/emails/{id}/retry?force=true"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = api
        .json(
            api.authed("POST", &format!("/v1/emails/{id}/retry?force=maybe"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_panicking_handler_is_a_json_500() {
    let api = Api::new();
    let (status, body) = api
        .json(api.post_email(&json!({"staff": "panic", "to": ["b@example.com"]})))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "internal");
    // The service goes on.
    let (status, _) = api.json(api.post_email(&email())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn metrics_count_emails_and_requests_without_addresses() {
    let api = Api::new();
    api.json(api.post_email(&email())).await;
    api.json(
        api.authed("GET", "/v1/emails/zzzz-missing")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let (status, headers, body) = api
        .call(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body).unwrap();
    for line in [
        "mailhost_emails{status=\"queued\"} 1",
        "mailhost_http_requests_total{route=\"/v1/emails\",method=\"POST\",code=\"202\"} 1",
        "mailhost_http_requests_total{route=\"/v1/emails/{id}\",method=\"GET\",code=\"404\"} 1",
        "mailhost_limit_waits_total 2",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}:\n{text}");
    }
    assert!(!text.contains("bob@example.com") && !text.contains("Hello") && !text.contains("zzzz"));
}

#[tokio::test]
async fn a_stopping_service_refuses_new_emails_with_503() {
    let api = Api::new();
    api.state.stop_accepting();
    let (status, body) = api.json(api.post_email(&email())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(api.stored(), 0);
}

mod listener {
    //! The real listener on loopback: plain, TLS, and shutdown.

    use std::sync::Arc;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;

    use super::super::fake::FakeEngine;
    use super::super::{HttpState, TlsConfig, serve_http, tls};

    async fn exchange<S>(mut stream: S, request: &str) -> String
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn plain_listener_serves_and_stops_on_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = HttpState::new(Arc::new(FakeEngine::new()), 1 << 20);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_http(listener, None, state, async {
            let _ = stopped.await;
        }));
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let answer = exchange(stream, HEALTH).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
        stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }

    #[tokio::test]
    async fn tls_listener_serves_https() {
        let dir = tempfile::tempdir().unwrap();
        let files = tls::tests::write_test_pair(dir.path());
        let config = TlsConfig::load(&files).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = HttpState::new(Arc::new(FakeEngine::new()), 1 << 20);
        tokio::spawn(serve_http(
            listener,
            Some(config),
            state,
            std::future::pending(),
        ));

        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&files.cert).unwrap();
        use rustls::pki_types::pem::PemObject as _;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        let answer = exchange(stream, HEALTH).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Plain HTTP to the TLS port gets no answer.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let answer = exchange(tcp, HEALTH).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
}
