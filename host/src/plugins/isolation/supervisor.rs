//! The host side of isolation: one [`Supervisor`] per plugin per host process owns the
//! provider's child, shared by every thread that sends (calls overlap in the child).
//!
//! - **Start.** A private socket in a fresh 0700 temporary folder; the child is `mailhost
//!   provider-child --socket PATH` in a process group of its own (Ctrl-C reaches the host, not
//!   the child, so it never counts as a crash), with its standard output and error drained
//!   into the host's debug log. Handshake, then `Load` with the pinned SHA-256 and name.
//! - **Calls.** Each carries a deadline: `SendTimeoutSeconds` for everything but interactive
//!   sign-in. A call past it kills the child. A child that dies (or is killed) fails every call
//!   in flight: a send becomes [`ErrorKind::UNKNOWN_OUTCOME`] naming what happened (the
//!   request may have left), any other call [`ErrorKind::INTERNAL`].
//! - **Restart.** The next call starts a new child, after a backoff that grows with the
//!   crashes of the last 10 minutes. Each crash is recorded in plugins.toml
//!   ([`quarantine::record_crash`]), counted across every mailhost process of the home; the
//!   third in 10 minutes quarantines the plugin until its file changes or it is enabled again.
//!
//! [`ErrorKind::UNKNOWN_OUTCOME`]: mailhost_plugin_api::ErrorKind::UNKNOWN_OUTCOME
//! [`ErrorKind::INTERNAL`]: mailhost_plugin_api::ErrorKind::INTERNAL

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use abi_stable::std_types::RStr;
use mailhost_plugin_api::{HostServices, LogLevel, ProviderError};

use super::ending;
use super::protocol::{self, Connection, LoadRequest, Loaded, Msg, NoReply};
use crate::config::home::Home;
use crate::plugins::loader::{LoadError, Who};
use crate::plugins::quarantine;
use crate::plugins::services::PluginServices;

/// The hidden subcommand the child runs.
pub const CHILD_COMMAND: &str = "provider-child";

/// How long a child may take to connect, greet and load its library.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of `SendTimeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// What a call is, for its deadline and for what a failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A send: a failure may mean the email left.
    Send,
    /// Interactive sign-in: no deadline (the user types a code).
    SignIn,
    /// Anything else, by name.
    Other(&'static str),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Target {
    /// The registered name (`None` when inspecting a library for `plugin add`).
    pub name: Option<String>,
    /// The library file.
    pub path: PathBuf,
    /// The pinned SHA-256 (`None` when inspecting).
    pub sha256: Option<String>,
}

impl Target {
    fn who(&self) -> Who {
        match &self.name {
            Some(name) => Who::Plugin(name.clone()),
            None => Who::Library(self.path.clone()),
        }
    }
}

/// A provider running in a child process.
#[derive(Debug)]
pub struct Supervisor {
    target: Target,
    exe: PathBuf,
    home: Option<Home>,
    services: PluginServices,
    loaded: Loaded,
    timeout_secs: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    child: Option<Arc<Running>>,
    crashes: Vec<Instant>,
    quarantined: Option<String>,
}

impl Supervisor {
    /// Starts the child of `target` with `exe` (the mailhost executable), lending it
    /// `services`; crashes are recorded in `home`'s registry when given.
    ///
    /// # Errors
    /// The child could not start, the library was refused (the loader's line), or it crashed
    /// while loading.
    pub fn start(
        target: Target,
        exe: &Path,
        home: Option<&Home>,
        services: PluginServices,
    ) -> Result<Self, LoadError> {
        let (running, loaded) = match launch(&target, exe, &services) {
            Ok(started) => started,
            Err(LoadError::Crashed { who, how }) => {
                // A crash while loading counts towards quarantine like one while sending.
                let notice = home
                    .and_then(|home| record(home, &target, &how))
                    .map(|reason| format!("; {reason}, so it is now quarantined"))
                    .unwrap_or_default();
                return Err(LoadError::Crashed {
                    who,
                    how: format!("{how}{notice}"),
                });
            }
            Err(e) => return Err(e),
        };
        services.set_name(&loaded.info.name);
        Ok(Self {
            target,
            exe: exe.to_path_buf(),
            home: home.cloned(),
            services,
            loaded,
            timeout_secs: AtomicU64::new(DEFAULT_TIMEOUT_SECS),
            state: Mutex::new(State {
                child: Some(Arc::new(running)),
                ..State::default()
            }),
        })
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.target.path
    }

