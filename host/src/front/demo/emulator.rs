//! The `mailhost-emulator` child process the demo talks to: started on a free loopback port
//! with `--exit-on-stdin-eof` (so it also ends if this process dies), and killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::error::Error;

/// The first line the emulator prints, before its base URL.
const LISTENING: &str = "mailhost-emulator listening on ";

/// A running emulator; dropping it stops the process.
#[derive(Debug)]
pub(crate) struct EmulatorProcess {
    child: Child,
    /// Held open: the emulator exits when it closes.
    stdin: Option<ChildStdin>,
    /// Held open so the emulator never writes into a closed pipe.
    stdout: BufReader<ChildStdout>,
    base_url: String,
}

impl EmulatorProcess {
    /// Starts the emulator binary at `bin` and waits for its `listening on` line.
    ///
    /// # Errors
    /// The binary cannot be started, or it exits or prints something else first.
    pub(crate) fn start(bin: &Path) -> Result<Self, Error> {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--exit-on-stdin-eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Error::Failed(format!("cannot start the emulator {}: {e}", bin.display()))
            })?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Failed(
                "the emulator's standard output was not captured".into(),
            ));
        };
        // From here on, `Drop` stops the child on every path.
        let mut process = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            base_url: String::new(),
        };
        let mut line = String::new();
        let read = process.stdout.read_line(&mut line);
        match read
            .ok()
            .and_then(|_| line.trim().strip_prefix(LISTENING).map(str::to_string))
        {
            Some(url) if url.starts_with("http://127.") => process.base_url = url,
            _ => {
                return Err(Error::Failed(format!(
                    "the emulator {} did not start (it printed {:?}); run it by hand to see why",
                    bin.display(),
                    line.trim()
                )));
            }
        }
        Ok(process)
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
