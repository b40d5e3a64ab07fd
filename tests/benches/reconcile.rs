//! Exactly-once benchmark (run with `cargo bench -p mailhost-tests --bench reconcile`).
//!
//! The real Graph provider (in process, release build) against the in-process emulator (plain
//! http on loopback), a NonInteractive staff member (ROPC, token cached after the first call):
//!
//! 1. Settling N `unknown` emails (default 100) with `reconcile`: N emails that were sent (found
//!    in Sent Items by the mailhost id property: `sent`), and N that never left, asked about
//!    after `ReconcileWaitSeconds` (`not-sent`). Reported: wall time, requests the emulator
//!    counted (target: one per email), and time per email.
//! 2. The cost of tagging: M sends (default 300) with the mailhost id property and M without
//!    (an empty email id), interleaved in rounds of 50 so drift hits both alike. Reported:
//!    median and mean time per send, and the request-body bytes the tag adds.
//!
//! Environment: `MAILHOST_BENCH_EMAILS=N`, `MAILHOST_BENCH_SENDS=M`.
//!
//! A benchmark, not a test: it prints figures and asserts only that the outcomes are right.

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graph_email::GraphProvider;
use graph_email::graph::sent_items::MAILHOST_ID_PROPERTY;
use mailhost_emulator::{Config, Emulator, seed};
use mailhost_plugin_api::abi_stable::std_types::{ROption, RVec};
use mailhost_plugin_api::{
    Mailbox, Message, Provider, ReconcileRequest, ReconcileState, SendRequest, Setting, StaffMember,
};
use mailhost_tests::bench::env_or;

fn settings(emu: &Emulator) -> Vec<Setting> {
    vec![
        Setting::new("ClientID", seed::MAILHOST_CLIENT_ID),
        Setting::new("TenantID", seed::TENANT_ID),
        Setting::new("Authority", emu.authority()),
        Setting::new("GraphEndpoint", emu.graph_endpoint()),
    ]
}

fn staff() -> StaffMember {
    StaffMember {
        id: "bench".into(),
        email: seed::USER_UPN.into(),
        display_name: seed::USER_NAME.into(),
        username: seed::USER_UPN.into(),
        password: ROption::RSome(seed::USER_PASSWORD.into()),
        fields: RVec::from(vec![Setting::new("NonInteractive", "true")]),
    }
}

fn message(id: &str, subject: &str) -> Message {
    Message {
        id: id.into(),
        to: RVec::from(vec![Mailbox::new(
            seed::RECIPIENT_UPN,
            seed::RECIPIENT_NAME,
        )]),
        subject: subject.into(),
        body: "Benchmark email: finding it again in Sent Items.".into(),
        ..Message::default()
    }
}

fn request(emu: &Emulator, message: Message) -> SendRequest {
    SendRequest {
        settings: RVec::from(settings(emu)),
        staff: staff(),
        message,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn settle(
    provider: &GraphProvider,
    emu: &Emulator,
    ids: &[String],
    first_attempt: i64,
    expected: ReconcileState,
) -> (Duration, u64) {
    let before = emu.counters().total_requests;
    let started = Instant::now();
    for id in ids {
        let outcome = provider
            .reconcile(&ReconcileRequest {
                request: request(emu, message(id, id)),
                internet_message_id: "".into(),
                first_attempt_unix: first_attempt,
            })
            .unwrap();
        assert_eq!(outcome.state, expected, "{id}: {outcome:?}");
    }
    (started.elapsed(), emu.counters().total_requests - before)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let emails = env_or("MAILHOST_BENCH_EMAILS", 100) as usize;
    let sends = env_or("MAILHOST_BENCH_SENDS", 300) as usize;
    let emu = Emulator::start_with(Config {
        concurrency_limit: false,
        ..Config::default()
    })
    .unwrap();
    let provider = GraphProvider::new();
    println!(
        "command: cargo bench -p mailhost-tests --bench reconcile   (MAILHOST_BENCH_EMAILS={emails}, MAILHOST_BENCH_SENDS={sends})"
    );
    println!(
        "reconcile: graph_email provider in process (release), emulator at {}, ROPC staff {}\n",
        emu.base_url(),
        seed::USER_UPN
    );
    // Warm up: sign in once, so token requests are not in the figures.
    provider
        .send(&request(&emu, message("warm-up", "warm up")))
        .unwrap();

    // 1. Settling unknown emails.
    let sent: Vec<String> = (0..emails).map(|i| format!("bench-sent-{i}")).collect();
    for id in &sent {
        provider.send(&request(&emu, message(id, id))).unwrap();
    }
    let (found_time, found_requests) =
        settle(&provider, &emu, &sent, now() - 5, ReconcileState::SENT);
    let lost: Vec<String> = (0..emails).map(|i| format!("bench-lost-{i}")).collect();
    let (absent_time, absent_requests) = settle(
        &provider,
        &emu,
        &lost,
        now() - 600,
        ReconcileState::NOT_SENT,
    );
    println!(
        "settling {emails} unknown emails with reconcile (Sent Items lookup by the mailhost id property):"
    );
    for (what, time, requests) in [
        ("sent (found)", found_time, found_requests),
        ("never sent (proven absent)", absent_time, absent_requests),
    ] {
        println!(
            "  {what:<28} {:>8.1} ms total  {:>6.2} ms/email  {requests} requests ({:.2} per email)",
            time.as_secs_f64() * 1e3,
            time.as_secs_f64() * 1e3 / emails as f64,
            requests as f64 / emails as f64
        );
    }

    // 2. The cost of tagging.
    let tagged_body = serde_json::json!({"singleValueExtendedProperties": [{"id": MAILHOST_ID_PROPERTY, "value": "0190f1c2-7a3b-7c4d-9e5f-000000000000"}]}).to_string().len() - 2;
    let mut with_tag = Vec::with_capacity(sends);
    let mut without_tag = Vec::with_capacity(sends);
    let round = 50.min(sends.max(1));
    let mut n = 0;
    while with_tag.len() < sends {
        for tagged in [true, false] {
            for _ in 0..round {
                n += 1;
                let id = if tagged {
                    format!("bench-tag-{n}")
                } else {
                    String::new()
                };
                let started = Instant::now();
                provider
                    .send(&request(&emu, message(&id, "tagging")))
                    .unwrap();
                let elapsed = started.elapsed();
                if tagged {
                    with_tag.push(elapsed);
                } else {
                    without_tag.push(elapsed);
                }
            }
        }
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() * 1e3 / v.len() as f64;
    println!(
        "\ntime per send, {} sends each, interleaved in rounds of {round}:",
        with_tag.len()
    );
    println!(
        "  with the MailhostId property    median {:>6.3} ms  mean {:>6.3} ms",
        median(with_tag.clone()).as_secs_f64() * 1e3,
        mean(&with_tag)
    );
    println!(
        "  without (empty email id)        median {:>6.3} ms  mean {:>6.3} ms",
        median(without_tag.clone()).as_secs_f64() * 1e3,
        mean(&without_tag)
    );
    println!(
        "  difference of the medians       {:>+6.3} ms; the tag adds about {tagged_body} bytes to a request",
        (median(with_tag).as_secs_f64() - median(without_tag).as_secs_f64()) * 1e3
    );
    let tagged_copies = emu
        .sent_items(seed::USER_UPN)
        .iter()
        .filter(|m| m.extended_property(MAILHOST_ID_PROPERTY).is_some())
        .count();
    assert!(tagged_copies >= emails + sends);
}
