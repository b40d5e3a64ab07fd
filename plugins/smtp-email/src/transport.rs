//! The SMTP conversation and the connection pool.
//!
//! Connections are lettre [`SmtpConnection`]s, kept between sends in a pool keyed by server,
//! security, EHLO name and sign-in, so a batch of emails shares one connection. The pool is
//! ours rather than lettre's `SmtpTransport` pool because the host needs to know *where* a
//! failure happened: a connection lost before the message's final `.` was written means nothing
//! was delivered (safe to retry), after it the outcome is unknown (see [`crate::error`]).
//! `SmtpTransport::send` reports both as the same network error.
//!
//! Thread safety: the pool's lock is held only to take a connection out or put one back, never
//! across network I/O. Concurrent sends each get their own connection.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials as LettreCredentials, Mechanism};
use lettre::transport::smtp::client::{SmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use mailhost_plugin_api::StaffMember;

use crate::error::{Phase, SmtpError, classify};
use crate::message::Outgoing;
use crate::settings::{Security, SmtpSettings};

/// How long an idle connection is kept. Servers must wait at least 5 minutes for the next
/// command (RFC 5321 4.5.3.2.7); staying well under that avoids most stale connections.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per pool key.
const MAX_IDLE_PER_KEY: usize = 4;
/// Size of the pieces the message is written in.
const CHUNK: usize = 64 * 1024;
/// The mechanisms offered, in order of preference.
const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// The sign-in for a send: the staff member's username (or, when blank, address) and password.
#[derive(Clone)]
pub(crate) struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// The staff member's credentials, when a password is stored.
    pub(crate) fn from_staff(staff: &StaffMember) -> Option<Self> {
        let password = staff.password.as_ref().into_option()?;
        if password.is_empty() {
            return None;
        }
        let username = if staff.username.trim().is_empty() {
            staff.email.trim()
        } else {
            staff.username.trim()
        };
        Some(Self {
            username: username.to_string(),
            password: password.to_string(),
        })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Connections are shared only between sends with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    host: String,
    port: u16,
    security: Security,
    helo_name: Option<String>,
    username: Option<String>,
    /// A keyed hash of the password, so a changed password never reuses the old sign-in.
    password_hash: u64,
}

struct Idle {
    connection: SmtpConnection,
    since: Instant,
}

/// Open connections between sends, and TLS configurations per host.
pub(crate) struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    tls: Mutex<HashMap<String, TlsParameters>>,
    hasher: RandomState,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Pool")
            .field("idle", &idle.values().map(Vec::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self {
            idle: Mutex::default(),
            tls: Mutex::default(),
            hasher: RandomState::new(),
        }
    }
}

impl Pool {
    /// Sends `outgoing`, reusing a pooled connection when one is open. Returns the server's
    /// reply to the message, such as `250 2.0.0 Ok: queued as 4F2A`.
    pub(crate) fn send(
        &self,
        settings: &SmtpSettings,
        credentials: Option<&Credentials>,
        outgoing: &Outgoing,
    ) -> Result<String, SmtpError> {
        let key = self.key(settings, credentials);
        let server = settings.server();
        if let Some(connection) = self.checkout(&key) {
            match self.attempt(connection, &key, settings, outgoing) {
                Err(error) if error.is_stale_connection() => {
                    log::debug!("pooled connection to {server} was closed ({error}); reconnecting");
                }
                result => return result,
            }
        }
        let connection = self.connect(settings, credentials)?;
        self.attempt(connection, &key, settings, outgoing)
    }

    /// Connects, secures and signs in as a send would, then says QUIT (`mailhost doctor`).
    ///
    /// # Errors
    /// What the connection, TLS or sign-in failed with.
    pub(crate) fn probe(
        &self,
        settings: &SmtpSettings,
        credentials: Option<&Credentials>,
    ) -> Result<(), SmtpError> {
        let mut connection = self.connect(settings, credentials)?;
        let _ = connection.quit();
        Ok(())
    }

    /// Runs one transaction on `connection`, then pools or closes it.
    fn attempt(
        &self,
        mut connection: SmtpConnection,
        key: &PoolKey,
        settings: &SmtpSettings,
        outgoing: &Outgoing,
    ) -> Result<String, SmtpError> {
        let server = settings.server();
        // The timeout may have changed since the connection was pooled. A socket that cannot
        // take it is broken, and MAIL FROM will say so (a stale connection, retried).
        let _ = connection.set_timeout(Some(settings.timeout));
        let result = transaction(&mut connection, &server, outgoing);
        match &result {
            Ok(_) => self.checkin(key, connection),
            Err(error) if error.leaves_connection_usable() => {
                if connection.command(Rset).is_ok() {
                    self.checkin(key, connection);
                } else {
                    connection.abort();
                }
            }
            Err(_) => connection.abort(),
        }
        result
    }

    fn key(&self, settings: &SmtpSettings, credentials: Option<&Credentials>) -> PoolKey {
        let password_hash = credentials.map_or(0, |c| self.hasher.hash_one(&c.password));
        PoolKey {
            host: settings.host.clone(),
            port: settings.port,
            security: settings.security,
            helo_name: settings.helo_name.clone(),
            username: credentials.map(|c| c.username.clone()),
            password_hash,
        }
    }

    fn checkout(&self, key: &PoolKey) -> Option<SmtpConnection> {
        let mut expired = Vec::new();
        let found = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let list = idle.get_mut(key)?;
            let mut found = None;
            while let Some(entry) = list.pop() {
                if entry.since.elapsed() < MAX_IDLE {
                    found = Some(entry.connection);
                    break;
                }
                expired.push(entry.connection);
            }
            found
        };
        for mut connection in expired {
            let _ = connection.quit();
        }
        found
    }

    fn checkin(&self, key: &PoolKey, mut connection: SmtpConnection) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle.entry(key.clone()).or_default();
        if list.len() < MAX_IDLE_PER_KEY {
            list.push(Idle {
                connection,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            let _ = connection.quit();
        }
    }

    /// Opens, secures and signs in a new connection.
    fn connect(
        &self,
        settings: &SmtpSettings,
        credentials: Option<&Credentials>,
    ) -> Result<SmtpConnection, SmtpError> {
        let server = settings.server();
        let hello = match &settings.helo_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let tls = match settings.security {
            Security::None => None,
            Security::Tls | Security::StartTls => Some(self.tls_parameters(settings)?),
        };
        let implicit = if settings.security == Security::Tls {
            tls.as_ref()
        } else {
            None
        };
        log::debug!("connecting to {server} ({})", settings.security);
        let mut connection = SmtpConnection::connect(
            (settings.host.as_str(), settings.port),
            Some(settings.timeout),
            &hello,
            implicit,
            None,
        )
        .map_err(|e| classify(&server, Phase::Connect, e))?;

        if settings.security == Security::StartTls {
            let Some(tls) = tls.as_ref() else {
                connection.abort();
                return Err(SmtpError::NoStartTls { server });
            };
            if !connection
                .server_info()
                .supports_feature(Extension::StartTls)
            {
                connection.abort();
                return Err(SmtpError::NoStartTls { server });
            }
            if let Err(e) = connection.starttls(tls, &hello) {
                connection.abort();
                return Err(classify(&server, Phase::StartTls, e));
            }
        }

        if let Some(credentials) = credentials {
            if connection
                .server_info()
                .get_auth_mechanism(&MECHANISMS)
                .is_none()
            {
                connection.abort();
                return Err(SmtpError::NoAuthMechanism { server });
            }
            let lettre_credentials =
                LettreCredentials::new(credentials.username.clone(), credentials.password.clone());
            if let Err(e) = connection.auth(&MECHANISMS, &lettre_credentials) {
                connection.abort();
                return Err(classify(&server, Phase::Auth, e));
            }
            log::debug!("signed in to {server} as {}", credentials.username);
        }
        Ok(connection)
    }

    /// The TLS configuration for the host, built once (loading the platform's certificates).
    fn tls_parameters(&self, settings: &SmtpSettings) -> Result<TlsParameters, SmtpError> {
        let mut cache = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(parameters) = cache.get(&settings.host) {
            return Ok(parameters.clone());
        }
        let parameters =
            TlsParameters::new(settings.host.clone()).map_err(|source| SmtpError::Tls {
                server: settings.server(),
                source,
            })?;
        cache.insert(settings.host.clone(), parameters.clone());
        Ok(parameters)
    }
}

/// One mail transaction: MAIL, RCPT for each recipient, DATA, the message.
fn transaction(
    connection: &mut SmtpConnection,
    server: &str,
    outgoing: &Outgoing,
) -> Result<String, SmtpError> {
    let envelope = &outgoing.envelope;
    let mut parameters = Vec::new();
    let non_ascii = envelope
        .to()
        .iter()
        .chain(envelope.from())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii {
        if !connection
            .server_info()
            .supports_feature(Extension::SmtpUtfEight)
        {
            return Err(SmtpError::NoSmtpUtf8 {
                server: server.to_string(),
            });
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !outgoing.bytes.is_ascii()
        && connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
    {
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }

    connection
        .command(Mail::new(envelope.from().cloned(), parameters))
        .map_err(|e| classify(server, Phase::MailFrom, e))?;
    for recipient in envelope.to() {
        connection
            .command(Rcpt::new(recipient.clone(), Vec::new()))
            .map_err(|e| classify(server, Phase::Rcpt(recipient.to_string()), e))?;
    }
    connection
        .command(Data)
        .map_err(|e| classify(server, Phase::Data, e))?;

    // Until the iterator is exhausted the final "." has not been written, and a failure
    // leaves nothing delivered; after it, the server may have taken the message.
    let all_written = Cell::new(false);
    let chunks = Watched {
        inner: outgoing.bytes.chunks(CHUNK),
        exhausted: &all_written,
    };
    let response = connection.message_iter(chunks).map_err(|e| {
        let phase = if all_written.get() {
            Phase::EndOfData
        } else {
            Phase::Content
        };
        classify(server, phase, e)
    })?;
    let text: Vec<&str> = response.message().collect();
    Ok(format!("{} {}", response.code(), text.join(" ")))
}

/// An iterator that records when it has run out.
struct Watched<'a, I> {
    inner: I,
    exhausted: &'a Cell<bool>,
}

impl<I: Iterator> Iterator for Watched<'_, I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next();
        if item.is_none() {
            self.exhausted.set(true);
        }
        item
    }
}
