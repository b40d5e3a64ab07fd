//! A minimal mailhost provider to copy: it logs each email and appends it as one JSON line to
//! the file named by its `File` setting.

use std::fs::OpenOptions;
use std::io::Write;

use mailhost_plugin_api::{
    Provider, ProviderError, ProviderInfo, Receipt, SendRequest, SettingKind, SettingSpec,
    export_provider,
};

/// The provider. Calls arrive from any thread, so it holds no unsynchronised state.
#[derive(Debug, Default)]
pub struct JsonLinesProvider;

impl Provider for JsonLinesProvider {
    fn describe(&self) -> Result<ProviderInfo, ProviderError> {
        Ok(ProviderInfo {
            name: "jsonl-file".into(),
            display_name: "JSON Lines file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Appends each email as one JSON line to a file".into(),
            settings: vec![
                SettingSpec::new(
                    "File",
                    SettingKind::PATH,
                    "The file each email is appended to",
                )
                .required(),
            ]
            .into(),
            staff_fields: Default::default(),
            capabilities: Default::default(),
        })
    }

    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        let path = request.setting("File").ok_or_else(|| {
            ProviderError::configuration(
                "File is not set: run `mailhost config set jsonl-file File PATH`",
            )
        })?;
        let message = &request.message;
        let from = match message.from.address.as_str() {
            "" => request.staff.email.as_str(),
            address => address,
        };
        let to: Vec<String> = message.recipients().map(|m| json(&m.address)).collect();
        let line = format!(
            "{{\"id\":{},\"from\":{},\"to\":[{}],\"subject\":{},\"body\":{}}}\n",
            json(&message.id),
            json(from),
            to.join(","),
            json(&message.subject),
            json(&message.body),
        );
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ProviderError::configuration(format!("cannot open File {path}: {e}")))?;
        // One write of the whole line: a failure leaves nothing the host could duplicate.
        file.write_all(line.as_bytes())
            .map_err(|e| ProviderError::transient(format!("cannot write to {path}: {e}")))?;
        log::info!("email {} from {from} appended to {path}", message.id);
        Ok(Receipt {
            message_id: message.id.clone(),
            detail: format!("appended to {path}").into(),
            ..Default::default()
        })
    }
}

/// `text` as a JSON string.
fn json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

export_provider!(JsonLinesProvider::default);
