//! Graph provider benchmark (run with `cargo bench -p mailhost-tests --bench graph_send`).
//!
//! Everything runs against one in-process Microsoft 365 emulator serving HTTPS (its test CA is
//! given to `mailhost` as `SSL_CERT_FILE` and to Python as `REQUESTS_CA_BUNDLE`), signing in as
//! the seeded user with username + password (ROPC) both ways:
//!
//! 1. N emails (default 1,000) from one mailbox through the release `mailhost email send-batch
//!    FILE.jsonl --staff ID` (the host's loader, the real `graph_email` plugin, up to 4 in
//!    flight per mailbox), a NonInteractive staff member in a fresh home (no cached token), at
//!    0 ms and at 50 ms added latency. Reported: wall time of the process, emails/s, % of the
//!    ceiling (4 in flight / latency: 80 emails/s at 50 ms), token requests the emulator
//!    counted (target: exactly one), and the host's CPU time per email (user + sys of that one
//!    `mailhost` process, from `wait4`; target: under 0.5 ms).
//! 2. The same N sends by `tests/emulator/python/msal_send_loop.py` (MSAL for Python +
//!    `requests`, one at a time) at 0 ms and 50 ms, and the ratio mailhost / script (targets at
//!    50 ms: at least 3.6x, and at least 90% of the 80 emails/s ceiling). The script's rate is
//!    taken from its own timing of its send loop (interpreter start-up and imports excluded);
//!    mailhost's from the whole process (start-up, plugin load and sign-in included).
//! 3. The peak memory of `mailhost email send --attach` with one 100 MiB file (pseudo-random
//!    bytes): `ru_maxrss` of that one process from `wait4` (cross-checked against `VmHWM`
//!    polled from `/proc`), and the emulator's confirmation that the attachment arrived with
//!    the same size and SHA-256 (target: under 64 MiB peak RSS).
//!
//! Environment: `MAILHOST_BENCH_EMAILS=N` for a quicker run.
//!
//! A benchmark, not a test: it prints figures and asserts nothing about speed (it does stop if
//! an email is not delivered, since the figures would then mean nothing).

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::io::{Read, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mailhost_emulator::{Config, Counters, Emulator, seed};
use mailhost_tests::Home;
use mailhost_tests::bench::{env_or, peak_rss_kib, write_batch};
use mailhost_tests::homes::{STAFF, graph_home};
use serde_json::Value;

/// Requests in flight per mailbox (Graph's limit, and send-batch's default).
const IN_FLIGHT: f64 = 4.0;
/// The added latencies measured, in milliseconds.
const LATENCIES: [u64; 2] = [0, 50];
/// The size of the large attachment: 100 MiB.
const ATTACHMENT_BYTES: u64 = 100 * 1024 * 1024;

fn main() {
    let emails = env_or("MAILHOST_BENCH_EMAILS", 1_000);
    let tls = tempfile::tempdir().unwrap();
    let emulator = Emulator::start_with(Config {
        tls_dir: Some(tls.path().to_path_buf()),
        ..Config::default()
    })
    .unwrap();
    let ca = emulator.ca_pem_path().unwrap().to_path_buf();
    let python = mailhost_tests::python::venv_python(&["msal", "requests"]);
    let script = mailhost_tests::workspace_root().join("tests/emulator/python/msal_send_loop.py");
    let clients = Clients {
        emulator: &emulator,
        ca: &ca,
        python: &python,
        script: &script,
    };

    println!(
        "command: cargo bench -p mailhost-tests --bench graph_send   (MAILHOST_BENCH_EMAILS={emails})"
    );
    println!(
        "graph_send: {emails} emails from one mailbox ({}), ROPC sign-in, emulator over HTTPS at {}",
        seed::USER_UPN,
        emulator.base_url()
    );
    println!(
        "mailhost = release `mailhost email send-batch FILE --staff {STAFF}` (graph_email plugin, 4 in flight, fresh home)"
    );
    println!("script   = msal_send_loop.py (MSAL username/password + requests, one at a time)\n");

    // Warm-up, not measured: page cache for the binary, plugin and interpreter, .pyc files.
    clients.mailhost_batch(8, 0, "warmup");
    clients.script(3, 0);

    let mut rows = Vec::new();
    for latency in LATENCIES {
        rows.push(clients.mailhost_batch(emails, latency, &format!("lat{latency}")));
        rows.push(clients.script(emails, latency));
    }
    print_table(&rows, emails);

    let large = clients.large_attachment();
    print_attachment(&large);
}

/// What one measured client run did.
#[derive(Debug)]
struct Row {
    client: &'static str,
    latency_ms: u64,
    emails: u64,
    /// The client's send time: the whole `mailhost` process, or the script's own loop timing.
    wall: Duration,
    /// The whole process, measured here (the same as `wall` for mailhost).
    process_wall: Duration,
    usage: Usage,
    counters: Counters,
}

impl Row {
    fn rate(&self) -> f64 {
        self.emails as f64 / self.wall.as_secs_f64()
    }
    fn token_requests(&self) -> u64 {
        let t = &self.counters.token_requests;
        t.password
            + t.device_code
            + t.refresh_token
            + t.authorization_code
            + t.client_credentials
            + t.other
    }
}

/// The clients under test and the server they share.
struct Clients<'a> {
    emulator: &'a Emulator,
    ca: &'a Path,
    python: &'a Path,
    script: &'a Path,
}

