//! The isolation protocol between the host and a provider child, over one Unix socket.
//!
//! - **Framing.** Every frame is a `u32` little-endian length, then that many bytes: a `u64`
//!   request id, a direction byte (request or reply) and one [`Msg`] ([`super::wire`] encodes
//!   it). Frames larger than [`MAX_FRAME`] are refused.
//! - **Handshake first.** Before anything else each side sends [`Msg::Hello`] with the
//!   protocol's name, its version and the features it has; [`Hello::check`] refuses a peer of
//!   another major version (nushell's plugin protocol is the model).
//! - **Ids, replies in any order.** Either side may send requests (the host: load, send, ...;
//!   the child: the host services it proxies, such as the secret store); each carries an id
//!   unique to its sender, and the reply carries the same id, so concurrent sends overlap in one
//!   child and their replies come back as they finish. Id 0 is an event that expects no reply
//!   (log records, notify messages).
//!
//! [`Connection`] is the one mechanism both sides use: it writes frames, keeps the table of
//! requests waiting for replies, and its reader loop hands incoming requests to a handler and
//! replies to their waiters.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mailhost_plugin_api::{
    DiagnoseRequest, Finding, LimitSpec, LogLevel, MimeSendRequest, ProviderError, ProviderInfo,
    Receipt, ReconcileOutcome, ReconcileRequest, SendRequest, SignInRequest,
};

use super::wire::{Reader, Wire, WireError};

/// The protocol's name in the handshake.
pub const PROTOCOL: &str = "mailhost-provider";

/// This protocol's version: the major must match, minors add features.
pub const VERSION: (u32, u32) = (1, 0);

/// The largest frame either side accepts (a send request carries paths, not file contents).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// The first message each side sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Always [`PROTOCOL`].
    pub protocol: String,
    /// The sender's (major, minor).
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// Named features the sender has.
    pub features: Vec<String>,
}

impl Hello {
    /// This side's greeting.
    pub fn ours() -> Self {
        Self {
            protocol: PROTOCOL.into(),
            major: VERSION.0,
            minor: VERSION.1,
            features: Vec::new(),
        }
    }

    /// Whether a peer's greeting is one this side can talk to.
    ///
    /// # Errors
    /// Another protocol or another major version, in one line.
    pub fn check(&self) -> Result<(), String> {
        if self.protocol != PROTOCOL {
            return Err(format!(
                "the provider process speaks '{}', not {PROTOCOL}",
                self.protocol
            ));
        }
        if self.major != VERSION.0 {
            return Err(format!(
                "the provider process speaks {PROTOCOL} {}.{}; this mailhost speaks {}.{}: run the provider child of the same mailhost",
                self.major, self.minor, VERSION.0, VERSION.1
            ));
        }
        Ok(())
    }
}

/// The log level a byte stands for (a `LogLevel` as it crosses the wire); unknown bytes are off.
pub fn level_of(byte: u8) -> LogLevel {
    [
        LogLevel::Off,
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ]
    .get(usize::from(byte))
    .copied()
    .unwrap_or(LogLevel::Off)
}

/// What to load, sent once after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRequest {
    /// The library file.
    pub path: String,
    /// The pinned SHA-256 the file must have before it is opened; `None` to inspect a library
    /// that is not registered yet.
    pub sha256: Option<String>,
    /// The registered name it must report; `None` when inspecting.
    pub name: Option<String>,
    /// The host's log level (a `LogLevel` byte): the plugin filters before sending records.
    pub max_level: u8,
}

/// Which optional root-module functions the library has.
pub mod functions {
    /// API 1.1 `sign_in`.
    pub const SIGN_IN: u32 = 1;
    /// API 1.1 `sign_out`.
    pub const SIGN_OUT: u32 = 1 << 1;
    /// API 1.2 (`limits` and the rest of 1.2).
    pub const API_1_2: u32 = 1 << 2;
    /// API 1.2 `send_mime` with the `mime` capability.
    pub const MIME: u32 = 1 << 3;
    /// API 1.2 `reconcile` with the `reconcile` capability.
    pub const RECONCILE: u32 = 1 << 4;
}

