//! The child side of `plugin check`: runs every step in order and emits one
//! [`Event`] per step on standard output. It never decides the outcome of a crash or hang:
//! if the library kills this process or stalls it, the parent sees the last `running` event.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use mailhost_plugin_api::{
    ApiVersion, LogLevel, Mailbox, ProviderError, Receipt, SendRequest, capability,
};

use super::messages::{self, Case};
use super::plan::{self, Plan};
use super::protocol::Event;
use super::sink::CaptureSink;
use super::{CheckResult, Options, PluginSummary, one_line};
use crate::config::home::Home;
use crate::plugins::loader::{self, Who};
use crate::plugins::provider::LoadedPlugin;
use crate::plugins::redaction::Patterns;

/// How many sends the concurrency check runs at once.
pub const CONCURRENT_SENDS: usize = 8;

fn running(check: &str, what: &str) {
    Event::Running {
        check: check.into(),
        what: what.into(),
    }
    .emit();
}

fn report(check: CheckResult) {
    Event::Check(check).emit();
}

/// Runs the checks of the library at `path`, using `work` (a private temporary folder made by
/// the parent) for the crash marker, automatic paths and the attachment.
pub fn run(path: &Path, work: &Path, options: &Options) {
    if let Some((plugin, sink)) = load(path, work) {
        run_loaded(&plugin, &sink, work, options);
    }
    Event::Done.emit();
}

/// The file and load checks; the loaded plugin and its sink when both pass.
fn load(path: &Path, work: &Path) -> Option<(LoadedPlugin, CaptureSink)> {
    running("file", "while checking the file");
    let who = Who::Library(path.to_path_buf());
    let print = match loader::fingerprint(&who, path) {
        Ok(print) => print,
        Err(e) => {
            report(CheckResult::fail("file", e.to_string()));
            return None;
        }
    };
    report(CheckResult::pass(
        "file",
        format!(
            "a regular file not writable by other users; SHA-256 {}",
            print.sha256
        ),
    ));
    running(
        "load",
        "while loading (API version, layout, constructor, init, describe)",
    );
    let home = match Home::open(&work.join("home")) {
        Ok(home) => home,
        Err(e) => {
            report(CheckResult::fail(
                "load",
                format!("cannot prepare the check's work folder: {e}"),
            ));
            return None;
        }
    };
    let sink = CaptureSink::new();
    match loader::open_unregistered(
        &home,
        path,
        &print.sha256,
        sink.clone().into_box(),
        LogLevel::Trace,
    ) {
        Ok(plugin) => {
            report(CheckResult::pass(
                "load",
                format!(
                    "built against plugin API {}, accepted by this host's {}; layout, constructor, init and describe succeeded",
                    plugin.api_version(),
                    ApiVersion::current()
                ),
            ));
            Event::Plugin(PluginSummary {
                name: plugin.name().to_string(),
                version: plugin.info().version.to_string(),
                api_version: plugin.api_version().to_string(),
            })
            .emit();
            Some((plugin, sink))
        }
        Err(e) => {
            report(CheckResult::fail("load", e.to_string()));
            None
        }
    }
}

fn run_loaded(plugin: &LoadedPlugin, sink: &CaptureSink, work: &Path, options: &Options) {
    super::metadata::check(plugin.info())
        .into_iter()
        .for_each(report);
    report(optional_functions(plugin));
    let plan = match plan::build(plugin.info(), &options.settings, work) {
        Ok(plan) => plan,
        Err(e) => {
            Event::Usage {
                message: e.to_string(),
            }
            .emit();
            return;
        }
    };
    Event::Secrets {
        values: plan
            .canaries
            .iter()
            .map(|c| (c.what.clone(), c.value.clone()))
            .collect(),
    }
    .emit();
    let Some((attachment, size)) = prepare(work) else {
        return;
    };
    report(CheckResult::pass(
        "send-setup",
        if plan.notes.is_empty() {
            "settings: defaults only; staff 'check-staff' with a password".to_string()
        } else {
            format!(
                "settings: {}; staff 'check-staff' with a password",
                plan.notes.join(", ")
            )
        },
    ));
    let from = Mailbox::new(&plan.staff.email, &plan.staff.display_name);
    for case in messages::cases(&from, &attachment, size) {
        let Case {
            name,
            what,
            message,
        } = case;
        running(name, &format!("during send of {what}"));
        let result = plugin.send(&request(&plan, message));
        report(judge_send(name, result));
    }
    running(
        "panic-containment",
        "during send of the panic probe (no recipients, missing attachment)",
    );
    let probe = messages::hostile(&work.join("missing-attachment.bin"));
    report(judge_probe(plugin.send(&request(&plan, probe))));
    running(
        "concurrency",
        &format!("during {CONCURRENT_SENDS} concurrent sends"),
    );
    report(concurrency(plugin, &plan, &from));
    report(leaks(sink, &plan));
}

