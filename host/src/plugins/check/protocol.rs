//! What the child tells the parent: one event per line on standard output, each line
//! [`PREFIX`] and a JSON object, so anything else the library prints there is told apart.

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::{CheckResult, PluginSummary};

/// The start of every protocol line.
pub const PREFIX: &str = "@@mailhost-plugin-check@@ ";

/// One event from the child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A step starts; if the child dies or stalls now, `check` fails with `what` in the line.
    Running {
        /// The check the step belongs to.
        check: String,
        /// What the library is doing, for the crash line ("while loading", "during send ...").
        what: String,
    },
    /// A check finished.
    Check(CheckResult),
    /// The library loaded and described itself.
    Plugin(PluginSummary),
    /// Secrets handed to the library, to look for in whatever it printed (never shown).
    Secrets {
        /// The values, with what each is.
        values: Vec<(String, String)>,
    },
    /// The author's options cannot be used (exit 2).
    Usage {
        /// The one-line message.
        message: String,
    },
    /// Every check ran.
    Done,
}

impl Event {
    /// The protocol line for this event, or `None` if it cannot be encoded.
    pub fn to_line(&self) -> Option<String> {
        serde_json::to_string(self)
            .ok()
            .map(|json| format!("{PREFIX}{json}"))
    }

    /// Parses a protocol line; `None` for any other line.
    pub fn from_line(line: &str) -> Option<Self> {
        serde_json::from_str(line.strip_prefix(PREFIX)?).ok()
    }

    /// Writes the event to standard output and flushes it, so the parent sees it at once.
    pub fn emit(&self) {
        if let Some(line) = self.to_line() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_other_lines_are_ignored() {
        let events = [
            Event::Running {
                check: "load".into(),
                what: "while loading".into(),
            },
            Event::Check(CheckResult::pass("name", "'x'")),
            Event::Done,
        ];
        for event in events {
            let line = event.to_line().unwrap();
            assert_eq!(Event::from_line(&line), Some(event));
        }
        assert_eq!(Event::from_line("hello from the plugin"), None);
    }
}
