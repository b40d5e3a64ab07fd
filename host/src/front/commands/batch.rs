//! `mailhost email send-batch FILE.jsonl --staff ID [--max-wait D] [--workers N] [--json]`.
//!
//! Exit status: 0 when every line was sent (now, or by an earlier run); 75 when some emails are
//! left queued (a sending limit or a retry holds them past `--max-wait`; nothing else failed);
//! 1 when any line was not sent (an email failed or its outcome is unknown, a line was invalid,
//! or another process is sending it); 2 when the batch could not run (the file cannot be read,
//! unknown staff member). A progress bar is drawn on a terminal; otherwise problems are printed
//! one line each with their line number, then a summary line (all on stderr). `--json` prints
//! the summary as one object on stdout instead.

use std::sync::Arc;

use super::{OK, print_json};
use crate::config::home::Home;
use crate::delivery::batch::{self, BatchOptions, BatchTarget, Progress};
use crate::delivery::compose;
use crate::delivery::engine::{Engine, EngineOptions};
use crate::delivery::outbox::Outbox;
use crate::error::{EXIT_FAILED, EXIT_TEMPFAIL, Error};
use crate::front::cli::BatchArgs;

pub(super) fn run(home: &Home, outbox: Outbox, args: &BatchArgs) -> Result<u8, Error> {
    let engine = Arc::new(Engine::new(
        home,
        Arc::new(outbox),
        EngineOptions {
            workers: usize::from(args.workers),
            ..EngineOptions::default()
        },
    )?);
    let (sender, provider) = engine.sender_of(&args.staff)?;
    let options = BatchOptions {
        max_wait: args.max_wait,
        progress: if args.json {
            Progress::Hidden
        } else {
            Progress::Auto
        },
        queue_only: args.queue,
    };
    let target = BatchTarget {
        staff_id: &args.staff,
        provider: &provider,
    };
    let summary = batch::send_batch(&engine, target, &args.file, &options, |draft| {
        let id = compose::new_email_id();
        let draft = draft.into();
        let mut message = compose::compose(&draft, &sender, &id).map_err(|e| e.to_string())?;
        engine
            .check_recipients(&provider, message.recipients().count())
            .map_err(|e| e.to_string())?;
        let spooled = engine
            .spool()
            .store_attachments(&id, &message.attachments)
            .map_err(|e| e.to_string())?;
        message.attachments = spooled.into();
        Ok(message)
    })?;
    if args.json {
        let value = serde_json::to_value(&summary).map_err(|e| Error::Output(e.into()))?;
        print_json(&value)?;
    }
    if !summary.is_success() {
        Ok(EXIT_FAILED)
    } else if summary.queued > 0 && !args.queue {
        Ok(EXIT_TEMPFAIL)
    } else {
        OK
    }
}