impl Clients<'_> {
    /// A fresh home (nothing cached) with the Graph plugin and the NonInteractive staff member.
    fn home(&self) -> Home {
        graph_home(self.emulator)
    }

    /// A `mailhost` command in `home` that trusts the emulator's CA and talks to it directly.
    fn mailhost(&self, home: &Home, args: &[&str]) -> Command {
        let mut command = home.command(args);
        command.env("SSL_CERT_FILE", self.ca);
        direct(&mut command);
        command
    }

    /// Empties the emulator (mailboxes, tokens, counters) and sets the added latency.
    fn fresh_server(&self, latency_ms: u64) {
        self.emulator.reset();
        self.emulator.set_latency(latency_ms);
    }

    /// `mailhost email send-batch` of `emails` lines from a fresh home.
    fn mailhost_batch(&self, emails: u64, latency_ms: u64, tag: &str) -> Row {
        let home = self.home();
        let file = home.path().join(format!("{tag}.jsonl"));
        write_batch(&file, emails, seed::RECIPIENT_UPN, tag);
        self.fresh_server(latency_ms);
        let command = self.mailhost(
            &home,
            &[
                "email",
                "send-batch",
                file.to_str().unwrap(),
                "--staff",
                STAFF,
                "--json",
            ],
        );
        let run = run_measured(command);
        run.check(&format!("mailhost email send-batch ({tag})"));
        let counters = self.emulator.counters();
        assert_eq!(
            counters.messages_delivered, emails,
            "mailhost ({tag}) delivered every email once"
        );
        Row {
            client: "mailhost send-batch",
            latency_ms,
            emails,
            wall: run.wall,
            process_wall: run.wall,
            usage: run.usage,
            counters,
        }
    }

    /// `msal_send_loop.py` sending `emails` mails one at a time.
    fn script(&self, emails: u64, latency_ms: u64) -> Row {
        self.fresh_server(latency_ms);
        let mut command = Command::new(self.python);
        command
            .arg(self.script)
            .arg(format!("{}/{}", self.emulator.authority(), seed::TENANT_ID))
            .args([
                seed::MAILHOST_CLIENT_ID,
                seed::USER_UPN,
                seed::USER_PASSWORD,
            ])
            .arg(self.emulator.graph_endpoint())
            .arg(seed::RECIPIENT_UPN)
            .arg(emails.to_string())
            .env("REQUESTS_CA_BUNDLE", self.ca);
        direct(&mut command);
        let run = run_measured(command);
        run.check("msal_send_loop.py");
        let report: Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("msal_send_loop.py printed {:?}: {e}", run.stdout));
        assert_eq!(report["failures"], 0, "msal_send_loop.py: {report}");
        let counters = self.emulator.counters();
        assert_eq!(
            counters.messages_delivered, emails,
            "the script delivered every email once"
        );
        Row {
            client: "msal_send_loop.py",
            latency_ms,
            emails,
            wall: Duration::from_secs_f64(report["elapsed_seconds"].as_f64().unwrap()),
            process_wall: run.wall,
            usage: run.usage,
            counters,
        }
    }

    /// `mailhost email send --attach` with one 100 MiB file, from a fresh home.
    fn large_attachment(&self) -> Large {
        let dir = tempfile::tempdir_in(mailhost_tests::target_dir()).unwrap();
        let file = dir.path().join("large-attachment.bin");
        write_random_file(&file, ATTACHMENT_BYTES);
        let sha256 = sha256_hex(self.python, &file);
        let home = self.home();
        self.fresh_server(0);
        // Exchange counts attachments base64-inflated (100 MiB -> ~140 MB): above the 35 MB default.
        self.emulator.set_max_message_size(200 * 1024 * 1024);
        let subject = "graph_send 100 MiB attachment";
        let command = self.mailhost(
            &home,
            &[
                "email",
                "send",
                "--staff",
                STAFF,
                "--to",
                seed::RECIPIENT_UPN,
                "--subject",
                subject,
                "--body",
                "One large attachment.",
                "--attach",
                file.to_str().unwrap(),
                "--json",
            ],
        );
        let run = run_measured(command);
        run.check("mailhost email send --attach");
        let counters = self.emulator.counters();
        let inbox = self.emulator.inbox(seed::RECIPIENT_UPN);
        let arrived = inbox
            .iter()
            .find(|m| m.subject == subject)
            .unwrap_or_else(|| panic!("the large email did not arrive: {inbox:#?}"));
        assert_eq!(arrived.attachments.len(), 1, "{:#?}", arrived.attachments);
        let attachment = &arrived.attachments[0];
        Large {
            arrived_size: attachment.size,
            arrived_sha256: attachment.sha256.clone(),
            sha256,
            run,
            counters,
        }
    }
}