    /// The SHA-256 the child checks the file against (none when inspecting).
    pub fn sha256(&self) -> Option<&str> {
        self.target.sha256.as_deref()
    }

    /// Whether this supervisor quarantined its plugin (it then starts no child).
    pub fn is_quarantined(&self) -> bool {
        self.lock().quarantined.is_some()
    }

    /// What the library said about itself when it loaded.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Sets the deadline of every call but sign-in (`SendTimeoutSeconds`).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_secs
            .store(timeout.as_secs().max(1), Ordering::Relaxed);
    }

    /// The child's process id, while one runs.
    pub fn pid(&self) -> Option<u32> {
        self.lock().child.as_ref().map(|r| r.pid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self) -> &str {
        &self.loaded.info.name
    }

    /// Sends `msg` and returns the reply; the provider's own error comes back as itself.
    ///
    /// # Errors
    /// The provider's error, or a structured error for a child that died, stalled or could
    /// not be restarted.
    pub fn call(&self, msg: &Msg, what: Call) -> Result<Msg, ProviderError> {
        let running = self.running()?;
        let secs = self.timeout_secs.load(Ordering::Relaxed);
        let timeout = match what {
            Call::SignIn => None,
            _ => Some(Duration::from_secs(secs)),
        };
        match running.connection.call(msg, timeout) {
            Ok(Msg::Failed(error)) => Err(error),
            Ok(reply) => Ok(reply),
            Err(NoReply::TimedOut) => {
                let how = format!(
                    "did not answer within {secs} s (SendTimeoutSeconds) and its process was stopped"
                );
                running.stop(&how);
                let notice = self.ended(&running, &how, false);
                Err(self.fault(what, &how, &notice))
            }
            Err(NoReply::Closed) => {
                let (how, counts) = running.ending();
                let notice = self.ended(&running, &how, counts);
                Err(self.fault(what, &how, &notice))
            }
        }
    }

    /// The running child, started again (after the backoff) if the last one ended.
    fn running(&self) -> Result<Arc<Running>, ProviderError> {
        let mut state = self.lock();
        if let Some(reason) = &state.quarantined {
            return Err(ProviderError::internal(format!(
                "plugin '{}' is quarantined: {reason}; install a fixed file and run `mailhost plugin add PATH`, or run `mailhost plugin enable {}` to try it again",
                self.name(),
                self.name()
            ))
            .with_code("PROVIDER_QUARANTINED"));
        }
        if let Some(child) = &state.child
            && !child.connection.is_closed()
        {
            return Ok(child.clone());
        }
        state.child = None;
        let window = Duration::from_secs(quarantine::CRASH_WINDOW_SECS.unsigned_abs());
        state.crashes.retain(|t| t.elapsed() < window);
        if let Some(last) = state.crashes.last() {
            let wait = backoff(state.crashes.len()).saturating_sub(last.elapsed());
            if !wait.is_zero() {
                log::debug!("plugin '{}': restarting in {wait:?}", self.name());
                thread::sleep(wait);
            }
        }
        match launch(&self.target, &self.exe, &self.services) {
            Ok((running, _)) => {
                let running = Arc::new(running);
                state.child = Some(running.clone());
                Ok(running)
            }
            Err(e) => {
                state.crashes.push(Instant::now());
                if let (LoadError::Crashed { how, .. }, Some(home)) = (&e, &self.home)
                    && let Some(reason) = record(home, &self.target, how)
                {
                    state.quarantined = Some(reason);
                }
                Err(ProviderError::internal(format!(
                    "the provider process of '{}' could not be restarted: {e}",
                    self.name()
                ))
                .with_code("PROVIDER_RESTART_FAILED"))
            }
        }
    }

    /// Forgets an ended child and counts the crash; returns a notice when the crash
    /// quarantined the plugin.
    fn ended(&self, running: &Arc<Running>, how: &str, counts: bool) -> String {
        let mut state = self.lock();
        if state
            .child
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, running))
        {
            state.child = None;
        }
        if !counts || running.counted.swap(true, Ordering::AcqRel) {
            return String::new();
        }
        state.crashes.push(Instant::now());
        let Some(home) = &self.home else {
            return String::new();
        };
        match record(home, &self.target, how) {
            Some(reason) => {
                state.quarantined = Some(reason.clone());
                let name = self.name();
                format!(
                    "; {reason}, so plugin '{name}' is now quarantined: fix it, then `mailhost plugin enable {name}`"
                )
            }
            None => String::new(),
        }
    }

    fn fault(&self, what: Call, how: &str, notice: &str) -> ProviderError {
        let name = self.name();
        let advice = format!(
            "if it happens again, disable it (`mailhost plugin disable {name}`) and report it to the plugin's author"
        );
        let code = if how.starts_with("did not answer") {
            "PROVIDER_TIMEOUT"
        } else {
            "PROVIDER_CRASHED"
        };
        match what {
            Call::Send => ProviderError::unknown_outcome(format!(
                "the provider process of '{name}' {how} during the send, so the email may or may not have been sent{notice}; {advice}"
            )),
            Call::SignIn => ProviderError::internal(format!(
                "the provider process of '{name}' {how} during sign-in{notice}; try again; {advice}"
            )),
            Call::Other(call) => ProviderError::internal(format!(
                "the provider process of '{name}' {how} during {call}{notice}; try again; {advice}"
            )),
        }
        .with_code(code)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(child) = self.lock().child.take() {
            child.connection.event(&Msg::Shutdown);
            child.connection.close();
            child.reap();
        }
    }
}

