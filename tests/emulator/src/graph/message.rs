//! Reading a Graph `message` resource from JSON, strictly: unknown properties, wrong types,
//! custom-header rules and inline-attachment limits are refused the way Graph refuses them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::graph::error::GraphError;
use crate::mailbox::{
    AttachmentInfo, ExtendedProperty, ItemBody, MessageHeader, Recipient, StoredMessage,
};
use crate::seed;

/// The writable and read-only properties of `microsoft.graph.message` a client may send.
const MESSAGE_PROPERTIES: &[&str] = &[
    "@odata.type",
    "id",
    "subject",
    "body",
    "bodyPreview",
    "uniqueBody",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "from",
    "sender",
    "importance",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "internetMessageHeaders",
    "attachments",
    "categories",
    "flag",
    "inferenceClassification",
    "isDraft",
    "isRead",
    "internetMessageId",
    "conversationId",
    "conversationIndex",
    "parentFolderId",
    "hasAttachments",
    "createdDateTime",
    "lastModifiedDateTime",
    "receivedDateTime",
    "sentDateTime",
    "changeKey",
    "webLink",
    "mentions",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
    "extensions",
];

/// The properties of `microsoft.graph.fileAttachment` a client may send.
const ATTACHMENT_PROPERTIES: &[&str] = &[
    "@odata.type",
    "id",
    "name",
    "contentType",
    "contentBytes",
    "isInline",
    "contentId",
    "contentLocation",
    "size",
    "lastModifiedDateTime",
];

/// Maximum custom headers per message.
pub(crate) const MAX_CUSTOM_HEADERS: usize = 5;

fn type_error(property: &str, value: &Value, expected: &str) -> GraphError {
    match value {
        Value::Object(_) | Value::Array(_) => GraphError::body_read(format!(
            "An unexpected '{}' node was found for property named '{property}' when reading from the JSON reader. \
             A 'PrimitiveValue' node was expected.",
            if value.is_object() {
                "StartObject"
            } else {
                "StartArray"
            }
        )),
        other => GraphError::body_read(format!(
            "Cannot convert the literal '{}' to the expected type '{expected}'.",
            other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string())
        )),
    }
}

fn unknown_property(name: &str, type_name: &str) -> GraphError {
    GraphError::body_read(format!(
        "The property '{name}' does not exist on type '{type_name}'. Make sure to only use property names that \
         are defined by the type or mark the type as open type."
    ))
}

/// Looks a property up case-insensitively (Graph accepts `Subject` as well as `subject`).
fn canonical<'a>(name: &str, known: &'a [&'a str]) -> Option<&'a str> {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(name))
}

fn string(property: &str, value: &Value) -> Result<Option<String>, GraphError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(type_error(property, other, "Edm.String")),
    }
}

fn boolean(property: &str, value: &Value) -> Result<bool, GraphError> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        other => Err(type_error(property, other, "Edm.Boolean")),
    }
}

fn recipient(property: &str, value: &Value) -> Result<Option<Recipient>, GraphError> {
    let object = match value {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        other => {
            return Err(GraphError::body_read(format!(
                "An unexpected '{}' node was found when reading from the JSON reader. A 'StartObject' node was \
                 expected for property '{property}'.",
                if other.is_array() {
                    "StartArray"
                } else {
                    "PrimitiveValue"
                }
            )));
        }
    };
    let mut email = None;
    for (key, v) in object {
        match canonical(key, &["emailAddress", "@odata.type"]) {
            Some("emailAddress") => email = Some(v),
            Some(_) => {}
            None => return Err(unknown_property(key, "microsoft.graph.recipient")),
        }
    }
    let Some(Value::Object(email)) = email else {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A recipient has no email address.",
        ));
    };
    let mut address = None;
    let mut name = None;
    for (key, v) in email {
        match canonical(key, &["address", "name", "@odata.type"]) {
            Some("address") => address = string("address", v)?,
            Some("name") => name = string("name", v)?,
            Some(_) => {}
            None => return Err(unknown_property(key, "microsoft.graph.emailAddress")),
        }
    }
    Ok(Some(Recipient::new(address.unwrap_or_default(), name)))
}

fn recipients(property: &str, value: &Value) -> Result<Vec<Recipient>, GraphError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                if let Some(r) = recipient(property, item)? {
                    out.push(r);
                }
            }
            Ok(out)
        }
        other => Err(GraphError::body_read(format!(
            "An unexpected '{}' node was found when reading from the JSON reader. A 'StartArray' node was expected \
             for property '{property}'.",
            if other.is_object() {
                "StartObject"
            } else {
                "PrimitiveValue"
            }
        ))),
    }
}

