//! Large attachments: a draft (`POST …/messages`), small leftovers as `POST …/attachments`,
//! one upload session per large file with in-order chunk PUTs streamed from disk (bounded
//! memory, no Authorization header on the upload URL), then `POST …/messages/{id}/send`. A
//! failure before the send deletes the draft.

use mailhost_plugin_api::{ErrorKind, ProviderError, Receipt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use url::Url;

use super::Graph;
use super::errors::graph_error;
use super::send::{FileAttachment, Plan, Route, doing, encode_segment, receipt, unreadable};
use crate::http::{Body, Request, Safety};
use crate::security::{check_transport, safe_url};

/// Bytes per upload PUT: 12 × 320 KiB = 3.75 MiB (under Graph's 4 MB, a multiple of 320 KiB).
pub const CHUNK_BYTES: u64 = 12 * 320 * 1024;

/// Sends `message` (JSON with the inline attachments) through a draft.
///
/// # Errors
/// The structured failure; the draft is deleted unless the send itself may have happened.
pub async fn send_with_draft(
    graph: &Graph<'_>,
    route: &Route,
    message: Value,
    plan: Plan,
    email_id: &str,
) -> Result<Receipt, ProviderError> {
    let settings = graph.ctx.settings;
    let url = settings.graph_url(&format!("{}/messages", route.mailbox_path));
    let body = serde_json::to_vec(&message)
        .map_err(|e| ProviderError::internal(format!("the message could not be encoded: {e}")))?;
    let response = graph
        .call(
            Request::new(Method::POST, url, Safety::Idempotent).body(Body::Json(body)),
            "create draft",
        )
        .await?;
    if !response.status.is_success() {
        return Err(graph_error(
            graph.ctx,
            doing(graph, route, "creating the draft for large attachments"),
            &response,
        ));
    }
    let id = response
        .json()
        .and_then(|j| j.get("id").and_then(|v| v.as_str()).map(str::to_string))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ProviderError::transient("Microsoft Graph created a draft but returned no id")
                .with_code("BadDraftResponse")
        })?;
    log::debug!("graph-email: draft {id} created in /{}", route.mailbox_path);
    let message_path = format!("{}/messages/{}", route.mailbox_path, encode_segment(&id));

    if let Err(error) = attach_all(graph, route, &message_path, &plan).await {
        delete_draft(graph, &message_path).await;
        return Err(error);
    }

    let url = settings.graph_url(&format!("{message_path}/send"));
    let first_attempt = std::time::Instant::now();
    let response = graph
        .call(
            Request::new(Method::POST, url, Safety::AtMostOnce),
            "send draft",
        )
        .await;
    let (why, retry_after, error) = match response {
        Ok(response) if response.status.is_success() => {
            return Ok(receipt(
                route,
                response.request_id(),
                id,
                "draft + upload session",
            ));
        }
        Ok(response) if response.status.is_server_error() => (
            format!(
                "Microsoft Graph answered HTTP {} to sending the draft",
                response.status.as_u16()
            ),
            response.retry_after(),
            graph_error(
                graph.ctx,
                doing(graph, route, "sending the draft"),
                &response,
            ),
        ),
        Ok(response) => {
            let error = graph_error(
                graph.ctx,
                doing(graph, route, "sending the draft"),
                &response,
            );
            delete_draft(graph, &message_path).await;
            return Err(error);
        }
        Err(error) if error.kind == ErrorKind::UNKNOWN_OUTCOME => (
            "the connection failed after the draft's send was handed over".to_string(),
            None,
            error,
        ),
        Err(error) => {
            log::debug!("graph-email: sending draft {id} failed before it was accepted");
            delete_draft(graph, &message_path).await;
            return Err(error);
        }
    };
    match super::sent_items::settle(graph, route, email_id, first_attempt, retry_after, &why).await
    {
        super::sent_items::Settled::Sent(found) => {
            Ok(super::sent_items::receipt_of(&found, route, &why))
        }
        super::sent_items::Settled::Absent => {
            // Not sent: the draft is still there; remove it so a retry starts clean.
            delete_draft(graph, &message_path).await;
            Err(error)
        }
        super::sent_items::Settled::Unknown(detail) => Err(ProviderError::unknown_outcome(
            format!("the email may or may not have been sent: {detail}"),
        )
        .with_code(if error.code.is_empty() {
            "UnknownOutcome".to_string()
        } else {
            error.code.to_string()
        })),
    }
}

async fn attach_all(
    graph: &Graph<'_>,
    route: &Route,
    message_path: &str,
    plan: &Plan,
) -> Result<(), ProviderError> {
    for attachment in &plan.separate {
        attach_small(graph, route, message_path, attachment).await?;
    }
    for attachment in &plan.upload {
        upload_large(graph, route, message_path, attachment).await?;
    }
    Ok(())
}

async fn attach_small(
    graph: &Graph<'_>,
    route: &Route,
    message_path: &str,
    attachment: &FileAttachment,
) -> Result<(), ProviderError> {
    let url = graph
        .ctx
        .settings
        .graph_url(&format!("{message_path}/attachments"));
    let json = attachment.inline_json().await?;
    let body = serde_json::to_vec(&json).map_err(|e| {
        ProviderError::internal(format!("the attachment could not be encoded: {e}"))
    })?;
    let response = graph
        .call(
            Request::new(Method::POST, url, Safety::Idempotent).body(Body::Json(body)),
            "add attachment",
        )
        .await?;
    if response.status.is_success() {
        Ok(())
    } else {
        Err(graph_error(
            graph.ctx,
            doing(graph, route, "adding an attachment to the draft"),
            &response,
        ))
    }
}