/// Removes proxy settings so a child talks to the loopback emulator directly.
fn direct(command: &mut Command) {
    for key in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(key);
    }
    command.env("NO_PROXY", "127.0.0.1,localhost");
}

/// The resources used by one child process (its own, not other children's).
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// User + system CPU time.
    cpu: Duration,
    /// System CPU time (part of `cpu`).
    sys: Duration,
    /// Peak resident set (`ru_maxrss`), KiB.
    max_rss_kib: u64,
    /// Peak resident set from `VmHWM` polled every 10 ms while it ran, KiB.
    polled_hwm_kib: u64,
}

/// One finished child process.
#[derive(Debug)]
struct Run {
    wall: Duration,
    usage: Usage,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn check(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `command` to completion and measures that one process: wall time from spawn to exit,
/// and its own CPU time and peak RSS from `wait4` (not `RUSAGE_CHILDREN`, which would mix in
/// every earlier child of this benchmark).
fn run_measured(mut command: Command) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let pid = child.id();
    let mut polled_hwm_kib = 0;
    let (status, usage) = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            polled_hwm_kib = polled_hwm_kib.max(kib);
        }
        if let Some(done) = try_wait4(pid) {
            break done;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    // Reaped by wait4 above; `Child` neither waits nor kills on drop.
    drop(child);
    let timeval = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Run {
        wall,
        usage: Usage {
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            sys: timeval(usage.ru_stime),
            max_rss_kib: usage.ru_maxrss as u64, // KiB on Linux
            polled_hwm_kib,
        },
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Reads a child's pipe to the end on its own thread, so a full pipe never blocks the child.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    })
}

/// `wait4(pid, WNOHANG)`: the exit status and resource usage of child `pid` once it has exited.
#[allow(unsafe_code)] // two plain syscalls on locals; libc has no safe wrapper
fn try_wait4(pid: u32) -> Option<(ExitStatus, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).unwrap();
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain integers, for which all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live, writable locals of the right types.
    let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    if got == pid {
        Some((ExitStatus::from_raw(status), usage))
    } else if got == 0 {
        None
    } else {
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::Interrupted,
            "wait4({pid}): {error}"
        );
        None
    }
}

/// Writes `bytes` pseudo-random bytes (xorshift64*, so nothing compresses) to `path`.
fn write_random_file(path: &Path, bytes: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
}

