//! Delivery-engine benchmark (run with `cargo bench -p mailhost-tests --bench engine`).
//!
//! The release `mailhost` binary and the real Graph plugin (app-only sign-in with the
//! emulator's daemon app) against the in-process Microsoft 365 emulator, which watches the same
//! sending limits and counts every breach:
//!
//! - (a) limits: 200 one-recipient emails from one mailbox with `MessagesPerMinute` 600 on both
//!   sides, through `send-batch`. The engine spaces a mailbox's sends evenly (one every 60 s /
//!   600 = 100 ms), so the least time the limit allows for 200 sends is 199 × 100 ms = 19.9 s;
//!   the figure is the batch's wall time against that.
//! - (b) scale: `mailhost serve` with 200 mailboxes at `MessagesPerMinute` 150 each (500
//!   emails/s in all) and 100 ms added latency per request, 150 emails queued per mailbox
//!   (30,000): throughput against 500/s, breaches, the service's CPU per email (all of it,
//!   then the host process and its provider process apart), and its RSS after 5,000 and
//!   after 30,000 emails.
//!
//! Environment: `MAILHOST_BENCH_SCALE_MAILBOXES` and `MAILHOST_BENCH_SCALE_PER_MAILBOX` for a
//! smaller (b); `MAILHOST_BENCH_SKIP_SCALE=1` to run (a) only.
//!
//! A benchmark, not a test: it prints figures and asserts only that every email was delivered
//! once.

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailhost_emulator::{Emulator, SendingLimits, seed};
use mailhost_tests::bench::{env_or, process_cpu, rss_kib, write_batch};
use mailhost_tests::{Home, assert_exit, plugin_path};

fn main() {
    println!(
        "delivery-engine benchmark: release mailhost + graph_email, app-only, emulator on loopback"
    );
    println!("command: cargo bench -p mailhost-tests --bench engine\n");
    limits();
    if env_or("MAILHOST_BENCH_SKIP_SCALE", 0) == 0 {
        scale(
            env_or("MAILHOST_BENCH_SCALE_MAILBOXES", 200),
            env_or("MAILHOST_BENCH_SCALE_PER_MAILBOX", 150),
        );
    }
}