fn request(plan: &Plan, message: mailhost_plugin_api::Message) -> SendRequest {
    SendRequest {
        settings: plan.settings.clone().into(),
        staff: plan.staff.clone(),
        message,
    }
}

/// Creates the output folder and the attachment; reports a failed setup check otherwise.
fn prepare(work: &Path) -> Option<(std::path::PathBuf, u64)> {
    let attachment = work.join("check-attachment.txt");
    let content = "An attachment written by `mailhost plugin check`.\nZweite Zeile ✓\n";
    match fs::create_dir_all(work.join("out")).and_then(|()| fs::write(&attachment, content)) {
        Ok(()) => Some((attachment, content.len() as u64)),
        Err(e) => {
            report(CheckResult::fail(
                "send-setup",
                format!(
                    "cannot write the check's files in {}: {e}; check the temporary folder ($TMPDIR)",
                    work.display()
                ),
            ));
            None
        }
    }
}

fn optional_functions(plugin: &LoadedPlugin) -> CheckResult {
    let (sign_in, sign_out) = plugin.sign_in_functions();
    let declared = plugin.info().has_capability(capability::SIGN_IN);
    let name = "optional-functions";
    match (sign_in, sign_out, declared) {
        (true, true, true) => CheckResult::pass(
            name,
            "sign_in and sign_out present (API 1.1); capability 'sign-in' declared",
        ),
        (true, true, false) => CheckResult::pass(
            name,
            "sign_in and sign_out present (API 1.1); capability 'sign-in' not declared, so `mailhost login` gets the default 'unsupported' answer",
        ),
        (false, false, false) => CheckResult::pass(
            name,
            format!(
                "sign_in and sign_out absent (built against plugin API {})",
                plugin.api_version()
            ),
        ),
        (_, _, true) => CheckResult::fail(
            name,
            format!(
                "capability 'sign-in' is declared but sign_in is {} and sign_out is {}: rebuild against mailhost-plugin-api 1.1 or later with export_provider!",
                present(sign_in),
                present(sign_out)
            ),
        ),
        _ => CheckResult::fail(
            name,
            format!(
                "sign_in is {} but sign_out is {}: a library has both or neither; build the module with export_provider!",
                present(sign_in),
                present(sign_out)
            ),
        ),
    }
}

fn present(yes: bool) -> &'static str {
    if yes { "present" } else { "missing" }
}

/// What is wrong with an error that crossed the boundary, if anything.
fn malformed(error: &ProviderError) -> Option<String> {
    if !error.kind.is_known() {
        Some(format!(
            "refused with an unknown error kind (number {}): use an ErrorKind constant",
            error.kind.as_u8()
        ))
    } else if error.message.trim().is_empty() {
        Some(format!(
            "refused with kind {} but an empty message: say what happened and what to change",
            error.kind
        ))
    } else {
        None
    }
}

fn refused(error: &ProviderError) -> String {
    format!(
        "refused with kind {}: {}",
        error.kind,
        one_line(&error.to_string(), 200)
    )
}

fn is_panic(error: &ProviderError) -> bool {
    error.code.as_str() == "panic"
}

fn judge_send(name: &str, result: Result<Receipt, ProviderError>) -> CheckResult {
    match result {
        Ok(receipt) => {
            let detail = if receipt.detail.is_empty() {
                receipt.message_id.as_str()
            } else {
                receipt.detail.as_str()
            };
            CheckResult::pass(name, format!("sent: {}", one_line(detail, 160)))
        }
        Err(e) if is_panic(&e) => CheckResult::fail(
            name,
            format!(
                "{} (contained by the export helpers): return a ProviderError instead of panicking",
                one_line(&e.message, 200)
            ),
        ),
        Err(e) => match malformed(&e) {
            Some(problem) => CheckResult::fail(name, problem),
            None => CheckResult::pass(name, refused(&e)),
        },
    }
}

