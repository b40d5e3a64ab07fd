//! One email through Graph: checks before any request, the message JSON, where it is sent
//! (`/me` or `/users/{address}`), and whether it fits one sendMail request or needs a draft
//! with upload sessions.

use std::path::PathBuf;
use std::time::Instant;

use base64::Engine as _;
use mailhost_plugin_api::{
    ErrorKind, Mailbox, Message, ProviderError, Receipt, is_plausible_address,
};
use reqwest::Method;
use serde_json::{Value, json};

use super::Graph;
use super::errors::{Doing, graph_error};
use super::{sent_items, upload};
use crate::auth::Mode;
use crate::http::{Body, Request, Safety};
use crate::settings::AlternateFromMode;

/// Graph's request body limit (4 MB), less room for rounding.
pub const MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024 - 1024;
/// Attachments smaller than this may travel inline (`contentBytes`).
pub const MAX_INLINE_ATTACHMENT: u64 = 3 * 1024 * 1024;
/// The largest message Graph accepts through upload sessions.
pub const MAX_MESSAGE: u64 = 150 * 1024 * 1024;
/// Graph's limit on custom `internetMessageHeaders`.
pub const MAX_CUSTOM_HEADERS: usize = 5;

/// An attachment checked on disk.
#[derive(Debug, Clone)]
pub struct FileAttachment {
    /// Where it is.
    pub path: PathBuf,
    /// The name recipients see.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size now.
    pub size: u64,
    /// Shown in the body (an HTML body refers to it by `cid:`).
    pub is_inline: bool,
    /// Its Content-ID, for inline parts.
    pub content_id: Option<String>,
}

impl FileAttachment {
    /// The attachment's JSON without `contentBytes` (for sizing) or with them.
    fn json(&self, content: &str) -> Value {
        let mut json = json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": self.name,
            "contentType": self.content_type,
            "isInline": self.is_inline,
            "contentBytes": content,
        });
        if let Some(id) = &self.content_id {
            json["contentId"] = json!(id);
        }
        json
    }

    /// The `AttachmentItem` of an upload session for this file.
    pub fn upload_item(&self) -> Value {
        let mut item = json!({
            "attachmentType": "file",
            "name": self.name,
            "size": self.size,
            "contentType": self.content_type,
            "isInline": self.is_inline,
        });
        if let Some(id) = &self.content_id {
            item["contentId"] = json!(id);
        }
        item
    }

    /// Bytes this attachment adds to a JSON request when inline.
    pub fn inline_cost(&self) -> u64 {
        let overhead = serde_json::to_vec(&self.json("")).map_or(512, |v| v.len() as u64);
        overhead + base64_len(self.size) + 1
    }

    /// The attachment's JSON with its content, read from disk (only for inline-sized files).
    ///
    /// # Errors
    /// The file could not be read.
    pub async fn inline_json(&self) -> Result<Value, ProviderError> {
        let bytes = tokio::fs::read(&self.path)
            .await
            .map_err(|e| unreadable(self, &e))?;
        Ok(self.json(&base64::engine::general_purpose::STANDARD.encode(bytes)))
    }
}

/// The encoded length of `n` bytes in standard base64.
pub fn base64_len(n: u64) -> u64 {
    n.div_ceil(3) * 4
}

/// The user-facing error for an attachment that cannot be read.
pub fn unreadable(attachment: &FileAttachment, error: &std::io::Error) -> ProviderError {
    ProviderError::invalid_message(format!(
        "the attachment '{}' ({}) cannot be read: {error}",
        attachment.name,
        attachment.path.display()
    ))
    .with_code("AttachmentUnreadable")
}

/// Where and how a message is sent.
#[derive(Debug, Clone)]
pub struct Route {
    /// `me` or `users/{address}`: the mailbox whose sendMail/messages endpoints are used.
    pub mailbox_path: String,
    /// The mailbox the message is sent from (From).
    pub from: Mailbox,
    /// The mailbox the request acts in (for the concurrency limit and messages).
    pub acting_mailbox: String,
}

