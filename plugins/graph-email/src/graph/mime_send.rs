//! `send_mime` (capability `mime`): a whole RFC 5322 message from the host's spool. When its
//! base64 fits Graph's 4 MB request, it goes as MIME `sendMail` (`Content-Type: text/plain`,
//! body = base64), byte for byte as the client wrote it, with the envelope's blind copies in a
//! `Bcc` header ([`crate::mime::rewrite`]). Otherwise it is converted to the structured message
//! ([`crate::mime::convert`]) and sent like any other email: inline when it fits, else through
//! a draft with upload sessions, so a 25 MB attachment from a scanner goes through.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use mailhost_plugin_api::{Mailbox, Message, MimeSendRequest, ProviderError, Receipt};
use reqwest::Method;
use serde_json::{Value, json};

use super::Graph;
use super::errors::graph_error;
use super::send::{
    self, FileAttachment, MAX_MESSAGE, MAX_REQUEST_BYTES, Route, base64_len, doing, receipt,
};
use super::upload;
use crate::http::{Body, Request, Safety};
use crate::mime::convert::{Converted, Person};
use crate::mime::{MimeError, convert, rewrite};

/// The message as the host spooled it, and the address its header From names.
async fn read(request: &MimeSendRequest) -> Result<Vec<u8>, ProviderError> {
    if request.mime_size > MAX_MESSAGE {
        return Err(too_large(request.mime_size));
    }
    let raw = tokio::fs::read(request.mime_path.as_str())
        .await
        .map_err(|e| {
            ProviderError::internal(format!(
                "the spooled message {} cannot be read: {e}",
                request.mime_path
            ))
        })?;
    if raw.len() as u64 > MAX_MESSAGE {
        return Err(too_large(raw.len() as u64));
    }
    Ok(raw)
}

fn too_large(size: u64) -> ProviderError {
    ProviderError::too_large(format!(
        "the message is {} MB; Microsoft Graph sends at most 150 MB per email: send a smaller one (or share large files by link)",
        size / (1024 * 1024)
    ))
    .with_code("ErrorMessageSizeExceeded")
}

fn invalid(error: &MimeError) -> ProviderError {
    ProviderError::invalid_message(format!("the relayed message cannot be sent: {error}"))
        .with_code("InvalidMime")
}

/// The Message-ID the host gave the email (`Message.headers`), if any.
fn host_message_id(request: &MimeSendRequest) -> Option<String> {
    request
        .request
        .message
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Message-ID"))
        .map(|h| h.value.to_string())
}

/// The route for the message's From (the header From, else the staff member's own).
fn route_for(graph: &Graph<'_>, from: Option<&Person>) -> Route {
    let message = Message {
        from: from.map_or_else(Mailbox::default, |p| Mailbox::new(&p.address, &p.name)),
        ..Message::default()
    };
    send::route(graph, &message)
}

/// Sends the message of `request`.
///
/// # Errors
/// As [`send::send`]; a message that does not parse is `invalid-message`.
pub async fn send_mime(
    graph: &Graph<'_>,
    request: &MimeSendRequest,
) -> Result<Receipt, ProviderError> {
    let raw = read(request).await?;
    let recipients: Vec<String> = request.recipients.iter().map(|r| r.to_string()).collect();
    let message_id = host_message_id(request);
    let as_mime = rewrite::for_mime_send(&raw, &recipients, message_id.as_deref())
        .map_err(|e| invalid(&e))?;
    match as_mime {
        Some(mime) if base64_len(mime.len() as u64) <= MAX_REQUEST_BYTES => {
            let from = convert::convert(&raw, &recipients)
                .ok()
                .and_then(|c| c.from);
            let route = route_for(graph, from.as_ref());
            send_as_mime(graph, &route, &mime).await
        }
        _ => {
            let converted = convert::convert(&raw, &recipients).map_err(|e| invalid(&e))?;
            send_structured(graph, request, converted, message_id).await
        }
    }
}

async fn send_as_mime(
    graph: &Graph<'_>,
    route: &Route,
    mime: &[u8],
) -> Result<Receipt, ProviderError> {
    let url = graph
        .ctx
        .settings
        .graph_url(&format!("{}/sendMail", route.mailbox_path));
    let body = base64::engine::general_purpose::STANDARD
        .encode(mime)
        .into_bytes();
    log::debug!(
        "graph-email: staff {} sends a {}-byte MIME message from {} via /{}",
        graph.ctx.staff.id,
        mime.len(),
        route.from.address,
        route.mailbox_path
    );
    let request =
        Request::new(Method::POST, url, Safety::AtMostOnce).body(Body::Bytes(body, "text/plain"));
    let response = graph.call(request, "sendMail (MIME)").await?;
    if response.status.is_success() {
        Ok(receipt(
            route,
            response.request_id(),
            String::new(),
            "MIME sendMail",
        ))
    } else {
        Err(graph_error(
            graph.ctx,
            doing(graph, route, "sendMail (MIME)"),
            &response,
        ))
    }
}

