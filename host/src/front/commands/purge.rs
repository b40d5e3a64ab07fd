//! `mailhost email purge [--older-than DURATION] [--status STATUS]... [--dry-run] [--json]`:
//! applies the home's retention policy once (see `delivery/retention.rs`).

use std::time::SystemTime;

use serde_json::json;

use super::{OK, print, print_json};
use crate::config::home::Home;
use crate::config::{settings, time};
use crate::delivery::outbox::{Outbox, Status};
use crate::delivery::retention::{self, Policy};
use crate::error::Error;
use crate::front::cli::PurgeArgs;

pub(super) fn run(home: &Home, outbox: &Outbox, args: &PurgeArgs) -> Result<u8, Error> {
    let mut policy = Policy::from_settings(&settings::load(home)?);
    if let Some(text) = &args.older_than {
        let age = time::parse_duration(text).ok_or_else(|| {
            Error::Usage(format!(
                "--older-than '{text}': give a duration such as 90d, 12h or 30m"
            ))
        })?;
        policy.delete_after = Some(age);
    }
    if !args.status.is_empty() {
        policy.statuses = args
            .status
            .iter()
            .map(|s| s.parse::<Status>().map_err(|e| Error::Usage(e.to_string())))
            .collect::<Result<_, _>>()?;
        policy.statuses.dedup();
    }
    policy.dry_run = args.dry_run;
    let report = retention::apply(home, outbox, &policy, SystemTime::now())?;
    if !args.dry_run {
        super::audit::note(
            home,
            "email purge",
            json!({
                "statuses": policy.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "older_than_seconds": policy.delete_after,
                "body_older_than_seconds": policy.drop_body_after,
                "records_deleted": report.records_deleted,
                "bodies_dropped": report.bodies_dropped,
            }),
        );
    }
    if args.json {
        print_json(&serde_json::to_value(&report).unwrap_or_default())?;
        return OK;
    }
    let verb = |done: &'static str, would: &'static str| if args.dry_run { would } else { done };
    print(&format!(
        "{} {} email record{}, {} the body of {}, {} {} bytes",
        verb("deleted", "would delete"),
        report.records_deleted,
        if report.records_deleted == 1 { "" } else { "s" },
        verb("dropped", "would drop"),
        report.bodies_dropped,
        verb("reclaimed", "would reclaim about"),
        report.bytes_reclaimed
    ))?;
    OK
}