/// Checks the message before any request.
///
/// # Errors
/// `invalid-message`, `recipient` or `too-large`, naming what to change.
pub async fn check(message: &Message) -> Result<Vec<FileAttachment>, ProviderError> {
    if message.recipients().next().is_none() {
        return Err(ProviderError::invalid_message(
            "the email has no recipients: add at least one To, Cc or Bcc address",
        ));
    }
    for mailbox in message.recipients().chain(message.reply_to.iter()) {
        if !is_plausible_address(&mailbox.address) {
            return Err(ProviderError::recipient(format!(
                "'{}' is not an email address: give each recipient as one address such as name@example.com",
                mailbox.address
            ))
            .with_code("InvalidAddress"));
        }
    }
    for mailbox in message
        .recipients()
        .chain(message.reply_to.iter())
        .chain(std::iter::once(&message.from))
    {
        if mailbox.name.contains(['\r', '\n']) || mailbox.address.contains(['\r', '\n']) {
            return Err(ProviderError::invalid_message(
                "a display name or address contains a line break",
            ));
        }
    }
    if message.subject.contains(['\r', '\n']) {
        return Err(ProviderError::invalid_message(
            "the subject contains a line break",
        ));
    }
    let custom = message.custom_headers().count();
    if custom > MAX_CUSTOM_HEADERS {
        return Err(ProviderError::invalid_message(format!(
            "the email has {custom} custom headers; Microsoft Graph accepts at most {MAX_CUSTOM_HEADERS}: remove some"
        ))
        .with_code("InvalidInternetMessageHeaderCollection"));
    }
    // The host's Message-ID is not a custom header: Graph gives the message its own
    // internetMessageId, and the message is found again by its extended property.
    for header in message.custom_headers() {
        let name = header.name.as_str();
        let valid_name = name.len() > 2
            && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"))
            && name.chars().all(|c| c.is_ascii_graphic() && c != ':');
        if !valid_name {
            return Err(ProviderError::invalid_message(format!(
                "custom header '{name}' is not allowed: Microsoft Graph only passes headers named X-something"
            ))
            .with_code("InvalidInternetMessageHeaderCollection"));
        }
        if header.value.contains(['\r', '\n']) {
            return Err(ProviderError::invalid_message(format!(
                "custom header '{name}' contains a line break"
            )));
        }
    }
    let mut attachments = Vec::with_capacity(message.attachments.len());
    let mut total: u64 = 0;
    for attachment in message.attachments.iter() {
        let path = PathBuf::from(attachment.path.as_str());
        let name = if attachment.name.is_empty() {
            path.file_name().map_or_else(
                || "attachment".to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        } else {
            attachment.name.to_string()
        };
        let mut file = FileAttachment {
            path,
            name,
            content_type: if attachment.content_type.is_empty() {
                "application/octet-stream".to_string()
            } else {
                attachment.content_type.to_string()
            },
            size: 0,
            is_inline: false,
            content_id: None,
        };
        let metadata = tokio::fs::metadata(&file.path)
            .await
            .map_err(|e| unreadable(&file, &e))?;
        if !metadata.is_file() {
            return Err(ProviderError::invalid_message(format!(
                "the attachment '{}' ({}) is not a file",
                file.name,
                file.path.display()
            )));
        }
        file.size = metadata.len();
        total = total.saturating_add(file.size);
        attachments.push(file);
    }
    if total > MAX_MESSAGE {
        return Err(ProviderError::too_large(format!(
            "the attachments total {} MB; Microsoft Graph sends at most 150 MB per email: send fewer or smaller files (or share large ones by link)",
            total / (1024 * 1024)
        ))
        .with_code("ErrorMessageSizeExceeded"));
    }
    Ok(attachments)
}

/// Chooses the endpoint and From for the message.
pub fn route(graph: &Graph<'_>, message: &Message) -> Route {
    let staff = &graph.ctx.staff;
    let requested = message.from.address.trim();
    let alternate = !requested.is_empty() && !staff.owns(requested);
    let own_address = if staff.email.is_empty() {
        staff.sign_in_name().to_string()
    } else {
        staff.email.clone()
    };
    let from = if alternate {
        Mailbox::new(requested, message.from.name.trim())
    } else {
        let name = if message.from.name.trim().is_empty() {
            staff.display_name.as_str()
        } else {
            message.from.name.trim()
        };
        Mailbox::new(&own_address, name)
    };
    let users = |address: &str| format!("users/{}", encode_segment(address));
    let (mailbox_path, acting) = match (
        graph.account.mode,
        alternate,
        graph.ctx.settings.alternate_from,
    ) {
        (Mode::AppOnly, true, AlternateFromMode::FromProperty) => {
            (users(&own_address), own_address.clone())
        }
        (Mode::AppOnly, _, _) => (users(&from.address), from.address.to_string()),
        (_, true, AlternateFromMode::UsersEndpoint) => {
            (users(&from.address), from.address.to_string())
        }
        _ => ("me".to_string(), own_address.clone()),
    };
    Route {
        mailbox_path,
        from,
        acting_mailbox: acting,
    }
}

/// Percent-encodes one URL path segment (addresses keep their `@`).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@!$&'()*,;=:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn recipients(list: &[Mailbox]) -> Value {
    Value::Array(list.iter().map(email_address).collect())
}

fn email_address(mailbox: &Mailbox) -> Value {
    let mut address = json!({ "address": mailbox.address.trim() });
    if !mailbox.name.trim().is_empty() {
        address["name"] = json!(mailbox.name.trim());
    }
    json!({ "emailAddress": address })
}

