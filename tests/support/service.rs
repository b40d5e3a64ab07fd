//! A running `mailhost serve` for tests and benchmarks: started in a home with extra flags,
//! its ready lines read from stdout (`mailhost serve: http listening on ADDR`), its stderr
//! kept for failure messages, stopped with SIGTERM (killed if it does not stop).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Home;

/// How long `serve` may take to print its ready lines.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A `mailhost serve` child process.
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    /// The HTTP API's address, from its ready line.
    pub http: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
}

impl Service {
    /// Starts `mailhost serve ARGS...` in `home` and waits for an `http listening on` line.
    pub fn start(home: &Home, args: &[&str]) -> Self {
        match Self::try_start(home, args) {
            Ok(service) => service,
            Err(stderr) => panic!("mailhost serve {args:?} did not get ready:\n{stderr}"),
        }
    }

    /// Starts `mailhost serve --http 127.0.0.1:0`.
    pub fn start_http(home: &Home) -> Self {
        Self::start(home, &["--http", "127.0.0.1:0"])
    }

    /// Starts `mailhost serve ARGS...`; `Err(stderr)` when it exited or did not get ready.
    pub fn try_start(home: &Home, args: &[&str]) -> Result<Self, String> {
        let mut command = home.command(["serve"].iter().chain(args));
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "warn");
        let mut child = command.spawn().expect("spawn mailhost serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut service = Self {
            child: Some(child),
            http: None,
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while service.http.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("mailhost serve: http listening on ") {
                        service.http = Some(addr.trim().parse().expect("a socket address"));
                    }
                }
                Err(_) => {
                    let _ = service.kill();
                    std::thread::sleep(Duration::from_millis(100));
                    return Err(service.stderr());
                }
            }
        }
        // Keep draining stdout so the service never blocks on a full pipe.
        std::thread::spawn(move || while lines_rx.recv().is_ok() {});
        Ok(service)
    }

    /// `http://ADDR` of the API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http.expect("an HTTP listener"))
    }

    /// What the service wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits up to `within` for the exit; kills it after that.
    pub fn stop(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mailhost serve did not stop within {within:?} of SIGTERM:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

impl Home {
    /// `mailhost api-token create NAME`: the token it printed.
    pub fn api_token(&self, name: &str) -> String {
        self.ok(&["api-token", "create", name]).trim().to_string()
    }
}
