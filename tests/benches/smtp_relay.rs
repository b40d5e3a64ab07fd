//! SMTP relay benchmark (run with `cargo bench -p mailhost-tests --bench smtp_relay`).
//!
//! 8 concurrent clients (lettre, one persistent connection each, STARTTLS) send 20 KB messages:
//!
//! 1. into the release `mailhost serve` relay (STARTTLS + AUTH PLAIN as a staff member; every
//!    message spooled, fsync'd and committed to mail.db before its 250), which then sends them
//!    through the real Graph plugin to the in-process emulator (sending limits set to 0 so the
//!    engine is not paced by Exchange's 30 a minute). Reported: messages accepted per second
//!    (first MAIL to last 250), and the latency from end of DATA (the 250) to delivered at
//!    the emulator (k-th accepted against k-th delivered), p50/p90/max.
//! 2. into Debian's Postfix in a temporary directory on a loopback port, STARTTLS, queue only
//!    (`default_transport = smtp`, `defer_transports = smtp`: mail stays in the queue, and
//!    Postfix fsyncs each queue file before its 250). Postfix has no SASL here, so its clients
//!    skip AUTH (mailhost's clients authenticate once per connection).
//!
//! The ratio mailhost / Postfix of messages accepted per second is printed last.
//! Environment: `MAILHOST_BENCH_MESSAGES` per client (default 50), `MAILHOST_BENCH_CLIENTS`
//! (default 8). Needs `postfix` (apt-get install -y postfix) and root (Postfix's master runs as
//! root and drops to the `postfix` user); without them the Postfix half is skipped.
//!
//! A benchmark, not a test: it prints figures and asserts nothing about speed (it stops if a
//! message is not delivered, since the figures would then mean nothing).

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::bench::env_or;
use mailhost_tests::homes::{STAFF, graph_home};

const RELAY_PASSWORD: &str = "bench-relay-pw";
const MESSAGE_BYTES: usize = 20 * 1024;

fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("relay.pem"), dir.join("relay.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    mailhost_tests::fixtures::set_mode(&key, 0o600);
    (cert, key)
}

fn body() -> String {
    let line = "The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\n";
    line.repeat(MESSAGE_BYTES / line.len() + 1)[..MESSAGE_BYTES].to_string()
}

