//! Client assertions at the token endpoint, signed here with the fixture key (ring): what the
//! emulator accepts and each refusal with its AADSTS code (GRAPH.md §7).

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailhost_emulator::{Emulator, seed};
use ring::signature::{self, RsaKeyPair};
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key(file: &str) -> RsaKeyPair {
    let text = std::fs::read_to_string(seed::certificate_fixture(file)).unwrap();
    let block = pem::parse_many(text)
        .unwrap()
        .into_iter()
        .find(|b| b.tag() == "PRIVATE KEY")
        .unwrap();
    RsaKeyPair::from_pkcs8(block.contents()).unwrap()
}

fn cert_der(file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(seed::certificate_fixture(file)).unwrap();
    pem::parse_many(text)
        .unwrap()
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .unwrap()
        .into_contents()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(key: &RsaKeyPair, header: &Value, claims: &Value, pss: bool) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    let encoding: &'static dyn signature::RsaEncoding = if pss {
        &signature::RSA_PSS_SHA256
    } else {
        &signature::RSA_PKCS1_SHA256
    };
    key.sign(
        encoding,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn header_s256(der: &[u8]) -> Value {
    json!({"alg": "PS256", "typ": "JWT",
           "x5t#S256": URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))})
}

fn claims(emu: &Emulator, tenant: &str, offset: i64) -> Value {
    let t = now() + offset;
    json!({"aud": format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url()),
           "iss": seed::CERT_DAEMON_CLIENT_ID, "sub": seed::CERT_DAEMON_CLIENT_ID,
           "jti": uuid::Uuid::new_v4().to_string(), "nbf": t, "iat": t, "exp": t + 600})
}

async fn redeem(emu: &Emulator, assertion: &str) -> (u16, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            seed::TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", seed::CERT_DAEMON_CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_signed_assertion_is_accepted_once_when_replays_are_refused() {
    let emu = Emulator::start().unwrap();
    emu.set_reject_replayed_assertions(true);
    let (key, der) = (key("app.pem"), cert_der("app.pem"));
    let assertion = sign(
        &key,
        &header_s256(&der),
        &claims(&emu, seed::TENANT_ID, 0),
        true,
    );
    let (status, body) = redeem(&emu, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some(), "{body}");
    let (status, body) = redeem(&emu, &assertion).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"][0], 700_027, "a replayed jti: {body}");
    // As the service does by default, a still-valid assertion may be presented again.
    emu.set_reject_replayed_assertions(false);
    let (status, body) = redeem(&emu, &assertion).await;
    assert_eq!(status, 200, "{body}");

    // RS256 with the SHA-1 x5t, and the domain as the audience's tenant, also work.
    let header = json!({"alg": "RS256", "typ": "JWT",
        "x5t": URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der))});
    let assertion = sign(&key, &header, &claims(&emu, seed::TENANT_DOMAIN, 0), false);
    let (status, body) = redeem(&emu, &assertion).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn bad_assertions_get_microsofts_codes() {
    let emu = Emulator::start().unwrap();
    let (key, der) = (key("app.pem"), cert_der("app.pem"));
    let good = claims(&emu, seed::TENANT_ID, 0);
    let mut cases: Vec<(&str, String, u64)> = Vec::new();
    // Signed with a key whose certificate is not registered.
    let other = key_and_cert("unregistered.pem");
    cases.push((
        "unregistered",
        sign(&other.0, &header_s256(&other.1), &good, true),
        700_027,
    ));
    // The right thumbprint, the wrong key: the signature fails.
    cases.push((
        "wrong key",
        sign(&other.0, &header_s256(&der), &good, true),
        700_027,
    ));
    // Audience of another tenant.
    cases.push((
        "audience",
        sign(&key, &header_s256(&der), &claims(&emu, "common", 0), true),
        700_023,
    ));
    // The clock 20 minutes behind: expired.
    cases.push((
        "clock",
        sign(
            &key,
            &header_s256(&der),
            &claims(&emu, seed::TENANT_ID, -1200),
            true,
        ),
        700_024,
    ));
    // iss/sub of another app.
    let mut foreign = claims(&emu, seed::TENANT_ID, 0);
    foreign["iss"] = json!(seed::DAEMON_CLIENT_ID);
    cases.push((
        "issuer",
        sign(&key, &header_s256(&der), &foreign, true),
        700_021,
    ));
    cases.push(("malformed", "not.a-jwt".into(), 50_027));
    for (name, assertion, code) in cases {
        let (status, body) = redeem(&emu, &assertion).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"], "invalid_client", "{name}: {body}");
        assert_eq!(body["error_codes"][0], code, "{name}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}: ")),
            "{name}: {body}"
        );
    }
    assert!(emu.counters().token_requests.client_credentials >= 6);
}

#[tokio::test]
async fn certificates_can_be_uploaded_and_removed() {
    let emu = Emulator::start().unwrap();
    let (key, der) = key_and_cert("unregistered.pem");
    let pem = std::fs::read_to_string(seed::certificate_fixture("other-cert.pem")).unwrap();
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "{}/_emulator/apps/{}/certificates",
            emu.base_url(),
            seed::CERT_DAEMON_CLIENT_ID
        ))
        .json(&json!({"certificate": pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let assertion = sign(
        &key,
        &header_s256(&der),
        &claims(&emu, seed::TENANT_ID, 0),
        true,
    );
    assert_eq!(redeem(&emu, &assertion).await.0, 200);
    assert_eq!(
        emu.remove_app_certificates(seed::CERT_DAEMON_CLIENT_ID)
            .unwrap(),
        2
    );
    let assertion = sign(
        &key,
        &header_s256(&der),
        &claims(&emu, seed::TENANT_ID, 0),
        true,
    );
    assert_eq!(redeem(&emu, &assertion).await.0, 401);
    assert!(
        emu.add_app_certificate(seed::CERT_DAEMON_CLIENT_ID, "junk")
            .is_err()
    );
}

fn key_and_cert(file: &str) -> (RsaKeyPair, Vec<u8>) {
    (key(file), cert_der(file))
}
