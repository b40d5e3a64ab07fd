//! The SMTP server session as a state machine with no I/O: bytes go in with
//! [`Session::feed`], [`Action`]s come out (replies to write, TLS to start, credentials to
//! check, a message to record). The listener performs each action and reports back with
//! [`Session::tls_started`], [`Session::auth_answer`] or [`Session::accept_answer`]. While an
//! answer is outstanding the session reads no further input, so pipelined commands after
//! `DATA`'s end or `AUTH` wait their turn.
//!
//! Requests are parsed by Stalwart's `smtp-proto` (MAIL and RCPT parameters, DSN, SMTPUTF8);
//! line framing, the DATA phase ([`super::data`]), SASL ([`super::sasl`]) and every policy
//! are here. Command lines must end in CRLF: a bare LF or CR gets `500 5.5.2` and the
//! connection is closed (Postfix 3.9 disconnects too; see [`super::data`] for why).

use std::borrow::Cow;

use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, MAIL_BODY_8BITMIME, MAIL_BODY_BINARYMIME, MAIL_RET_FULL, MAIL_RET_HDRS,
    MAIL_SMTPUTF8, MailFrom, RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE, RCPT_NOTIFY_NEVER,
    RCPT_NOTIFY_SUCCESS, RcptTo, Request,
};

use super::backend::AcceptError;
use super::data::{DataOutcome, DataReceiver};
use super::envelope::{DsnReturn, Envelope, Identity, Recipient};
use super::reply::Reply;
use super::sasl::{self, Credentials};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 4954 §4: an AUTH command or SASL response line may be 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;

/// What a session is configured with (the listener's settings).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The host name in the banner and EHLO.
    pub hostname: String,
    /// The largest message accepted (advertised with SIZE).
    pub max_message_bytes: u64,
    /// The most recipients per message (a staff member's own limit may be lower).
    pub max_recipients: usize,
    /// A certificate is configured, so STARTTLS is offered on a plain connection.
    pub starttls: bool,
    /// AUTH is offered without TLS (the client is on loopback).
    pub auth_without_tls: bool,
    /// After this many refused commands the session is closed.
    pub max_errors: u32,
}

/// Something the listener must do.
#[derive(Debug)]
pub enum Action {
    /// Write this reply.
    Reply(Reply),
    /// After writing the replies before it, start TLS on the connection, then call
    /// [`Session::tls_started`].
    StartTls,
    /// Check these credentials, then call [`Session::auth_answer`].
    Authenticate(Credentials),
    /// Record this message, then call [`Session::accept_answer`].
    Accept {
        /// Who sends it.
        identity: Identity,
        /// Its envelope.
        envelope: Envelope,
        /// The message (unstuffed, CRLF line ends).
        message: Vec<u8>,
    },
    /// Close the connection (after writing the replies before it).
    Close,
}

/// The outcome of a credential check.
#[derive(Debug)]
pub enum AuthAnswer {
    /// The credentials are a staff member's.
    Accepted(Identity),
    /// They are not.
    Refused,
    /// The client's address has failed too often and is locked out for this many minutes.
    LockedOut(u64),
}

#[derive(Debug)]
enum Phase {
    /// Before EHLO/HELO.
    Fresh,
    /// Commands.
    Ready,
    /// Waiting for the AUTH PLAIN response.
    AuthPlain,
    /// Waiting for the AUTH LOGIN user name.
    AuthLoginUser,
    /// Waiting for the AUTH LOGIN password.
    AuthLoginPassword(String),
    /// Reading the message.
    Data(Box<DataReceiver>),
    /// An action's answer is outstanding.
    Waiting(Pending),
    /// Done.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Tls,
    Auth,
    Accept,
}

/// One SMTP session.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    tls: bool,
    trusted: Option<Identity>,
    phase: Phase,
    helo: bool,
    authenticated: Option<Identity>,
    transaction: Option<Envelope>,
    input: Vec<u8>,
    discarding: bool,
    errors: u32,
}