/// The message JSON without attachments.
pub fn message_json(message: &Message, route: &Route) -> Value {
    let mut json = json!({
        "subject": message.subject.as_str(),
        "body": {
            "contentType": if message.html { "HTML" } else { "Text" },
            "content": message.body.as_str(),
        },
        "from": email_address(&route.from),
    });
    let lists = [
        ("toRecipients", &message.to),
        ("ccRecipients", &message.cc),
        ("bccRecipients", &message.bcc),
        ("replyTo", &message.reply_to),
    ];
    for (key, list) in lists {
        if !list.is_empty() {
            json[key] = recipients(list);
        }
    }
    if message.custom_headers().next().is_some() {
        json["internetMessageHeaders"] = Value::Array(
            message
                .custom_headers()
                .map(|h| json!({ "name": h.name.as_str(), "value": h.value.as_str() }))
                .collect(),
        );
    }
    if !message.id.is_empty() {
        json["singleValueExtendedProperties"] = json!([{
            "id": sent_items::MAILHOST_ID_PROPERTY,
            "value": message.id.as_str(),
        }]);
    }
    json
}

/// Which attachments go inline in the first request and which need separate requests.
#[derive(Debug, Default)]
pub struct Plan {
    /// Inline in the sendMail or draft request.
    pub inline: Vec<FileAttachment>,
    /// Under 3 MB but not fitting: one `POST …/attachments` each.
    pub separate: Vec<FileAttachment>,
    /// 3 MB and over: upload sessions.
    pub upload: Vec<FileAttachment>,
}

/// Fills the first request up to the 4 MB limit with the smallest attachments.
pub fn plan(base_len: u64, attachments: Vec<FileAttachment>) -> Plan {
    let mut plan = Plan::default();
    let mut budget = MAX_REQUEST_BYTES.saturating_sub(base_len + 32);
    let mut sorted = attachments;
    sorted.sort_by_key(|a| a.size);
    for attachment in sorted {
        if attachment.size >= MAX_INLINE_ATTACHMENT {
            plan.upload.push(attachment);
        } else if attachment.inline_cost() <= budget {
            budget -= attachment.inline_cost();
            plan.inline.push(attachment);
        } else {
            plan.separate.push(attachment);
        }
    }
    plan
}

/// Sends the message.
///
/// # Errors
/// The structured failure; nothing is retried that may already have been sent.
pub async fn send(graph: &Graph<'_>, message: &Message) -> Result<Receipt, ProviderError> {
    let attachments = check(message).await?;
    let route = route(graph, message);
    let mut json = message_json(message, &route);
    let base_len = serde_json::to_vec(&json!({ "message": &json })).map_or(0, |v| v.len() as u64);
    let plan = plan(base_len, attachments);
    if !plan.inline.is_empty() {
        let mut inline = Vec::with_capacity(plan.inline.len());
        for attachment in &plan.inline {
            inline.push(attachment.inline_json().await?);
        }
        json["attachments"] = Value::Array(inline);
    }
    log::debug!(
        "graph-email: staff {} sends message {} from {} via /{} ({} inline, {} separate, {} upload-session attachments)",
        graph.ctx.staff.id,
        message.id,
        route.from.address,
        route.mailbox_path,
        plan.inline.len(),
        plan.separate.len(),
        plan.upload.len()
    );
    if plan.separate.is_empty() && plan.upload.is_empty() {
        send_mail(graph, &route, json, message.id.as_str()).await
    } else {
        upload::send_with_draft(graph, &route, json, plan, message.id.as_str()).await
    }
}

