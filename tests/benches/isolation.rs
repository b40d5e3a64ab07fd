//! Provider isolation benchmark (run with `cargo bench -p mailhost-tests --bench isolation`).
//!
//! - **Per-send overhead**: the same `send` of the null fixture through the host's provider
//!   handle, in a provider process (the default) and in process; the difference of the medians
//!   is what isolation costs a send (target: under 100 µs). Also 4 threads sending at once
//!   through one provider process.
//! - **Child start-up**: from asking for the handle of a registered plugin to a loaded provider
//!   process ready for calls (spawn, handshake, hash check, load, describe; target: under 20 ms).
//! - **send-batch throughput** with isolation on: the release `mailhost` and the Graph plugin
//!   against the in-process emulator with 50 ms added latency, one mailbox; the ceiling is 4
//!   requests in flight / 50 ms = 80 emails/s (target: at least 90% of it).
//!
//! Environment: `MAILHOST_BENCH_SENDS` (default 20,000), `MAILHOST_BENCH_STARTS` (20),
//! `MAILHOST_BENCH_EMAILS` (800), `MAILHOST_BENCH_LATENCY_MS` (50).
//!
//! A benchmark, not a test: it prints figures and asserts nothing about speed.

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailhost::config::home::Home as HostHome;
use mailhost::config::secrets::SecretStore;
use mailhost::plugins::Provider;
use mailhost::plugins::loader::Loader;
use mailhost::plugins::registry::{self, Isolation, PluginEntry};
use mailhost_emulator::{Emulator, seed};
use mailhost_plugin_api::SendRequest;
use mailhost_plugin_api::testing::{MessageBuilder, RequestBuilder, staff_member};
use mailhost_tests::bench::{env_or, write_batch};
use mailhost_tests::fixtures::fixture_path;
use mailhost_tests::{Home, assert_exit, mailhost_bin, plugin_path};

fn main() {
    let sends = env_or("MAILHOST_BENCH_SENDS", 20_000);
    let starts = env_or("MAILHOST_BENCH_STARTS", 20);
    println!("isolation benchmark: release mailhost, null fixture and graph_email");
    println!("command: cargo bench -p mailhost-tests --bench isolation\n");

    let home = Home::new();
    home.add_enabled(&fixture_path("null"));
    let host_home = HostHome::open(home.path()).unwrap();
    let entry = registry::load(&host_home)
        .unwrap()
        .find("null")
        .unwrap()
        .clone();
    let secrets = Arc::new(SecretStore::open(&host_home).unwrap());
    let exe = mailhost_bin();
    let loader = Loader::new(&host_home, secrets.clone()).with_child_exe(&exe);
    let isolated = loader.provider(&entry).unwrap();
    let in_process = loader
        .provider(&PluginEntry {
            isolation: Isolation::InProcess,
            ..entry.clone()
        })
        .unwrap();
    assert_eq!(isolated.isolation(), Isolation::Process);
    let request = request();

    let iso = per_send(&isolated, &request, sends);
    let inp = per_send(&in_process, &request, sends);
    println!("per send ({sends} sends each, one thread):");
    println!(
        "  in process:   median {:>8.2} µs, p99 {:>8.2} µs",
        inp.0, inp.1
    );
    println!(
        "  isolated:     median {:>8.2} µs, p99 {:>8.2} µs",
        iso.0, iso.1
    );
    println!(
        "  overhead of isolation: {:.2} µs at the median (target < 100 µs)",
        iso.0 - inp.0
    );
    let (rate, wall) = concurrent(&isolated, &request, 4, sends / 4);
    println!(
        "  isolated, 4 threads at once: {rate:.0} sends/s ({:.2} µs per send of wall time)\n",
        wall * 1e6
    );

    let mut times = Vec::new();
    for _ in 0..starts {
        let fresh = Loader::new(&host_home, secrets.clone()).with_child_exe(&exe);
        let started = Instant::now();
        let provider = fresh.provider(&entry).unwrap();
        times.push(started.elapsed());
        assert!(provider.pid().is_some());
    }
    times.sort();
    println!(
        "child start-up ({starts} starts): median {:.2} ms, max {:.2} ms (target < 20 ms)\n",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );

    send_batch();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A realistic request: three recipients, a subject and a 1 KiB body, settings and a staff
/// member with a password.
fn request() -> SendRequest {
    RequestBuilder::new()
        .setting("Directory", "/tmp/bench")
        .secret_setting("ApiKey", "k-0123456789abcdef")
        .staff(
            staff_member("adele", "adele@contoso.com")
                .with_name("Adele Vance")
                .with_password("pw-0123456789"),
        )
        .message(
            MessageBuilder::new("6f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
                .to("megan@contoso.com")
                .cc("alex@contoso.com")
                .bcc("audit@contoso.com")
                .subject("Quarterly report")
                .body(&"Lorem ipsum dolor sit amet. ".repeat(37))
                .header("Message-ID", "<6f1e2d3c@mailhost>")
                .build(),
        )
        .build()
}

/// Median and 99th percentile of one send, in microseconds, after a warm-up.
fn per_send(provider: &Provider, request: &SendRequest, sends: u64) -> (f64, f64) {
    for _ in 0..1_000 {
        provider.send(request).unwrap();
    }
    let mut times: Vec<Duration> = (0..sends)
        .map(|_| {
            let started = Instant::now();
            provider.send(request).unwrap();
            started.elapsed()
        })
        .collect();
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100]),
    )
}

