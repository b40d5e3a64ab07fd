//! `/openapi.json`: the API described in OpenAPI 3.0.3, every route with its parameters,
//! request body, answers and error answers. Tests validate it and run schemathesis against
//! the live API with it, so it is kept beside the routes and changed with them.

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::request::MAX_IDEMPOTENCY_KEY;
use super::routes::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};

/// The document as JSON text (built once).
pub fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| document().to_string())
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn errors(statuses: &[u16]) -> serde_json::Map<String, Value> {
    statuses
        .iter()
        .map(|status| {
            let text = match status {
                400 => "Malformed request: JSON syntax, a wrong type or unknown field, a bad query parameter or header.",
                401 => "No bearer token, or not a valid one (`WWW-Authenticate: Bearer`).",
                404 => "No such email, or no such route.",
                409 => "The email is not in a state that allows this, or the id prefix matches several emails.",
                413 => "The request body is over the limit (`max_body_mb` in serve.toml).",
                415 => "The body is not declared as JSON.",
                422 => "Well-formed but not acceptable (unknown staff member, bad address, CR/LF in a header, bad attachment, an Idempotency-Key already used for a different email); nothing was recorded.",
                503 => "Cannot serve now (mail.db locked by another process, or the service is stopping); try again later.",
                _ => "The server failed; the cause is logged.",
            };
            (status.to_string(), error_response(text))
        })
        .collect()
}

fn with_errors(mut responses: Value, statuses: &[u16]) -> Value {
    if let Some(map) = responses.as_object_mut() {
        map.extend(errors(statuses));
    }
    responses
}

fn string() -> Value {
    json!({"type": "string"})
}

fn string_list() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn address_list() -> Value {
    json!({"type": "array", "items": {"$ref": "#/components/schemas/Address"}})
}

/// The whole document.
pub fn document() -> Value {
    let accepted = json!({
        "description": "Recorded in mail.db (committed) and queued for sending.",
        "headers": {"Location": {"description": "The email's address in this API.", "schema": {"type": "string"}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}
    });
    let id_parameter = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The email's id, or the start of it (at least 4 characters) if only one email matches.",
        "schema": {"type": "string"}
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "mailhost HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Send email through mailhost's delivery engine and follow it. Routes under /v1 need `Authorization: Bearer <token>` from `mailhost api-token create NAME`."
        },
        "paths": {
            "/v1/emails": {
                "post": {
                    "operationId": "submitEmail",
                    "summary": "Record an email for sending",
                    "description": "Validates the email and records it as queued; answers 202 only after it is committed. With an Idempotency-Key already used, answers with the first email and records nothing.",
                    "security": [{"bearer": []}],
                    "parameters": [{
                        "name": "Idempotency-Key", "in": "header", "required": false,
                        "description": "A key of the client's choosing (such as a UUID): a repeated POST with the same key returns the first email.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY, "pattern": "^[!-~]+$"}
                    }],
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailRequest"}}}
                    },
                    "responses": with_errors(json!({"202": accepted}), &[400, 401, 413, 415, 422, 500, 503])
                },
                "get": {
                    "operationId": "listEmails",
                    "summary": "List emails, newest first",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "status", "in": "query", "required": false,
                         "schema": {"$ref": "#/components/schemas/Status"}},
                        {"name": "limit", "in": "query", "required": false,
                         "description": format!("At most this many (default {DEFAULT_LIST_LIMIT})."),
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT}}
                    ],
                    "responses": with_errors(json!({"200": {
                        "description": "The emails.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailList"}}}
                    }}), &[400, 401, 500, 503])
                }
            },
            "/v1/emails/{id}": {
                "get": {
                    "operationId": "getEmail",
                    "summary": "One email, as `mailhost email show --json` prints it",
                    "security": [{"bearer": []}],
                    "parameters": [id_parameter.clone()],
                    "responses": with_errors(json!({"200": {
                        "description": "The email record.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmailRecord"}}}
                    }}), &[400, 401, 404, 409, 500, 503])
                }
            },
            "/v1/emails/{id}/retry": {
                "post": {
                    "operationId": "retryEmail",
                    "summary": "Make an email due again, as `mailhost email retry`",
                    "description": "A failed email is queued again. A sent or unknown one only with force=true (it may be sent twice).",
                    "security": [{"bearer": []}],
                    "parameters": [
                        id_parameter,
                        {"name": "force", "in": "query", "required": false,
                         "schema": {"type": "boolean", "default": false}}
                    ],
                    "responses": with_errors(json!({"202": accepted}), &[400, 401, 404, 409, 500, 503])
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness (no token)",
                    "security": [],
                    "responses": {"200": {
                        "description": "The service is up.",
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["status"],
                            "properties": {"status": {"type": "string", "enum": ["ok"]}}
                        }}}
                    }}
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics (no token)",
                    "security": [],
                    "responses": with_errors(json!({"200": {
                        "description": "Emails by status, sends, retries, throttles, limit waits, per-provider latency, HTTP requests; in the Prometheus text format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}
                    }}), &[500, 503])
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no token)",
                    "security": [],
                    "responses": {"200": {
                        "description": "The OpenAPI document.",
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    }}
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `mailhost api-token create NAME`."}
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    json!({
        "Error": {
            "type": "object", "required": ["error"], "additionalProperties": false,
            "properties": {"error": {
                "type": "object", "required": ["code", "message"], "additionalProperties": false,
                "properties": {
                    "code": {"type": "string", "description": "Stable and machine-readable, such as invalid_json or unauthorized."},
                    "message": {"type": "string", "description": "What went wrong and what to do."}
                }
            }}
        },
        "Status": {"type": "string", "enum": ["queued", "sending", "sent", "failed", "unknown"]},
        "Accepted": {
            "type": "object", "required": ["id", "status"], "additionalProperties": false,
            "properties": {"id": string(), "status": {"$ref": "#/components/schemas/Status"}}
        },
        "EmailRequest": {
            "type": "object", "required": ["staff"], "additionalProperties": false,
            "properties": {
                "staff": {"type": "string", "description": "The sending staff member's ID."},
                "to": string_list(), "cc": string_list(), "bcc": string_list(), "reply_to": string_list(),
                "from": {"type": "string", "nullable": true, "description": "An alternate From (Send As / on behalf)."},
                "subject": string(),
                "body": string(),
                "html": {"type": "boolean", "default": false},
                "attachments": {"type": "array", "items": {"$ref": "#/components/schemas/AttachmentUpload"}},
                "headers": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "Custom headers: names start with X-."}
            }
        },
        "AttachmentUpload": {
            "type": "object", "required": ["name", "content_base64"], "additionalProperties": false,
            "properties": {
                "name": string(),
                "content_type": {"type": "string", "nullable": true, "description": "Guessed from the name when absent."},
                "content_base64": {"type": "string", "description": "The content, base64."}
            }
        },
        "Address": {
            "type": "object", "required": ["address", "name"],
            "properties": {"address": string(), "name": string()}
        },
        "EmailRecord": {
            "type": "object",
            "required": ["id", "staff_id", "provider", "from", "to", "cc", "bcc", "reply_to",
                         "subject", "body", "html", "attachments", "headers", "status",
                         "attempts", "created_at", "updated_at", "door", "message_id",
                         "recipient_count"],
            "properties": record_properties()
        },
        "EmailList": {
            "type": "object", "required": ["emails"], "additionalProperties": false,
            "properties": {"emails": {"type": "array", "items": {"$ref": "#/components/schemas/EmailRecord"}}}
        }
    })
}