/// Records a crash of `target`'s provider process in `home`'s registry; the quarantine's reason
/// when this crash set it.
fn record(home: &Home, target: &Target, how: &str) -> Option<String> {
    let (Some(name), Some(sha256)) = (&target.name, &target.sha256) else {
        return None;
    };
    let now = crate::config::time::unix_seconds(std::time::SystemTime::now());
    quarantine::record_crash(home, name, sha256, how, now).unwrap_or_else(|e| {
        log::warn!("cannot record the crash of plugin '{name}': {e}");
        None
    })
}

/// The delay before restart number `crashes` (1 = after the first crash): none, then 250 ms
/// doubling up to 10 s.
fn backoff(crashes: usize) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(crashes - 2).unwrap_or(u32::MAX).min(6);
    Duration::from_millis(250u64 << exp).min(Duration::from_secs(10))
}

/// One child process and its connection.
#[derive(Debug)]
struct Running {
    connection: Arc<Connection>,
    process: Mutex<Child>,
    pid: u32,
    /// Set when the host stopped it, with why (then it is not a crash).
    stopped: Mutex<Option<String>>,
    counted: AtomicBool,
}

impl Running {
    /// Kills the child for `why`.
    fn stop(&self, why: &str) {
        {
            let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
            if stopped.is_none() {
                *stopped = Some(why.to_string());
            }
        }
        {
            let mut process = self.process.lock().unwrap_or_else(|p| p.into_inner());
            // The child leads a process group of its own: what the provider started goes
            // with it, so a stopped provider leaves nothing running.
            #[cfg(unix)]
            if let Some(group) = i32::try_from(self.pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                && let Err(e) =
                    rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
            {
                log::debug!(
                    "cannot stop the processes of provider process {}: {e}",
                    self.pid
                );
            }
            if let Err(e) = process.kill() {
                log::debug!("cannot stop provider process {}: {e}", self.pid);
            }
        }
        self.connection.close();
        self.reap();
    }

    /// How it ended, and whether that counts as a crash.
    fn ending(&self) -> (String, bool) {
        if let Some(why) = self
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return (why, false);
        }
        match self.wait(Duration::from_secs(2)) {
            Some(status) => (
                ending::describe(status),
                !ending::stopped_from_outside(status),
            ),
            None => {
                self.stop("closed its connection and was stopped");
                ("closed its connection and was stopped".into(), true)
            }
        }
    }

