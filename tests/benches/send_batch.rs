//! send-batch benchmark (run with `cargo bench -p mailhost-tests --bench send_batch`).
//!
//! The release `mailhost` binary and the real Graph plugin send batches to the in-process
//! Microsoft 365 emulator with 50 ms added latency per request:
//!
//! - (a) N emails (default 10,000) from one mailbox, one `send-batch` process;
//! - (b) N emails from 4 mailboxes: 4 staff members, 4 `send-batch` processes at once sharing one
//!   mail.db, N/4 each.
//!
//! It reports emails/s against the ceiling (4 requests in flight per mailbox / 50 ms = 80
//! emails/s per mailbox), the host's CPU time per email (user + system of the `mailhost`
//! children, from `/proc/self/stat` cutime + cstime), and the peak RSS of a `mailhost` process
//! after 2,000 emails and at the end (memory should stay flat). Targets: at least 90% of the
//! ceiling, under 1 ms of host CPU per email, flat memory.
//!
//! The staff members sign in app-only (client credentials with the emulator's daemon app), so
//! any seeded mailbox can send. Environment: `MAILHOST_BENCH_EMAILS=N` for a quicker run,
//! `MAILHOST_BENCH_LATENCY_MS` to change the added latency.
//!
//! A benchmark, not a test: it prints figures and asserts nothing about speed.

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use mailhost_emulator::{Emulator, seed};
use mailhost_tests::bench::{children_cpu, env_or, peak_rss_kib, write_batch};
use mailhost_tests::{Home, assert_exit, plugin_path};

/// Requests in flight per mailbox (Graph's limit, and send-batch's default).
const IN_FLIGHT: f64 = 4.0;
/// Where the first memory sample is taken.
const EARLY: u64 = 2_000;

fn main() {
    let emails: u64 = env_or("MAILHOST_BENCH_EMAILS", 10_000);
    let latency: u64 = env_or("MAILHOST_BENCH_LATENCY_MS", 50);
    let emulator = Emulator::start().unwrap();
    let mailboxes = [
        seed::USER_UPN,
        seed::MFA_USER_UPN,
        seed::RECIPIENT_UPN,
        seed::SHARED_MAILBOX,
    ];
    let home = bench_home(&emulator, &mailboxes);
    println!(
        "send-batch benchmark: {emails} emails, {latency} ms added latency, release mailhost + graph_email"
    );
    println!(
        "command: cargo bench -p mailhost-tests --bench send_batch  (MAILHOST_BENCH_EMAILS={emails})\n"
    );
    // Warm up: the first token request and plugin load, outside the measurement.
    run_batches(&home, &emulator, &mailboxes[..1], 8, "warmup");
    emulator.set_latency(latency);
    for count in [1usize, 4] {
        let per = emails / count as u64;
        let result = run_batches(
            &home,
            &emulator,
            &mailboxes[..count],
            per,
            &format!("m{count}"),
        );
        let total = per * count as u64;
        let rate = total as f64 / result.wall.as_secs_f64();
        let ceiling = count as f64 * IN_FLIGHT * 1000.0 / latency as f64;
        println!(
            "{count} mailbox(es), {total} emails ({per} per mailbox, {count} send-batch process(es)):"
        );
        println!(
            "  wall {:.1} s, {rate:.1} emails/s, ceiling {ceiling:.0} emails/s: {:.1}% of the ceiling",
            result.wall.as_secs_f64(),
            100.0 * rate / ceiling
        );
        println!(
            "  host CPU {:.3} s user+sys in all, {:.3} ms per email",
            result.cpu.as_secs_f64(),
            result.cpu.as_secs_f64() * 1000.0 / total as f64
        );
        println!(
            "  peak RSS per process: {} KiB after {} emails, {} KiB at the end ({} emails)",
            result.rss_early_kib,
            EARLY.min(per),
            result.rss_end_kib,
            per
        );
        println!(
            "  emulator: {} throttled, most in flight per mailbox {:?}\n",
            result.throttled, result.max_in_flight
        );
    }
}

/// A home with the Graph plugin (app-only, daemon app) and one staff member per mailbox.
fn bench_home(emulator: &Emulator, mailboxes: &[&str]) -> Home {
    let home = Home::new();
    home.add_enabled(&plugin_path("graph_email"));
    for (key, value) in [
        ("ClientID", seed::DAEMON_CLIENT_ID),
        ("TenantID", seed::TENANT_ID),
        ("Authority", emulator.authority()),
        ("GraphEndpoint", emulator.graph_endpoint()),
        ("ClientSecret", seed::DAEMON_CLIENT_SECRET),
        // The ceiling measured is the 4-in-flight one, not Exchange's 30 a minute.
        ("MessagesPerMinute", "0"),
    ] {
        home.ok(&["config", "set", "graph-email", key, value]);
    }
    for (i, mailbox) in mailboxes.iter().enumerate() {
        home.ok(&[
            "staff",
            "add",
            &format!("s{i}"),
            "--provider",
            "graph-email",
            "--email",
            mailbox,
        ]);
    }
    home
}

#[derive(Debug)]
struct BatchResult {
    wall: Duration,
    cpu: Duration,
    rss_early_kib: u64,
    rss_end_kib: u64,
    throttled: u64,
    max_in_flight: Vec<usize>,
}

/// Runs one send-batch process per mailbox at once, `per` emails each, and measures them.
fn run_batches(
    home: &Home,
    emulator: &Emulator,
    mailboxes: &[&str],
    per: u64,
    tag: &str,
) -> BatchResult {
    let files: Vec<_> = (0..mailboxes.len())
        .map(|i| {
            let path = home.path().join(format!("{tag}-{i}.jsonl"));
            write_batch(&path, per, seed::EXTERNAL_RECIPIENT, &format!("{tag}-{i}"));
            path
        })
        .collect();
    emulator.reset_counters();
    let cpu_before = children_cpu();
    let started = Instant::now();
    let mut children: Vec<Child> = files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            home.command([
                "email",
                "send-batch",
                file.to_str().unwrap(),
                "--staff",
                &format!("s{i}"),
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let mut early = vec![0u64; pids.len()];
    let mut end = vec![0u64; pids.len()];
    let early_mark = EARLY.min(per) * mailboxes.len() as u64;
    let mut done = vec![false; pids.len()];
    while done.iter().any(|d| !d) {
        let delivered = emulator.counters().messages_delivered;
        for (i, pid) in pids.iter().enumerate() {
            if done[i] {
                continue;
            }
            if let Some(kib) = peak_rss_kib(*pid) {
                end[i] = kib;
                if delivered <= early_mark {
                    early[i] = kib;
                }
            }
            if children[i].try_wait().unwrap().is_some() {
                done[i] = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_exit(&output, 0, &["email", "send-batch", tag]);
    }
    let cpu = children_cpu().saturating_sub(cpu_before);
    let counters = emulator.counters();
    assert_eq!(
        counters.messages_delivered,
        per * mailboxes.len() as u64,
        "every email is delivered once"
    );
    BatchResult {
        wall,
        cpu,
        rss_early_kib: early.into_iter().max().unwrap_or(0),
        rss_end_kib: end.into_iter().max().unwrap_or(0),
        throttled: counters.throttled,
        max_in_flight: counters
            .max_concurrent_per_mailbox
            .values()
            .copied()
            .collect(),
    }
}