impl Session {
    /// A session on a new connection; `tls` for implicit TLS, `trusted` when the client's
    /// network is trusted for a staff member.
    pub fn new(config: SessionConfig, tls: bool, trusted: Option<Identity>) -> Self {
        Self {
            config,
            tls,
            trusted,
            phase: Phase::Fresh,
            helo: false,
            authenticated: None,
            transaction: None,
            input: Vec::new(),
            discarding: false,
            errors: 0,
        }
    }

    /// The `220` banner.
    pub fn greeting(&self) -> Reply {
        Reply::new(
            220,
            "",
            format!("{} ESMTP mailhost relay", self.config.hostname),
        )
    }

    /// Whether the session is reading a message (the listener applies the DATA timeout).
    pub fn in_data(&self) -> bool {
        matches!(self.phase, Phase::Data(_))
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The client was silent too long (RFC 5321 §4.5.3.2).
    pub fn timed_out(&mut self) -> Vec<Action> {
        self.phase = Phase::Closed;
        vec![
            Action::Reply(Reply::new(
                421,
                "4.4.2",
                format!("{} Error: timeout exceeded", self.config.hostname),
            )),
            Action::Close,
        ]
    }

    /// The service is stopping.
    pub fn shutting_down(&mut self) -> Vec<Action> {
        self.phase = Phase::Closed;
        vec![
            Action::Reply(Reply::new(
                421,
                "4.3.2",
                format!(
                    "{} Service shutting down; try again later",
                    self.config.hostname
                ),
            )),
            Action::Close,
        ]
    }

    /// Takes bytes from the client.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Action> {
        if self.is_closed() {
            return Vec::new();
        }
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        self.run(&mut out);
        out
    }

    /// TLS is up: the session starts over (RFC 3207 §4.2), input sent before it is gone.
    pub fn tls_started(&mut self) -> Vec<Action> {
        self.tls = true;
        self.helo = false;
        self.authenticated = None;
        self.transaction = None;
        self.input.clear();
        self.phase = Phase::Fresh;
        Vec::new()
    }

    /// The answer to [`Action::Authenticate`].
    pub fn auth_answer(&mut self, answer: AuthAnswer) -> Vec<Action> {
        if !matches!(self.phase, Phase::Waiting(Pending::Auth)) {
            return Vec::new();
        }
        self.phase = Phase::Ready;
        let mut out = Vec::new();
        match answer {
            AuthAnswer::Accepted(identity) => {
                self.authenticated = Some(identity);
                out.push(Action::Reply(Reply::new(
                    235,
                    "2.7.0",
                    "Authentication successful",
                )));
            }
            AuthAnswer::Refused => {
                self.refuse(
                    &mut out,
                    Reply::new(535, "5.7.8", "Authentication credentials invalid"),
                );
            }
            AuthAnswer::LockedOut(minutes) => {
                out.push(Action::Reply(Reply::new(
                    421,
                    "4.7.0",
                    format!(
                        "Too many failed authentications from your address; try again in {minutes} minutes"
                    ),
                )));
                self.close(&mut out);
            }
        }
        self.run(&mut out);
        out
    }

    /// The answer to [`Action::Accept`]: the email ID, or why it was not recorded.
    pub fn accept_answer(&mut self, answer: Result<String, AcceptError>) -> Vec<Action> {
        if !matches!(self.phase, Phase::Waiting(Pending::Accept)) {
            return Vec::new();
        }
        self.phase = Phase::Ready;
        let mut out = Vec::new();
        let reply = match answer {
            Ok(id) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            Err(AcceptError::Temporary(why)) => Reply::new(451, "4.3.0", why),
            Err(e @ AcceptError::TooManyRecipients(_)) => Reply::new(452, "4.5.3", e.to_string()),
            Err(AcceptError::Refused(why)) => Reply::new(554, "5.6.0", why),
        };
        out.push(Action::Reply(reply));
        self.run(&mut out);
        out
    }

