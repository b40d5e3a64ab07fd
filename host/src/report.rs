//! The JSON shapes of send results, shared by `email send --json` and the email store's
//! commands: `{"id", "status": "sent", "provider", "receipt": {...}}` or
//! `{"id", "status": "failed", "provider", "error": {"kind", "code", "message", "retry_after_ms"}}`.

use mailhost_plugin_api::{ProviderError, Receipt};
use serde_json::{Value, json};

/// The `--json` object of a sent email.
pub fn sent_json(id: &str, provider: &str, receipt: &Receipt) -> Value {
    json!({
        "id": id,
        "status": "sent",
        "provider": provider,
        "receipt": {
            "message_id": receipt.message_id.as_str(),
            "request_id": receipt.request_id.as_str(),
            "detail": receipt.detail.as_str(),
        },
    })
}

/// The `--json` object of a failed email.
pub fn failed_json(id: &str, provider: &str, error: &ProviderError) -> Value {
    json!({
        "id": id,
        "status": "failed",
        "provider": provider,
        "error": error_json(error),
    })
}

/// A provider error as JSON: kind, code, message, retry_after_ms.
pub fn error_json(error: &ProviderError) -> Value {
    json!({
        "kind": error.kind.name(),
        "code": error.code.as_str(),
        "message": error.message.as_str(),
        "retry_after_ms": error.retry_after_ms.into_option(),
    })
}
