//! SMTP relay benchmark (run with `cargo bench -p mailhost-tests --bench smtp_relay`).
//!
//! 8 concurrent clients (one persistent connection each, STARTTLS, one command at a time: no
//! PIPELINING) send 20 KB messages:
//!
//! 1. into the release `mailhost serve` relay (STARTTLS + AUTH PLAIN as a staff member; every
//!    message spooled, fsync'd and committed to mail.db before its 250), which then sends them
//!    through the real Graph plugin to the in-process emulator (sending limits set to 0 so the
//!    engine is not paced by Exchange's 30 a minute). Reported: messages accepted per second
//!    (first MAIL to last 250), and the latency from end of DATA (the 250) to delivered at
//!    the emulator (k-th accepted against k-th delivered), p50/p90/max.
//! 2. into Debian's Postfix (3.7) on the same machine, set up in a temporary directory: its own
//!    `main.cf`/`master.cf` (`postfix -c DIR start`, master as root dropping to `mail_owner =
//!    postfix`, Debian's daemons, `queue_directory` in the temporary directory), smtpd on a
//!    loopback port with STARTTLS (`smtpd_tls_security_level = may`, the same kind of
//!    self-signed certificate), relaying allowed for `mynetworks = 127.0.0.0/8`, and queue only:
//!    `default_transport = smtp` with `defer_transports = smtp`, so every message stays in the
//!    queue and nothing is delivered. Postfix has no SASL here, so its clients skip AUTH
//!    (mailhost's clients authenticate once per connection, before the clock starts).
//!
//! Durability, side by side: Postfix's cleanup writes each message to its own queue file and
//! fsyncs it before smtpd answers 250 (Postfix's rule; one file, one fsync per message). mailhost
//! answers 250 after the message and its envelope are written to the email's spool folder and
//! fsync'd (each file, then the folder), the spool folder's entry for it fsync'd, and the email
//! committed to mail.db (SQLite WAL, `synchronous=FULL`); the last two are shared by the
//! messages of concurrent sessions (group commit: one spool-folder fsync and one commit per
//! group, each session answered only after the commit holding its message returned).
//!
//! The clients are this file's own (rustls, TCP_NODELAY, each DATA body with its terminating
//! dot in one write): lettre writes the final `.` in a write of its own, which Nagle's
//! algorithm holds back until the server's delayed ACK (about 40 ms), so with lettre every
//! message of both servers took 40 ms and the figures measured that.
//!
//! The ratio mailhost / Postfix of messages accepted per second is printed last.
//! Environment: `MAILHOST_BENCH_MESSAGES` per client (default 50), `MAILHOST_BENCH_CLIENTS`
//! (default 8). Needs `postfix` (apt-get install -y postfix) and root (Postfix's master runs as
//! root and drops to the `postfix` user); without them the Postfix half is skipped.
//!
//! A benchmark, not a test: it prints figures and asserts nothing about speed (it stops if a
//! message is not delivered, since the figures would then mean nothing).

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::bench::env_or;
use mailhost_tests::homes::{STAFF, graph_home};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const RELAY_PASSWORD: &str = "bench-relay-pw";
const MESSAGE_BYTES: usize = 20 * 1024;

fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("relay.pem"), dir.join("relay.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("relay.der"), ck.cert.der()).unwrap();
    mailhost_tests::fixtures::set_mode(&key, 0o600);
    (cert, key)
}

/// A 20 KB message, CRLF line ends, `c`-`i` in its subject.
fn message(from: &str, to: &str, c: u64, i: u64) -> Vec<u8> {
    let line = "The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n";
    let mut text = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: bench {c}-{i}\r\nDate: Tue, 1 Dec 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    );
    while text.len() + line.len() <= MESSAGE_BYTES {
        text.push_str(line);
    }
    text.into_bytes()
}

/// The client's side of one SMTP connection: plain until STARTTLS, then rustls.
enum Wire {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Wire {
    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(s) => s.as_mut(),
        }
    }

    /// Writes `bytes` in one go (one TLS record train, no small trailing segment for Nagle's
    /// algorithm to hold back: the socket has TCP_NODELAY as well).
    fn send(&mut self, bytes: &[u8]) {
        let s = self.stream();
        s.write_all(bytes).unwrap();
        s.flush().unwrap();
    }

    /// Reads one reply (all its lines) and returns its code.
    fn reply(&mut self) -> u16 {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.stream().read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            // Complete when the last full line is "ddd " (not "ddd-").
            if buf.ends_with(b"\r\n") {
                let text = String::from_utf8_lossy(&buf);
                let last = text.trim_end().rsplit("\r\n").next().unwrap_or_default();
                if last.len() >= 4 && last.as_bytes()[3] == b' ' {
                    return last[..3].parse().unwrap();
                }
            }
        }
    }

    fn command(&mut self, line: &str, expect: u16) {
        self.send(format!("{line}\r\n").as_bytes());
        let code = self.reply();
        assert_eq!(code, expect, "{line}");
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Connects, STARTTLS (trusting `der`), and AUTH PLAIN with `credentials` when given.
fn connect(port: u16, der: &[u8], credentials: Option<(&str, &str)>) -> Wire {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut wire = Wire::Plain(tcp);
    assert_eq!(wire.reply(), 220);
    wire.command("EHLO bench.localdomain", 250);
    wire.command("STARTTLS", 220);
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(der.to_vec())).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let Wire::Plain(tcp) = wire else {
        unreachable!()
    };
    let tls = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut wire = Wire::Tls(Box::new(StreamOwned::new(tls, tcp)));
    wire.command("EHLO bench.localdomain", 250);
    if let Some((user, password)) = credentials {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        wire.command(&format!("AUTH PLAIN {token}"), 235);
    }
    wire
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
    let der = std::fs::read(cert.with_extension("der")).unwrap();
    let barrier = Arc::new(Barrier::new(clients as usize + 1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let der = der.clone();
            let barrier = Arc::clone(&barrier);
            let credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
            let (from, to) = (from.to_string(), to.to_string());
            std::thread::spawn(move || {
                let emails: Vec<Vec<u8>> = (0..messages)
                    .map(|i| {
                        let mut data = message(&from, &to, c, i);
                        data.extend_from_slice(b".\r\n");
                        data
                    })
                    .collect();
                // Connect, STARTTLS and AUTH before the clock starts.
                let mut wire = connect(
                    port,
                    &der,
                    credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
                );
                barrier.wait();
                let mut done = Vec::with_capacity(messages as usize);
                for email in &emails {
                    // One command at a time, as a client without PIPELINING sends them.
                    wire.command(&format!("MAIL FROM:<{from}>"), 250);
                    wire.command(&format!("RCPT TO:<{to}>"), 250);
                    wire.command("DATA", 354);
                    wire.send(email);
                    assert_eq!(wire.reply(), 250, "end of DATA");
                    done.push(Instant::now());
                }
                wire.command("QUIT", 221);
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