    fn close(&mut self, out: &mut Vec<Action>) {
        self.phase = Phase::Closed;
        out.push(Action::Close);
    }

    /// Pushes a refusal and counts it; too many close the session.
    fn refuse(&mut self, out: &mut Vec<Action>, reply: Reply) {
        out.push(Action::Reply(reply));
        self.errors += 1;
        if self.errors >= self.config.max_errors && !self.is_closed() {
            out.push(Action::Reply(Reply::new(
                421,
                "4.7.0",
                format!("{} Error: too many errors", self.config.hostname),
            )));
            self.close(out);
        }
    }

    fn run(&mut self, out: &mut Vec<Action>) {
        loop {
            match &mut self.phase {
                Phase::Closed | Phase::Waiting(_) => return,
                Phase::Data(receiver) => match receiver.ingest(&mut self.input) {
                    Some(outcome) => self.end_of_data(outcome, out),
                    None => return,
                },
                _ => match self.next_line(out) {
                    Some(line) => self.line(&line, out),
                    None => return,
                },
            }
        }
    }

    fn line_limit(&self) -> usize {
        let auth_phase = matches!(
            self.phase,
            Phase::AuthPlain | Phase::AuthLoginUser | Phase::AuthLoginPassword(_)
        );
        let auth_command = self
            .input
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"AUTH "));
        if auth_phase || auth_command {
            MAX_AUTH_LINE
        } else {
            MAX_COMMAND_LINE
        }
    }

    /// The next complete line (CRLF included), refusing over-long and bare-newline ones.
    fn next_line(&mut self, out: &mut Vec<Action>) -> Option<Vec<u8>> {
        loop {
            if self.is_closed() {
                return None;
            }
            let newline = self.input.iter().position(|&b| b == b'\n');
            if self.discarding {
                let Some(pos) = newline else {
                    self.input.clear();
                    return None;
                };
                self.input.drain(..=pos);
                self.discarding = false;
                self.refuse(
                    out,
                    Reply::new(
                        500,
                        "5.5.2",
                        format!(
                            "Error: line too long (a command line is at most {MAX_COMMAND_LINE} octets)"
                        ),
                    ),
                );
                continue;
            }
            let limit = self.line_limit();
            match newline {
                Some(pos) if pos < limit => {
                    let line: Vec<u8> = self.input.drain(..=pos).collect();
                    let crlf = pos > 0 && line[pos - 1] == b'\r';
                    let inner = &line[..line.len() - if crlf { 2 } else { 1 }];
                    let what = if !crlf {
                        Some("<LF>")
                    } else if inner.contains(&b'\r') {
                        Some("<CR>")
                    } else {
                        None
                    };
                    if let Some(what) = what {
                        out.push(Action::Reply(Reply::new(
                            500,
                            "5.5.2",
                            format!("Error: bare {what} received; SMTP lines end in <CR><LF> (RFC 5321 §2.3.8)"),
                        )));
                        self.close(out);
                        return None;
                    }
                    return Some(line);
                }
                Some(_) => self.discarding = true,
                None if self.input.len() >= limit => self.discarding = true,
                None => return None,
            }
        }
    }

    fn auth_offered(&self) -> bool {
        self.tls || self.config.auth_without_tls
    }

    fn identity(&self) -> Option<&Identity> {
        self.authenticated.as_ref().or(self.trusted.as_ref())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Action>) {
        match std::mem::replace(&mut self.phase, Phase::Ready) {
            Phase::AuthPlain => return self.sasl_plain(line, out),
            Phase::AuthLoginUser => return self.sasl_login_user(line, out),
            Phase::AuthLoginPassword(user) => return self.sasl_login_password(user, line, out),
            Phase::Fresh => self.phase = Phase::Fresh,
            _ => {}
        }
        match Request::parse(&mut line.iter()) {
            Ok(request) => self.request(request, out),
            Err(error) => {
                let reply = match error {
                    smtp_proto::Error::UnknownCommand => {
                        Reply::new(500, "5.5.1", "Error: command not recognized")
                    }
                    smtp_proto::Error::InvalidSenderAddress => {
                        Reply::new(501, "5.1.7", "Error: bad sender address syntax")
                    }
                    smtp_proto::Error::InvalidRecipientAddress => {
                        Reply::new(501, "5.1.3", "Error: bad recipient address syntax")
                    }
                    smtp_proto::Error::UnsupportedParameter { param } => Reply::new(
                        555,
                        "5.5.4",
                        format!("Error: parameter {param} is not supported"),
                    ),
                    smtp_proto::Error::InvalidParameter { param } => Reply::new(
                        501,
                        "5.5.4",
                        format!("Error: invalid value for parameter {param}"),
                    ),
                    smtp_proto::Error::SyntaxError { syntax } => {
                        Reply::new(501, "5.5.4", format!("Syntax: {syntax}"))
                    }
                    _ => Reply::new(500, "5.5.2", "Error: command syntax"),
                };
                self.refuse(out, reply);
            }
        }
    }

    fn need_helo(&mut self, out: &mut Vec<Action>) -> bool {
        if self.helo {
            return true;
        }
        self.refuse(
            out,
            Reply::new(503, "5.5.1", "Error: send EHLO or HELO first"),
        );
        false
    }

    fn request(&mut self, request: Request<Cow<'_, str>>, out: &mut Vec<Action>) {
        match request {
            Request::Ehlo { host } => self.ehlo(&host, true, out),
            Request::Helo { host } => self.ehlo(&host, false, out),
            Request::StartTls => self.starttls(out),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response, out),
            Request::Mail { from } => self.mail(from, out),
            Request::Rcpt { to } => self.rcpt(to, out),
            Request::Data => self.data(out),
            Request::Rset => {
                self.transaction = None;
                out.push(Action::Reply(Reply::new(250, "2.0.0", "Ok")));
            }
            Request::Noop { .. } => out.push(Action::Reply(Reply::new(250, "2.0.0", "Ok"))),
            Request::Quit => {
                out.push(Action::Reply(Reply::new(221, "2.0.0", "Bye")));
                self.close(out);
            }
            Request::Help { .. } => out.push(Action::Reply(Reply::multi(
                214,
                "2.0.0",
                vec![
                    "mailhost relay: submission to Microsoft 365 and other providers".into(),
                    "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT HELP".into(),
                    "Authenticate as a staff member with their relay password".into(),
                ],
            ))),
            Request::Vrfy { .. } => out.push(Action::Reply(Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ))),
            Request::Expn { .. } => self.refuse(
                out,
                Reply::new(502, "5.5.1", "Error: EXPN is not supported"),
            ),
            Request::Lhlo { .. }
            | Request::Bdat { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.refuse(
                out,
                Reply::new(502, "5.5.1", "Error: command not implemented"),
            ),
        }
    }

    fn ehlo(&mut self, host: &str, extended: bool, out: &mut Vec<Action>) {
        if host.trim().is_empty() {
            self.refuse(out, Reply::new(501, "5.5.4", "Syntax: EHLO hostname"));
            return;
        }
        self.helo = true;
        self.transaction = None;
        self.phase = Phase::Ready;
        let hostname = self.config.hostname.clone();
        if !extended {
            out.push(Action::Reply(Reply::new(250, "", hostname)));
            return;
        }
        let mut lines = vec![
            hostname,
            "PIPELINING".to_string(),
            format!("SIZE {}", self.config.max_message_bytes),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "DSN".to_string(),
        ];
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_offered() && self.authenticated.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines.push("HELP".to_string());
        out.push(Action::Reply(Reply::multi(250, "", lines)));
    }

    fn starttls(&mut self, out: &mut Vec<Action>) {
        if self.tls {
            self.refuse(out, Reply::new(503, "5.5.1", "Error: TLS already active"));
        } else if !self.config.starttls {
            self.refuse(
                out,
                Reply::new(
                    502,
                    "5.5.1",
                    "Error: STARTTLS not offered (no certificate configured)",
                ),
            );
        } else if self.need_helo(out) {
            out.push(Action::Reply(Reply::new(
                220,
                "2.0.0",
                "Ready to start TLS",
            )));
            out.push(Action::StartTls);
            // RFC 3207 §5 / CVE-2011-0411: nothing pipelined after STARTTLS is read.
            self.input.clear();
            self.phase = Phase::Waiting(Pending::Tls);
        }
    }

    fn auth(&mut self, mechanism: u64, initial: &str, out: &mut Vec<Action>) {
        if !self.auth_offered() {
            self.refuse(
                out,
                Reply::new(530, "5.7.0", "Must issue a STARTTLS command first"),
            );
            return;
        }
        if !self.need_helo(out) {
            return;
        }
        if self.authenticated.is_some() {
            self.refuse(
                out,
                Reply::new(503, "5.5.1", "Error: already authenticated"),
            );
            return;
        }
        if self.transaction.is_some() {
            self.refuse(
                out,
                Reply::new(
                    503,
                    "5.5.1",
                    "Error: AUTH is not allowed during a mail transaction",
                ),
            );
            return;
        }
        let initial = initial.trim();
        if mechanism == AUTH_PLAIN {
            if initial.is_empty() {
                out.push(Action::Reply(Reply::new(334, "", "")));
                self.phase = Phase::AuthPlain;
            } else {
                self.sasl_plain(initial.as_bytes(), out);
            }
        } else if mechanism == AUTH_LOGIN {
            if initial.is_empty() {
                out.push(Action::Reply(Reply::new(334, "", "VXNlcm5hbWU6")));
                self.phase = Phase::AuthLoginUser;
            } else {
                self.sasl_login_user(initial.as_bytes(), out);
            }
        } else {
            self.refuse(
                out,
                Reply::new(
                    504,
                    "5.5.4",
                    "Error: unsupported authentication mechanism; use PLAIN or LOGIN",
                ),
            );
        }
    }

    /// A SASL response line as text; `None` (after a reply) when cancelled or not UTF-8.
    fn sasl_text(&mut self, line: &[u8], out: &mut Vec<Action>) -> Option<String> {
        let text = String::from_utf8_lossy(line).trim().to_string();
        if text == "*" {
            self.refuse(out, Reply::new(501, "5.7.0", "Authentication cancelled"));
            return None;
        }
        Some(text)
    }

    fn sasl_error(&mut self, error: sasl::SaslError, out: &mut Vec<Action>) {
        self.refuse(out, Reply::new(501, "5.5.2", format!("Error: {error}")));
    }

    fn sasl_plain(&mut self, line: &[u8], out: &mut Vec<Action>) {
        let Some(text) = self.sasl_text(line, out) else {
            return;
        };
        match sasl::plain(&text) {
            Ok(credentials) => self.authenticate(credentials, out),
            Err(e) => self.sasl_error(e, out),
        }
    }

    fn sasl_login_user(&mut self, line: &[u8], out: &mut Vec<Action>) {
        let Some(text) = self.sasl_text(line, out) else {
            return;
        };
        match sasl::login_part(&text) {
            Ok(user) => {
                out.push(Action::Reply(Reply::new(334, "", "UGFzc3dvcmQ6")));
                self.phase = Phase::AuthLoginPassword(user);
            }
            Err(e) => self.sasl_error(e, out),
        }
    }

    fn sasl_login_password(&mut self, user: String, line: &[u8], out: &mut Vec<Action>) {
        let Some(text) = self.sasl_text(line, out) else {
            return;
        };
        match sasl::login_part(&text) {
            Ok(password) => self.authenticate(
                Credentials {
                    user,
                    password: mailhost_plugin_api::Secret::new(password),
                },
                out,
            ),
            Err(e) => self.sasl_error(e, out),
        }
    }

    fn authenticate(&mut self, credentials: Credentials, out: &mut Vec<Action>) {
        out.push(Action::Authenticate(credentials));
        self.phase = Phase::Waiting(Pending::Auth);
    }

    fn mail(&mut self, from: MailFrom<Cow<'_, str>>, out: &mut Vec<Action>) {
        if !self.need_helo(out) {
            return;
        }
        let Some(identity) = self.identity().cloned() else {
            self.refuse(out, Reply::new(530, "5.7.0", "Authentication required"));
            return;
        };
        if self.transaction.is_some() {
            self.refuse(out, Reply::new(503, "5.5.1", "Error: nested MAIL command"));
            return;
        }
        if from.flags & MAIL_BODY_BINARYMIME != 0 {
            self.refuse(
                out,
                Reply::new(555, "5.5.4", "Error: BODY=BINARYMIME is not supported"),
            );
            return;
        }
        let declared = from.size as u64;
        if declared > self.config.max_message_bytes {
            self.refuse(
                out,
                Reply::new(
                    552,
                    "5.3.4",
                    format!(
                        "Message size exceeds fixed maximum message size of {} bytes",
                        self.config.max_message_bytes
                    ),
                ),
            );
            return;
        }
        let address = from.address.trim().to_string();
        if !identity.may_send_as(&address) {
            self.refuse(
                out,
                Reply::new(
                    550,
                    "5.7.1",
                    format!(
                        "Sender address <{address}> is not one staff member '{}' may send as",
                        identity.staff
                    ),
                ),
            );
            return;
        }
        let ret = if from.flags & MAIL_RET_FULL != 0 {
            DsnReturn::Full
        } else if from.flags & MAIL_RET_HDRS != 0 {
            DsnReturn::Headers
        } else {
            DsnReturn::Unspecified
        };
        self.transaction = Some(Envelope {
            from: address,
            recipients: Vec::new(),
            eight_bit_mime: from.flags & MAIL_BODY_8BITMIME != 0,
            smtputf8: from.flags & MAIL_SMTPUTF8 != 0,
            declared_size: declared,
            ret,
            envid: from.env_id.map(|e| e.into_owned()),
        });
        out.push(Action::Reply(Reply::new(250, "2.1.0", "Ok")));
    }

    fn max_recipients(&self) -> usize {
        let own = self.identity().map_or(usize::MAX, |i| i.max_recipients);
        own.min(self.config.max_recipients)
    }

    fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>, out: &mut Vec<Action>) {
        let max = self.max_recipients();
        let Some(envelope) = self.transaction.as_mut() else {
            self.refuse(out, Reply::new(503, "5.5.1", "Error: need MAIL command"));
            return;
        };
        let address = to.address.trim().to_string();
        if !address.contains('@') || address.chars().any(char::is_control) {
            self.refuse(
                out,
                Reply::new(501, "5.1.3", "Error: recipient address must be user@domain"),
            );
            return;
        }
        if envelope
            .recipients
            .iter()
            .any(|r| r.address.eq_ignore_ascii_case(&address))
        {
            out.push(Action::Reply(Reply::new(250, "2.1.5", "Ok")));
            return;
        }
        if envelope.recipients.len() >= max {
            self.refuse(
                out,
                Reply::new(
                    452,
                    "4.5.3",
                    format!("Error: too many recipients (at most {max} per message)"),
                ),
            );
            return;
        }
        let given = to.flags
            & (RCPT_NOTIFY_NEVER | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_DELAY)
            != 0;
        envelope.recipients.push(Recipient {
            address,
            notify_never: to.flags & RCPT_NOTIFY_NEVER != 0,
            notify_failure: !given || to.flags & RCPT_NOTIFY_FAILURE != 0,
            notify_success: to.flags & RCPT_NOTIFY_SUCCESS != 0,
            notify_delay: to.flags & RCPT_NOTIFY_DELAY != 0,
            orcpt: to.orcpt.map(|o| o.into_owned()),
        });
        out.push(Action::Reply(Reply::new(250, "2.1.5", "Ok")));
    }

    fn data(&mut self, out: &mut Vec<Action>) {
        match &self.transaction {
            None => self.refuse(out, Reply::new(503, "5.5.1", "Error: need MAIL command")),
            Some(e) if e.recipients.is_empty() => {
                self.refuse(out, Reply::new(554, "5.5.1", "Error: no valid recipients"));
            }
            Some(_) => {
                out.push(Action::Reply(Reply::new(
                    354,
                    "",
                    "End data with <CR><LF>.<CR><LF>",
                )));
                self.phase =
                    Phase::Data(Box::new(DataReceiver::new(self.config.max_message_bytes)));
            }
        }
    }

    fn end_of_data(&mut self, outcome: DataOutcome, out: &mut Vec<Action>) {
        self.phase = Phase::Ready;
        let Some(envelope) = self.transaction.take() else {
            return;
        };
        if let Some(line) = outcome.bare_newline_line {
            out.push(Action::Reply(Reply::new(
                554,
                "5.6.0",
                format!(
                    "Error: bare <CR> or <LF> in message line {line}; lines must end in <CR><LF> (RFC 5321 §2.3.8)"
                ),
            )));
            self.close(out);
            return;
        }
        if outcome.too_big {
            self.refuse(
                out,
                Reply::new(
                    552,
                    "5.3.4",
                    format!(
                        "Message size exceeds fixed maximum message size of {} bytes",
                        self.config.max_message_bytes
                    ),
                ),
            );
            return;
        }
        if outcome.eight_bit && !envelope.eight_bit_mime && !envelope.smtputf8 {
            self.refuse(
                out,
                Reply::new(
                    554,
                    "5.6.1",
                    "Error: message has 8-bit data but MAIL FROM did not say BODY=8BITMIME",
                ),
            );
            return;
        }
        let Some(identity) = self.identity().cloned() else {
            return;
        };
        match header_from(&outcome.message) {
            HeaderFrom::Missing => {
                self.refuse(
                    out,
                    Reply::new(554, "5.6.0", "Error: the message has no From header"),
                );
            }
            HeaderFrom::Addresses(addresses) => {
                if let Some(bad) = addresses.iter().find(|a| !identity.may_send_as(a)) {
                    let reply = Reply::new(
                        550,
                        "5.7.1",
                        format!(
                            "Header From <{bad}> is not one staff member '{}' may send as",
                            identity.staff
                        ),
                    );
                    self.refuse(out, reply);
                } else {
                    out.push(Action::Accept {
                        identity,
                        envelope,
                        message: outcome.message,
                    });
                    self.phase = Phase::Waiting(Pending::Accept);
                }
            }
        }
    }
}

enum HeaderFrom {
    Missing,
    Addresses(Vec<String>),
}

/// The addresses of the message's From header.
fn header_from(message: &[u8]) -> HeaderFrom {
    let parsed =
        std::panic::catch_unwind(|| mail_parser::MessageParser::default().parse_headers(message));
    let Some(parsed) = parsed.ok().flatten() else {
        return HeaderFrom::Missing;
    };
    let Some(from) = parsed.from() else {
        return HeaderFrom::Missing;
    };
    let addresses: Vec<String> = from
        .iter()
        .map(|a| a.address().unwrap_or_default().to_string())
        .collect();
    if addresses.is_empty() {
        HeaderFrom::Missing
    } else {
        HeaderFrom::Addresses(addresses)
    }
}

pub mod replay;

#[cfg(test)]
mod tests;
