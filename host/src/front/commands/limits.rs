//! `mailhost limits [--json]`: per sending mailbox, what its limits allow now and when the next
//! send may go, from the ledger every process on the home shares.

use serde_json::{Value, json};

use super::{OK, print, print_json, table, terminal_safe};
use crate::config::home::Home;
use crate::delivery::engine::{Engine, MailboxUse, WindowUse};
use crate::delivery::limits::window_name;
use crate::delivery::outbox::{EmailRecord, Timestamp};
use crate::error::Error;

pub(super) fn run(home: &Home, json: bool) -> Result<u8, Error> {
    let outbox = super::email::open_store(home)?;
    let engine = super::email::engine(home, outbox)?;
    let now = Timestamp::now();
    let rows = engine.mailboxes_in_use(now)?;
    if json {
        let list: Vec<Value> = rows.iter().map(|row| row_json(row, now)).collect();
        print_json(&json!({ "mailboxes": list }))?;
        return OK;
    }
    if rows.is_empty() {
        print("no sending mailboxes: add a staff member with `mailhost staff add`")?;
        return OK;
    }
    let mut lines = vec![
        [
            "MAILBOX",
            "STAFF",
            "PROVIDER",
            "MESSAGES",
            "RECIPIENTS",
            "IN FLIGHT",
            "NEXT SEND",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for row in &rows {
        let first = [row.mailbox.clone(), row.staff.clone(), row.provider.clone()];
        let rest: [String; 4] = match &row.limits {
            Err(problem) => [
                "-".into(),
                "-".into(),
                "-".into(),
                format!("provider not usable: {problem}"),
            ],
            Ok(in_use) if in_use.limits.is_empty() => [
                "-".into(),
                "-".into(),
                "-".into(),
                "now (the provider declares no sending limits)".into(),
            ],
            Ok(in_use) => {
                let used = |window: &Option<WindowUse>| {
                    window.as_ref().map_or_else(
                        || "no limit".to_string(),
                        |w| format!("{}/{} per {}", w.used, w.max, window_name(w.window_ms)),
                    )
                };
                let in_flight = in_use.limits.concurrent.as_ref().map_or_else(
                    || in_use.in_flight.to_string(),
                    |c| format!("{}/{}", in_use.in_flight, c.max),
                );
                let next = match &in_use.hold {
                    None => "now".to_string(),
                    Some(hold) => match hold.until {
                        Some(at) => format!("{at} ({})", hold.setting),
                        None => format!("when a send finishes ({})", hold.setting),
                    },
                };
                [
                    used(&in_use.messages),
                    used(&in_use.recipients),
                    in_flight,
                    next,
                ]
            }
        };
        lines.push(first.into_iter().chain(rest).collect());
    }
    print(&terminal_safe(&table(&lines)))?;
    OK
}

fn row_json(row: &MailboxUse, now: Timestamp) -> Value {
    let in_use = match &row.limits {
        Err(problem) => {
            return json!({
                "mailbox": row.mailbox, "staff": row.staff, "provider": row.provider,
                "error": problem,
            });
        }
        Ok(in_use) => in_use,
    };
    let window = |w: &Option<WindowUse>| {
        w.as_ref().map(|w| {
            json!({ "setting": w.setting, "max": w.max, "window_seconds": w.window_ms / 1000, "used": w.used })
        })
    };
    let limits = &in_use.limits;
    json!({
        "mailbox": row.mailbox,
        "staff": row.staff,
        "provider": row.provider,
        "declares_limits": !limits.is_empty(),
        "messages": window(&in_use.messages),
        "recipients": window(&in_use.recipients),
        "recipients_per_message": limits.recipients_per_message.as_ref().map(|l| json!({"setting": l.setting, "max": l.max})),
        "concurrent": limits.concurrent.as_ref().map(|l| json!({"setting": l.setting, "max": l.max, "used": in_use.in_flight})),
        "in_flight": in_use.in_flight,
        "next_send": match &in_use.hold { None => json!(now), Some(h) => json!(h.until) },
        "held_by": in_use.hold.as_ref().map(|h| h.reason.clone()),
    })
}

/// Why a sending limit holds `record` now, if one does.
pub(crate) fn hold_reason(engine: &Engine, record: &EmailRecord) -> Option<String> {
    let lane = engine.lanes().get(&record.staff_id).ok()?;
    let mailbox = lane.mailbox(record).ok()?;
    let now = Timestamp::now();
    let usage = engine.outbox().usage(&mailbox, &lane.limits, now).ok()?;
    let hold = lane
        .limits
        .hold(&usage, u64::from(record.recipient_count), now)?;
    Some(format!("{} of mailbox {mailbox}", hold.reason))
}