/// The properties of `EmailRecord` (its own function: one `json!` that big passes the macro
/// recursion limit).
fn record_properties() -> Value {
    let mut properties = json!({
        "id": string(),
        "staff_id": string(),
        "provider": string(),
        "from": {"$ref": "#/components/schemas/Address"},
        "to": address_list(), "cc": address_list(), "bcc": address_list(), "reply_to": address_list(),
        "subject": string(),
        "body": string(),
        "html": {"type": "boolean"},
        "attachments": {"type": "array", "items": {
            "type": "object", "required": ["path", "name", "content_type", "size"],
            "properties": {"path": string(), "name": string(), "content_type": string(),
                           "size": {"type": "integer", "minimum": 0}}
        }},
        "headers": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"],
            "properties": {"name": string(), "value": string()}
        }},
        "status": {"$ref": "#/components/schemas/Status"},
        "attempts": {"type": "integer", "minimum": 0},
        "error": {
            "type": "object", "nullable": true,
            "required": ["kind", "code", "message"],
            "properties": {
                "kind": string(), "code": string(), "message": string(),
                "retry_after_ms": {"type": "integer", "nullable": true, "minimum": 0}
            }
        },
        "receipt": {
            "type": "object", "nullable": true,
            "properties": {"message_id": string(), "request_id": string(), "detail": string()}
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "sent_at": {"type": "string", "format": "date-time", "nullable": true},
        "source_key": {"type": "string", "nullable": true}
    });
    if let Some(map) = properties.as_object_mut() {
        map.extend(engine_properties());
    }
    properties
}

/// The fields the delivery engine adds to a record.
fn engine_properties() -> serde_json::Map<String, Value> {
    let value = json!({
        "door": {"type": "string", "enum": ["cli", "batch", "sendmail", "smtp", "http"],
                 "description": "The door it came in by."},
        "message_id": {"type": "string", "description": "The RFC 5322 Message-ID it is sent with."},
        "mime": {
            "type": "object", "nullable": true,
            "description": "For sendmail and the SMTP relay: the whole message as received, and its envelope.",
            "properties": {"path": string(), "envelope_from": string(), "recipients": string_list()}
        },
        "not_before": {"type": "string", "format": "date-time", "nullable": true,
                       "description": "A queued email is not sent before this (a sending limit, a retry's backoff)."},
        "mailbox": {"type": "string", "nullable": true, "description": "The sending mailbox the limits count against."},
        "recipient_count": {"type": "integer", "minimum": 0},
        "first_attempt_at": {"type": "string", "format": "date-time", "nullable": true},
        "reconcile_after": {"type": "string", "format": "date-time", "nullable": true},
        "attempt_log": {
            "type": "array",
            "description": "Every attempt to send it (GET /v1/emails/{id} only).",
            "items": {
                "type": "object", "required": ["attempt", "started_at", "outcome"],
                "properties": {
                    "attempt": {"type": "integer", "minimum": 0},
                    "started_at": {"type": "string", "format": "date-time"},
                    "ended_at": {"type": "string", "format": "date-time", "nullable": true},
                    "outcome": {"type": "string"},
                    "error": {"type": "object", "nullable": true}
                }
            }
        }
    });
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let doc = document();
        for (path, method) in [
            ("/v1/emails", "post"),
            ("/v1/emails", "get"),
            ("/v1/emails/{id}", "get"),
            ("/v1/emails/{id}/retry", "post"),
            ("/healthz", "get"),
            ("/metrics", "get"),
            ("/openapi.json", "get"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        let refs = document_text().matches("#/components/schemas/").count();
        assert!(refs > 10);
        // Every $ref names a schema that exists.
        for part in document_text().split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