fn judge_probe(result: Result<Receipt, ProviderError>) -> CheckResult {
    let name = "panic-containment";
    match result {
        Ok(_) => CheckResult::warn(
            name,
            "the probe (no recipients, no From, a missing attachment, an empty header name) was accepted as sent: validate the message and refuse it with an invalid-message error",
        ),
        Err(e) if is_panic(&e) => CheckResult::warn(
            name,
            format!(
                "the probe made the provider panic; the export helpers contained it and returned an internal error, but the provider should refuse bad input with an error: {}",
                one_line(&e.message, 160)
            ),
        ),
        Err(e) => match malformed(&e) {
            Some(problem) => CheckResult::fail(name, problem),
            None => CheckResult::pass(
                name,
                format!("errors come back as values: the probe was {}", refused(&e)),
            ),
        },
    }
}

/// Sends [`CONCURRENT_SENDS`] messages at once. Each finished send is reported as progress,
/// so a provider that serialises sends (one sign-in at a time) is not taken for a hung one.
fn concurrency(plugin: &LoadedPlugin, plan: &Plan, from: &Mailbox) -> CheckResult {
    let started = Instant::now();
    let finished = AtomicUsize::new(0);
    let results: Vec<Result<Receipt, ProviderError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONCURRENT_SENDS)
            .map(|i| {
                let request = request(plan, messages::base(&format!("concurrent-{i}"), from));
                let finished = &finished;
                scope.spawn(move || {
                    let result = plugin.send(&request);
                    let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
                    running(
                        "concurrency",
                        &format!("during {CONCURRENT_SENDS} concurrent sends ({done} finished)"),
                    );
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ProviderError::internal("the sending thread panicked").with_code("panic"))
                })
            })
            .collect()
    });
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for result in &results {
        let outcome = match result {
            Ok(_) => "sent".to_string(),
            Err(e) if is_panic(e) => {
                problems.push(format!("a send panicked: {}", one_line(&e.message, 120)));
                "panicked".into()
            }
            Err(e) => {
                if let Some(problem) = malformed(e) {
                    problems.push(problem);
                }
                format!("refused ({})", e.kind)
            }
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let detail = format!(
        "{CONCURRENT_SENDS} concurrent sends completed in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    if problems.is_empty() {
        CheckResult::pass("concurrency", detail)
    } else {
        problems.dedup();
        CheckResult::fail("concurrency", format!("{detail}; {}", problems.join("; ")))
    }
}

fn leaks(sink: &CaptureSink, plan: &Plan) -> CheckResult {
    let captured = sink.captured();
    let mut problems: Vec<String> = Vec::new();
    // The host's own redactor: raw, hex, base64, percent-encoded, split across hex-dump rows.
    let patterns: Vec<Patterns> = plan
        .canaries
        .iter()
        .map(|c| Patterns::new([c.value.as_str()]))
        .collect();
    for said in &captured.said {
        for (canary, found) in plan.canaries.iter().zip(&patterns) {
            if found.finds(&said.text) {
                let problem = format!("a {} contains {}", said.channel, canary.what);
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    let logs = captured
        .said
        .iter()
        .filter(|s| s.channel.starts_with("log"))
        .count();
    let notes = captured.said.len() - logs;
    let calls = captured.secret_calls.len();
    if problems.is_empty() {
        CheckResult::pass(
            "no-secrets-in-logs",
            format!(
                "{logs} log records and {notes} user messages captured, none with the staff password or a secret value; {calls} secret-store calls"
            ),
        )
    } else {
        CheckResult::fail(
            "no-secrets-in-logs",
            format!(
                "{}: never log or show secrets (log that one is set, not its value)",
                problems.join("; ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use mailhost_plugin_api::ErrorKind;

    use super::*;
    use crate::plugins::check::Status;

    #[test]
    fn sends_pass_when_sent_or_refused_well() {
        assert_eq!(judge_send("s", Ok(Receipt::default())).status, Status::Pass);
        let c = judge_send("s", Err(ProviderError::transient("connection refused")));
        assert_eq!(
            (c.status, c.detail.as_str()),
            (
                Status::Pass,
                "refused with kind transient: connection refused"
            )
        );
        assert_eq!(
            judge_send("s", Err(ProviderError::transient(" "))).status,
            Status::Fail
        );
        let unknown = ProviderError::new(ErrorKind::from_u8(99), "x");
        assert!(
            judge_send("s", Err(unknown))
                .detail
                .contains("unknown error kind (number 99)")
        );
        let panic = ProviderError::internal("boom").with_code("panic");
        assert_eq!(judge_send("s", Err(panic.clone())).status, Status::Fail);
        assert_eq!(judge_probe(Err(panic)).status, Status::Warn);
        assert_eq!(
            judge_probe(Err(ProviderError::invalid_message("no recipients"))).status,
            Status::Pass
        );
    }
}
