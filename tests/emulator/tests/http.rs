//! HTTP-level tests: status codes, headers and bodies as a client sees them (reqwest).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use mailhost_emulator::{Config, Emulator, seed};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha2::Digest as _;

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn start() -> Emulator {
    Emulator::start_with(Config {
        device_code_interval_secs: 1,
        ..Config::default()
    })
    .unwrap()
}

async fn token_request(emu: &Emulator, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn ropc(
    emu: &Emulator,
    client_id: &str,
    user: &str,
    password: &str,
    scope: &str,
) -> (StatusCode, Value) {
    token_request(
        emu,
        seed::TENANT_DOMAIN,
        &[
            ("grant_type", "password"),
            ("client_id", client_id),
            ("username", user),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await
}

async fn alex_token(emu: &Emulator) -> String {
    let (status, body) = ropc(
        emu,
        seed::MAILHOST_CLIENT_ID,
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Send offline_access",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn daemon_token(emu: &Emulator, id: &str, secret: &str) -> String {
    let (status, body) = token_request(
        emu,
        seed::TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    body["access_token"].as_str().unwrap().to_string()
}

fn mail(to: &str) -> Value {
    json!({"message": {"subject": "Hello", "body": {"contentType": "Text", "content": "Hi"},
        "toRecipients": [{"emailAddress": {"address": to}}]}})
}

async fn send(
    emu: &Emulator,
    token: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = client()
        .post(format!("{}{path}", emu.base_url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

/// Creates a draft to the recipient and an upload session for `item` on it; returns the draft's
/// ID and the session's upload URL.
async fn draft_with_upload_session(emu: &Emulator, token: &str, item: &Value) -> (String, String) {
    let (_, _, b) = send(
        emu,
        token,
        "/v1.0/me/messages",
        &mail(seed::RECIPIENT_UPN)["message"],
    )
    .await;
    let id = serde_json::from_str::<Value>(&b).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, b) = send(
        emu,
        token,
        &format!("/v1.0/me/messages/{id}/attachments/createUploadSession"),
        item,
    )
    .await;
    let url = serde_json::from_str::<Value>(&b).unwrap()["uploadUrl"]
        .as_str()
        .unwrap()
        .to_string();
    (id, url)
}

fn code(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .map(|v| v["error"]["code"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn token_endpoint_errors_are_shaped_as_entra_answers_them() {
    let emu = start();
    let (s, b) = ropc(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        seed::USER_UPN,
        "nope",
        "Mail.Send",
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str(), b["error_codes"][0].as_u64()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some(50126))
    );
    for key in [
        "error_description",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    ] {
        assert!(b[key].is_string(), "{key} missing in {b}");
    }
    let (s, b) = ropc(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        seed::MFA_USER_UPN,
        seed::MFA_USER_PASSWORD,
        "Mail.Send",
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str(), b["error_codes"][0].as_u64()),
        (
            StatusCode::BAD_REQUEST,
            Some("interaction_required"),
            Some(50076)
        )
    );
    assert!(b["claims"].is_string());
    let (s, b) = ropc(
        &emu,
        seed::NO_PUBLIC_CLIENT_ID,
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Send",
    )
    .await;
    assert_eq!(
        (s, b["error_codes"][0].as_u64()),
        (StatusCode::UNAUTHORIZED, Some(7_000_218))
    );
    let (s, b) = ropc(
        &emu,
        seed::NO_CONSENT_CLIENT_ID,
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Send",
    )
    .await;
    assert_eq!(
        (s, b["error_codes"][0].as_u64(), b["suberror"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some(65001),
            Some("consent_required")
        )
    );
    let (_, b) = ropc(
        &emu,
        "00000000-1111-2222-3333-444444444444",
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Send",
    )
    .await;
    assert_eq!(b["error_codes"][0].as_u64(), Some(700_016));
    let (_, b) = ropc(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        "nobody@contoso.onmicrosoft.com",
        "x",
        "Mail.Send",
    )
    .await;
    assert_eq!(b["error_codes"][0].as_u64(), Some(50034));
    let (_, b) = ropc(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Sendd",
    )
    .await;
    assert_eq!(
        (b["error"].as_str(), b["error_codes"][0].as_u64()),
        (Some("invalid_scope"), Some(70011))
    );
    let form = [
        ("grant_type", "password"),
        ("client_id", seed::MAILHOST_CLIENT_ID),
        ("username", seed::USER_UPN),
        ("password", seed::USER_PASSWORD),
        ("scope", "Mail.Send"),
    ];
    let (_, b) = token_request(&emu, "common", &form).await;
    assert_eq!(
        (b["error"].as_str(), b["error_codes"][0].as_u64()),
        (Some("invalid_request"), Some(9_001_023))
    );
    let (_, b) = token_request(&emu, "fabrikam.onmicrosoft.com", &form).await;
    assert_eq!(b["error_codes"][0].as_u64(), Some(90002));
    let mut with_secret = form.to_vec();
    with_secret.push(("client_secret", "x"));
    let (s, b) = token_request(&emu, seed::TENANT_ID, &with_secret).await;
    assert_eq!(
        (s, b["error_codes"][0].as_u64()),
        (StatusCode::UNAUTHORIZED, Some(700_025))
    );
    let (s, b) = token_request(
        &emu,
        seed::TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", seed::DAEMON_CLIENT_ID),
            ("client_secret", "bad"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error_codes"][0].as_u64()),
        (StatusCode::UNAUTHORIZED, Some(7_000_215))
    );
    let (_, b) = token_request(
        &emu,
        seed::TENANT_ID,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", seed::DAEMON_CLIENT_ID),
            ("client_secret", seed::DAEMON_CLIENT_SECRET),
            ("scope", "https://graph.microsoft.com/Mail.Send"),
        ],
    )
    .await;
    assert_eq!(b["error_codes"][0].as_u64(), Some(70011));
    // HTTP Basic client authentication.
    let r = client()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            seed::TENANT_ID
        ))
        .basic_auth(seed::DAEMON_CLIENT_ID, Some(seed::DAEMON_CLIENT_SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_die_as_documented() {
    let emu = start();
    let (_, b) = ropc(
        &emu,
        seed::MAILHOST_CLIENT_ID,
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Send offline_access openid",
    )
    .await;
    let rt1 = b["refresh_token"].as_str().unwrap().to_string();
    assert!(b["id_token"].as_str().unwrap().split('.').count() == 3);
    let refresh = |rt: String| {
        let emu = &emu;
        async move {
            token_request(
                emu,
                seed::TENANT_ID,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", seed::MAILHOST_CLIENT_ID),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let (s, b) = refresh(rt1.clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let rt2 = b["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "a new refresh token each time");
    emu.require_mfa_on_refresh(seed::USER_UPN);
    assert_eq!(
        refresh(rt2.clone()).await.1["error"],
        "interaction_required"
    );
    emu.expire_refresh_tokens(seed::USER_UPN);
    assert_eq!(refresh(rt2.clone()).await.1["error_codes"][0], 700_082);
    emu.revoke_refresh_tokens(seed::USER_UPN);
    let (s, b) = refresh(rt2).await;
    assert_eq!(
        (s, b["error"].as_str(), b["error_codes"][0].as_u64()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"), Some(50173))
    );
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let emu = start();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
    emu.approve_sign_in(seed::MFA_USER_UPN).unwrap();
    let r = client()
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize",
            emu.base_url(),
            seed::TENANT_ID
        ))
        .query(&[
            ("client_id", seed::MAILHOST_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://localhost:8400"),
            ("scope", "Mail.Send offline_access openid"),
            ("state", "st4te"),
            ("login_hint", seed::MFA_USER_UPN),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("nonce", "n1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.port(), Some(8400));
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "st4te");
    let code = pairs["code"].clone();
    let redeem = |verifier: &'static str| {
        let (emu, code) = (&emu, code.clone());
        async move {
            token_request(
                emu,
                seed::TENANT_ID,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", seed::MAILHOST_CLIENT_ID),
                    ("code", &code),
                    ("redirect_uri", "http://localhost:8400"),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    assert_eq!(
        redeem("wrong-verifier-wrong-verifier-wrong-verifier")
            .await
            .1["error_codes"][0],
        501_481
    );
    let (s, b) = redeem(verifier).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let claims = b["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            claims["preferred_username"].as_str(),
            claims["nonce"].as_str()
        ),
        (Some(seed::MFA_USER_UPN), Some("n1"))
    );
    assert_eq!(redeem(verifier).await.1["error_codes"][0], 54005);
    // Without an approval, a login form is shown (200 HTML); prompt=none → login_required.
    let r = client()
        .get(format!(
            "{}/{}/oauth2/v2.0/authorize",
            emu.base_url(),
            seed::TENANT_ID
        ))
        .query(&[
            ("client_id", seed::MAILHOST_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", seed::NATIVE_CLIENT_REDIRECT_URI),
            ("scope", "Mail.Send"),
            ("prompt", "none"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=login_required")
    );
}

#[tokio::test]
async fn device_code_flow_states() {
    let emu = start();
    let r = client()
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            emu.base_url()
        ))
        .form(&[
            ("client_id", seed::MAILHOST_CLIENT_ID),
            ("scope", "Mail.Send offline_access"),
        ])
        .send()
        .await
        .unwrap();
    let flow: Value = r.json().await.unwrap();
    for key in [
        "device_code",
        "user_code",
        "verification_uri",
        "expires_in",
        "interval",
        "message",
    ] {
        assert!(!flow[key].is_null(), "{key} in {flow}");
    }
    assert!(flow.get("verification_uri_complete").is_none());
    let device_code = flow["device_code"].as_str().unwrap().to_string();
    let poll = || {
        let (emu, dc) = (&emu, device_code.clone());
        async move {
            token_request(
                emu,
                "organizations",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("client_id", seed::MAILHOST_CLIENT_ID),
                    ("device_code", &dc),
                ],
            )
            .await
        }
    };
    assert_eq!(poll().await.1["error"], "authorization_pending");
    assert_eq!(poll().await.1["error"], "slow_down");
    let pending = emu.pending_device_codes();
    assert_eq!(pending.len(), 1);
    // Approve through the HTTP admin API.
    let r = client()
        .post(format!(
            "{}/_emulator/device-codes/{}/approve",
            emu.base_url(),
            pending[0].user_code
        ))
        .json(&json!({"upn": seed::MFA_USER_UPN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = poll().await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["refresh_token"].is_string());
    assert_eq!(poll().await.1["error"], "bad_verification_code");
}

#[tokio::test]
async fn send_mail_success_headers_and_delivery() {
    let emu = start();
    let token = alex_token(&emu).await;
    let body = json!({"message": {"subject": "All", "body": {"contentType": "HTML", "content": "<p>x</p>"},
        "toRecipients": [{"emailAddress": {"address": seed::RECIPIENT_UPN}}],
        "ccRecipients": [{"emailAddress": {"address": seed::EXTERNAL_RECIPIENT}}],
        "bccRecipients": [{"emailAddress": {"address": seed::SHARED_MAILBOX}}],
        "replyTo": [{"emailAddress": {"address": seed::ON_BEHALF_MAILBOX}}],
        "internetMessageHeaders": [{"name": "x-mailhost-id", "value": "42"}]}});
    let r = client()
        .post(format!("{}/v1.0/me/sendMail", emu.base_url()))
        .bearer_auth(&token)
        .header("client-request-id", "11111111-2222-3333-4444-555555555555")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.headers()["client-request-id"],
        "11111111-2222-3333-4444-555555555555"
    );
    assert!(r.headers().contains_key("request-id") && r.headers().contains_key("date"));
    assert_eq!(r.text().await.unwrap(), "");
    let inbox = emu.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].bcc_recipients.is_empty());
    assert_eq!(inbox[0].header("X-Mailhost-Id"), Some("42"));
    assert_eq!(inbox[0].body.content_type, "html");
    assert_eq!(
        emu.inbox(seed::SHARED_MAILBOX).len(),
        1,
        "Bcc recipients receive it"
    );
    assert_eq!(emu.external().len(), 1);
    assert_eq!(emu.sent_items(seed::USER_UPN)[0].bcc_recipients.len(), 1);
    // saveToSentItems false.
    let mut no_save = mail(seed::RECIPIENT_UPN);
    no_save["saveToSentItems"] = json!(false);
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &no_save).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(emu.sent_items(seed::USER_UPN).len(), 1);
    // MIME mode.
    let mime = format!(
        "From: {}\r\nTo: {}\r\nSubject: mime\r\nX-A: 1\r\n\r\nbody\r\n",
        seed::USER_UPN,
        seed::RECIPIENT_UPN
    );
    let r = client()
        .post(format!("{}/v1.0/me/sendMail", emu.base_url()))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(base64::engine::general_purpose::STANDARD.encode(mime))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let last = emu.inbox(seed::RECIPIENT_UPN).pop().unwrap();
    assert!(last.mime && last.subject == "mime");
    let r = client()
        .post(format!("{}/v1.0/me/sendMail", emu.base_url()))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("***not base64***")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(&r.text().await.unwrap()),
        "ErrorMimeContentInvalidBase64String"
    );
    assert_eq!(emu.counters().send_mail, 4);
}

#[tokio::test]
async fn send_mail_validation_and_permissions() {
    let emu = start();
    let token = alex_token(&emu).await;
    let (s, h, b) = send(&emu, "", "/v1.0/me/sendMail", &mail(seed::RECIPIENT_UPN)).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken")
    );
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("authorization_uri=")
    );
    let (s, _, b) = send(
        &emu,
        "garbage",
        "/v1.0/me/sendMail",
        &mail(seed::RECIPIENT_UPN),
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken")
    );
    let bad =
        json!({"message": {"toRecipients": [{"emailAddress": {"address": "a@x.com;b@x.com"}}]}});
    let (s, _, b) = send(&emu, &token, "/v1.0/me/sendMail", &bad).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "ErrorInvalidRecipients")
    );
    let headers: Vec<Value> = (0..6)
        .map(|i| json!({"name": format!("x-{i}"), "value": "v"}))
        .collect();
    let mut six = mail(seed::RECIPIENT_UPN);
    six["message"]["internetMessageHeaders"] = json!(headers);
    let (s, _, b) = send(&emu, &token, "/v1.0/me/sendMail", &six).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (
            StatusCode::BAD_REQUEST,
            "InvalidInternetMessageHeaderCollection"
        )
    );
    let mut big = mail(seed::RECIPIENT_UPN);
    big["message"]["body"]["content"] = json!("x".repeat(4 * 1024 * 1024 + 1));
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &big).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Alternate From.
    let mut send_as = mail(seed::RECIPIENT_UPN);
    send_as["message"]["from"] = json!({"emailAddress": {"address": seed::SHARED_MAILBOX}});
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &send_as).await.0,
        StatusCode::ACCEPTED
    );
    let m = emu.inbox(seed::RECIPIENT_UPN).pop().unwrap();
    assert_eq!(
        (m.from_address().as_deref(), m.is_on_behalf()),
        (Some(seed::SHARED_MAILBOX), false)
    );
    let mut behalf = mail(seed::RECIPIENT_UPN);
    behalf["message"]["from"] = json!({"emailAddress": {"address": seed::ON_BEHALF_MAILBOX}});
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &behalf).await.0,
        StatusCode::ACCEPTED
    );
    let m = emu.inbox(seed::RECIPIENT_UPN).pop().unwrap();
    assert_eq!(
        (m.sender_address().as_deref(), m.is_on_behalf()),
        (Some(seed::USER_UPN), true)
    );
    let mut denied = mail(seed::RECIPIENT_UPN);
    denied["message"]["from"] = json!({"emailAddress": {"address": seed::NO_RIGHTS_MAILBOX}});
    let (s, _, b) = send(&emu, &token, "/v1.0/me/sendMail", &denied).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::FORBIDDEN, "ErrorSendAsDenied")
    );
    // /users/{shared}/sendMail (Full Access + Send As) saves to the shared mailbox's Sent Items.
    let path = format!("/v1.0/users/{}/sendMail", seed::SHARED_MAILBOX);
    assert_eq!(
        send(&emu, &token, &path, &mail(seed::RECIPIENT_UPN))
            .await
            .0,
        StatusCode::ACCEPTED
    );
    assert_eq!(emu.sent_items(seed::SHARED_MAILBOX).len(), 1);
    let path = format!("/v1.0/users/{}/sendMail", seed::ON_BEHALF_MAILBOX);
    assert_eq!(
        code(
            &send(&emu, &token, &path, &mail(seed::RECIPIENT_UPN))
                .await
                .2
        ),
        "ErrorAccessDenied"
    );
    // A token without Mail.Send.
    let (_, b) = ropc(
        &emu,
        seed::READ_ONLY_CLIENT_ID,
        seed::USER_UPN,
        seed::USER_PASSWORD,
        "Mail.Read",
    )
    .await;
    let reader = b["access_token"].as_str().unwrap();
    let (s, _, b) = send(
        &emu,
        reader,
        "/v1.0/me/sendMail",
        &mail(seed::RECIPIENT_UPN),
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::FORBIDDEN, "ErrorAccessDenied")
    );
    // App-only.
    let app = daemon_token(&emu, seed::DAEMON_CLIENT_ID, seed::DAEMON_CLIENT_SECRET).await;
    assert_eq!(
        send(&emu, &app, "/v1.0/me/sendMail", &mail(seed::RECIPIENT_UPN))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let path = format!("/v1.0/users/{}/sendMail", seed::USER_ID);
    assert_eq!(
        send(&emu, &app, &path, &mail(seed::RECIPIENT_UPN)).await.0,
        StatusCode::ACCEPTED
    );
    let norole = daemon_token(
        &emu,
        seed::NO_ROLE_DAEMON_CLIENT_ID,
        seed::NO_ROLE_DAEMON_CLIENT_SECRET,
    )
    .await;
    assert_eq!(
        code(
            &send(&emu, &norole, &path, &mail(seed::RECIPIENT_UPN))
                .await
                .2
        ),
        "NoPermissionsInAccessToken"
    );
    // Expired tokens.
    emu.set_access_token_lifetime(0);
    let expired = alex_token(&emu).await;
    let (s, _, b) = send(
        &emu,
        &expired,
        "/v1.0/me/sendMail",
        &mail(seed::RECIPIENT_UPN),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(b.contains("expired"));
}

#[tokio::test]
async fn large_attachment_through_an_upload_session() {
    let emu = start();
    let token = alex_token(&emu).await;
    let (s, _, b) = send(
        &emu,
        &token,
        "/v1.0/me/messages",
        &mail(seed::RECIPIENT_UPN)["message"],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = serde_json::from_str::<Value>(&b).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let session_path = format!("/v1.0/me/messages/{id}/attachments/createUploadSession");
    let small =
        json!({"AttachmentItem": {"attachmentType": "file", "name": "s.bin", "size": 1000}});
    let (_, _, b) = send(&emu, &token, &session_path, &small).await;
    assert_eq!(
        code(&b),
        "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
    );
    let size: usize = 5 * 1024 * 1024 + 123;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let item = json!({"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": size, "contentType": "application/octet-stream"}});
    let (s, _, b) = send(&emu, &token, &session_path, &item).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let session: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(session["nextExpectedRanges"], json!(["0-"]));
    let url = session["uploadUrl"].as_str().unwrap().to_string();
    assert!(url.starts_with(emu.base_url()));
    let put = |start: usize, end: usize, auth: bool| {
        let (url, chunk) = (url.clone(), data[start..=end].to_vec());
        async move {
            let mut r = client()
                .put(url)
                .header("content-range", format!("bytes {start}-{end}/{size}"))
                .header("content-type", "application/octet-stream")
                .body(chunk);
            if auth {
                r = r.bearer_auth("x");
            }
            r.send().await.unwrap()
        }
    };
    let chunk = 4 * 1024 * 1024;
    assert_eq!(
        put(0, chunk - 1, true).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        put(chunk, size - 1, false).await.status(),
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    let r = put(0, chunk - 1, false).await;
    assert_eq!(r.status(), StatusCode::OK);
    let progress: Value = r.json().await.unwrap();
    assert_eq!(progress["nextExpectedRanges"], json!([chunk.to_string()]));
    let r = put(chunk, size - 1, false).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/Attachments('")
    );
    let r = client()
        .post(format!("{}/v1.0/me/messages/{id}/send", emu.base_url()))
        .bearer_auth(&token)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let m = emu.inbox(seed::RECIPIENT_UPN).pop().unwrap();
    assert_eq!(m.attachments[0].size, size as u64);
    assert_eq!(
        m.attachments[0].sha256,
        hex::encode(sha2::Sha256::digest(&data))
    );
    assert!(emu.drafts(seed::USER_UPN).is_empty());
    assert_eq!(emu.sent_items(seed::USER_UPN).len(), 1);
    assert_eq!(emu.counters().upload_puts, 4);
    // Cancel: DELETE → 204.
    let (_, url) = draft_with_upload_session(&emu, &token, &item).await;
    assert_eq!(
        client().delete(&url).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    // The message-size limit counts attachments base64-inflated.
    emu.set_max_message_size(6 * 1024 * 1024);
    let (id, url) = draft_with_upload_session(&emu, &token, &item).await;
    for (start, end) in [(0, chunk - 1), (chunk, size - 1)] {
        let r = client()
            .put(&url)
            .header("content-range", format!("bytes {start}-{end}/{size}"))
            .body(data[start..=end].to_vec())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let r = client()
        .post(format!("{}/v1.0/me/messages/{id}/send", emu.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&r.text().await.unwrap()), "ErrorMessageSizeExceeded");
}

#[tokio::test]
async fn concurrency_limit_and_injected_faults() {
    let emu = start();
    let token = alex_token(&emu).await;
    emu.set_latency(400);
    let body = mail(seed::RECIPIENT_UPN);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (url, token, body) = (
            format!("{}/v1.0/me/sendMail", emu.base_url()),
            token.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }));
    }
    let mut throttled = 0;
    for task in tasks {
        let r = task.await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
            assert!(r.headers().contains_key("retry-after"));
            let body = r.text().await.unwrap();
            assert_eq!(code(&body), "ApplicationThrottled");
            assert!(body.contains("Application is over its MailboxConcurrency limit."));
        } else {
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
    }
    assert_eq!(throttled, 2, "4 concurrent requests per app and mailbox");
    assert_eq!(emu.counters().max_concurrent_per_mailbox[seed::USER_UPN], 4);
    emu.set_latency(0);
    // Injected 429 for the next 2 Graph requests only.
    let r = client()
        .post(format!("{}/_emulator/faults/throttle", emu.base_url()))
        .json(&json!({"count": 2, "retry_after_secs": 7, "path_prefix": "/v1.0/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for _ in 0..2 {
        let (s, h, b) = send(&emu, &token, "/v1.0/me/sendMail", &body).await;
        assert_eq!(
            (s, h["retry-after"].to_str().unwrap()),
            (StatusCode::TOO_MANY_REQUESTS, "7")
        );
        assert_eq!(code(&b), "TooManyRequests");
    }
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &body).await.0,
        StatusCode::ACCEPTED
    );
    emu.fault_unavailable(1, 503, Some(2), None).unwrap();
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &body).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        send(&emu, &token, "/v1.0/me/sendMail", &body).await.0,
        StatusCode::ACCEPTED
    );
    let counters: Value = client()
        .get(format!("{}/_emulator/counters", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["throttled"], 4);
}

#[test]
fn binary_prints_one_line_and_exits_when_stdin_closes() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let tls = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailhost-emulator"))
        .args(["--port", "0", "--exit-on-stdin-eof", "--tls-dir"])
        .arg(tls.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("mailhost-emulator listening on https://127.0.0.1:"),
        "{line}"
    );
    assert!(tls.path().join("ca.pem").exists());
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn refuses_non_loopback() {
    let err = Emulator::start_on("0.0.0.0".parse().unwrap(), Config::default()).unwrap_err();
    assert!(err.to_string().contains("loopback"));
}
