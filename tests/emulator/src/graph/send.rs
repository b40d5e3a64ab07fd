//! `POST /v1.0/{me | users/{id}}/sendMail` (JSON and MIME) and the submission path shared
//! with draft sends.

use crate::directory::Mailbox;
use crate::graph::auth::{Need, Principal, Target, authorized_mailbox, resolve_from};
use crate::graph::error::GraphError;
use crate::graph::{message, mime};
use crate::mailbox::{StoredMessage, new_item_id};
use crate::seed;
use crate::state::Inner;
use crate::time::{iso8601, now_unix};

/// How the body of a sendMail / draft request is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Json,
    Mime,
}

/// The body kind from the request's `Content-Type`, or 415.
pub(crate) fn body_kind(headers: &axum::http::HeaderMap) -> Result<BodyKind, GraphError> {
    let mime = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "text/plain" => Ok(BodyKind::Mime),
        _ => Err(GraphError::unsupported_media_type()),
    }
}

/// Reads a message from a request body of either kind; MIME messages always save.
pub(crate) fn read_message(
    kind: BodyKind,
    body: &[u8],
    send_mail: bool,
) -> Result<(StoredMessage, bool), GraphError> {
    match kind {
        BodyKind::Json if send_mail => message::parse_send_mail(body),
        BodyKind::Json => Ok((message::parse_message(&message::parse_json(body)?)?, true)),
        BodyKind::Mime => {
            let raw = mime::decode_base64_body(body)?;
            Ok((mime::parse_mime(&raw)?, true))
        }
    }
}

/// Submits `message` from `mailbox`: recipients, From rights, size, then delivery.
pub(crate) fn submit(
    inner: &mut Inner,
    principal: &Principal,
    mailbox: &Mailbox,
    mut message: StoredMessage,
    save_to_sent_items: bool,
) -> Result<(), GraphError> {
    message::validate_recipients(&message)?;
    resolve_from(&inner.directory, principal, mailbox, &mut message)?;
    if message.exchange_size() > inner.config.max_message_bytes {
        return Err(GraphError::message_too_large());
    }
    let now = now_unix();
    message.id = new_item_id();
    if message.internet_message_id.is_empty() {
        message.internet_message_id = format!(
            "<{}@{}>",
            uuid::Uuid::new_v4().simple(),
            seed::TENANT_DOMAIN
        );
    }
    message.sent_date_time = iso8601(now);
    message.received_date_time.clear();
    message.delivered_to = None;
    message.app_id = principal.client_id().to_string();
    let recipients = (message.to_recipients.len()
        + message.cc_recipients.len()
        + message.bcc_recipients.len()) as u64;
    let breaches = inner
        .sending
        .record(mailbox.upn, recipients, crate::time::now_millis());
    if breaches.messages || breaches.recipients {
        *inner
            .counters
            .limit_breaches
            .entry(mailbox.upn.to_ascii_lowercase())
            .or_default() += 1;
    }
    let directory = inner.directory.clone();
    let delay = std::time::Duration::from_secs(inner.config.sent_items_delay_secs);
    let delivered = inner.mail.deliver(
        &directory,
        &message,
        mailbox.upn,
        save_to_sent_items,
        delay,
        now,
    );
    inner.counters.messages_delivered += 1;
    inner.counters.recipient_deliveries += delivered as u64;
    Ok(())
}

/// `sendMail`.
pub(crate) fn send_mail(
    inner: &mut Inner,
    headers: &axum::http::HeaderMap,
    target: &Target,
    body: &[u8],
) -> Result<(), GraphError> {
    inner.counters.send_mail += 1;
    let (principal, mailbox) = authorized_mailbox(inner, headers, target, Need::Send)?;
    let kind = body_kind(headers)?;
    let (message, save) = read_message(kind, body, true)?;
    submit(inner, &principal, &mailbox, message, save)
}
