//! The child side: `mailhost` started by the host with a hidden subcommand, connected to the
//! host's socket. It loads one provider library with the loader's checks, then runs each call
//! the host sends on a worker thread (calls overlap: the provider is `Send + Sync`) and writes
//! the reply as soon as it returns. The host services the plugin calls (log, notify, secret
//! store) become messages to the host.
//!
//! The protocol's socket is opened close-on-exec, so processes the plugin starts do not hold
//! it: when this process ends, however it ends, the host sees the connection close. Its
//! standard output and error are pipes the host drains into its debug log.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString};
use mailhost_plugin_api::{HostServices, HostServices_TO, LogLevel, ProviderError};

use super::protocol::{self, Connection, LoadRequest, Loaded, Msg, functions};
use crate::plugins::loader;
use crate::plugins::provider::LoadedPlugin;

/// Runs the child until the host closes the connection; returns the exit status.
pub fn run(socket: &Path) -> u8 {
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!(
                "mailhost provider child: cannot connect to {}: {e}",
                socket.display()
            );
            return 2;
        }
    };
    let Ok(writer) = stream.try_clone() else {
        return 2;
    };
    let connection = Arc::new(Connection::new(writer));
    if connection.hello().is_err() {
        return 2;
    }
    if let Err(line) = protocol::read_hello(&mut stream) {
        eprintln!("mailhost provider child: {line}");
        return 2;
    }
    let child = Arc::new(Child {
        connection: connection.clone(),
        plugin: OnceLock::new(),
        load_lock: Mutex::new(()),
    });
    let pool = Pool::new();
    connection.read_loop(stream, |id, msg| match msg {
        Msg::Shutdown => connection.close(),
        msg => {
            let child = child.clone();
            pool.run(Box::new(move || child.answer(id, msg)));
        }
    });
    // The host is gone: end now, whatever threads the provider left running.
    0
}

struct Child {
    connection: Arc<Connection>,
    plugin: OnceLock<LoadedPlugin>,
    load_lock: Mutex<()>,
}

impl Child {
    fn answer(&self, id: u64, msg: Msg) {
        let reply = match msg {
            Msg::Load(request) => self.load(&request),
            msg => match self.plugin.get() {
                Some(plugin) => call(plugin, msg),
                None => Msg::Failed(ProviderError::internal(
                    "the provider process was asked to call the provider before loading it",
                )),
            },
        };
        if id != 0 {
            self.connection.reply(id, &reply);
        }
    }

    fn load(&self, request: &LoadRequest) -> Msg {
        let _once = self.load_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.plugin.get().is_some() {
            return Msg::LoadFailed(
                "failed".into(),
                "the provider process has a library loaded already".into(),
            );
        }
        let services = HostServices_TO::from_value(
            ProxyServices {
                connection: self.connection.clone(),
            },
            TD_Opaque,
        );
        let level = protocol::level_of(request.max_level);
        match loader::open_in_child(
            Path::new(&request.path),
            request.sha256.as_deref(),
            request.name.as_deref(),
            services,
            level,
        ) {
            Ok((plugin, print)) => {
                let (sign_in, sign_out) = plugin.sign_in_functions();
                let mut bits = 0;
                for (has, bit) in [
                    (sign_in, functions::SIGN_IN),
                    (sign_out, functions::SIGN_OUT),
                    (plugin.has_api_1_2(), functions::API_1_2),
                    (plugin.accepts_mime(), functions::MIME),
                    (plugin.reconciles(), functions::RECONCILE),
                ] {
                    if has {
                        bits |= bit;
                    }
                }
                let loaded = Loaded {
                    info: plugin.info().clone(),
                    api_version: plugin.api_version().to_string(),
                    functions: bits,
                    sha256: print.sha256,
                    size: print.size,
                    mtime: print.mtime,
                };
                let _ = self.plugin.set(plugin);
                Msg::Loaded(loaded)
            }
            Err(e) => Msg::LoadFailed(e.state().into(), e.to_string()),
        }
    }
}

/// Calls the provider for one request.
fn call(plugin: &LoadedPlugin, msg: Msg) -> Msg {
    let result = match msg {
        Msg::Send(r) => plugin.send(&r).map(Msg::Receipt),
        Msg::SendMime(r) => plugin.send_mime(&r).map(Msg::Receipt),
        Msg::Limits => plugin.limits().map(Msg::LimitList),
        Msg::SendingMailbox(r) => plugin.sending_mailbox(&r).map(Msg::Text),
        Msg::Reconcile(r) => plugin.reconcile(&r).map(Msg::Outcome),
        Msg::Diagnose(r) => plugin.diagnose(&r).map(Msg::Findings),
        Msg::SignIn(r) => plugin.sign_in(&r).map(Msg::Text),
        Msg::SignOut(r) => plugin.sign_out(&r).map(Msg::Text),
        _ => Err(ProviderError::internal(
            "the provider process was sent a message that is not a call",
        )),
    };
    result.unwrap_or_else(Msg::Failed)
}

/// The host services as the child lends them: each becomes a message to the host.
#[derive(Debug)]
struct ProxyServices {
    connection: Arc<Connection>,
}

impl ProxyServices {
    fn secret(&self, msg: &Msg) -> Result<Option<String>, String> {
        match self.connection.call(msg, None) {
            Ok(Msg::SecretValue(value)) => Ok(value),
            Ok(Msg::SecretDone) => Ok(None),
            Ok(Msg::SecretFailed(why)) => Err(why),
            Ok(_) => Err("the host answered a secret-store call with something else".into()),
            Err(_) => Err("the host closed the connection".into()),
        }
    }
}

impl HostServices for ProxyServices {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        self.connection.event(&Msg::Log {
            level: level as u8,
            target: target.as_str().to_string(),
            message: message.as_str().to_string(),
        });
    }

    fn notify(&self, message: RStr<'_>) {
        self.connection
            .event(&Msg::Notify(message.as_str().to_string()));
    }

    fn secret_get(&self, key: RStr<'_>) -> RResult<ROption<RString>, RString> {
        match self.secret(&Msg::SecretGet(key.as_str().to_string())) {
            Ok(value) => RResult::ROk(value.map(RString::from).into()),
            Err(why) => RResult::RErr(why.into()),
        }
    }

    fn secret_put(&self, key: RStr<'_>, value: RStr<'_>) -> RResult<(), RString> {
        let msg = Msg::SecretPut(key.as_str().to_string(), value.as_str().to_string());
        self.secret(&msg).map(|_| ()).map_err(RString::from).into()
    }

    fn secret_delete(&self, key: RStr<'_>) -> RResult<(), RString> {
        let msg = Msg::SecretDelete(key.as_str().to_string());
        self.secret(&msg).map(|_| ()).map_err(RString::from).into()
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Worker threads that grow with the number of calls in flight and are reused afterwards, so
/// a call costs no thread start once the child is warm.
struct Pool {
    tx: mpsc::Sender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    idle: Arc<AtomicUsize>,
}

impl Pool {
    fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn run(&self, job: Job) {
        // Take an idle worker if there is one; otherwise start one for this job.
        let reserved = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if reserved {
            if self.tx.send(job).is_err() {
                log::debug!("isolation: the worker queue is closed");
            }
            return;
        }
        let (rx, idle) = (self.rx.clone(), self.idle.clone());
        let started = std::thread::Builder::new()
            .name("mailhost-provider-call".into())
            .spawn(move || {
                job();
                loop {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = started {
            log::debug!("isolation: cannot start a worker thread: {e}");
        }
    }
}