/// The library loaded and described itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Its self-description.
    pub info: ProviderInfo,
    /// The plugin API version it was built against.
    pub api_version: String,
    /// Its optional functions ([`functions`] bits).
    pub functions: u32,
    /// The SHA-256 of the file that was opened.
    pub sha256: String,
    /// The file's size and modification time (seconds) when it was hashed.
    pub size: u64,
    /// See `size`.
    pub mtime: i64,
}

/// One message.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // encoded at once, never stored in bulk
pub enum Msg {
    /// The handshake.
    Hello(Hello),
    /// Host: load the library.
    Load(LoadRequest),
    /// Child: it loaded.
    Loaded(Loaded),
    /// Child: it was refused: the state name and the loader's one line.
    LoadFailed(String, String),
    /// Host: `send`.
    Send(SendRequest),
    /// Host: `send_mime`.
    SendMime(MimeSendRequest),
    /// Host: `limits`.
    Limits,
    /// Host: `sending_mailbox`.
    SendingMailbox(SendRequest),
    /// Host: `reconcile`.
    Reconcile(ReconcileRequest),
    /// Host: `diagnose`.
    Diagnose(DiagnoseRequest),
    /// Host: `sign_in`.
    SignIn(SignInRequest),
    /// Host: `sign_out`.
    SignOut(SignInRequest),
    /// Child: the call returned the provider's error.
    Failed(ProviderError),
    /// Child: a send's receipt.
    Receipt(Receipt),
    /// Child: the declared limits.
    LimitList(Vec<LimitSpec>),
    /// Child: a line of text (the sending mailbox, a sign-in message).
    Text(String),
    /// Child: a reconcile outcome.
    Outcome(ReconcileOutcome),
    /// Child: diagnose findings.
    Findings(Vec<Finding>),
    /// Child event: a log record from the plugin.
    Log {
        /// A `LogLevel` byte.
        level: u8,
        /// The record's target inside the plugin.
        target: String,
        /// The text.
        message: String,
    },
    /// Child event: a message for the user.
    Notify(String),
    /// Child: read a secret of the plugin.
    SecretGet(String),
    /// Child: store a secret of the plugin.
    SecretPut(String, String),
    /// Child: delete a secret of the plugin.
    SecretDelete(String),
    /// Host: the secret read.
    SecretValue(Option<String>),
    /// Host: the secret call succeeded.
    SecretDone,
    /// Host: the secret call failed, with why.
    SecretFailed(String),
    /// Host: stop now (no reply).
    Shutdown,
}

impl Wire for Hello {
    fn put(&self, out: &mut Vec<u8>) {
        self.protocol.put(out);
        self.major.put(out);
        self.minor.put(out);
        self.features.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            protocol: Wire::get(r)?,
            major: Wire::get(r)?,
            minor: Wire::get(r)?,
            features: Wire::get(r)?,
        })
    }
}

impl Wire for LoadRequest {
    fn put(&self, out: &mut Vec<u8>) {
        self.path.put(out);
        self.sha256.put(out);
        self.name.put(out);
        self.max_level.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            path: Wire::get(r)?,
            sha256: Wire::get(r)?,
            name: Wire::get(r)?,
            max_level: Wire::get(r)?,
        })
    }
}

impl Wire for Loaded {
    fn put(&self, out: &mut Vec<u8>) {
        self.info.put(out);
        self.api_version.put(out);
        self.functions.put(out);
        self.sha256.put(out);
        self.size.put(out);
        self.mtime.put(out);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            info: Wire::get(r)?,
            api_version: Wire::get(r)?,
            functions: Wire::get(r)?,
            sha256: Wire::get(r)?,
            size: Wire::get(r)?,
            mtime: Wire::get(r)?,
        })
    }
}

