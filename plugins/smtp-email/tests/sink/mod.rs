//! Runs `smtp_sink.py` (Python's aiosmtpd, from PyPI) on a free loopback port and reads back
//! what it received. Shared by `plugins/smtp-email/tests/aiosmtpd.rs` (the provider in
//! process) and `tests/tests/smtp_aiosmtpd.rs` (through the `mailhost` binary).

#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running aiosmtpd sink; stopped when dropped.
#[derive(Debug)]
pub struct Sink {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM`.
    pub mail_from: String,
    /// Every `RCPT TO` it accepted.
    pub rcpt_tos: Vec<String>,
    /// The login that authenticated the session, if any.
    pub auth_login: Option<String>,
    /// Which connection (1, 2, ...) carried it.
    pub connection: u64,
    /// The message as received.
    pub raw: Vec<u8>,
}

fn script() -> PathBuf {
    mailhost_tests::workspace_root().join("plugins/smtp-email/tests/smtp_sink.py")
}

impl Sink {
    /// Starts a sink that requires sign-in as one of `users` (LOGIN:PASSWORD); with no users,
    /// sign-in is optional.
    pub fn start(users: &[(&str, &str)]) -> Self {
        let python = mailhost_tests::python::venv_python(&["aiosmtpd"]);
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python);
        command.arg(script()).arg(dir.path());
        for (login, password) in users {
            command.arg("--user").arg(format!("{login}:{password}"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smtp_sink.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the sink's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp_sink.py printed {line:?} instead of its port"));
        Self { child, dir, port }
    }

    /// The number of connections accepted so far.
    pub fn connections(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("connections"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut received = Vec::new();
        for n in 1.. {
            let meta = self.dir.path().join(format!("msg-{n}.json"));
            let Ok(text) = std::fs::read_to_string(&meta) else {
                break;
            };
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            received.push(Received {
                mail_from: json["mail_from"].as_str().unwrap_or_default().to_string(),
                rcpt_tos: json["rcpt_tos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
                auth_login: json["auth_login"].as_str().map(ToString::to_string),
                connection: json["connection"].as_u64().unwrap_or(0),
                raw: std::fs::read(self.dir.path().join(format!("msg-{n}.eml"))).unwrap(),
            });
        }
        received
    }

    /// Waits up to five seconds for `count` messages (the sink writes them asynchronously to
    /// its reply only in theory; in practice they are there when the client returns).
    pub fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