fn item_body(value: &Value) -> Result<ItemBody, GraphError> {
    let object = match value {
        Value::Null => return Ok(ItemBody::default()),
        Value::Object(o) => o,
        other => return Err(type_error("body", other, "microsoft.graph.itemBody")),
    };
    let mut body = ItemBody::default();
    for (key, v) in object {
        match canonical(key, &["contentType", "content", "@odata.type"]) {
            Some("contentType") => {
                let raw = string("contentType", v)?.unwrap_or_else(|| "text".into());
                body.content_type = match raw.to_ascii_lowercase().as_str() {
                    "text" => "text".into(),
                    "html" => "html".into(),
                    _ => {
                        return Err(GraphError::body_read(format!(
                            "Cannot convert the literal '{raw}' to the expected type 'microsoft.graph.bodyType'."
                        )));
                    }
                };
            }
            Some("content") => body.content = string("content", v)?.unwrap_or_default(),
            Some(_) => {}
            None => return Err(unknown_property(key, "microsoft.graph.itemBody")),
        }
    }
    Ok(body)
}

fn headers(value: &Value) -> Result<Vec<MessageHeader>, GraphError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(type_error(
                "internetMessageHeaders",
                other,
                "Collection(microsoft.graph.internetMessageHeader)",
            ));
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Value::Object(object) = item else {
            return Err(type_error(
                "internetMessageHeaders",
                item,
                "microsoft.graph.internetMessageHeader",
            ));
        };
        let mut name = String::new();
        let mut value = String::new();
        for (key, v) in object {
            match canonical(key, &["name", "value"]) {
                Some("name") => name = string("name", v)?.unwrap_or_default(),
                Some(_) => value = string("value", v)?.unwrap_or_default(),
                None => {
                    return Err(unknown_property(
                        key,
                        "microsoft.graph.internetMessageHeader",
                    ));
                }
            }
        }
        out.push(MessageHeader { name, value });
    }
    if out.len() > MAX_CUSTOM_HEADERS {
        return Err(GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidInternetMessageHeaderCollection",
            "Maximum number of headers in one message should be less than or equal to 5.",
        ));
    }
    for header in &out {
        let lower = header.name.to_ascii_lowercase();
        let bad_chars = header
            .name
            .chars()
            .any(|c| c.is_whitespace() || c == ':' || c.is_control())
            || header.value.contains(['\r', '\n']);
        if !lower.starts_with("x-") || bad_chars {
            return Err(GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "InvalidInternetMessageHeader",
                format!(
                    "The internet message header name '{}' should start with 'x-' or 'X-'.",
                    header.name
                ),
            ));
        }
    }
    Ok(out)
}

/// Reads one `fileAttachment` (inline bytes, < 3 MB).
pub(crate) fn file_attachment(value: &Value) -> Result<AttachmentInfo, GraphError> {
    let Value::Object(object) = value else {
        return Err(type_error(
            "attachments",
            value,
            "microsoft.graph.attachment",
        ));
    };
    let mut odata_type = None;
    let mut name = None;
    let mut content_type = None;
    let mut bytes = None;
    let mut is_inline = false;
    let mut content_id = None;
    for (key, v) in object {
        match canonical(key, ATTACHMENT_PROPERTIES) {
            Some("@odata.type") => odata_type = string("@odata.type", v)?,
            Some("name") => name = string("name", v)?,
            Some("contentType") => content_type = string("contentType", v)?,
            Some("contentBytes") => {
                let raw = string("contentBytes", v)?.unwrap_or_default();
                let cleaned: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                let decoded = STANDARD.decode(cleaned.as_bytes()).map_err(|_| {
                    GraphError::body_read(format!(
                        "Cannot convert the literal '{}' to the expected type 'Edm.Binary'.",
                        raw.chars().take(32).collect::<String>()
                    ))
                })?;
                bytes = Some(decoded);
            }
            Some("isInline") => is_inline = boolean("isInline", v)?,
            Some("contentId") => content_id = string("contentId", v)?,
            Some(_) => {}
            None => return Err(unknown_property(key, "microsoft.graph.fileAttachment")),
        }
    }
    match odata_type
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("#microsoft.graph.fileattachment") => {}
        Some(other)
            if other.ends_with("itemattachment") || other.ends_with("referenceattachment") =>
        {
            return Err(GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "ErrorInvalidRequest",
                "The emulator accepts only '#microsoft.graph.fileAttachment' attachments.",
            ));
        }
        _ => {
            return Err(GraphError::body_read(
                "Cannot create an abstract class. An '@odata.type' of '#microsoft.graph.fileAttachment' is required \
                 for attachments.",
            ));
        }
    }
    let bytes = bytes.ok_or_else(|| {
        GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The value of the parameter 'ContentBytes' is empty.",
        )
    })?;
    if bytes.len() >= seed::MAX_INLINE_ATTACHMENT_BYTES {
        return Err(GraphError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "ErrorMessageSizeExceeded",
            "The message exceeds the maximum supported size. Attachments of 3 MB or more must be uploaded with \
             an upload session (createUploadSession).",
        ));
    }
    Ok(AttachmentInfo {
        id: crate::tokens::random_token("AAMkAGI2att", 24),
        name: name.unwrap_or_default(),
        content_type: content_type.unwrap_or_else(|| "application/octet-stream".into()),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        is_inline,
        content_id,
    })
}