impl Wire for Msg {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Self::Hello(v) => tagged(0, v, out),
            Self::Load(v) => tagged(1, v, out),
            Self::Loaded(v) => tagged(2, v, out),
            Self::LoadFailed(state, line) => {
                out.push(3);
                state.put(out);
                line.put(out);
            }
            Self::Send(v) => tagged(4, v, out),
            Self::SendMime(v) => tagged(5, v, out),
            Self::Limits => out.push(6),
            Self::SendingMailbox(v) => tagged(7, v, out),
            Self::Reconcile(v) => tagged(8, v, out),
            Self::Diagnose(v) => tagged(9, v, out),
            Self::SignIn(v) => tagged(10, v, out),
            Self::SignOut(v) => tagged(11, v, out),
            Self::Failed(v) => tagged(12, v, out),
            Self::Receipt(v) => tagged(13, v, out),
            Self::LimitList(v) => tagged(14, v, out),
            Self::Text(v) => tagged(15, v, out),
            Self::Outcome(v) => tagged(16, v, out),
            Self::Findings(v) => tagged(17, v, out),
            Self::Log {
                level,
                target,
                message,
            } => {
                out.push(18);
                level.put(out);
                target.put(out);
                message.put(out);
            }
            Self::Notify(v) => tagged(19, v, out),
            Self::SecretGet(v) => tagged(20, v, out),
            Self::SecretPut(k, v) => {
                out.push(21);
                k.put(out);
                v.put(out);
            }
            Self::SecretDelete(v) => tagged(22, v, out),
            Self::SecretValue(v) => tagged(23, v, out),
            Self::SecretDone => out.push(24),
            Self::SecretFailed(v) => tagged(25, v, out),
            Self::Shutdown => out.push(26),
        }
    }

    fn get(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match r.byte()? {
            0 => Self::Hello(Wire::get(r)?),
            1 => Self::Load(Wire::get(r)?),
            2 => Self::Loaded(Wire::get(r)?),
            3 => Self::LoadFailed(Wire::get(r)?, Wire::get(r)?),
            4 => Self::Send(Wire::get(r)?),
            5 => Self::SendMime(Wire::get(r)?),
            6 => Self::Limits,
            7 => Self::SendingMailbox(Wire::get(r)?),
            8 => Self::Reconcile(Wire::get(r)?),
            9 => Self::Diagnose(Wire::get(r)?),
            10 => Self::SignIn(Wire::get(r)?),
            11 => Self::SignOut(Wire::get(r)?),
            12 => Self::Failed(Wire::get(r)?),
            13 => Self::Receipt(Wire::get(r)?),
            14 => Self::LimitList(Wire::get(r)?),
            15 => Self::Text(Wire::get(r)?),
            16 => Self::Outcome(Wire::get(r)?),
            17 => Self::Findings(Wire::get(r)?),
            18 => Self::Log {
                level: Wire::get(r)?,
                target: Wire::get(r)?,
                message: Wire::get(r)?,
            },
            19 => Self::Notify(Wire::get(r)?),
            20 => Self::SecretGet(Wire::get(r)?),
            21 => Self::SecretPut(Wire::get(r)?, Wire::get(r)?),
            22 => Self::SecretDelete(Wire::get(r)?),
            23 => Self::SecretValue(Wire::get(r)?),
            24 => Self::SecretDone,
            25 => Self::SecretFailed(Wire::get(r)?),
            26 => Self::Shutdown,
            _ => return Err(WireError("unknown message")),
        })
    }
}

fn tagged(tag: u8, value: &impl Wire, out: &mut Vec<u8>) {
    out.push(tag);
    value.put(out);
}

/// A frame's direction byte.
const REQUEST: u8 = 0;
const REPLY: u8 = 1;

/// One decoded frame.
#[derive(Debug)]
pub struct Frame {
    /// The request id (0 for an event).
    pub id: u64,
    /// Whether it answers a request of the reader's side.
    pub reply: bool,
    /// The message.
    pub msg: Msg,
}

/// Encodes a frame, length prefix included.
pub fn encode(id: u64, reply: bool, msg: &Msg) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    id.put(&mut out);
    out.push(if reply { REPLY } else { REQUEST });
    msg.put(&mut out);
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// Reads one frame; `Ok(None)` at a clean end of the stream.
///
/// # Errors
/// The stream failed, ended inside a frame, or the frame is malformed or too large.
pub fn read_frame(reader: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(9..=MAX_FRAME).contains(&len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes"),
        ));
    }
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf)?;
    let mut r = Reader::new(buf);
    let bad = |e: WireError| io::Error::new(io::ErrorKind::InvalidData, e);
    let id = u64::get(&mut r).map_err(bad)?;
    let reply = r.byte().map_err(bad)? == REPLY;
    let msg = Msg::get(&mut r).map_err(bad)?;
    if !r.is_empty() {
        return Err(bad(WireError("trailing bytes")));
    }
    Ok(Some(Frame { id, reply, msg }))
}

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoReply {
    /// The peer went away (the connection closed or failed).
    Closed,
    /// The deadline passed.
    TimedOut,
}

