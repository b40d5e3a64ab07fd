//! Server time of the Email Maintenance page over a mail.db of 100,000 emails (target: under
//! 200 ms each): the first list page, a page deep in the list (keyset), a status filter, and
//! searches that match few and many emails. The page's router runs in-process over the real
//! engine and store (no sending: the engine's loop is not started), so the figures are the
//! server's own time from request to the last byte of the body.
//!
//! `cargo bench -p mailhost-tests --bench web_page`; `WEB_BENCH_EMAILS` (100000) and
//! `WEB_BENCH_RUNS` (20) change the size and the runs per case.

#![allow(clippy::unwrap_used)] // a benchmark: a failed step should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use mailhost::config::home::Home;
use mailhost::delivery::engine::{Engine, EngineOptions};
use mailhost::delivery::outbox::{Door, NewEmail, Outbox};
use mailhost::front::http::{HttpState, routes, tokens};
use mailhost_plugin_api::{Mailbox, Message};
use tower::ServiceExt as _;

const WORDS: [&str; 8] = [
    "Invoice",
    "Statement",
    "Reminder",
    "Order",
    "Shipping",
    "Receipt",
    "Quote",
    "Contract",
];

fn email(i: u64) -> NewEmail {
    let word = WORDS[usize::try_from(i % 8).unwrap()];
    let message = Message {
        id: format!("00000000-0000-4000-8000-{i:012}").as_str().into(),
        from: Mailbox::new("accounts@contoso.com", "Contoso Accounts"),
        to: vec![Mailbox::new(
            format!("customer{}@fabrikam.com", i % 5000).as_str(),
            format!("Customer {}", i % 5000).as_str(),
        )]
        .into(),
        subject: format!("{word} {i} for your account").as_str().into(),
        body: "Hello,\n\nplease find the document attached.\n\nContoso Accounts"
            .repeat(3)
            .as_str()
            .into(),
        ..Message::default()
    };
    NewEmail::new("accounts", "graph-email", message, Door::Batch)
}

fn main() {
    let count = mailhost_tests::bench::env_or("WEB_BENCH_EMAILS", 100_000);
    let runs = mailhost_tests::bench::env_or("WEB_BENCH_RUNS", 20);
    let dir = tempfile::tempdir().unwrap();
    let home = Home::open(dir.path()).unwrap();
    let outbox = Outbox::open(dir.path().join("mail.db")).unwrap();
    let started = Instant::now();
    let mut i = 0;
    while i < count {
        let group: Vec<NewEmail> = (i..(i + 5000).min(count)).map(email).collect();
        outbox.accept_group(&group).unwrap();
        i += 5000;
    }
    println!(
        "web_page: {count} emails recorded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (token, _) = tokens::create(&outbox, "bench").unwrap();
    let engine = Arc::new(Engine::new(&home, Arc::new(outbox), EngineOptions::default()).unwrap());
    let state = HttpState::new(engine, 1024 * 1024);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cookie = format!("mailhost_session={token}");
    let get = |uri: &str| -> (Duration, String) {
        let request = Request::builder()
            .uri(uri)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        let router = routes::router(state.clone());
        runtime.block_on(async {
            let at = Instant::now();
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200, "{uri}");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (at.elapsed(), String::from_utf8_lossy(&body).into_owned())
        })
    };
    // A cursor deep in the list: follow "Older" a few pages from the middle.
    let (_, first) = get("/");
    let older = |page: &str| -> Option<String> {
        let at = page.find("rel=\"next\" href=\"")? + "rel=\"next\" href=\"".len();
        Some(page[at..at + page[at..].find('"')?].replace("&amp;", "&"))
    };
    let mut deep = older(&first).unwrap();
    for _ in 0..5 {
        let (_, page) = get(&deep);
        deep = older(&page).unwrap();
    }
    let cases = [
        ("list page (newest 50)", "/".to_string()),
        ("list page 7 (keyset)", deep),
        ("status filter (queued)", "/?status=queued".to_string()),
        (
            "search, 1 match",
            format!("/?q=Invoice+{}", count / 2 / 8 * 8),
        ),
        ("search, 1/8 of all", "/?q=statement".to_string()),
        (
            "search by recipient",
            "/?q=customer4321%40fabrikam".to_string(),
        ),
        ("search, no match", "/?q=nothing-like-this".to_string()),
    ];
    println!("web_page: server time per request over {count} emails, {runs} runs each");
    println!(
        "{:<26} {:>10} {:>10} {:>10}",
        "case", "median ms", "p95 ms", "max ms"
    );
    for (name, uri) in &cases {
        let mut times: Vec<Duration> = (0..runs).map(|_| get(uri).0).collect();
        times.sort();
        let pick = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let index = ((times.len() - 1) as f64 * q).round() as usize;
            times[index].as_secs_f64() * 1000.0
        };
        println!(
            "{name:<26} {:>10.1} {:>10.1} {:>10.1}",
            pick(0.5),
            pick(0.95),
            pick(1.0)
        );
    }
}