/// Sends per second with `threads` threads sending `each` at once, and wall time per send.
fn concurrent(
    provider: &Arc<Provider>,
    request: &SendRequest,
    threads: u64,
    each: u64,
) -> (f64, f64) {
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (provider, request) = (provider.clone(), request.clone());
            std::thread::spawn(move || {
                for _ in 0..each {
                    provider.send(&request).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let wall = started.elapsed().as_secs_f64();
    let total = (threads * each) as f64;
    (total / wall, wall / total)
}

/// send-batch of N emails from one mailbox through the isolated Graph plugin at 50 ms latency.
fn send_batch() {
    let emails = env_or("MAILHOST_BENCH_EMAILS", 800);
    let latency = env_or("MAILHOST_BENCH_LATENCY_MS", 50);
    let emulator = Emulator::start().unwrap();
    let home = Home::new();
    home.add_enabled(&plugin_path("graph_email"));
    for (key, value) in [
        ("ClientID", seed::DAEMON_CLIENT_ID),
        ("TenantID", seed::TENANT_ID),
        ("Authority", emulator.authority()),
        ("GraphEndpoint", emulator.graph_endpoint()),
        ("ClientSecret", seed::DAEMON_CLIENT_SECRET),
    ] {
        home.ok(&["config", "set", "graph-email", key, value]);
    }
    home.ok(&[
        "staff",
        "add",
        "s0",
        "--provider",
        "graph-email",
        "--email",
        seed::USER_UPN,
    ]);
    let entry = home.plugin_entry("graph-email");
    assert_eq!(entry["isolation"], "process", "{entry:#}");
    let run = |count: u64, tag: &str| {
        let file = home.path().join(format!("{tag}.jsonl"));
        write_batch(&file, count, seed::EXTERNAL_RECIPIENT, tag);
        let started = Instant::now();
        let output = home
            .command([
                "email",
                "send-batch",
                file.to_str().unwrap(),
                "--staff",
                "s0",
                "--json",
            ])
            .output()
            .unwrap();
        assert_exit(&output, 0, &["email", "send-batch", tag]);
        started.elapsed()
    };
    run(8, "warmup");
    emulator.set_latency(latency);
    let wall = run(emails, "measured");
    let rate = emails as f64 / wall.as_secs_f64();
    let ceiling = 4.0 * 1000.0 / latency as f64;
    println!(
        "send-batch, isolated graph-email, {emails} emails, {latency} ms latency, one mailbox:"
    );
    println!(
        "  wall {:.1} s, {rate:.1} emails/s, ceiling {ceiling:.0} emails/s: {:.1}% of the ceiling (target >= 90%)",
        wall.as_secs_f64(),
        100.0 * rate / ceiling
    );
}