fn people(list: &[Person]) -> Value {
    Value::Array(
        list.iter()
            .map(|p| {
                let mut address = json!({ "address": p.address });
                if !p.name.is_empty() {
                    address["name"] = json!(p.name);
                }
                json!({ "emailAddress": address })
            })
            .collect(),
    )
}

/// The Graph message JSON (without attachments) of a converted message.
pub fn message_json(converted: &Converted, route: &Route, message_id: Option<&str>) -> Value {
    let mut from = json!({ "address": route.from.address.as_str() });
    if !route.from.name.is_empty() {
        from["name"] = json!(route.from.name.as_str());
    }
    let mut json = json!({
        "subject": converted.subject,
        "body": {
            "contentType": if converted.html { "HTML" } else { "Text" },
            "content": converted.body,
        },
        "from": { "emailAddress": from },
    });
    for (key, list) in [
        ("toRecipients", &converted.to),
        ("ccRecipients", &converted.cc),
        ("bccRecipients", &converted.bcc),
        ("replyTo", &converted.reply_to),
    ] {
        if !list.is_empty() {
            json[key] = people(list);
        }
    }
    if !converted.headers.is_empty() {
        json["internetMessageHeaders"] = Value::Array(
            converted
                .headers
                .iter()
                .map(|(name, value)| json!({ "name": name, "value": value }))
                .collect(),
        );
    }
    if let Some(id) = converted.internet_message_id.as_deref().or(message_id) {
        json["internetMessageId"] = json!(id);
    }
    if let Some(importance) = converted.importance {
        json["importance"] = json!(importance);
    }
    json
}

/// Removes the folder of a structured send's parts when dropped.
struct PartsDir(PathBuf);

impl Drop for PartsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the parts beside the spooled message (same private folder) for the upload path,
/// which streams files from disk.
fn write_parts(
    mime_path: &Path,
    converted: &mut Converted,
) -> Result<(PartsDir, Vec<FileAttachment>), ProviderError> {
    let mut dir = mime_path.as_os_str().to_owned();
    dir.push(".parts");
    let dir = PartsDir(PathBuf::from(dir));
    let _ = std::fs::remove_dir_all(&dir.0);
    let failed = |e: std::io::Error| {
        ProviderError::internal(format!(
            "the message's parts cannot be written to {}: {e}",
            dir.0.display()
        ))
    };
    std::fs::create_dir(&dir.0).map_err(failed)?;
    let mut files = Vec::with_capacity(converted.parts.len());
    for (i, part) in std::mem::take(&mut converted.parts).into_iter().enumerate() {
        let path = dir.0.join(format!("part-{i}"));
        write_private(&path, &part.bytes).map_err(failed)?;
        files.push(FileAttachment {
            path,
            name: part.name,
            content_type: part.content_type,
            size: part.bytes.len() as u64,
            is_inline: part.is_inline,
            content_id: part.content_id,
        });
    }
    Ok((dir, files))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(bytes)
}

async fn send_structured(
    graph: &Graph<'_>,
    request: &MimeSendRequest,
    mut converted: Converted,
    message_id: Option<String>,
) -> Result<Receipt, ProviderError> {
    if converted.dropped_headers > 0 {
        log::warn!(
            "graph-email: {} X- headers beyond Graph's 5 were left out of a relayed message sent as a structured message",
            converted.dropped_headers
        );
    }
    let route = route_for(graph, converted.from.as_ref());
    let (_dir, files) = write_parts(Path::new(request.mime_path.as_str()), &mut converted)?;
    let mut json = message_json(&converted, &route, message_id.as_deref());
    let base_len = serde_json::to_vec(&json!({ "message": &json })).map_or(0, |v| v.len() as u64);
    let plan = send::plan(base_len, files);
    if !plan.inline.is_empty() {
        let mut inline = Vec::with_capacity(plan.inline.len());
        for attachment in &plan.inline {
            inline.push(attachment.inline_json().await?);
        }
        json["attachments"] = Value::Array(inline);
    }
    log::debug!(
        "graph-email: staff {} sends a relayed message as structured JSON from {} via /{} ({} inline, {} separate, {} upload-session parts)",
        graph.ctx.staff.id,
        route.from.address,
        route.mailbox_path,
        plan.inline.len(),
        plan.separate.len(),
        plan.upload.len()
    );
    let email_id = request.request.message.id.as_str();
    if plan.separate.is_empty() && plan.upload.is_empty() {
        send::send_mail(graph, &route, json, email_id).await
    } else {
        upload::send_with_draft(graph, &route, json, plan, email_id).await
    }
}