/// Sends `message` (JSON with any inline attachments) with one sendMail request.
///
/// # Errors
/// The structured failure.
pub async fn send_mail(
    graph: &Graph<'_>,
    route: &Route,
    message: Value,
    email_id: &str,
) -> Result<Receipt, ProviderError> {
    let settings = graph.ctx.settings;
    let url = settings.graph_url(&format!("{}/sendMail", route.mailbox_path));
    let mut body = json!({ "message": message });
    if !settings.save_to_sent_items {
        body["saveToSentItems"] = json!(false);
    }
    let body = serde_json::to_vec(&body)
        .map_err(|e| ProviderError::internal(format!("the message could not be encoded: {e}")))?;
    let request = Request::new(Method::POST, url, Safety::AtMostOnce).body(Body::Json(body));
    let first_attempt = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let (why, retry_after, error) = match graph.call(request.clone(), "sendMail").await {
            Ok(response) if response.status.is_success() => {
                if let Some(wait) = response.retry_after() {
                    // Graph has answered 202 with Retry-After for mail it delivered: 202 is
                    // "accepted", so it is never sent again.
                    log::info!(
                        "graph-email: sendMail answered {} with Retry-After {} s; the email was accepted and is not sent again",
                        response.status.as_u16(),
                        wait.as_secs()
                    );
                }
                return Ok(receipt(
                    route,
                    response.request_id(),
                    String::new(),
                    "sendMail",
                ));
            }
            Ok(response) if response.status.is_server_error() => (
                format!(
                    "Microsoft Graph answered HTTP {} to sendMail",
                    response.status.as_u16()
                ),
                response.retry_after(),
                graph_error(graph.ctx, doing(graph, route, "sendMail"), &response),
            ),
            Ok(response) => {
                return Err(graph_error(
                    graph.ctx,
                    doing(graph, route, "sendMail"),
                    &response,
                ));
            }
            Err(error) if error.kind == ErrorKind::UNKNOWN_OUTCOME => (
                "the connection failed after sendMail was handed over".to_string(),
                None,
                error,
            ),
            Err(error) => return Err(error),
        };
        // Graph has delivered mail it answered 5xx to: look before sending again.
        match sent_items::settle(graph, route, email_id, first_attempt, retry_after, &why).await {
            sent_items::Settled::Sent(found) => {
                return Ok(sent_items::receipt_of(&found, route, &why));
            }
            sent_items::Settled::Absent if attempt <= settings.max_retries => {}
            sent_items::Settled::Absent => return Err(error),
            sent_items::Settled::Unknown(detail) => {
                return Err(ProviderError::unknown_outcome(format!(
                    "the email may or may not have been sent: {detail}"
                ))
                .with_code(if error.code.is_empty() {
                    "UnknownOutcome".to_string()
                } else {
                    error.code.to_string()
                }));
            }
        }
    }
}

/// What a request was doing, for errors.
pub fn doing<'a>(graph: &Graph<'_>, route: &'a Route, what: &'a str) -> Doing<'a> {
    Doing {
        what,
        from: route.from.address.as_str(),
        mode: graph.account.mode,
        other_mailbox: graph.account.mode != Mode::AppOnly
            && route.mailbox_path != "me"
            && !graph.ctx.staff.owns(route.from.address.as_str()),
    }
}

/// The receipt of a sent message.
pub fn receipt(
    route: &Route,
    request_id: Option<String>,
    message_id: String,
    how: &str,
) -> Receipt {
    Receipt {
        message_id: message_id.into(),
        request_id: request_id.unwrap_or_default().into(),
        detail: format!(
            "accepted by Microsoft Graph from {} ({how} on /{})",
            route.from.address, route.mailbox_path
        )
        .into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> FileAttachment {
        FileAttachment {
            path: PathBuf::from(name),
            name: name.into(),
            content_type: "application/octet-stream".into(),
            size,
            is_inline: false,
            content_id: None,
        }
    }

    #[test]
    fn base64_grows_by_a_third() {
        assert_eq!(base64_len(0), 0);
        assert_eq!(base64_len(1), 4);
        assert_eq!(base64_len(3), 4);
        assert_eq!(base64_len(3 * 1024 * 1024), 4 * 1024 * 1024);
    }

    #[test]
    fn small_attachments_fill_one_request() {
        let plan = plan(1000, vec![file("a", 1000), file("b", 2000)]);
        assert_eq!(plan.inline.len(), 2);
        assert!(plan.separate.is_empty() && plan.upload.is_empty());
    }

    #[test]
    fn the_request_stays_under_four_megabytes() {
        let two_mb = 2 * 1024 * 1024;
        let plan = plan(
            1000,
            vec![
                file("a", two_mb),
                file("b", two_mb),
                file("c", 10 * 1024 * 1024),
            ],
        );
        assert_eq!(plan.inline.len(), 1);
        assert_eq!(plan.separate.len(), 1);
        assert_eq!(plan.upload.len(), 1);
        let inline: u64 = plan.inline.iter().map(FileAttachment::inline_cost).sum();
        assert!(1000 + inline < 4 * 1024 * 1024);
    }

    #[tokio::test]
    async fn headers_are_limited_before_sending() {
        let mut message = Message::default();
        message.to.push(Mailbox::new("a@example.com", ""));
        for i in 0..6 {
            message.headers.push(mailhost_plugin_api::Header {
                name: format!("X-Test-{i}").into(),
                value: "v".into(),
            });
        }
        let error = check(&message).await.unwrap_err();
        assert_eq!(error.kind, mailhost_plugin_api::ErrorKind::INVALID_MESSAGE);
        message.headers.truncate(1);
        message.headers[0].name = "Subject".into();
        assert!(check(&message).await.is_err());
        message.headers[0].name = "X-Order".into();
        assert!(check(&message).await.is_ok());
    }
}
