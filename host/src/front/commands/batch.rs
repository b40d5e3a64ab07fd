//! `mailhost email send-batch FILE.jsonl --staff ID [--per-mailbox N] [--json]`.
//!
//! Exit status: 0 when every line was sent (now, or by an earlier run); 1 when any line was not
//! (an email failed or its outcome is unknown, a line was invalid, or another process is sending
//! it); 2 when the batch could not run (the file cannot be read, unknown staff member, provider
//! not usable). A progress bar is drawn on a terminal; otherwise problems are printed one line
//! each with their line number, then a summary line (all on stderr). `--json` prints the summary
//! as one object on stdout instead.

use super::{OK, print_json};
use crate::config::home::Home;
use crate::delivery::batch::{self, BatchOptions, BatchTarget, Progress};
use crate::delivery::compose;
use crate::delivery::dispatch::Dispatcher;
use crate::delivery::outbox::Outbox;
use crate::error::{EXIT_FAILED, Error};
use crate::front::cli::BatchArgs;

pub(super) fn run(home: &Home, outbox: &Outbox, args: &BatchArgs) -> Result<u8, Error> {
    let dispatcher = Dispatcher::new(home)?;
    let route = dispatcher.prepare(&args.staff)?;
    let defaults = BatchOptions::default();
    let per_mailbox = usize::from(args.per_mailbox);
    let options = BatchOptions {
        per_mailbox,
        workers: defaults.workers.max(per_mailbox),
        queue: defaults.queue.max(per_mailbox * 4),
        progress: if args.json {
            Progress::Hidden
        } else {
            Progress::Auto
        },
        ..defaults
    };
    let target = BatchTarget {
        staff_id: route.staff_id(),
        provider: route.provider_name(),
    };
    let summary = batch::send_batch(outbox, &route, target, &args.file, &options, |draft| {
        route
            .compose(&draft.into(), &compose::new_email_id())
            .map_err(|e| e.to_string())
    })?;
    if args.json {
        let value = serde_json::to_value(&summary).map_err(|e| Error::Output(e.into()))?;
        print_json(&value)?;
    }
    if summary.is_success() {
        OK
    } else {
        Ok(EXIT_FAILED)
    }
}