/// Reads `singleValueExtendedProperties`: objects with a string `id` of the form
/// `{type} {GUID} Name {name}` / `{type} {GUID} Id {0x…}` and a string `value`.
fn extended_properties(value: &Value) -> Result<Vec<ExtendedProperty>, GraphError> {
    let property = "singleValueExtendedProperties";
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(type_error(
                property,
                other,
                "Collection(microsoft.graph.singleValueLegacyExtendedProperty)",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(object) = item else {
            return Err(type_error(
                property,
                item,
                "microsoft.graph.singleValueLegacyExtendedProperty",
            ));
        };
        let mut id = None;
        let mut text = None;
        for (key, v) in object {
            match canonical(key, &["id", "value", "@odata.type"]) {
                Some("id") => id = string("id", v)?,
                Some("value") => text = string("value", v)?,
                Some(_) => {}
                None => {
                    return Err(unknown_property(
                        key,
                        "microsoft.graph.singleValueLegacyExtendedProperty",
                    ));
                }
            }
        }
        let id = id.unwrap_or_default();
        let parts: Vec<&str> = id.split_whitespace().collect();
        let well_formed = parts.len() == 4
            && parts[1].starts_with('{')
            && parts[1].ends_with('}')
            && (parts[2].eq_ignore_ascii_case("Name") || parts[2].eq_ignore_ascii_case("Id"));
        if !well_formed {
            return Err(GraphError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "ErrorInvalidProperty",
                format!(
                    "The extended property id '{id}' is not valid: use '{{type}} {{GUID}} Name {{name}}'."
                ),
            ));
        }
        out.push(ExtendedProperty {
            id,
            value: text.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Reads a `message` object.
pub(crate) fn parse_message(value: &Value) -> Result<StoredMessage, GraphError> {
    let Value::Object(object) = value else {
        return Err(type_error("message", value, "microsoft.graph.message"));
    };
    let mut m = empty_message();
    for (key, v) in object {
        let Some(property) = canonical(key, MESSAGE_PROPERTIES) else {
            return Err(unknown_property(key, "microsoft.graph.message"));
        };
        match property {
            "subject" => m.subject = string(property, v)?.unwrap_or_default(),
            "body" => m.body = item_body(v)?,
            "toRecipients" => m.to_recipients = recipients(property, v)?,
            "ccRecipients" => m.cc_recipients = recipients(property, v)?,
            "bccRecipients" => m.bcc_recipients = recipients(property, v)?,
            "replyTo" => m.reply_to = recipients(property, v)?,
            "from" => m.from = recipient(property, v)?,
            "sender" => m.sender = recipient(property, v)?,
            "importance" => {
                let raw = string(property, v)?.unwrap_or_else(|| "normal".into());
                m.importance = match raw.to_ascii_lowercase().as_str() {
                    level @ ("low" | "normal" | "high") => level.to_string(),
                    _ => {
                        return Err(GraphError::body_read(format!(
                            "Cannot convert the literal '{raw}' to the expected type 'microsoft.graph.importance'."
                        )));
                    }
                };
            }
            "isDeliveryReceiptRequested" => m.is_delivery_receipt_requested = boolean(property, v)?,
            "isReadReceiptRequested" => m.is_read_receipt_requested = boolean(property, v)?,
            "internetMessageHeaders" => m.internet_message_headers = headers(v)?,
            "singleValueExtendedProperties" => {
                m.single_value_extended_properties = extended_properties(v)?;
            }
            "attachments" => match v {
                Value::Null => {}
                Value::Array(items) => {
                    for item in items {
                        m.attachments.push(file_attachment(item)?);
                    }
                }
                other => {
                    return Err(type_error(
                        property,
                        other,
                        "Collection(microsoft.graph.attachment)",
                    ));
                }
            },
            _ => {}
        }
    }
    Ok(m)
}

/// A message with nothing set.
pub(crate) fn empty_message() -> StoredMessage {
    StoredMessage {
        id: String::new(),
        internet_message_id: String::new(),
        mime: false,
        subject: String::new(),
        body: ItemBody::default(),
        from: None,
        sender: None,
        to_recipients: Vec::new(),
        cc_recipients: Vec::new(),
        bcc_recipients: Vec::new(),
        reply_to: Vec::new(),
        internet_message_headers: Vec::new(),
        importance: "normal".into(),
        is_delivery_receipt_requested: false,
        is_read_receipt_requested: false,
        attachments: Vec::new(),
        sent_date_time: String::new(),
        received_date_time: String::new(),
        delivered_to: None,
        app_id: String::new(),
        single_value_extended_properties: Vec::new(),
    }
}

/// Parses a JSON request body, or 400 `Invalid JSON`.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, GraphError> {
    serde_json::from_slice(body).map_err(|e| GraphError::body_read(format!("Invalid JSON. {e}")))
}

/// Reads a `sendMail` body: the message and `saveToSentItems` (default true).
pub(crate) fn parse_send_mail(body: &[u8]) -> Result<(StoredMessage, bool), GraphError> {
    let value = parse_json(body)?;
    let Value::Object(object) = value else {
        return Err(GraphError::body_read(
            "Invalid JSON. A JSON object was expected.",
        ));
    };
    let mut message = None;
    let mut save = true;
    for (key, v) in &object {
        match canonical(key, &["message", "saveToSentItems"]) {
            Some("message") => message = Some(parse_message(v)?),
            Some(_) => {
                save = match v {
                    Value::Bool(b) => *b,
                    Value::Null => true,
                    // The docs' own sample sends the string "false".
                    Value::String(s)
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        s.eq_ignore_ascii_case("true")
                    }
                    other => return Err(type_error("saveToSentItems", other, "Edm.Boolean")),
                }
            }
            None => {
                return Err(GraphError::body_read(format!(
                    "The parameter '{key}' in the request payload is not a valid parameter for the operation 'sendMail'."
                )));
            }
        }
    }
    let message = message.ok_or_else(|| {
        GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "The value of the parameter 'Message' is empty.",
        )
    })?;
    Ok((message, save))
}

/// Whether an address is one well-formed SMTP address (no lists, no display-name syntax).
pub(crate) fn address_is_valid(address: &str) -> bool {
    let a = address.trim();
    if a.is_empty() || a.len() > 320 || a.contains([';', ',', '<', '>', ' ', '\t', '\r', '\n', '"'])
    {
        return false;
    }
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// Checks the recipients of a message about to be sent.
pub(crate) fn validate_recipients(message: &StoredMessage) -> Result<(), GraphError> {
    let all: Vec<&Recipient> = message
        .to_recipients
        .iter()
        .chain(&message.cc_recipients)
        .chain(&message.bcc_recipients)
        .collect();
    if all.is_empty() {
        return Err(GraphError::no_recipients());
    }
    for r in all.iter().copied().chain(&message.reply_to) {
        if !address_is_valid(r.address()) {
            return Err(GraphError::invalid_recipient(r.address()));
        }
    }
    Ok(())
}

/// The Graph JSON of a message resource (drafts).
pub(crate) fn to_resource(
    message: &StoredMessage,
    base_url: &str,
    owner_id: &str,
    created: &str,
) -> Value {
    let mut map = Map::new();
    map.insert(
        "@odata.context".into(),
        json!(format!(
            "{base_url}/v1.0/$metadata#users('{owner_id}')/messages/$entity"
        )),
    );
    map.insert(
        "@odata.etag".into(),
        json!(format!("W/\"{}\"", uuid::Uuid::new_v4().simple())),
    );
    map.insert("id".into(), json!(message.id));
    map.insert("createdDateTime".into(), json!(created));
    map.insert("lastModifiedDateTime".into(), json!(created));
    map.insert(
        "changeKey".into(),
        json!(uuid::Uuid::new_v4().simple().to_string()),
    );
    map.insert("categories".into(), json!([]));
    map.insert("receivedDateTime".into(), json!(created));
    map.insert("sentDateTime".into(), json!(created));
    map.insert(
        "hasAttachments".into(),
        json!(!message.attachments.is_empty()),
    );
    map.insert(
        "internetMessageId".into(),
        json!(message.internet_message_id),
    );
    map.insert("subject".into(), json!(message.subject));
    map.insert(
        "bodyPreview".into(),
        json!(message.body.content.chars().take(255).collect::<String>()),
    );
    map.insert("importance".into(), json!(message.importance));
    map.insert("parentFolderId".into(), json!("drafts"));
    map.insert(
        "conversationId".into(),
        json!(uuid::Uuid::new_v4().to_string()),
    );
    map.insert(
        "isDeliveryReceiptRequested".into(),
        json!(message.is_delivery_receipt_requested),
    );
    map.insert(
        "isReadReceiptRequested".into(),
        json!(message.is_read_receipt_requested),
    );
    map.insert("isRead".into(), json!(true));
    map.insert("isDraft".into(), json!(true));
    map.insert(
        "webLink".into(),
        json!(format!("{base_url}/owa/?ItemID={}", message.id)),
    );
    map.insert(
        "body".into(),
        json!({"contentType": message.body.content_type, "content": message.body.content}),
    );
    map.insert("sender".into(), json!(message.sender));
    map.insert("from".into(), json!(message.from));
    map.insert("toRecipients".into(), json!(message.to_recipients));
    map.insert("ccRecipients".into(), json!(message.cc_recipients));
    map.insert("bccRecipients".into(), json!(message.bcc_recipients));
    map.insert("replyTo".into(), json!(message.reply_to));
    map.insert("flag".into(), json!({"flagStatus": "notFlagged"}));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(body: Value) -> Result<(StoredMessage, bool), GraphError> {
        parse_send_mail(body.to_string().as_bytes())
    }

    #[test]
    fn parses_a_full_message() {
        let (m, save) = send(json!({"message": {
            "subject": "Hi", "body": {"contentType": "HTML", "content": "<b>x</b>"},
            "toRecipients": [{"emailAddress": {"address": "a@x.com", "name": "A"}}],
            "internetMessageHeaders": [{"name": "x-one", "value": "1"}],
            "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt",
                "contentType": "text/plain", "contentBytes": "aGVsbG8="}]},
            "saveToSentItems": false}))
        .unwrap();
        assert!(!save);
        assert_eq!(m.body.content_type, "html");
        assert_eq!(m.attachments[0].size, 5);
        assert_eq!(
            m.attachments[0].sha256,
            hex::encode(Sha256::digest(b"hello"))
        );
        assert!(validate_recipients(&m).is_ok());
    }

    #[test]
    fn refuses_what_graph_refuses() {
        let too_many: Vec<Value> = (0..6)
            .map(|i| json!({"name": format!("x-h{i}"), "value": "v"}))
            .collect();
        let err = send(json!({"message": {"internetMessageHeaders": too_many}})).unwrap_err();
        assert_eq!(err.code, "InvalidInternetMessageHeaderCollection");
        let err =
            send(json!({"message": {"internetMessageHeaders": [{"name": "Foo", "value": "v"}]}}))
                .unwrap_err();
        assert_eq!(err.code, "InvalidInternetMessageHeader");
        let err = send(json!({"message": {"subject": 0}})).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                "RequestBodyRead",
                "Cannot convert the literal '0' to the expected type 'Edm.String'."
            )
        );
        assert_eq!(
            send(json!({"message": {"toRecipient": []}}))
                .unwrap_err()
                .code,
            "RequestBodyRead"
        );
        assert_eq!(
            send(json!({"mesage": {}})).unwrap_err().code,
            "RequestBodyRead"
        );
        let attachment = json!({"name": "a", "contentBytes": "aGVsbG8="});
        assert_eq!(
            send(json!({"message": {"attachments": [attachment]}}))
                .unwrap_err()
                .code,
            "RequestBodyRead"
        );
        let (m, _) = send(json!({"message": {"toRecipients": [{"emailAddress": {"address": "a@x.com;b@x.com"}}]}})).unwrap();
        assert_eq!(
            validate_recipients(&m).unwrap_err().code,
            "ErrorInvalidRecipients"
        );
        let (m, save) = send(json!({"message": {}, "saveToSentItems": "false"})).unwrap();
        assert!(!save);
        assert!(
            validate_recipients(&m)
                .unwrap_err()
                .message
                .contains("no recipients")
        );
    }

    #[test]
    fn address_shapes() {
        assert!(address_is_valid("a.b@contoso.onmicrosoft.com"));
        for bad in [
            "",
            "a",
            "a@b",
            "a@x.com;b@x.com",
            "A <a@x.com>",
            "a@@x.com",
            "a@x.com,b@x.com",
            "a @x.com",
        ] {
            assert!(!address_is_valid(bad), "{bad}");
        }
    }
}