/// The lower-case hex SHA-256 of a file (Python's hashlib: the venv is here anyway).
fn sha256_hex(python: &Path, path: &Path) -> String {
    let output = Command::new(python)
        .args([
            "-c",
            "import hashlib, sys\nh = hashlib.sha256()\nwith open(sys.argv[1], 'rb') as f:\n    \
             for b in iter(lambda: f.read(1 << 20), b''):\n        h.update(b)\nprint(h.hexdigest())",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The 100 MiB attachment run.
#[derive(Debug)]
struct Large {
    run: Run,
    counters: Counters,
    sha256: String,
    arrived_size: u64,
    arrived_sha256: String,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_table(rows: &[Row], emails: u64) {
    println!(
        "{:<7} {:<20} {:>7} {:>8} {:>9} {:>8} {:>6} {:>10} {:>9} {:>6} {:>7}",
        "latency",
        "client",
        "emails",
        "wall s",
        "emails/s",
        "%ceil",
        "tokens",
        "CPU ms/em",
        "RSS MiB",
        "429s",
        "in-flt"
    );
    for row in rows {
        let ceiling = (row.latency_ms > 0).then(|| IN_FLIGHT * 1000.0 / row.latency_ms as f64);
        let percent = ceiling.map_or("-".to_string(), |c| {
            format!("{:.1}%", 100.0 * row.rate() / c)
        });
        let in_flight = row
            .counters
            .max_concurrent_per_mailbox
            .values()
            .max()
            .copied()
            .unwrap_or(0);
        println!(
            "{:<7} {:<20} {:>7} {:>8.2} {:>9.1} {:>8} {:>6} {:>10.3} {:>9.1} {:>6} {:>7}",
            format!("{} ms", row.latency_ms),
            row.client,
            row.emails,
            row.wall.as_secs_f64(),
            row.rate(),
            percent,
            row.token_requests(),
            row.usage.cpu.as_secs_f64() * 1000.0 / row.emails as f64,
            mib(row.usage.max_rss_kib),
            row.counters.throttled,
            in_flight,
        );
    }
    println!(
        "  (%ceil: of 4 in flight / latency = {:.0} emails/s at 50 ms; tokens: token-endpoint requests the emulator counted;",
        IN_FLIGHT * 1000.0 / 50.0
    );
    println!(
        "   CPU: user+sys of that one process / emails; script wall = its own loop timing, process wall:"
    );
    for row in rows.iter().filter(|r| r.client != "mailhost send-batch") {
        print!(
            " {} ms {:.2} s;",
            row.latency_ms,
            row.process_wall.as_secs_f64()
        );
    }
    println!(")\n");
    for latency in LATENCIES {
        let find = |client: &str| {
            rows.iter()
                .find(|r| r.latency_ms == latency && r.client == client)
                .unwrap()
        };
        let (host, script) = (find("mailhost send-batch"), find("msal_send_loop.py"));
        let ratio = host.rate() / script.rate();
        let host_cpu_ms = host.usage.cpu.as_secs_f64() * 1000.0 / emails as f64;
        let host_sys_ms = host.usage.sys.as_secs_f64() * 1000.0 / emails as f64;
        print!(
            "at {latency:>2} ms: mailhost/script {ratio:.2}x; mailhost {} token request(s) [target 1: {}], {host_cpu_ms:.3} ms CPU/email \
             ({host_sys_ms:.3} sys) [target < 0.5: {}]",
            host.token_requests(),
            verdict(host.token_requests() == 1),
            verdict(host_cpu_ms < 0.5),
        );
        if latency > 0 {
            let ceiling = IN_FLIGHT * 1000.0 / latency as f64;
            let percent = 100.0 * host.rate() / ceiling;
            print!(
                ", ratio [target >= 3.6x: {}], {percent:.1}% of ceiling [target >= 90%: {}]",
                verdict(ratio >= 3.6),
                verdict(percent >= 90.0)
            );
        }
        println!();
    }
    println!();
}

fn print_attachment(large: &Large) {
    let usage = large.run.usage;
    let intact = large.arrived_size == ATTACHMENT_BYTES && large.arrived_sha256 == large.sha256;
    println!(
        "100 MiB attachment: `mailhost email send --staff {STAFF} --attach <{ATTACHMENT_BYTES} bytes> --json` (0 ms latency)"
    );
    println!(
        "  peak RSS {:.1} MiB (wait4 ru_maxrss; VmHWM polled {:.1} MiB) [target < 64 MiB: {}]",
        mib(usage.max_rss_kib),
        mib(usage.polled_hwm_kib),
        verdict(usage.max_rss_kib.max(usage.polled_hwm_kib) < 64 * 1024)
    );
    println!(
        "  wall {:.2} s, CPU {:.3} s user+sys, {} upload PUTs, {} token request(s)",
        large.run.wall.as_secs_f64(),
        usage.cpu.as_secs_f64(),
        large.counters.upload_puts,
        large.counters.token_requests.password
            + large.counters.token_requests.refresh_token
            + large.counters.token_requests.other
    );
    println!(
        "  emulator: arrived {} bytes, sha256 {} [{}]",
        large.arrived_size,
        large.arrived_sha256,
        if intact {
            "same size and sha256 as sent"
        } else {
            "DIFFERENT from what was sent"
        }
    );
    if !intact {
        println!(
            "  sent:    {ATTACHMENT_BYTES} bytes, sha256 {}",
            large.sha256
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