async fn upload_large(
    graph: &Graph<'_>,
    route: &Route,
    message_path: &str,
    attachment: &FileAttachment,
) -> Result<(), ProviderError> {
    let settings = graph.ctx.settings;
    let url = settings.graph_url(&format!("{message_path}/attachments/createUploadSession"));
    let body = json!({ "AttachmentItem": attachment.upload_item() });
    let body = serde_json::to_vec(&body).map_err(|e| {
        ProviderError::internal(format!(
            "the upload session request could not be encoded: {e}"
        ))
    })?;
    let response = graph
        .call(
            Request::new(Method::POST, url, Safety::Idempotent).body(Body::Json(body)),
            "createUploadSession",
        )
        .await?;
    if !response.status.is_success() {
        return Err(graph_error(
            graph.ctx,
            doing(graph, route, "creating an upload session"),
            &response,
        ));
    }
    let upload_url = response
        .json()
        .and_then(|j| {
            j.get("uploadUrl")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| {
            ProviderError::transient(
                "Microsoft Graph created an upload session but returned no uploadUrl",
            )
            .with_code("BadUploadSession")
        })?;
    let upload_url = Url::parse(&upload_url).map_err(|e| {
        ProviderError::transient(format!(
            "Microsoft Graph returned an upload URL that does not parse ({e})"
        ))
        .with_code("BadUploadSession")
    })?;
    // The upload URL carries its own authtoken: the same clear-text rule as bearer tokens.
    check_transport(&upload_url, "GraphEndpoint (upload session URL)")?;
    log::debug!(
        "graph-email: uploading '{}' ({} bytes) to {}",
        attachment.name,
        attachment.size,
        safe_url(&upload_url)
    );

    let result = put_chunks(graph, route, &upload_url, attachment).await;
    if result.is_err() {
        // Cancel the session; the draft is deleted by the caller.
        let cancel = Request::new(Method::DELETE, upload_url.clone(), Safety::Idempotent);
        if let Err(error) = graph.run(cancel, "cancel upload session").await {
            log::debug!(
                "graph-email: cancelling the upload session failed: {}",
                error.message
            );
        }
    }
    result
}

async fn put_chunks(
    graph: &Graph<'_>,
    route: &Route,
    upload_url: &Url,
    attachment: &FileAttachment,
) -> Result<(), ProviderError> {
    let total = attachment.size;
    let mut file = tokio::fs::File::open(&attachment.path)
        .await
        .map_err(|e| unreadable(attachment, &e))?;
    let mut offset: u64 = 0;
    let mut buffer = Vec::new();
    while offset < total {
        let length = CHUNK_BYTES.min(total - offset);
        buffer.resize(usize::try_from(length).unwrap_or(usize::MAX), 0);
        file.read_exact(&mut buffer).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ProviderError::invalid_message(format!(
                    "the attachment '{}' ({}) shrank while it was being sent; send it again once it is complete",
                    attachment.name,
                    attachment.path.display()
                ))
            } else {
                unreadable(attachment, &e)
            }
        })?;
        let end = offset + length - 1;
        // The buffer is moved into the request and comes back empty: one chunk in memory at a
        // time (plus the copy a retry needs).
        let request = Request::new(Method::PUT, upload_url.clone(), Safety::Idempotent)
            .header("Content-Range", format!("bytes {offset}-{end}/{total}"))
            .body(Body::Bytes(
                std::mem::take(&mut buffer),
                "application/octet-stream",
            ));
        let response = graph.run(request, "upload chunk").await?;
        if !response.status.is_success() {
            return Err(graph_error(
                graph.ctx,
                doing(graph, route, "uploading an attachment"),
                &response,
            ));
        }
        if response.status.as_u16() == 201 {
            return Ok(());
        }
        let next = response
            .json()
            .and_then(|j| next_expected(&j))
            .unwrap_or(end + 1);
        if next != end + 1 {
            log::debug!("graph-email: the upload session expects byte {next} next; resuming there");
            file.seek(std::io::SeekFrom::Start(next))
                .await
                .map_err(|e| unreadable(attachment, &e))?;
        }
        offset = next;
    }
    // Every byte went up without the final 201 (some services answer 200 throughout).
    Ok(())
}

/// The first start offset in `nextExpectedRanges` (`["2097152-"]` or `["2097152"]`).
fn next_expected(json: &Value) -> Option<u64> {
    let first = json
        .get("nextExpectedRanges")?
        .as_array()?
        .first()?
        .as_str()?;
    first.split('-').next()?.trim().parse().ok()
}

/// Deletes a draft after a failure (best effort).
async fn delete_draft(graph: &Graph<'_>, message_path: &str) {
    let url = graph.ctx.settings.graph_url(message_path);
    match graph
        .call(
            Request::new(Method::DELETE, url, Safety::Idempotent),
            "delete draft",
        )
        .await
    {
        Ok(response) if response.status.is_success() || response.status.as_u16() == 404 => {
            log::debug!("graph-email: deleted the unsent draft");
        }
        Ok(response) => log::warn!(
            "graph-email: the unsent draft could not be deleted (HTTP {}); delete it from the Drafts folder",
            response.status.as_u16()
        ),
        Err(error) => log::warn!(
            "graph-email: the unsent draft could not be deleted ({}); delete it from the Drafts folder",
            error.message
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const _: () = assert!(CHUNK_BYTES.is_multiple_of(320 * 1024) && CHUNK_BYTES <= 4 * 1024 * 1024);

    #[test]
    fn next_ranges_parse() {
        assert_eq!(
            next_expected(&json!({"nextExpectedRanges": ["2097152-"]})),
            Some(2_097_152)
        );
        assert_eq!(
            next_expected(&json!({"nextExpectedRanges": ["2097152"]})),
            Some(2_097_152)
        );
        assert_eq!(next_expected(&json!({})), None);
    }
}