/// A home whose staff members `s0..` send app-only from `mailboxes`, with `per_minute` as
/// their MessagesPerMinute.
fn home_for(emulator: &Emulator, mailboxes: &[String], per_minute: u64) -> Home {
    let home = Home::new();
    home.add_enabled(&plugin_path("graph_email"));
    let per_minute = per_minute.to_string();
    for (key, value) in [
        ("ClientID", seed::DAEMON_CLIENT_ID),
        ("TenantID", seed::TENANT_ID),
        ("Authority", emulator.authority()),
        ("GraphEndpoint", emulator.graph_endpoint()),
        ("ClientSecret", seed::DAEMON_CLIENT_SECRET),
        ("MessagesPerMinute", per_minute.as_str()),
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

fn limits() {
    let emulator = Emulator::start().unwrap();
    emulator.set_sending_limits(SendingLimits {
        messages_per_minute: Some(600),
        recipients_per_day: Some(10_000),
    });
    let mailboxes = vec![seed::USER_UPN.to_string(), seed::MFA_USER_UPN.to_string()];
    let home = home_for(&emulator, &mailboxes, 600);
    // Warm up the token cache from the other mailbox, so (a) measures sending only.
    let warm = home.path().join("warm.jsonl");
    write_batch(&warm, 1, seed::EXTERNAL_RECIPIENT, "warm");
    home.ok(&[
        "email",
        "send-batch",
        warm.to_str().unwrap(),
        "--staff",
        "s1",
    ]);
    emulator.reset_counters();

    let file = home.path().join("limits.jsonl");
    write_batch(&file, 200, seed::EXTERNAL_RECIPIENT, "limits");
    let started = Instant::now();
    let output = home.run(&[
        "email",
        "send-batch",
        file.to_str().unwrap(),
        "--staff",
        "s0",
        "--json",
    ]);
    let wall = started.elapsed();
    assert_exit(&output, 0, &["email", "send-batch", "limits"]);
    let counters = emulator.counters();
    assert_eq!(
        counters.messages_delivered, 200,
        "every email delivered once"
    );
    let least = Duration::from_millis(199 * 100);
    println!("(a) limits: 200 emails, one mailbox, MessagesPerMinute 600 on both sides");
    println!(
        "    wall {:.2} s; least the limit allows {:.2} s; ratio {:.3} ({:+.1}%)",
        wall.as_secs_f64(),
        least.as_secs_f64(),
        wall.as_secs_f64() / least.as_secs_f64(),
        (wall.as_secs_f64() / least.as_secs_f64() - 1.0) * 100.0
    );
    println!(
        "    breaches at the emulator: {}; throttled: {}\n",
        counters.limit_breaches.values().sum::<u64>(),
        counters.throttled
    );
}

fn scale(mailbox_count: u64, per_mailbox: u64) {
    const LATENCY_MS: u64 = 100;
    const PER_MINUTE: u64 = 150;
    let emulator = Emulator::start().unwrap();
    let mailboxes: Vec<String> = (0..mailbox_count)
        .map(|i| format!("bench{i:03}@{}", seed::TENANT_DOMAIN))
        .collect();
    for (i, mailbox) in mailboxes.iter().enumerate() {
        emulator.add_user_mailbox(mailbox, &format!("Bench {i}"));
    }
    emulator.set_sending_limits(SendingLimits {
        messages_per_minute: Some(PER_MINUTE),
        recipients_per_day: Some(10_000),
    });
    let home = home_for(&emulator, &mailboxes, PER_MINUTE);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "RequestTimeoutSeconds",
        "30",
    ]);
    // Queue every mailbox's emails (recorded only; nothing is sent yet).
    for i in 0..mailboxes.len() {
        let file = home.path().join(format!("q{i}.jsonl"));
        write_batch(
            &file,
            per_mailbox,
            seed::EXTERNAL_RECIPIENT,
            &format!("s{i}"),
        );
        home.ok(&[
            "email",
            "send-batch",
            file.to_str().unwrap(),
            "--staff",
            &format!("s{i}"),
            "--queue",
        ]);
    }
    let total = mailbox_count * per_mailbox;
    emulator.reset_counters();
    emulator.set_latency(LATENCY_MS);

    let mut child = home
        .command(["serve", "--workers", "160"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started = Instant::now();
    let pid = child.id();
    let early_mark = 5_000.min(total / 6);
    let mut rss_early = 0;
    let (rss_end, cpu_end, provider_cpu);
    let mut first_delivery: Option<Instant> = None;
    loop {
        let delivered = emulator.counters().messages_delivered;
        if delivered > 0 && first_delivery.is_none() {
            first_delivery = Some(Instant::now());
        }
        if rss_early == 0 && delivered >= early_mark {
            rss_early = rss_kib(pid).unwrap_or(0);
        }
        if delivered >= total {
            rss_end = rss_kib(pid).unwrap_or(0);
            cpu_end = process_cpu(pid).unwrap_or_default();
            provider_cpu = provider_processes(pid)
                .into_iter()
                .filter_map(process_cpu)
                .sum::<Duration>();
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the service is far too slow: {delivered} of {total} after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = started.elapsed();
    let from_first = first_delivery.map_or(wall, |t| t.elapsed());
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited {status}");
    // Read from /proc while both run: the host's own threads, and its provider process.
    let cpu_total = cpu_end + provider_cpu;
    let counters = emulator.counters();
    assert_eq!(
        counters.messages_delivered, total,
        "every email delivered once"
    );
    // The least time: each mailbox's first send at once, then one every 60 s / 150 = 400 ms.
    let least = Duration::from_millis((per_mailbox - 1) * 60_000 / PER_MINUTE);
    let target = (mailbox_count * PER_MINUTE) as f64 / 60.0;
    let rate = total as f64 / wall.as_secs_f64();
    println!(
        "(b) scale: serve, {mailbox_count} mailboxes x {per_mailbox} emails, MessagesPerMinute {PER_MINUTE} each ({target:.0}/s in all), {LATENCY_MS} ms latency"
    );
    println!(
        "    {total} emails in {:.2} s (least the limits allow {:.2} s): {rate:.1} emails/s = {:.1}% of {target:.0}/s",
        wall.as_secs_f64(),
        least.as_secs_f64(),
        rate / target * 100.0
    );
    println!(
        "    first to last delivery {:.2} s; breaches at the emulator: {}; throttled: {}",
        from_first.as_secs_f64(),
        counters.limit_breaches.values().sum::<u64>(),
        counters.throttled
    );
    let per_email = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / total as f64;
    println!(
        "    service CPU {:.2} s = {:.3} ms per email: the host (serve) {:.3} ms, its provider process {:.3} ms; RSS {} KiB after {early_mark}, {} KiB after {total}",
        cpu_total.as_secs_f64(),
        per_email(cpu_total),
        per_email(cpu_end),
        per_email(provider_cpu),
        rss_early,
        rss_end
    );
}

/// The provider processes `mailhost serve` (`pid`) started: the children of any of its
/// threads.
fn provider_processes(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}
