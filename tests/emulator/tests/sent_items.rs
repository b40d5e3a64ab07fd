//! Finding sent mail again: extended properties kept on the sender's copy, the Sent Items
//! `$filter` forms of GRAPH.md §7 with `$select`, the Mail.Read check, a delayed Sent Items
//! copy, and the deliver-then-fault faults.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use mailhost_emulator::{Emulator, seed};
use reqwest::Client;
use serde_json::{Value, json};

const PROPERTY: &str = "String {8b0c5c1e-4f3a-4d7e-9a26-6d1f0e2b7c53} Name MailhostId";

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

async fn get_token(emu: &Emulator, client_id: &str, secret: Option<&str>) -> String {
    let mut form = vec![("client_id", client_id.to_string())];
    match secret {
        Some(secret) => {
            form.push(("grant_type", "client_credentials".into()));
            form.push(("client_secret", secret.into()));
            form.push(("scope", "https://graph.microsoft.com/.default".into()));
        }
        None => {
            form.push(("grant_type", "password".into()));
            form.push(("username", seed::USER_UPN.into()));
            form.push(("password", seed::USER_PASSWORD.into()));
            form.push((
                "scope",
                "https://graph.microsoft.com/Mail.Send offline_access".into(),
            ));
        }
    }
    let body: Value = client()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            emu.base_url(),
            seed::TENANT_ID
        ))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn send(emu: &Emulator, token: &str, id: &str) -> u16 {
    let body = json!({"message": {
        "subject": format!("mail {id}"),
        "body": {"contentType": "Text", "content": "x"},
        "toRecipients": [{"emailAddress": {"address": seed::RECIPIENT_UPN}}],
        "singleValueExtendedProperties": [{"id": PROPERTY, "value": id}],
    }});
    client()
        .post(format!("{}/v1.0/me/sendMail", emu.base_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn find(emu: &Emulator, token: &str, mailbox: &str, filter: &str) -> (u16, Value) {
    let response = client()
        .get(format!(
            "{}/v1.0/{mailbox}/mailFolders/SentItems/messages",
            emu.base_url()
        ))
        .query(&[
            ("$filter", filter),
            ("$select", "id,internetMessageId,sentDateTime"),
        ])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn by_property(id: &str) -> String {
    format!("singleValueExtendedProperties/Any(ep: ep/id eq '{PROPERTY}' and ep/value eq '{id}')")
}

#[tokio::test]
async fn sent_items_are_found_by_property_or_message_id() {
    let emu = Emulator::start().unwrap();
    let token = get_token(&emu, seed::MAILHOST_CLIENT_ID, None).await;
    assert_eq!(send(&emu, &token, "email-1").await, 202);
    assert_eq!(send(&emu, &token, "email-2").await, 202);
    let (status, body) = find(&emu, &token, "me", &by_property("email-2")).await;
    assert_eq!(status, 200, "{body}");
    let value = body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "{body}");
    let item = value[0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["id", "internetMessageId", "sentDateTime"],
        "$select: {body}"
    );
    let message_id = item["internetMessageId"].as_str().unwrap().to_string();
    let sent = emu.sent_items(seed::USER_UPN);
    assert_eq!(sent[1].extended_property(PROPERTY), Some("email-2"));
    assert_eq!(sent[1].internet_message_id, message_id);
    assert!(
        emu.inbox(seed::RECIPIENT_UPN)[0]
            .single_value_extended_properties
            .is_empty()
    );

    let (status, body) = find(
        &emu,
        &token,
        "me",
        &format!("internetMessageId eq '{message_id}'"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    let (_, body) = find(&emu, &token, "me", &by_property("email-3")).await;
    assert!(body["value"].as_array().unwrap().is_empty(), "{body}");
    // The app-only daemon (Mail.ReadWrite role) reads Alex's Sent Items too.
    let daemon = get_token(
        &emu,
        seed::DAEMON_CLIENT_ID,
        Some(seed::DAEMON_CLIENT_SECRET),
    )
    .await;
    let (status, body) = find(
        &emu,
        &daemon,
        &format!("users/{}", seed::USER_UPN),
        &by_property("email-1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn filters_and_permissions_are_checked() {
    let emu = Emulator::start().unwrap();
    let token = get_token(&emu, seed::MAILHOST_CLIENT_ID, None).await;
    let (status, body) = find(&emu, &token, "me", "subject eq 'x'").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid filter")
    );
    let (status, body) = find(&emu, &token, "me", &format!("{}x", by_property("a"))).await;
    assert_eq!(status, 400, "{body}");
    let norole = get_token(
        &emu,
        seed::NO_ROLE_DAEMON_CLIENT_ID,
        Some(seed::NO_ROLE_DAEMON_CLIENT_SECRET),
    )
    .await;
    let (status, body) = find(
        &emu,
        &norole,
        &format!("users/{}", seed::USER_UPN),
        &by_property("a"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // A malformed extended property id is refused like Graph refuses it.
    let body = json!({"message": {
        "toRecipients": [{"emailAddress": {"address": seed::RECIPIENT_UPN}}],
        "singleValueExtendedProperties": [{"id": "MailhostId", "value": "x"}],
    }});
    let status = client()
        .post(format!("{}/v1.0/me/sendMail", emu.base_url()))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_sent_items_copy_can_be_delayed() {
    let emu = Emulator::start().unwrap();
    let token = get_token(&emu, seed::MAILHOST_CLIENT_ID, None).await;
    emu.set_sent_items_delay(1);
    assert_eq!(send(&emu, &token, "late").await, 202);
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 1, "delivered at once");
    let (_, body) = find(&emu, &token, "me", &by_property("late")).await;
    assert!(
        body["value"].as_array().unwrap().is_empty(),
        "not filed yet: {body}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, body) = find(&emu, &token, "me", &by_property("late")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "filed: {body}");
}

#[tokio::test]
async fn deliver_then_faults_deliver_and_then_answer() {
    let emu = Emulator::start().unwrap();
    let token = get_token(&emu, seed::MAILHOST_CLIENT_ID, None).await;
    let admin = client()
        .post(format!("{}/_emulator/faults/deliver-then", emu.base_url()))
        .json(&json!({"count": 2, "status": 504, "path_prefix": "/v1.0/me/sendMail"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    assert_eq!(send(&emu, &token, "a").await, 504);
    assert_eq!(send(&emu, &token, "b").await, 504);
    assert_eq!(send(&emu, &token, "c").await, 202);
    assert_eq!(
        emu.inbox(seed::RECIPIENT_UPN).len(),
        3,
        "all three delivered"
    );
    assert_eq!(emu.counters().delivered_then_faulted, 2);

    emu.fault_deliver_then(1, 202, Some(7), None).unwrap();
    let response = client()
        .post(format!("{}/v1.0/me/sendMail", emu.base_url()))
        .bearer_auth(&token)
        .json(&json!({"message": {"toRecipients": [{"emailAddress": {"address": seed::RECIPIENT_UPN}}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(emu.inbox(seed::RECIPIENT_UPN).len(), 4);
    assert!(emu.fault_deliver_then(1, 500, None, None).is_err());
}