/// One side of a connection: writes frames and routes replies to the requests waiting for them.
#[derive(Debug)]
pub struct Connection {
    writer: Mutex<UnixStream>,
    pending: Mutex<HashMap<u64, mpsc::Sender<Msg>>>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

/// A request sent and waiting for its reply.
#[derive(Debug)]
pub struct Pending<'a> {
    connection: &'a Connection,
    id: u64,
    rx: mpsc::Receiver<Msg>,
}

impl Pending<'_> {
    /// Waits for the reply, up to `timeout` (for ever with `None`).
    ///
    /// # Errors
    /// The connection closed first, or the deadline passed.
    pub fn wait(self, timeout: Option<Duration>) -> Result<Msg, NoReply> {
        let got = match timeout {
            Some(t) => self.rx.recv_timeout(t).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => NoReply::TimedOut,
                mpsc::RecvTimeoutError::Disconnected => NoReply::Closed,
            }),
            None => self.rx.recv().map_err(|_| NoReply::Closed),
        };
        if got.is_err() {
            self.connection.forget(self.id);
        }
        got
    }
}

impl Connection {
    /// A connection writing to `writer` (a clone of the stream the reader loop reads).
    pub fn new(writer: UnixStream) -> Self {
        Self {
            writer: Mutex::new(writer),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        }
    }

    fn write(&self, frame: &[u8]) -> io::Result<()> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        writer.write_all(frame)
    }

    /// Sends a request; its reply arrives through the returned [`Pending`].
    ///
    /// # Errors
    /// The connection is closed or the write failed.
    pub fn request(&self, msg: &Msg) -> Result<Pending<'_>, NoReply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return Err(NoReply::Closed);
            }
            pending.insert(id, tx);
        }
        if let Err(e) = self.write(&encode(id, false, msg)) {
            log::debug!("isolation: cannot write request {id}: {e}");
            self.forget(id);
            return Err(NoReply::Closed);
        }
        Ok(Pending {
            connection: self,
            id,
            rx,
        })
    }

    /// Sends a request and waits for its reply.
    ///
    /// # Errors
    /// See [`Pending::wait`].
    pub fn call(&self, msg: &Msg, timeout: Option<Duration>) -> Result<Msg, NoReply> {
        self.request(msg)?.wait(timeout)
    }

    /// Sends an event (no reply expected); a failed write is only logged.
    pub fn event(&self, msg: &Msg) {
        if let Err(e) = self.write(&encode(0, false, msg)) {
            log::debug!("isolation: cannot write an event: {e}");
        }
    }

    /// Answers the peer's request `id`.
    pub fn reply(&self, id: u64, msg: &Msg) {
        if let Err(e) = self.write(&encode(id, true, msg)) {
            log::debug!("isolation: cannot write reply {id}: {e}");
        }
    }

    /// Sends the handshake.
    ///
    /// # Errors
    /// The write failed.
    pub fn hello(&self) -> io::Result<()> {
        self.write(&encode(0, false, &Msg::Hello(Hello::ours())))
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Whether the reader loop has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the writing half (the peer's reader sees the end) and fails every waiter.
    pub fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writer.shutdown(std::net::Shutdown::Both);
        drop(writer);
        self.fail_all();
    }

    fn fail_all(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        pending.clear(); // dropping the senders wakes every waiter with `Closed`
    }

    /// Reads frames until the stream ends: replies go to their waiters, requests and events
    /// to `incoming(id, msg)` (id 0 for events). Every waiter is failed when it returns.
    pub fn read_loop(&self, stream: UnixStream, mut incoming: impl FnMut(u64, Msg)) {
        let mut reader = BufReader::with_capacity(64 * 1024, stream);
        let mut buf = Vec::new();
        loop {
            match read_frame(&mut reader, &mut buf) {
                Ok(Some(frame)) if frame.reply => {
                    let waiter = self
                        .pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&frame.id);
                    match waiter {
                        Some(tx) => {
                            let _ = tx.send(frame.msg);
                        }
                        None => log::debug!("isolation: a reply to no request ({})", frame.id),
                    }
                }
                Ok(Some(frame)) => incoming(frame.id, frame.msg),
                Ok(None) => break,
                Err(e) => {
                    log::debug!("isolation: the connection failed: {e}");
                    break;
                }
            }
        }
        self.fail_all();
    }
}

