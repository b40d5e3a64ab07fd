//! HTTP API benchmark (run with `cargo bench -p mailhost-tests --bench http_api`).
//!
//! The release `mailhost serve --http 127.0.0.1:0` with the real Graph plugin at the
//! in-process emulator; 16 concurrent clients (keep-alive connections) each POST
//! `/v1/emails` one after another. A 202 means the email is committed to mail.db (fsync'd),
//! so this measures accepted-and-durable emails per second, with the p50, p90 and p99 latency
//! of one POST. The engine runs meanwhile (sending under the Graph limits, 30 a minute per
//! mailbox), as it would in production.
//!
//! Environment: `MAILHOST_BENCH_EMAILS=N` (default 5,000), `MAILHOST_BENCH_CLIENTS` (16).
//! A benchmark, not a test: it prints figures and asserts only that every POST got 202.

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mailhost_emulator::{Emulator, seed};
use mailhost_tests::bench::env_or;
use mailhost_tests::homes::{STAFF, graph_home};
use mailhost_tests::service::Service;
use serde_json::json;

#[tokio::main]
async fn main() {
    let emails = env_or("MAILHOST_BENCH_EMAILS", 5_000);
    let clients = env_or("MAILHOST_BENCH_CLIENTS", 16);
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let token = home.api_token("bench");
    let service = Service::start_http(&home);
    let url = format!("{}/v1/emails", service.base_url());
    println!(
        "HTTP API benchmark: {emails} emails by POST /v1/emails from {clients} concurrent clients, release mailhost serve + graph_email at the emulator"
    );
    println!(
        "command: cargo bench -p mailhost-tests --bench http_api  (MAILHOST_BENCH_EMAILS={emails})\n"
    );

    // Warm up: connections, the first commits.
    run(&url, &token, clients, clients * 4).await;
    let (elapsed, mut latencies) = run(&url, &token, clients, emails).await;
    latencies.sort_unstable();
    let rate = emails as f64 / elapsed.as_secs_f64();
    let pick = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[index]
    };
    println!(
        "accepted: {emails} in {:.2} s = {rate:.0} emails/s",
        elapsed.as_secs_f64()
    );
    println!(
        "latency per POST: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pick(0.50)),
        ms(pick(0.90)),
        ms(pick(0.99)),
        ms(*latencies.last().unwrap())
    );
    let listed = home.json(&["email", "list", "--json"]);
    println!(
        "mail.db holds {} emails (warm-up included)",
        listed.as_array().unwrap().len()
    );
    drop(service);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `total` POSTs from `clients` concurrent clients; the wall time and every POST's latency.
async fn run(url: &str, token: &str, clients: u64, total: u64) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let next = Arc::clone(&next);
            let url = url.to_string();
            let token = token.to_string();
            tokio::spawn(async move {
                let http = reqwest::Client::builder().no_proxy().build().unwrap();
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let body = json!({
                        "staff": STAFF,
                        "to": [seed::RECIPIENT_UPN],
                        "subject": format!("bench {i}"),
                        "body": "benchmark email",
                    });
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    let _ = response.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                    assert_eq!(status.as_u16(), 202, "POST {i}");
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (start.elapsed(), latencies)
}
