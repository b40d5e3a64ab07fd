//! `mailhost sendmail` (and `sendmail`, through a symlink to the `mailhost` binary): an RFC
//! 5322 message on standard input, sent through the delivery engine like every other email,
//! with sendmail's flags ([`args`]) and exit statuses ([`exit`]).
//!
//! The steps: parse the flags; read the message ([`input`]); read its From and recipients and
//! choose the staff member and envelope ([`plan`]); hand the whole message to
//! [`Engine::submit_mime`](crate::delivery::engine::Engine::submit_mime), which checks it, spools it and records it before any provider
//! code runs; then [`Engine::send_now`](crate::delivery::engine::Engine::send_now) sends it, waiting through short limit holds and
//! retries. Nothing is recorded when the flags, the message or the staff member are wrong.

pub mod args;
pub mod exit;
pub mod input;
pub mod plan;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::config::home::Home;
use crate::config::staff;
use crate::delivery::engine::MimeSubmission;
use crate::delivery::mime;
use crate::delivery::outbox::{Door, Status};
use crate::error::Error;
use exit::Exit;

/// The environment variable naming the sending staff member.
pub const STAFF_ENV: &str = "MAILHOST_STAFF";

/// How long `sendmail` waits for its email to go (limit holds, short retries) before it leaves
/// it queued and exits 75, unless `--max-wait` says otherwise (the same as `email send`).
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// Runs sendmail with `argv` (without the program name); `home` is `--home` given before the
/// `sendmail` word, or `$MAILHOST_HOME`, and `allow_unsafe` the global
/// `--allow-unsafe-permissions`. Prints its own lines on stderr (and, with `-v`, the outcome
/// on stdout) and returns the sysexits status.
pub fn run(argv: Vec<String>, home: Option<&Path>, allow_unsafe: bool) -> u8 {
    match execute(argv, home, allow_unsafe) {
        Ok(exit) | Err(exit) => {
            if let Some(line) = &exit.message {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "mailhost: {line}");
            }
            exit.code
        }
    }
}

fn execute(argv: Vec<String>, home: Option<&Path>, allow_unsafe: bool) -> Result<Exit, Exit> {
    let args = args::parse(argv).map_err(Exit::usage)?;
    if args.help {
        let _ = std::io::stdout().lock().write_all(args::HELP.as_bytes());
        return Ok(Exit::ok());
    }
    let max_wait = args
        .max_wait
        .as_deref()
        .map(crate::front::cli::parse_duration)
        .transpose()
        .map_err(|e| Exit::usage(format!("--max-wait: {e}")))?;
    let home_path = args.home.as_deref().or(home);
    let home = Home::resolve(home_path).map_err(|e| Exit::from_error(&Error::Home(e)))?;
    // Mail or secrets open to other users stop sendmail too (EX_CONFIG), as every command.
    let allow_unsafe = allow_unsafe || args.allow_unsafe_permissions;
    for warning in crate::config::permissions::enforce(&home, allow_unsafe)
        .map_err(|e| Exit::from_error(&Error::Permissions(e)))?
    {
        crate::front::commands::warn(&warning);
    }
    match crate::plugins::quarantine::recover(&home) {
        Ok(warnings) => warnings
            .iter()
            .for_each(|w| crate::front::commands::warn(w)),
        Err(e) => crate::front::commands::warn(&format!("cannot record a plugin crash: {e}")),
    }
    if args.flush {
        let outbox =
            crate::front::commands::email::open_store(&home).map_err(|e| Exit::from_error(&e))?;
        let engine = crate::front::commands::email::engine(&home, outbox)
            .map_err(|e| Exit::from_error(&e))?;
        return crate::front::commands::email::flush(
            &engine,
            max_wait.unwrap_or(Duration::ZERO),
            false,
        )
        .map(|code| Exit {
            code,
            message: None,
        })
        .map_err(|e| Exit::from_error(&e));
    }
    let raw = input::read_message(
        &mut std::io::stdin().lock(),
        args.ignore_dots,
        input::MAX_MESSAGE_BYTES,
    )
    .map_err(|e| match e {
        input::InputError::Read(_) => Exit::io(e.to_string()),
        input::InputError::TooLarge(_) => Exit::data(e.to_string()),
    })?;
    let read = mime::read_only(&raw).map_err(|e| Exit::from_error(&Error::Mime(e)))?;
    let staff_file = staff::load(&home).map_err(|e| Exit::from_error(&Error::Staff(e)))?;
    let env_staff = std::env::var(STAFF_ENV).ok();
    let plan = plan::plan(&args, env_staff.as_deref(), &read, &staff_file)?;

    let outbox =
        crate::front::commands::email::open_store(&home).map_err(|e| Exit::from_error(&e))?;
    let engine =
        crate::front::commands::email::engine(&home, outbox).map_err(|e| Exit::from_error(&e))?;
    let record = engine
        .submit_mime(&MimeSubmission {
            staff_id: plan.staff_id.clone(),
            envelope_from: plan.envelope_from.clone(),
            recipients: plan.recipients.clone(),
            mime: raw,
            door: Door::Sendmail,
            default_from: plan.default_from.clone(),
        })
        .map_err(|e| Exit::from_error(&e))?;
    let record = engine
        .send_now(&record.id, max_wait.unwrap_or(MAX_WAIT))
        .map_err(|e| Exit::from_error(&e))?;
    if args.verbose && record.status == Status::Sent {
        let _ = writeln!(
            std::io::stdout().lock(),
            "sent {} through {} to {}",
            record.id,
            record.provider,
            plan.recipients.join(", ")
        );
    }
    Ok(Exit::of_record(&record))
}