/// Reads the peer's handshake from `stream` and checks it.
///
/// # Errors
/// The peer sent something else first, or an incompatible version, in one line.
pub fn read_hello(stream: &mut UnixStream) -> Result<Hello, String> {
    let mut buf = Vec::new();
    match read_frame(stream, &mut buf) {
        Ok(Some(Frame {
            msg: Msg::Hello(hello),
            ..
        })) => {
            hello.check()?;
            Ok(hello)
        }
        Ok(Some(_)) => Err("the provider process did not start with the handshake".into()),
        Ok(None) => Err("the provider process closed the connection before the handshake".into()),
        Err(e) => Err(format!("the handshake failed: {e}")),
    }
}

/// Starts the reader loop of `connection` on its own thread.
///
/// # Errors
/// The stream cannot be cloned or the thread cannot start.
pub fn spawn_reader(
    connection: &Arc<Connection>,
    stream: UnixStream,
    name: &str,
    incoming: impl FnMut(u64, Msg) + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    let connection = connection.clone();
    std::thread::Builder::new()
        .name(format!("mailhost-{name}-reader"))
        .spawn(move || connection.read_loop(stream, incoming))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msgs = [
            Msg::Hello(Hello::ours()),
            Msg::Limits,
            Msg::SecretPut("k".into(), "v".into()),
            Msg::Log {
                level: 3,
                target: "t".into(),
                message: "m".into(),
            },
            Msg::Failed(ProviderError::transient("later")),
        ];
        for msg in msgs {
            let bytes = encode(7, true, &msg);
            let frame = read_frame(&mut &bytes[..], &mut Vec::new())
                .unwrap()
                .unwrap();
            assert_eq!((frame.id, frame.reply), (7, true));
            assert_eq!(format!("{:?}", frame.msg), format!("{msg:?}"));
        }
        assert!(read_frame(&mut &[][..], &mut Vec::new()).unwrap().is_none());
        let huge = u32::try_from(MAX_FRAME + 1).unwrap().to_le_bytes();
        assert!(read_frame(&mut &huge[..], &mut Vec::new()).is_err());
    }

    #[test]
    fn another_major_version_is_refused() {
        let mut hello = Hello::ours();
        assert!(hello.check().is_ok());
        hello.major += 1;
        assert!(hello.check().unwrap_err().contains("this mailhost speaks"));
        hello.protocol = "nu-plugin".into();
        assert!(hello.check().is_err());
    }

    #[test]
    fn replies_reach_their_waiters_in_any_order() {
        let (host, child) = UnixStream::pair().unwrap();
        let host_conn = Arc::new(Connection::new(host.try_clone().unwrap()));
        let child_conn = Arc::new(Connection::new(child.try_clone().unwrap()));
        // The child answers requests in reverse order of arrival, once it has two.
        let answering = child_conn.clone();
        let mut held = Vec::new();
        let child_reader = spawn_reader(&child_conn, child, "child", move |id, msg| {
            held.push((id, msg));
            if held.len() == 2 {
                for (id, msg) in held.drain(..).rev() {
                    let Msg::Text(text) = msg else { continue };
                    answering.reply(id, &Msg::Text(format!("re: {text}")));
                }
            }
        })
        .unwrap();
        let _host_reader = spawn_reader(&host_conn, host, "host", |_, _| {}).unwrap();
        let first = host_conn.request(&Msg::Text("one".into())).unwrap();
        let second = host_conn.request(&Msg::Text("two".into())).unwrap();
        let timeout = Some(Duration::from_secs(10));
        let Msg::Text(b) = second.wait(timeout).unwrap() else {
            panic!()
        };
        let Msg::Text(a) = first.wait(timeout).unwrap() else {
            panic!()
        };
        assert_eq!((a.as_str(), b.as_str()), ("re: one", "re: two"));
        // A request nobody answers times out; closing fails the rest.
        let silent = host_conn.request(&Msg::Limits).unwrap();
        assert_eq!(
            silent.wait(Some(Duration::from_millis(20))).unwrap_err(),
            NoReply::TimedOut
        );
        let late = host_conn.request(&Msg::Limits).unwrap();
        child_conn.close();
        assert_eq!(late.wait(timeout).unwrap_err(), NoReply::Closed);
        child_reader.join().unwrap();
    }
}