/// The instants at which each of `clients` × `messages` sends got their 250.
fn load(
    port: u16,
    cert: &Path,
    credentials: Option<(&str, &str)>,
    from: &str,
    to: &str,
    clients: u64,
    messages: u64,
) -> (Instant, Vec<Instant>) {
    let pem = std::fs::read(cert).unwrap();
    let barrier = Arc::new(Barrier::new(clients as usize + 1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let pem = pem.clone();
            let barrier = Arc::clone(&barrier);
            let credentials = credentials.map(|(u, p)| Credentials::new(u.into(), p.into()));
            let (from, to) = (from.to_string(), to.to_string());
            std::thread::spawn(move || {
                let tls = TlsParameters::builder("127.0.0.1".into())
                    .add_root_certificate(Certificate::from_pem(&pem).unwrap())
                    .build_rustls()
                    .unwrap();
                let mut builder = SmtpTransport::builder_dangerous("127.0.0.1")
                    .port(port)
                    .tls(Tls::Required(tls))
                    .pool_config(PoolConfig::new().max_size(1))
                    .timeout(Some(Duration::from_secs(60)));
                if let Some(credentials) = credentials {
                    builder = builder.credentials(credentials);
                }
                let mailer = builder.build();
                let text = body();
                let emails: Vec<Message> = (0..messages)
                    .map(|i| {
                        Message::builder()
                            .from(from.parse().unwrap())
                            .to(to.parse().unwrap())
                            .subject(format!("bench {c}-{i}"))
                            .body(text.clone())
                            .unwrap()
                    })
                    .collect();
                // Connect, STARTTLS and AUTH before the clock starts.
                assert!(mailer.test_connection().unwrap());
                barrier.wait();
                let mut done = Vec::with_capacity(messages as usize);
                for email in &emails {
                    mailer.send(email).unwrap();
                    done.push(Instant::now());
                }
                done
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut all: Vec<Instant> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    (start, all)
}

fn rate(start: Instant, done: &[Instant]) -> f64 {
    let last = done.last().copied().unwrap_or(start);
    done.len() as f64 / last.duration_since(start).as_secs_f64()
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mailhost(clients: u64, messages: u64) -> f64 {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    // No pacing: Exchange's 30 a minute would make the latency the limit's, not the relay's.
    let declared = home.ok(&["plugin", "info", "graph-email"]);
    for (key, value) in [("MessagesPerMinute", "0"), ("RecipientsPerDay", "0")] {
        if declared.contains(key) {
            home.ok(&["config", "set", "graph-email", key, value]);
        }
    }
    let out = home.run_with_stdin(
        &["staff", "set", STAFF, "--relay-password-stdin"],
        &format!("{RELAY_PASSWORD}\n"),
    );
    assert!(out.status.success());
    let (cert, _) = certificate(home.path());
    std::fs::write(
        home.path().join("serve.toml"),
        "[smtp]\nlisten = [\"127.0.0.1:0\"]\ntls_cert = \"relay.pem\"\ntls_key = \"relay.key\"\nmax_connections_per_client = 64\n",
    )
    .unwrap();
    let mut child = home
        .command(["serve"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(addr) = line.strip_prefix("mailhost serve: smtp listening on ") {
            break addr.parse::<SocketAddr>().unwrap().port();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let _serve = Serve(child);
    let total = clients * messages;
    let (start, accepted) = load(
        port,
        &cert,
        Some((STAFF, RELAY_PASSWORD)),
        seed::USER_UPN,
        seed::RECIPIENT_UPN,
        clients,
        messages,
    );
    // Delivered instants, polled from the emulator's counter.
    let mut delivered = Vec::with_capacity(total as usize);
    let base = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while (delivered.len() as u64) < total {
        let n = emulator.counters().messages_delivered.saturating_sub(base);
        let now = Instant::now();
        while (delivered.len() as u64) < n.min(total) {
            delivered.push(now);
        }
        assert!(
            now < deadline,
            "only {} of {total} delivered",
            delivered.len()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut latencies: Vec<Duration> = accepted
        .iter()
        .zip(&delivered)
        .map(|(a, d)| d.saturating_duration_since(*a))
        .collect();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let per_second = rate(start, &accepted);
    println!(
        "mailhost relay: {total} messages accepted in {:.2} s = {per_second:.0} messages/s; end of DATA -> delivered at the emulator: p50 {:?}, p90 {:?}, max {:?}",
        accepted.last().unwrap().duration_since(start).as_secs_f64(),
        pct(0.5),
        pct(0.9),
        latencies.last().unwrap()
    );
    per_second
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Postfix {
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .args(["-c", self.config.to_str().unwrap(), "stop"])
            .output();
    }
}

/// Postfix, queue only, on a loopback port with STARTTLS; `None` when it cannot run here.
fn start_postfix(port: u16) -> Option<(Postfix, PathBuf)> {
    let master = std::fs::read_to_string("/etc/postfix/master.cf").ok()?;
    let dir = tempfile::tempdir().ok()?;
    let root = dir.path();
    for sub in ["etc", "queue", "data"] {
        std::fs::create_dir(root.join(sub)).unwrap();
    }
    mailhost_tests::fixtures::set_mode(root, 0o755);
    let chown = Command::new("chown")
        .args(["postfix", root.join("data").to_str().unwrap()])
        .status()
        .ok()?;
    if !chown.success() {
        return None;
    }
    let (cert, key) = certificate(&root.join("etc"));
    let master: String = master
        .lines()
        .map(|l| {
            if l.starts_with("smtp ") && l.contains(" inet ") {
                format!("127.0.0.1:{port} inet n - n - - smtpd")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let master = if master.contains("postlogd") {
        master
    } else {
        format!("{master}\npostlog   unix-dgram n  -       n       -       1       postlogd\n")
    };
    std::fs::write(root.join("etc/master.cf"), master).unwrap();
    let r = root.display();
    std::fs::write(
        root.join("etc/main.cf"),
        format!(
            "compatibility_level = 3.6\nqueue_directory = {r}/queue\ndata_directory = {r}/data\ncommand_directory = /usr/sbin\ndaemon_directory = /usr/lib/postfix/sbin\nmeta_directory = /etc/postfix\nshlib_directory = /usr/lib/postfix\nmail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmyhostname = bench.localdomain\nmydestination =\nmynetworks = 127.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks, reject\ndefault_transport = smtp\ndefer_transports = smtp\nrelayhost =\nalias_maps =\nalias_database =\nlocal_recipient_maps =\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\nmaillog_file_prefixes = /var, /dev/stdout, {r}\nmaillog_file = {r}/maillog\nmessage_size_limit = 36700160\nsmtpd_client_connection_count_limit = 0\nsmtpd_client_message_rate_limit = 0\ndefault_process_limit = 100\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let config = root.join("etc");
    let started = Command::new("postfix")
        .args(["-c", config.to_str().unwrap(), "start"])
        .output()
        .ok()?;
    if !started.status.success() {
        println!(
            "postfix did not start: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        return None;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((Postfix { config, _dir: dir }, cert))
}

fn queued_files(queue: &Path) -> usize {
    let mut n = 0;
    for sub in ["incoming", "active", "deferred", "maildrop"] {
        let Ok(dirs) = std::fs::read_dir(queue.join(sub)) else {
            continue;
        };
        for entry in dirs.flatten() {
            let path = entry.path();
            n += if path.is_dir() {
                std::fs::read_dir(&path).map_or(0, |d| d.count())
            } else {
                1
            };
        }
    }
    n
}

fn postfix(clients: u64, messages: u64) -> Option<f64> {
    let port = free_port();
    let Some((postfix, cert)) = start_postfix(port) else {
        println!("postfix: not run (needs `apt-get install -y postfix` and root)");
        return None;
    };
    let total = clients * messages;
    let (start, accepted) = load(
        port,
        &cert,
        None,
        "bench@localhost",
        "someone@example.com",
        clients,
        messages,
    );
    let per_second = rate(start, &accepted);
    let queue = postfix.config.parent().unwrap().join("queue");
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "postfix (queue only): {total} messages accepted in {:.2} s = {per_second:.0} messages/s ({} queue files)",
        accepted.last().unwrap().duration_since(start).as_secs_f64(),
        queued_files(&queue)
    );
    Some(per_second)
}

fn main() {
    let clients = env_or("MAILHOST_BENCH_CLIENTS", 8);
    let messages = env_or("MAILHOST_BENCH_MESSAGES", 50);
    println!(
        "command: cargo bench -p mailhost-tests --bench smtp_relay   ({clients} clients x {messages} messages of {} KB, STARTTLS, one connection per client)",
        MESSAGE_BYTES / 1024
    );
    mailhost_tests::build_artifacts();
    let ours = mailhost(clients, messages);
    if let Some(theirs) = postfix(clients, messages) {
        println!(
            "ratio mailhost / postfix (messages accepted per second): {:.2}",
            ours / theirs
        );
    }
}
