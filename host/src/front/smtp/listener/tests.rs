//! The listener over real loopback sockets with a fake backend: STARTTLS, implicit TLS, the
//! client-network check, limits, timeouts, lockout and certificate reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mailhost_plugin_api::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use super::*;
use crate::front::smtp::config::TlsFiles;
use crate::front::smtp::envelope::{Envelope, Identity};

#[derive(Default)]
struct Fake {
    accepted: StdMutex<Vec<(Envelope, Vec<u8>)>>,
}

fn adele() -> Identity {
    Identity {
        staff: "adele".into(),
        addresses: vec!["adele@contoso.com".into()],
        max_recipients: 10,
    }
}

impl RelayBackend for Fake {
    fn authenticate(&self, user: &str, password: &Secret) -> Option<Identity> {
        (user == "adele" && password.expose() == "right").then(adele)
    }
    fn trusted(&self, _peer: IpAddr) -> Option<Identity> {
        None
    }
    fn accept(
        &self,
        _identity: &Identity,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<String, AcceptError> {
        let mut a = self.accepted.lock().unwrap();
        a.push((envelope.clone(), message.to_vec()));
        Ok(format!("E{}", a.len()))
    }
}

struct Certs {
    _dir: tempfile::TempDir,
    files: TlsFiles,
    der: CertificateDer<'static>,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let (files, der) = write_cert(dir.path());
    Certs {
        _dir: dir,
        files,
        der,
    }
}

fn write_cert(dir: &std::path::Path) -> (TlsFiles, CertificateDer<'static>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join("relay.pem");
    let key = dir.join("relay.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (TlsFiles { cert, key }, ck.cert.der().clone())
}

fn connector(der: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

struct Client {
    stream: Option<Stream>,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Self {
            stream: Some(Stream::Plain(tcp)),
            buf: Vec::new(),
        }
    }

    async fn connect_tls(addr: SocketAddr, der: &CertificateDer<'static>) -> Self {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector(der).connect(name, tcp).await.unwrap();
        Self {
            stream: Some(Stream::Tls(Box::new(tls))),
            buf: Vec::new(),
        }
    }

    async fn starttls(&mut self, der: &CertificateDer<'static>) {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            panic!("not plain")
        };
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector(der).connect(name, tcp).await.unwrap();
        self.stream = Some(Stream::Tls(Box::new(tls)));
    }

    async fn send(&mut self, text: &str) {
        match self.stream.as_mut().unwrap() {
            Stream::Plain(s) => s.write_all(text.as_bytes()).await.unwrap(),
            Stream::Tls(s) => {
                s.write_all(text.as_bytes()).await.unwrap();
                s.flush().await.unwrap();
            }
        }
    }

    /// The next complete reply ("" when the server closed).
    async fn reply(&mut self) -> String {
        loop {
            if let Some(end) = reply_end(&self.buf) {
                let reply: Vec<u8> = self.buf.drain(..end).collect();
                return String::from_utf8(reply).unwrap();
            }
            let mut chunk = [0u8; 4096];
            let n = match self.stream.as_mut().unwrap() {
                Stream::Plain(s) => s.read(&mut chunk).await.unwrap_or(0),
                Stream::Tls(s) => s.read(&mut chunk).await.unwrap_or(0),
            };
            if n == 0 {
                return String::from_utf8(std::mem::take(&mut self.buf)).unwrap();
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn say(&mut self, text: &str) -> String {
        self.send(text).await;
        self.reply().await
    }
}

/// The end of the first complete reply in `buf`.
fn reply_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(pos) = buf[start..].windows(2).position(|w| w == b"\r\n") {
        let line = &buf[start..start + pos];
        start += pos + 2;
        if line.len() < 4 || line[3] == b' ' {
            return Some(start);
        }
    }
    None
}

async fn start(
    config: SmtpConfig,
) -> (Vec<BoundAddr>, Arc<Fake>, tokio::sync::oneshot::Sender<()>) {
    let fake = Arc::new(Fake::default());
    let relay = Relay::bind(config, fake.clone() as Arc<dyn RelayBackend>)
        .await
        .unwrap();
    let addrs = relay.local_addrs();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(relay.serve(async move {
        let _ = rx.await;
    }));
    (addrs, fake, tx)
}

fn base(tls: Option<TlsFiles>) -> SmtpConfig {
    SmtpConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        tls_listen: if tls.is_some() {
            vec!["127.0.0.1:0".parse().unwrap()]
        } else {
            Vec::new()
        },
        tls,
        hostname: "relay.test".into(),
        auth_failure_delay: Duration::ZERO,
        ..SmtpConfig::default()
    }
}

const MESSAGE: &str = "From: adele@contoso.com\r\nTo: b@x.com\r\nSubject: t\r\n\r\nhello\r\n.\r\n";

#[tokio::test]
async fn starttls_auth_and_send() {
    let certs = certs();
    let (addrs, fake, _stop) = start(base(Some(certs.files.clone()))).await;
    let mut c = Client::connect(addrs[0].addr).await;
    assert!(c.reply().await.starts_with("220 relay.test ESMTP"));
    let ehlo = c.say("EHLO me\r\n").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(c.say("STARTTLS\r\n").await.starts_with("220 2.0.0"));
    c.starttls(&certs.der).await;
    let ehlo = c.say("EHLO me\r\n").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    let plain = STANDARD.encode("\0adele\0right");
    assert!(
        c.say(&format!("AUTH PLAIN {plain}\r\n"))
            .await
            .starts_with("235")
    );
    c.send("MAIL FROM:<adele@contoso.com>\r\nRCPT TO:<b@x.com>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 2.1.0"));
    assert!(c.reply().await.starts_with("250 2.1.5"));
    assert!(c.reply().await.starts_with("354"));
    assert_eq!(c.say(MESSAGE).await, "250 2.0.0 Ok: queued as E1\r\n");
    assert!(c.say("QUIT\r\n").await.starts_with("221"));
    assert_eq!(fake.accepted.lock().unwrap()[0].0.addresses(), ["b@x.com"]);
}

#[tokio::test]
async fn implicit_tls() {
    let certs = certs();
    let (addrs, _fake, _stop) = start(base(Some(certs.files.clone()))).await;
    let tls = addrs.iter().find(|a| a.implicit_tls).unwrap();
    let mut c = Client::connect_tls(tls.addr, &certs.der).await;
    assert!(c.reply().await.starts_with("220"));
    let ehlo = c.say("EHLO me\r\n").await;
    assert!(
        ehlo.contains("AUTH PLAIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
}

#[tokio::test]
async fn networks_not_allowed_are_refused_at_connect() {
    let config = SmtpConfig {
        allow: vec![network::parse("10.0.0.0/8").unwrap()],
        ..base(None)
    };
    let (addrs, _fake, _stop) = start(config).await;
    let mut c = Client::connect(addrs[0].addr).await;
    let reply = c.reply().await;
    assert!(
        reply.starts_with("554 5.7.1 relay.test Access denied"),
        "{reply}"
    );
    assert_eq!(c.reply().await, "", "closed");
}

#[tokio::test]
async fn per_client_connection_limit() {
    let config = SmtpConfig {
        max_connections_per_client: 1,
        ..base(None)
    };
    let (addrs, _fake, _stop) = start(config).await;
    let mut first = Client::connect(addrs[0].addr).await;
    assert!(first.reply().await.starts_with("220"));
    let mut second = Client::connect(addrs[0].addr).await;
    assert!(second.reply().await.starts_with("421 4.7.0"));
    assert!(first.say("QUIT\r\n").await.starts_with("221"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = Client::connect(addrs[0].addr).await;
    assert!(third.reply().await.starts_with("220"));
}

#[tokio::test]
async fn a_silent_client_times_out() {
    let config = SmtpConfig {
        command_timeout: Duration::from_millis(300),
        ..base(None)
    };
    let (addrs, _fake, _stop) = start(config).await;
    let mut c = Client::connect(addrs[0].addr).await;
    assert!(c.reply().await.starts_with("220"));
    assert!(
        c.reply()
            .await
            .starts_with("421 4.4.2 relay.test Error: timeout exceeded")
    );
}

#[tokio::test]
async fn failed_logins_lock_the_address_out() {
    let config = SmtpConfig {
        auth_failures_before_lockout: 2,
        ..base(None)
    };
    let (addrs, _fake, _stop) = start(config).await;
    let mut c = Client::connect(addrs[0].addr).await;
    c.reply().await;
    c.say("EHLO me\r\n").await;
    let wrong = STANDARD.encode("\0adele\0wrong");
    assert!(
        c.say(&format!("AUTH PLAIN {wrong}\r\n"))
            .await
            .starts_with("535 5.7.8")
    );
    let reply = c.say(&format!("AUTH PLAIN {wrong}\r\n")).await;
    assert!(reply.starts_with("421 4.7.0 Too many failed"), "{reply}");
    let mut again = Client::connect(addrs[0].addr).await;
    assert!(
        again
            .reply()
            .await
            .starts_with("421 4.7.0 relay.test Too many failed")
    );
}

#[tokio::test]
async fn shutdown_says_421() {
    let (addrs, _fake, stop) = start(base(None)).await;
    let mut c = Client::connect(addrs[0].addr).await;
    c.reply().await;
    stop.send(()).unwrap();
    assert!(c.reply().await.starts_with("421 4.3.2"));
}

#[tokio::test]
async fn certificate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (files, first) = write_cert(dir.path());
    let fake = Arc::new(Fake::default());
    let relay = Relay::bind(base(Some(files.clone())), fake as Arc<dyn RelayBackend>)
        .await
        .unwrap();
    let tls_addr = relay
        .local_addrs()
        .into_iter()
        .find(|a| a.implicit_tls)
        .unwrap()
        .addr;
    let (_, second) = write_cert(dir.path());
    relay.reload_tls().unwrap();
    std::fs::write(&files.key, "not a key").unwrap();
    assert!(
        relay
            .reload_tls()
            .unwrap_err()
            .to_string()
            .contains("smtp.tls_key")
    );
    tokio::spawn(relay.serve(std::future::pending()));
    let mut c = Client::connect_tls(tls_addr, &second).await;
    assert!(c.reply().await.starts_with("220"));
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    assert!(
        connector(&first).connect(name, tcp).await.is_err(),
        "the old certificate is gone"
    );
    let _: PathBuf = files.cert;
}
