//! The HTTP API of the real `mailhost serve --http 127.0.0.1:0`, with the real Graph plugin
//! sending to the emulator: an email posted to the API arrives; `Idempotency-Key` records one
//! email however often (and however concurrently) it is posted; tokens are required and
//! revocable; bad input gets the documented JSON error and records nothing; 1,000 concurrent
//! requests are all answered and all committed; `/metrics` parses with Prometheus's own
//! Python parser; `/openapi.json` passes openapi-spec-validator; schemathesis finds no 5xx
//! and no answer outside the schema; TLS from serve.toml; plain HTTP off loopback refused.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::homes::{STAFF, graph_home};
use mailhost_tests::service::Service;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn email(subject: &str) -> Value {
    json!({
        "staff": STAFF,
        "to": [seed::RECIPIENT_UPN],
        "subject": subject,
        "body": "Sent through the HTTP API",
    })
}

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(service: &Service, token: &str) -> Self {
        Self {
            base: service.base_url(),
            token: token.to_string(),
            http: client(),
        }
    }

    async fn post(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/emails", self.base))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        answer(request.send().await.unwrap()).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// Every email the API lists (up to 1000).
    async fn all_ids(&self) -> Vec<String> {
        let (status, listing) = self.get("/v1/emails?limit=1000").await;
        assert_eq!(status, 200, "{listing}");
        listing["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Polls the email until its status is `want` (60 s at most).
    async fn wait_for(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, record) = self.get(&format!("/v1/emails/{id}")).await;
            assert_eq!(status, 200, "{record}");
            if record["status"] == want {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "email {id} did not become {want}: {record:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text}"));
    (status, value)
}

/// A Graph home at the emulator, a token, and the service with its HTTP API.
fn service(emulator: &Emulator) -> (mailhost_tests::Home, Service, String) {
    let home = graph_home(emulator);
    let token = home.api_token("tests");
    let service = Service::start_http(&home);
    (home, service, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_posted_to_the_api_arrives_at_the_emulator() {
    let emulator = Emulator::start().unwrap();
    let (home, service, token) = service(&emulator);
    let api = Api::new(&service, &token);
    let (status, health) = answer(
        api.http
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));

    let pdf = b"%PDF-1.4 pretend invoice".to_vec();
    let mut body = email("Invoice 1001 through the API");
    body["cc"] = json!([seed::USER_UPN]);
    body["headers"] = json!({"X-Invoice": "1001"});
    body["attachments"] = json!([{
        "name": "invoice.pdf",
        "content_type": "application/pdf",
        "content_base64": base64::engine::general_purpose::STANDARD.encode(&pdf),
    }]);
    let (status, accepted) = api.post(&body, None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    assert!(
        ["queued", "sending", "sent"].contains(&accepted["status"].as_str().unwrap()),
        "{accepted}"
    );
    let record = api.wait_for(&id, "sent").await;
    assert_eq!(record["staff_id"], STAFF);
    assert_eq!(record["attachments"][0]["name"], "invoice.pdf");

    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    let arrived: Vec<_> = inbox
        .iter()
        .filter(|m| m.subject == "Invoice 1001 through the API")
        .collect();
    assert_eq!(arrived.len(), 1, "{inbox:#?}");
    assert_eq!(arrived[0].header("X-Invoice"), Some("1001"));
    assert_eq!(arrived[0].attachments.len(), 1);
    assert_eq!(arrived[0].attachments[0].name, "invoice.pdf");
    assert_eq!(arrived[0].attachments[0].size, pdf.len() as u64);

    // The API's record is `email show --json`'s.
    let shown = home.json(&["email", "show", &id, "--json"]);
    let (_, record) = api.get(&format!("/v1/emails/{id}")).await;
    assert_eq!(record, shown);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_records_one_email_even_when_posted_concurrently() {
    let emulator = Emulator::start().unwrap();
    let (_home, service, token) = service(&emulator);
    let api = Arc::new(Api::new(&service, &token));
    let (status, first) = api.post(&email("once"), Some("order-7")).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = api.post(&email("once"), Some("order-7")).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (status, reused) = api.post(&email("another email"), Some("order-7")).await;
    assert_eq!(status, 422, "a key reused for a different email: {reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let api = Arc::clone(&api);
            tokio::spawn(async move { api.post(&email("racing"), Some("order-8")).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "concurrent duplicates made {ids:?}");
    assert_eq!(api.all_ids().await.len(), 2, "two keys, two emails");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_required_and_a_revoked_one_stops_working() {
    let emulator = Emulator::start().unwrap();
    let (home, service, token) = service(&emulator);
    let http = client();
    let url = format!("{}/v1/emails", service.base_url());
    for auth in [None, Some("Bearer mh_not-a-token"), Some("Basic YTpi")] {
        let mut request = http.post(&url).json(&email("no"));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{auth:?}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let (_, body) = answer(response).await;
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let api = Api::new(&service, &token);
    assert!(api.all_ids().await.is_empty());
    let listing = home.json(&["api-token", "list", "--json"]);
    assert_eq!(listing["tokens"][0]["name"], "tests");
    assert!(
        !listing.to_string().contains(&token[3..]),
        "the listing shows no token"
    );
    home.ok(&["api-token", "revoke", "tests"]);
    let audit = home.read("audit.log");
    assert!(
        audit.contains("\"api-token create\"") && audit.contains("\"api-token revoke\""),
        "{audit}"
    );
    assert!(
        !audit.contains(&token[3..]),
        "the audit trail holds no token"
    );
    let (status, _) = api.get("/v1/emails").await;
    assert_eq!(status, 401, "revoked while the service runs");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_json_error_and_records_nothing() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    std::fs::write(home.path().join("serve.toml"), "[http]\nmax_body_mb = 1\n").unwrap();
    let token = home.api_token("tests");
    let service = Service::start_http(&home);
    let api = Api::new(&service, &token);
    let raw = |body: Vec<u8>| {
        api.http
            .post(format!("{}/v1/emails", api.base))
            .bearer_auth(&api.token)
            .header("Content-Type", "application/json")
            .body(body)
    };

    let (status, body) = answer(
        raw(b"{\"staff\": \"alex\", \"to\": [".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{body}"
    );
    let (status, body) = answer(
        raw(br#"{"staff": "alex", "to": "x@example.com", "html": "yes"}"#.to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "wrong types: {body}");

    let mut unknown = email("who");
    unknown["staff"] = json!("nobody");
    let (status, body) = api.post(&unknown, None).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody"),
        "{body}"
    );

    let mut crlf = email("Hi\r\nBcc: everyone@contoso.com");
    let (status, body) = api.post(&crlf, None).await;
    assert_eq!(status, 422, "CR/LF in the subject: {body}");
    crlf = email("fine");
    crlf["headers"] = json!({"X-Ref": "1\nBcc: everyone@contoso.com"});
    let (status, body) = api.post(&crlf, None).await;
    assert_eq!(status, 422, "CR/LF in a header: {body}");
    let mut bad_address = email("fine");
    bad_address["to"] = json!(["not an address"]);
    let (status, _) = api.post(&bad_address, None).await;
    assert_eq!(status, 422);

    let mut big = email("too big");
    big["body"] = json!("x".repeat(1_500_000));
    let (status, body) = answer(raw(big.to_string().into_bytes()).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );

    let (status, body) = api.get("/v1/emails/00000000-no-such-email").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );

    assert!(api.all_ids().await.is_empty(), "nothing was recorded");
    let listed = home.json(&["email", "list", "--json"]);
    assert_eq!(listed, json!([]), "nothing in mail.db");
    let (status, _) = api.post(&email("after all that"), None).await;
    assert_eq!(status, 202, "the service is fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_requests_are_all_answered_and_committed() {
    let emulator = Emulator::start().unwrap();
    let (_home, service, token) = service(&emulator);
    let api = Arc::new(Api::new(&service, &token));
    // At most 250 in flight from this client (loopback, one process).
    let slots = Arc::new(tokio::sync::Semaphore::new(250));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let api = Arc::clone(&api);
            let slots = Arc::clone(&slots);
            tokio::spawn(async move {
                let _slot = slots.acquire().await.unwrap();
                api.post(&email(&format!("crowd {i}")), None).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1000);
    let listed: HashSet<String> = api.all_ids().await.into_iter().collect();
    assert_eq!(listed, ids, "every 202 is a committed email");
}

/// Runs a Python snippet in the test venv with `packages`; returns its stdout.
fn python(packages: &[&str], script: &str, args: &[&str]) -> String {
    let python = mailhost_tests::python::venv_python(packages);
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const PARSE_METRICS: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(families))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_with_the_prometheus_parser() {
    let emulator = Emulator::start().unwrap();
    let (_home, service, token) = service(&emulator);
    let api = Api::new(&service, &token);
    let (_, accepted) = api.post(&email("metered"), None).await;
    api.wait_for(accepted["id"].as_str().unwrap(), "sent").await;
    let (status, _) = api.get("/v1/emails/zzzz-none").await;
    assert_eq!(status, 404);

    let response = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    for private in [seed::RECIPIENT_UPN, seed::USER_UPN, "metered", "zzzz"] {
        assert!(
            !text.contains(private),
            "/metrics shows {private:?}:\n{text}"
        );
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let parsed: Value = serde_json::from_str(&python(
        &["prometheus_client"],
        PARSE_METRICS,
        &[file.path().to_str().unwrap()],
    ))
    .unwrap();
    let samples = |family: &str| -> Vec<Value> {
        parsed[family]["samples"]
            .as_array()
            .unwrap_or_else(|| panic!("no family {family} in {parsed:#}"))
            .clone()
    };
    let sample = |family: &str, name: &str, labels: Value| -> f64 {
        samples(family)
            .iter()
            .find(|s| s[0] == name && s[1] == labels)
            .unwrap_or_else(|| panic!("no {name} {labels} in {:#}", parsed[family]))[2]
            .as_f64()
            .unwrap()
    };
    assert_eq!(parsed["mailhost_emails"]["type"], "gauge");
    assert_eq!(
        sample(
            "mailhost_emails",
            "mailhost_emails",
            json!({"status": "sent"})
        ),
        1.0
    );
    for counter in [
        "mailhost_sends",
        "mailhost_retries",
        "mailhost_throttles",
        "mailhost_limit_waits",
    ] {
        assert_eq!(parsed[counter]["type"], "counter", "{counter}: {parsed:#}");
    }
    assert!(
        samples("mailhost_sends")
            .iter()
            .any(|s| s[1] == json!({"outcome": "sent"}) && s[2].as_f64().unwrap() >= 1.0),
        "{parsed:#}"
    );
    assert_eq!(
        parsed["mailhost_send_duration_seconds"]["type"],
        "histogram"
    );
    assert!(
        samples("mailhost_send_duration_seconds")
            .iter()
            .any(|s| s[0] == "mailhost_send_duration_seconds_count"
                && s[1]["provider"] == "graph-email"
                && s[2].as_f64().unwrap() >= 1.0),
        "{parsed:#}"
    );
    assert_eq!(
        sample(
            "mailhost_http_requests",
            "mailhost_http_requests_total",
            json!({"route": "/v1/emails", "method": "POST", "code": "202"})
        ),
        1.0
    );
    assert_eq!(
        sample(
            "mailhost_http_requests",
            "mailhost_http_requests_total",
            json!({"route": "/v1/emails/{id}", "method": "GET", "code": "404"})
        ),
        1.0
    );
}

const VALIDATE_OPENAPI: &str = r#"
import json, sys
from openapi_spec_validator import validate
document = json.load(open(sys.argv[1]))
validate(document)
print(document["openapi"])
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_and_schemathesis_finds_no_fault() {
    let emulator = Emulator::start().unwrap();
    let (_home, service, token) = service(&emulator);
    let api = Api::new(&service, &token);
    let text = api
        .http
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    for path in [
        "/v1/emails",
        "/v1/emails/{id}",
        "/v1/emails/{id}/retry",
        "/healthz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not described"
        );
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let version = python(
        &["openapi-spec-validator"],
        VALIDATE_OPENAPI,
        &[file.path().to_str().unwrap()],
    );
    assert!(version.starts_with("3."), "{version}");
    // Some real emails for the GET operations to find.
    for i in 0..3 {
        api.post(&email(&format!("for schemathesis {i}")), None)
            .await;
    }

    let python = mailhost_tests::python::venv_python(&["schemathesis"]);
    let schemathesis = python.with_file_name("schemathesis");
    let report = tempfile::tempdir().unwrap();
    let output = Command::new(&schemathesis)
        .args(["run", &format!("{}/openapi.json", api.base)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        .args(["--max-examples", "25", "--max-time", "90"])
        .args(["--generation-database", "none", "--no-color"])
        .current_dir(report.path())
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found faults:\n{stdout}\n{}\n--- service stderr\n{}",
        String::from_utf8_lossy(&output.stderr),
        service.stderr()
    );
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(
        !service.stderr().contains("panicked"),
        "{}",
        service.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_from_serve_toml_and_no_plain_http_off_loopback() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = home.path().join("api.pem");
    let key_path = home.path().join("api.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        home.path().join("serve.toml"),
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
    )
    .unwrap();
    let token = home.api_token("tests");
    let service = Service::start_http(&home);
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let addr = service.http.unwrap();
    let response = https
        .post(format!("https://localhost:{}/v1/emails", addr.port()))
        .bearer_auth(&token)
        .json(&email("over TLS"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    // The page signed in to over TLS keeps its session cookie off plain http.
    let page = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let signed_in = page
        .post(format!("https://localhost:{}/signin", addr.port()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.starts_with("mailhost_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    let plain = client().get(format!("http://{addr}/healthz")).send().await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP on the TLS port"
    );
    drop(service);

    std::fs::write(
        home.path().join("serve.toml"),
        "[http]\nlisten = \"0.0.0.0:0\"\n",
    )
    .unwrap();
    let refused = Service::try_start(&home, &[]).unwrap_err();
    assert!(
        refused.contains("serve.toml:2")
            && refused.contains("tls_cert")
            && refused.contains("allow_plain_http"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_api_and_the_engine_cleanly_with_nothing_lost() {
    let emulator = Emulator::start().unwrap();
    let (home, mut service, token) = service(&emulator);
    let api = Api::new(&service, &token);
    let (status, accepted) = api.post(&email("before SIGTERM"), None).await;
    assert_eq!(status, 202, "{accepted}");
    let base = api.base.clone();
    let exit = tokio::task::spawn_blocking(move || service.stop(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "serve exited with {exit:?}");
    assert!(
        client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "no longer listening"
    );
    let listed = home.json(&["email", "list", "--json"]);
    assert_eq!(listed[0]["id"], accepted["id"], "{listed:#}");
}
