//! The parent side of `plugin check`: runs the child, reads its events, enforces the
//! per-step timeout, and turns a death by signal, an exit or a stall into a failed check that
//! names the step. It also checks what the library printed itself: nothing on standard output
//! (that would corrupt `--json` output) and no secret anywhere.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::protocol::Event;
use super::{CheckResult, Options, PluginSummary, Report, one_line};
use crate::error::Error;
use crate::plugins::isolation::ending;
use crate::plugins::redaction::Patterns;

/// Most lines kept of what the library printed itself, per stream.
const MAX_LINES: usize = 10_000;

/// What the child told the parent, and how it ended.
#[derive(Debug, Default)]
struct Run {
    checks: Vec<CheckResult>,
    plugin: Option<PluginSummary>,
    running: Option<(String, String)>,
    secrets: Option<Vec<(String, String)>>,
    usage: Option<String>,
    done: bool,
    stray_stdout: Vec<String>,
    timed_out: bool,
}

/// Runs the checks of `path` (already known to be a readable regular file) in a child process.
///
/// # Errors
/// The checker itself cannot run (temporary folder, its own executable), or the author's
/// `--setting` values do not fit the plugin's declarations (exit 2).
pub fn run(path: &Path, options: &Options) -> Result<Report, Error> {
    let work = tempfile::Builder::new()
        .prefix("mailhost-check-")
        .tempdir()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot create a temporary folder for the check: {e}; set TMPDIR to a writable folder"
            ))
        })?;
    let exe = std::env::current_exe().map_err(|e| {
        Error::Usage(format!(
            "cannot find the mailhost executable to run the check in: {e}"
        ))
    })?;
    let mut command = Command::new(exe);
    command
        .arg("--home")
        .arg(work.path().join("home"))
        .args(["plugin", "check"])
        .arg(path)
        .arg("--child-work")
        .arg(work.path())
        .arg("--timeout")
        .arg(options.timeout_secs.to_string());
    for (key, value) in &options.settings {
        command.arg("--setting").arg(format!("{key}={value}"));
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Usage(format!("cannot start the checker's child process: {e}")))?;
    let stderr = collect_stderr(&mut child);
    let mut run = read_events(&mut child, Duration::from_secs(options.timeout_secs));
    let status = wait(&mut child, Duration::from_secs(options.timeout_secs))?;
    // Processes the library started may hold the pipe open long after the child ended: take
    // what arrived, without waiting for them.
    let _ = stderr.1.recv_timeout(PIPE_GRACE);
    let stderr = std::mem::take(&mut *stderr.0.lock().unwrap_or_else(|p| p.into_inner()));
    if let Some(message) = run.usage.take() {
        return Err(Error::Usage(message));
    }
    if !run.done {
        run.checks
            .push(ended_early(&run, status, options.timeout_secs));
    }
    if let Some(secrets) = &run.secrets {
        run.checks
            .extend(output_checks(&run.stray_stdout, &stderr, secrets));
    }
    Ok(Report::new(
        path.display().to_string(),
        run.plugin,
        run.checks,
    ))
}

/// Waits for the child to end; one that closed its output but lingers longer than `grace` is
/// killed.
fn wait(child: &mut Child, grace: Duration) -> Result<ExitStatus, Error> {
    let failed = |e: std::io::Error| {
        Error::Failed(format!("cannot wait for the checker's child process: {e}"))
    };
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait().map_err(failed)? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            if let Err(e) = child.kill() {
                log::debug!("cannot stop the checker's child process: {e}");
            }
            return child.wait().map_err(failed);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// How long output still arriving is waited for once the child has ended.
const PIPE_GRACE: Duration = Duration::from_millis(300);

/// What the child wrote on standard error so far, and a signal when the pipe closed.
type Collected = (Arc<Mutex<Vec<String>>>, mpsc::Receiver<()>);

/// Reads the child's standard error in a thread (bounded), so it can never block on a full pipe.
fn collect_stderr(child: &mut Child) -> Collected {
    let stderr = child.stderr.take();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (done, closed) = mpsc::channel();
    let into = lines.clone();
    thread::spawn(move || {
        if let Some(stderr) = stderr {
            for line in read_lines(stderr).take(MAX_LINES) {
                into.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        }
        let _ = done.send(());
    });
    (lines, closed)
}

fn read_lines(stream: impl Read) -> impl Iterator<Item = String> {
    let mut reader = BufReader::new(stream);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
        }
    })
}