    fn wait(&self, grace: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + grace;
        loop {
            {
                let mut process = self.process.lock().unwrap_or_else(|p| p.into_inner());
                match process.try_wait() {
                    Ok(Some(status)) => return Some(status),
                    Ok(None) => {}
                    Err(e) => {
                        log::debug!("cannot wait for provider process {}: {e}", self.pid);
                        return None;
                    }
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Collects the exit status of an ended child in the background (no zombies in a
    /// long-running host).
    fn reap(&self) {
        let process = &self.process;
        let status = process.lock().unwrap_or_else(|p| p.into_inner()).try_wait();
        if let Ok(None) = status {
            // Still exiting: a short wait is enough once its socket is closed; a child that
            // lingers is left to the operating system when the host exits.
            let _ = self.wait(Duration::from_millis(200));
        }
    }
}

/// Starts the child, greets it and loads the library.
fn launch(
    target: &Target,
    exe: &Path,
    services: &PluginServices,
) -> Result<(Running, Loaded), LoadError> {
    let who = target.who();
    let spawn_error = |what: &str, e: std::io::Error| LoadError::Spawn {
        who: who.clone(),
        detail: format!("{what}: {e}"),
    };
    let folder = tempfile::Builder::new()
        .prefix("mailhost-provider-")
        .tempdir()
        .map_err(|e| {
            spawn_error(
                "cannot create its socket folder (set TMPDIR to a writable folder)",
                e,
            )
        })?;
    let socket = folder.path().join("socket");
    let listener =
        UnixListener::bind(&socket).map_err(|e| spawn_error("cannot open its socket", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| spawn_error("cannot open its socket", e))?;
    let mut process = Command::new(exe)
        .arg(CHILD_COMMAND)
        .arg("--socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| spawn_error(&format!("cannot run {}", exe.display()), e))?;
    let pid = process.id();
    drain(process.stdout.take(), services, "stdout");
    drain(process.stderr.take(), services, "stderr");
    let crashed = |process: &mut Child, how: String| {
        let _ = process.kill();
        let _ = process.try_wait();
        LoadError::Crashed {
            who: who.clone(),
            how,
        }
    };
    let started = Instant::now();
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = process.try_wait() {
                    return Err(crashed(
                        &mut process,
                        format!("{} before it connected", ending::describe(status)),
                    ));
                }
                if started.elapsed() > START_TIMEOUT {
                    return Err(crashed(
                        &mut process,
                        format!("did not connect within {} s", START_TIMEOUT.as_secs()),
                    ));
                }
                thread::sleep(Duration::from_micros(200));
            }
            Err(e) => {
                let _ = process.kill();
                return Err(spawn_error("cannot accept its connection", e));
            }
        }
    };
    drop(listener);
    drop(folder);
    let setup = |e: std::io::Error| spawn_error("cannot set up its connection", e);
    stream.set_nonblocking(false).map_err(setup)?;
    let writer = stream.try_clone().map_err(setup)?;
    let connection = Arc::new(Connection::new(writer));
    connection.hello().map_err(setup)?;
    stream
        .set_read_timeout(Some(START_TIMEOUT))
        .map_err(setup)?;
    if let Err(line) = protocol::read_hello(&mut stream) {
        return Err(match process.try_wait() {
            Ok(Some(status)) => crashed(
                &mut process,
                format!("{} before the handshake", ending::describe(status)),
            ),
            _ => LoadError::Spawn {
                who: who.clone(),
                detail: line,
            },
        });
    }
    stream.set_read_timeout(None).map_err(setup)?;
    let handler = incoming(connection.clone(), services.clone());
    protocol::spawn_reader(&connection, stream, "provider", handler).map_err(setup)?;
    let running = Running {
        connection: connection.clone(),
        process: Mutex::new(process),
        pid,
        stopped: Mutex::new(None),
        counted: AtomicBool::new(false),
    };
    let request = LoadRequest {
        path: target.path.display().to_string(),
        sha256: target.sha256.clone(),
        name: target.name.clone(),
        max_level: LogLevel::from_filter(log::max_level()) as u8,
    };
    match connection.call(&Msg::Load(request), Some(START_TIMEOUT)) {
        Ok(Msg::Loaded(loaded)) => Ok((running, loaded)),
        Ok(Msg::LoadFailed(state, line)) => {
            running.stop("refused the library");
            Err(LoadError::Refused {
                state: LoadError::state_named(&state),
                message: line,
            })
        }
        Ok(_) => {
            running.stop("answered the load with something else");
            Err(LoadError::Spawn {
                who,
                detail: "it answered the load with something else".into(),
            })
        }
        Err(NoReply::TimedOut) => {
            running.stop("did not finish loading");
            Err(LoadError::Crashed {
                who,
                how: format!(
                    "did not finish loading within {} s and was stopped",
                    START_TIMEOUT.as_secs()
                ),
            })
        }
        Err(NoReply::Closed) => {
            let (how, _) = running.ending();
            Err(LoadError::Crashed { who, how })
        }
    }
}

/// What the host does with the child's requests and events.
fn incoming(connection: Arc<Connection>, services: PluginServices) -> impl FnMut(u64, Msg) {
    move |id, msg| match msg {
        Msg::Log {
            level,
            target,
            message,
        } => services.log(
            protocol::level_of(level),
            RStr::from_str(&target),
            RStr::from_str(&message),
        ),
        Msg::Notify(text) => services.notify(RStr::from_str(&text)),
        Msg::SecretGet(key) => {
            let reply = match services.secret_get(RStr::from_str(&key)).into_result() {
                Ok(value) => Msg::SecretValue(value.into_option().map(String::from)),
                Err(why) => Msg::SecretFailed(why.into()),
            };
            connection.reply(id, &reply);
        }
        Msg::SecretPut(key, value) => {
            let result = services.secret_put(RStr::from_str(&key), RStr::from_str(&value));
            connection.reply(id, &secret_done(result.into_result()));
        }
        Msg::SecretDelete(key) => {
            let result = services.secret_delete(RStr::from_str(&key));
            connection.reply(id, &secret_done(result.into_result()));
        }
        other => {
            log::debug!("isolation: the provider process sent an unexpected {other:?}");
            if id != 0 {
                connection.reply(
                    id,
                    &Msg::SecretFailed("the host does not answer that".into()),
                );
            }
        }
    }
}

fn secret_done(result: Result<(), abi_stable::std_types::RString>) -> Msg {
    match result {
        Ok(()) => Msg::SecretDone,
        Err(why) => Msg::SecretFailed(why.into()),
    }
}

/// Longest line of the child's own output kept (longer ones are cut).
const MAX_LINE: usize = 16 * 1024;

/// Reads the child's standard output or error on a thread of its own and passes each line to
/// the host's debug log (through the plugin's services, so secrets are redacted). The thread
/// is not joined: processes the provider starts may keep the pipe open after the child ends.
fn drain(
    stream: Option<impl Read + Send + 'static>,
    services: &PluginServices,
    what: &'static str,
) {
    let Some(stream) = stream else {
        return;
    };
    let services = services.clone();
    let spawned = thread::Builder::new()
        .name(format!("mailhost-provider-{what}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader
                    .by_ref()
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        services.log(
                            LogLevel::Debug,
                            RStr::from_str(what),
                            RStr::from_str(text.trim_end_matches(['\r', '\n'])),
                        );
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::debug!("isolation: cannot read the provider process's {what}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(50), Duration::from_secs(10));
    }
}
