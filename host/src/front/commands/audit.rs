//! `mailhost audit [--since DURATION|TIME] [--json]`: the audit trail, and [`note`], which every
//! configuration command calls once its change is made.

use serde_json::Value;

use super::{OK, print, print_json, table, warn};
use crate::config::audit::{self, AuditEntry};
use crate::config::home::Home;
use crate::config::time;
use crate::error::Error;

/// Records a change in `audit.log`. The change is already made, so a failure to record it is a
/// warning naming the file, not an error.
pub(crate) fn note(home: &Home, command: &str, details: Value) {
    if let Err(e) = audit::record(home, command, details) {
        warn(&format!(
            "the change was made but could not be recorded in the audit trail: {e}"
        ));
    }
}

/// Parses `--since`: a duration back from now (`7d`, `12h`) or a time (RFC 3339, a date).
pub(crate) fn parse_since(text: &str) -> Result<i64, Error> {
    time::parse_duration(text)
        .map(|d| time::now_seconds() - d)
        .or_else(|| time::parse_rfc3339(text))
        .ok_or_else(|| {
            Error::Usage(format!(
                "--since '{text}': give a duration such as 7d, 12h or 30m, or a time such as 2026-12-01 or 2026-12-01T10:00:00Z"
            ))
        })
}

pub(super) fn run(home: &Home, since: Option<&str>, json: bool) -> Result<u8, Error> {
    let since = since.map(parse_since).transpose()?;
    let entries = audit::read(home, since)?;
    if json {
        let values: Vec<Value> = entries
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        print_json(&Value::Array(values))?;
        return OK;
    }
    if entries.is_empty() {
        print("no audit entries (configuration changes are recorded in audit.log)")?;
        return OK;
    }
    let mut rows = vec![
        ["TIME", "USER", "COMMAND", "DETAILS"]
            .map(String::from)
            .to_vec(),
    ];
    rows.extend(entries.iter().map(row));
    print(&table(&rows))?;
    OK
}

fn row(entry: &AuditEntry) -> Vec<String> {
    let details = match &entry.details {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={}", escape(s)),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    let user = match entry.uid {
        Some(uid) => format!("{} ({uid})", entry.user),
        None => entry.user.clone(),
    };
    vec![
        entry.time.clone(),
        escape(&user),
        escape(&entry.command),
        details,
    ]
}

/// Control characters from a hand-edited file are shown escaped, never sent to the terminal.
fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
