//! Drafts: `POST …/messages` (201 + id), small attachments, `createUploadSession`, and
//! `POST …/messages/{id}/send` (202; the draft moves to Sent Items and is delivered).

use axum::http::HeaderMap;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::graph::auth::{
    Need, Principal, Target, authenticate, authorize, authorized_mailbox, resolve_target,
};
use crate::graph::error::GraphError;
use crate::graph::message::{file_attachment, parse_json, to_resource};
use crate::graph::send::{body_kind, read_message, submit};
use crate::graph::upload::{SESSION_LIFETIME_SECS, UploadSession};
use crate::mailbox::new_item_id;
use crate::seed;
use crate::state::Inner;
use crate::time::{iso8601, now_unix};
use crate::tokens::random_token;

/// `POST /v1.0/{me | users/{id}}/messages`.
pub(crate) fn create_draft(
    inner: &mut Inner,
    base_url: &str,
    headers: &HeaderMap,
    target: &Target,
    body: &[u8],
) -> Result<Value, GraphError> {
    let (principal, mailbox) = authorized_mailbox(inner, headers, target, Need::ReadWrite)?;
    let kind = body_kind(headers)?;
    let (mut message, _) = read_message(kind, body, false)?;
    message.id = new_item_id();
    message.internet_message_id = format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        seed::TENANT_DOMAIN
    );
    message.app_id = principal.client_id().to_string();
    let created = iso8601(now_unix());
    let resource = to_resource(&message, base_url, mailbox.id, &created);
    inner
        .mail
        .folders(mailbox.upn)
        .drafts
        .insert(message.id.clone(), message);
    Ok(resource)
}

/// `POST …/messages/{id}/attachments` (a file attachment under 3 MB).
pub(crate) fn add_attachment(
    inner: &mut Inner,
    base_url: &str,
    headers: &HeaderMap,
    target: &Target,
    message_id: &str,
    body: &[u8],
) -> Result<Value, GraphError> {
    let (_, mailbox) = authorized_mailbox(inner, headers, target, Need::ReadWrite)?;
    body_kind(headers)?;
    let value = parse_json(body)?;
    let attachment = file_attachment(&value)?;
    let draft = inner
        .mail
        .folders(mailbox.upn)
        .drafts
        .get_mut(message_id)
        .ok_or_else(GraphError::item_not_found)?;
    draft.attachments.push(attachment.clone());
    Ok(json!({
        "@odata.context": format!("{base_url}/v1.0/$metadata#users('{}')/messages('{message_id}')/attachments/$entity", mailbox.id),
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": attachment.id,
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
        "isInline": attachment.is_inline,
        "contentId": attachment.content_id,
    }))
}

/// `POST …/messages/{id}/attachments/createUploadSession`.
pub(crate) fn create_upload_session(
    inner: &mut Inner,
    base_url: &str,
    headers: &HeaderMap,
    target: &Target,
    message_id: &str,
    body: &[u8],
) -> Result<Value, GraphError> {
    let principal = authenticate(inner, headers)?;
    let mailbox = resolve_target(&inner.directory, &principal, target)?;
    // Known service issue (docs-contrib#3720): delegated upload sessions on another user's or a
    // shared mailbox are refused even with Full Access.
    let other_mailbox = match &principal {
        Principal::Delegated { user, .. } => !mailbox.upn.eq_ignore_ascii_case(user),
        Principal::App { .. } => false,
    };
    if other_mailbox {
        return Err(GraphError::access_denied());
    }
    authorize(&inner.directory, &principal, &mailbox, Need::ReadWrite)?;
    let value = parse_json(body)?;
    let item = value
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("AttachmentItem"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_object)
        .ok_or_else(|| {
            GraphError::body_read("The parameter 'AttachmentItem' is missing or not an object.")
        })?;
    let field = |name: &str| {
        item.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let attachment_type = field("attachmentType")
        .and_then(Value::as_str)
        .unwrap_or("file");
    if !attachment_type.eq_ignore_ascii_case("file") {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "The emulator supports upload sessions for attachmentType 'file' only.",
        ));
    }
    let name = field("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                "The value of the parameter 'Name' is empty.",
            )
        })?;
    let size = field("size")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .ok_or_else(|| {
            GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "ErrorInvalidParameter",
                "The value of the parameter 'Size' is missing or invalid.",
            )
        })?;
    if size < seed::MIN_UPLOAD_SESSION_BYTES {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
            "Attachment size must be greater than the minimum size.",
        ));
    }
    if size > seed::MAX_UPLOAD_SESSION_BYTES {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorAttachmentSizeExceeded",
            "The attachment size exceeds the maximum supported size of 150 MB.",
        ));
    }
    if !inner
        .mail
        .folders(mailbox.upn)
        .drafts
        .contains_key(message_id)
    {
        return Err(GraphError::item_not_found());
    }
    let now = now_unix();
    let session = UploadSession {
        id: random_token("", 32),
        auth_token: random_token("eyJ0eXAiOiJKV1Q", 64),
        mailbox: mailbox.upn.to_ascii_lowercase(),
        mailbox_id: mailbox.id.to_string(),
        message_id: message_id.to_string(),
        client_id: principal.client_id().to_string(),
        name: name.to_string(),
        content_type: field("contentType")
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_string(),
        size,
        is_inline: field("isInline").and_then(Value::as_bool).unwrap_or(false),
        content_id: field("contentId")
            .and_then(Value::as_str)
            .map(str::to_string),
        next: 0,
        hasher: sha2::Sha256::new(),
        busy: false,
        expires_at: now + SESSION_LIFETIME_SECS,
    };
    let url = format!(
        "{base_url}/api/v2.0/Users('{}@{}')/Messages('{message_id}')/AttachmentSessions('{}')?authtoken={}",
        mailbox.id,
        seed::TENANT_ID,
        session.id,
        session.auth_token
    );
    inner.uploads.insert(session);
    Ok(json!({
        "@odata.context": format!("{base_url}/v1.0/$metadata#microsoft.graph.uploadSession"),
        "uploadUrl": url,
        "expirationDateTime": iso8601(now + SESSION_LIFETIME_SECS),
        "nextExpectedRanges": ["0-"],
    }))
}

/// `POST …/messages/{id}/send`.
pub(crate) fn send_draft(
    inner: &mut Inner,
    headers: &HeaderMap,
    target: &Target,
    message_id: &str,
) -> Result<(), GraphError> {
    inner.counters.draft_sends += 1;
    let (principal, mailbox) = authorized_mailbox(inner, headers, target, Need::Send)?;
    let draft = inner
        .mail
        .folders(mailbox.upn)
        .drafts
        .get(message_id)
        .cloned()
        .ok_or_else(GraphError::item_not_found)?;
    submit(inner, &principal, &mailbox, draft, true)?;
    inner.mail.folders(mailbox.upn).drafts.remove(message_id);
    Ok(())
}
