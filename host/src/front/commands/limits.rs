//! `mailhost limits [--json]`: per sending mailbox, what its limits allow now and when the next
//! send may go, from the ledger every process on the home shares.

use serde_json::{Value, json};

use super::{OK, print, print_json, table, terminal_safe};
use crate::config::home::Home;
use crate::config::staff;
use crate::delivery::engine::Engine;
use crate::delivery::limits::{LimitValue, Limits, window_name};
use crate::delivery::outbox::{EmailRecord, Timestamp};
use crate::error::Error;

/// One sending mailbox and whose it is.
struct Row {
    mailbox: String,
    staff: String,
    provider: String,
    limits: Option<Limits>,
    problem: Option<String>,
}

pub(super) fn run(home: &Home, json: bool) -> Result<u8, Error> {
    let outbox = super::email::open_store(home)?;
    let engine = super::email::engine(home, outbox)?;
    let now = Timestamp::now();
    let mut rows: Vec<Row> = Vec::new();
    let staff_file = staff::load(home)?;
    let mut pairs: Vec<(String, String)> = staff_file
        .staff
        .iter()
        .map(|(id, member)| (member.email.to_ascii_lowercase(), id.clone()))
        .collect();
    for pair in engine
        .outbox()
        .recent_mailboxes(Timestamp(now.millis() - DAY_MS))?
    {
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    pairs.sort();
    for (mailbox, staff_id) in pairs {
        let provider = staff_file
            .staff
            .get(&staff_id)
            .map(|m| m.provider.clone())
            .unwrap_or_default();
        let (limits, problem) = match engine.lanes().get(&staff_id) {
            Ok(lane) => (Some(lane.limits.clone()), None),
            Err(reason) => (None, Some(reason)),
        };
        rows.push(Row {
            mailbox,
            staff: staff_id,
            provider,
            limits,
            problem,
        });
    }
    if json {
        let list = rows
            .iter()
            .map(|row| row_json(&engine, row, now))
            .collect::<Result<Vec<_>, Error>>()?;
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
        let Some(limits) = &row.limits else {
            lines.push(vec![
                row.mailbox.clone(),
                row.staff.clone(),
                row.provider.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!(
                    "provider not usable: {}",
                    row.problem.clone().unwrap_or_default()
                ),
            ]);
            continue;
        };
        if limits.is_empty() {
            lines.push(vec![
                row.mailbox.clone(),
                row.staff.clone(),
                row.provider.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "now (the provider declares no sending limits)".into(),
            ]);
            continue;
        }
        let usage = engine.outbox().usage(&row.mailbox, limits, now)?;
        let used = |limit: &Option<LimitValue>, recipients: bool| -> String {
            limit.as_ref().map_or_else(
                || "no limit".to_string(),
                |l| {
                    let since = now.millis() - l.window_ms;
                    let in_window = usage.sends.iter().filter(|(at, _)| at.millis() > since);
                    let n: u64 = if recipients {
                        in_window.map(|(_, n)| n).sum()
                    } else {
                        in_window.count() as u64
                    };
                    format!("{n}/{} per {}", l.max, window_name(l.window_ms))
                },
            )
        };
        let in_flight = limits.concurrent.as_ref().map_or_else(
            || usage.in_flight.to_string(),
            |c| format!("{}/{}", usage.in_flight, c.max),
        );
        let next = match limits.hold(&usage, 1, now) {
            None => "now".to_string(),
            Some(hold) => match hold.until {
                Some(at) => format!("{at} ({})", hold.setting),
                None => format!("when a send finishes ({})", hold.setting),
            },
        };
        lines.push(vec![
            row.mailbox.clone(),
            row.staff.clone(),
            row.provider.clone(),
            used(&limits.messages, false),
            used(&limits.recipients, true),
            in_flight,
            next,
        ]);
    }
    print(&terminal_safe(&table(&lines)))?;
    OK
}

const DAY_MS: i64 = 86_400_000;

fn row_json(engine: &Engine, row: &Row, now: Timestamp) -> Result<Value, Error> {
    let Some(limits) = &row.limits else {
        return Ok(json!({
            "mailbox": row.mailbox, "staff": row.staff, "provider": row.provider,
            "error": row.problem,
        }));
    };
    let usage = engine.outbox().usage(&row.mailbox, limits, now)?;
    let count = |limit: &Option<LimitValue>, recipients: bool| {
        limit.as_ref().map(|l| {
            let since = now.millis() - l.window_ms;
            let in_window = usage.sends.iter().filter(|(at, _)| at.millis() > since);
            let used: u64 = if recipients {
                in_window.map(|(_, n)| n).sum()
            } else {
                in_window.count() as u64
            };
            json!({ "setting": l.setting, "max": l.max, "window_seconds": l.window_ms / 1000, "used": used })
        })
    };
    let hold = limits.hold(&usage, 1, now);
    Ok(json!({
        "mailbox": row.mailbox,
        "staff": row.staff,
        "provider": row.provider,
        "declares_limits": !limits.is_empty(),
        "messages": count(&limits.messages, false),
        "recipients": count(&limits.recipients, true),
        "recipients_per_message": limits.recipients_per_message.as_ref().map(|l| json!({"setting": l.setting, "max": l.max})),
        "concurrent": limits.concurrent.as_ref().map(|l| json!({"setting": l.setting, "max": l.max, "used": usage.in_flight})),
        "in_flight": usage.in_flight,
        "next_send": match &hold { None => json!(now), Some(h) => json!(h.until) },
        "held_by": hold.as_ref().map(|h| h.reason.clone()),
    }))
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