/// Reads events until the child closes its output or a step outlasts `timeout` (then the
/// child is killed).
fn read_events(child: &mut Child, timeout: Duration) -> Run {
    let mut run = Run::default();
    let Some(stdout) = child.stdout.take() else {
        return run;
    };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in read_lines(stdout) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut step_started = Instant::now();
    let mut ended_at: Option<Instant> = None;
    loop {
        let left = timeout.saturating_sub(step_started.elapsed());
        // Once the child has ended, only what is already in the pipe counts: a process the
        // library started may keep the pipe open for much longer.
        if let Some(at) = ended_at {
            if at.elapsed() > PIPE_GRACE {
                break;
            }
        } else if let Ok(Some(_)) = child.try_wait() {
            ended_at = Some(Instant::now());
        }
        match rx.recv_timeout(left.min(Duration::from_millis(50))) {
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => continue,
            Ok(line) => match Event::from_line(&line) {
                Some(event) => {
                    step_started = Instant::now();
                    apply(&mut run, event);
                }
                None if run.stray_stdout.len() < MAX_LINES => run.stray_stdout.push(line),
                None => {}
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                run.timed_out = true;
                if let Err(e) = child.kill() {
                    log::debug!("cannot stop the checker's child process: {e}");
                }
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    run
}

fn apply(run: &mut Run, event: Event) {
    match event {
        Event::Running { check, what } => run.running = Some((check, what)),
        Event::Check(check) => {
            run.running = None;
            run.checks.push(check);
        }
        Event::Plugin(plugin) => run.plugin = Some(plugin),
        Event::Secrets { values } => run.secrets = Some(values),
        Event::Usage { message } => run.usage = Some(message),
        Event::Done => run.done = true,
    }
}

/// The failed check for a child that did not finish: stalled, killed by a signal or exited.
fn ended_early(run: &Run, status: ExitStatus, timeout: u64) -> CheckResult {
    let (check, what) = run
        .running
        .clone()
        .unwrap_or_else(|| ("load".into(), "while starting the check".into()));
    let rest = "; the remaining checks were not run";
    let detail = if run.timed_out {
        format!(
            "no answer within {timeout} s {what}: the provider hangs (or is slower than --timeout {timeout}){rest}"
        )
    } else if let Some(signal) = ending::signal_of(status) {
        format!(
            "the library crashed the process {what} (signal {signal}{}){rest}",
            signal_name(signal)
        )
    } else {
        match status.code() {
            Some(code) => {
                format!("the library ended the process with exit status {code} {what}{rest}")
            }
            None => format!("the process ended unexpectedly {what}{rest}"),
        }
    };
    CheckResult::fail(&check, detail)
}

/// `, SIGABRT` for well-known signals, else nothing.
fn signal_name(signal: i32) -> String {
    ending::signal_name(signal).map_or_else(String::new, |(name, _)| format!(", {name}"))
}

/// Checks of what the library printed itself: nothing on standard output, no secret anywhere.
fn output_checks(
    stray_stdout: &[String],
    stderr: &[String],
    secrets: &[(String, String)],
) -> Vec<CheckResult> {
    let quiet = if stray_stdout.is_empty() {
        CheckResult::pass(
            "quiet-stdout",
            "the library wrote nothing to standard output",
        )
    } else {
        CheckResult::fail(
            "quiet-stdout",
            format!(
                "the library wrote {} line(s) to standard output, which corrupts the host's --json output (first: '{}'): use the log macros or host::notify",
                stray_stdout.len(),
                one_line(&mask(&stray_stdout[0], secrets), 80)
            ),
        )
    };
    let mut leaks = Vec::new();
    for (stream, lines) in [
        ("standard output", stray_stdout),
        ("standard error", stderr),
    ] {
        // Joined, so a secret split across the rows of a hex dump is found too.
        let text = lines.join("\n");
        for (what, value) in secrets {
            if Patterns::new([value.as_str()]).finds(&text) {
                leaks.push(format!("{what} appears on {stream}"));
            }
        }
    }
    let secret_check = if leaks.is_empty() {
        CheckResult::pass(
            "no-secrets-in-output",
            "nothing the library printed contains a secret",
        )
    } else {
        CheckResult::fail(
            "no-secrets-in-output",
            format!("{}: never print secrets", leaks.join("; ")),
        )
    };
    vec![quiet, secret_check]
}

fn mask(line: &str, secrets: &[(String, String)]) -> String {
    secrets
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .fold(line.to_string(), |line, (_, v)| {
            line.replace(v.as_str(), "***")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::check::Status;

    #[test]
    fn printed_secrets_and_stdout_noise_fail() {
        let secrets = vec![("the staff password".to_string(), "pw-1234abcd".to_string())];
        let checks = output_checks(&["password pw-1234abcd".into()], &[], &secrets);
        assert_eq!(checks[0].status, Status::Fail);
        assert!(
            checks[0].detail.contains("password ***"),
            "{}",
            checks[0].detail
        );
        assert_eq!(
            checks[1].detail,
            "the staff password appears on standard output: never print secrets"
        );
        let checks = output_checks(&[], &["INFO ok".into()], &secrets);
        assert!(checks.iter().all(|c| c.status == Status::Pass));
    }

    #[cfg(unix)]
    #[test]
    fn crashes_name_the_step_and_the_signal() {
        use std::os::unix::process::ExitStatusExt;
        let run = Run {
            running: Some(("send:html".into(), "during send of an HTML message".into())),
            ..Run::default()
        };
        let check = ended_early(&run, ExitStatus::from_raw(6), 30);
        assert_eq!(check.name, "send:html");
        assert!(
            check.detail.starts_with(
                "the library crashed the process during send of an HTML message (signal 6, SIGABRT)"
            ),
            "{}",
            check.detail
        );
        let stalled = Run {
            timed_out: true,
            ..run
        };
        assert!(
            ended_early(&stalled, ExitStatus::from_raw(9), 2)
                .detail
                .starts_with("no answer within 2 s during send")
        );
    }
}
