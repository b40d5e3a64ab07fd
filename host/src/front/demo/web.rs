//! `mailhost demo --web`: after the demo's steps, keeps everything running and serves on
//! loopback two sites until Ctrl-C:
//!
//! - the Email Maintenance page over the demo's home (the delivery engine running, as under
//!   `mailhost serve`), signed in with an API token made for it and printed;
//! - the emulator's mailboxes: every seeded mailbox's Inbox and Sent Items, and each message
//!   with its recipients, headers, body and attachments (names, sizes, types, SHA-256).
//!
//! Both are plain loopback HTTP with the page's Content-Security-Policy; everything the
//! emulator returns is escaped as the page escapes it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::http::get_json;
use crate::config::home::Home;
use crate::delivery::engine::{Engine, EngineOptions, StopSignal};
use crate::error::Error;
use crate::front::commands::{email, print};
use crate::front::http::page::html::{component, size, text};
use crate::front::http::{self as api, HttpState};

/// How long sends in flight may take to finish when the demo ends.
const GRACE: Duration = Duration::from_secs(10);

/// Serves the page and the mailboxes until Ctrl-C.
///
/// # Errors
/// The store, the engine, the runtime or a listener cannot start.
pub(super) fn serve(home: &Home, emulator_url: &str) -> Result<(), Error> {
    let outbox = email::open_store(home)?;
    let (token, _) = api::tokens::create(&outbox, "demo-web")
        .map_err(|e| Error::Failed(format!("cannot make the demo's API token: {e}")))?;
    let engine = Arc::new(Engine::new(
        home,
        Arc::new(outbox),
        EngineOptions::default(),
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mailhost-demo-web")
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the demo's web runtime: {e}")))?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let page_listener = runtime
        .block_on(api::bind(loopback))
        .map_err(|e| Error::Failed(e.to_string()))?;
    let mail_listener = runtime
        .block_on(api::bind(loopback))
        .map_err(|e| Error::Failed(e.to_string()))?;
    let address = |l: &tokio::net::TcpListener| {
        l.local_addr()
            .map_err(|e| Error::Failed(format!("cannot read a listener's address: {e}")))
    };
    let (page_addr, mail_addr) = (address(&page_listener)?, address(&mail_listener)?);

    let stop = StopSignal::new();
    let engine_thread = {
        let engine = Arc::clone(&engine);
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("mailhost-engine".into())
            .spawn(move || engine.run(&stop, GRACE))
            .map_err(|e| Error::Failed(format!("cannot start the delivery engine: {e}")))?
    };
    let (page_stop, page_stopped) = tokio::sync::oneshot::channel::<()>();
    let (mail_stop, mail_stopped) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState::new(engine.clone(), 35 * 1024 * 1024);
    let page_task = runtime.spawn(api::serve_http(page_listener, None, state, async {
        let _ = page_stopped.await;
    }));
    let mailboxes = mailbox_router(emulator_url.to_string());
    let mail_task = runtime.spawn(async move {
        axum::serve(mail_listener, mailboxes)
            .with_graceful_shutdown(async {
                let _ = mail_stopped.await;
            })
            .await
    });

    print("\nmailhost demo --web: the demo keeps running")?;
    print(&format!(
        "  Email Maintenance: http://{page_addr}/  (sign in with the API token {token})"
    ))?;
    print(&format!(
        "  Mailboxes:         http://{mail_addr}/  (the emulator's Inbox and Sent Items)"
    ))?;
    print("  Ctrl-C ends the demo and removes its temporary home (unless --keep)")?;

    runtime.block_on(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            log::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    });
    print("\nmailhost demo --web: stopping")?;
    let _ = page_stop.send(());
    let _ = mail_stop.send(());
    let _ = runtime.block_on(async {
        tokio::time::timeout(api::SHUTDOWN_GRACE, async {
            let _ = page_task.await;
            let _ = mail_task.await;
        })
        .await
    });
    stop.stop();
    engine.wake();
    match engine_thread.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::warn!("the delivery engine stopped with an error: {e}"),
        Err(_) => log::warn!("the delivery engine thread panicked"),
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}

/// The mailbox viewer over the emulator at `emulator`.
fn mailbox_router(emulator: String) -> Router {
    Router::new()
        .route("/", get(mailboxes))
        .route("/mailboxes/{addr}/{folder}", get(folder))
        .route("/mailboxes/{addr}/{folder}/{index}", get(message))
        .route("/assets/page.css", get(css))
        .route("/assets/icon.svg", get(icon))
        .layer(axum::middleware::from_fn(
            crate::front::http::page::security_headers,
        ))
        .with_state(Arc::new(emulator))
}

type Emulator = State<Arc<String>>;

async fn css() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        crate::front::http::page::CSS,
    )
        .into_response()
}

async fn icon() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        crate::front::http::page::ICON,
    )
        .into_response()
}

fn page(status: StatusCode, title: &str, main: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · mailhost demo mailboxes</title>\n\
         <link rel=\"icon\" href=\"/assets/icon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/assets/page.css\">\n</head>\n<body>\n\
         <header class=\"top\"><a class=\"brand\" href=\"/\">mailhost demo</a>\
         <span class=\"what\">Mailboxes of the Microsoft 365 emulator</span></header>\n\
         <main id=\"main\">{main}</main>\n</body>\n</html>\n",
        text(title)
    );
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// GETs an admin path of the emulator off the async threads.
async fn fetch(emulator: &Arc<String>, path: String) -> Result<Value, Response> {
    let base = Arc::clone(emulator);
    match tokio::task::spawn_blocking(move || get_json(&base, &path)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(page(
            StatusCode::BAD_GATEWAY,
            "Emulator unavailable",
            &format!("<p class=\"notice bad\" role=\"alert\">{}</p>", text(&e)),
        )),
        Err(_) => Err(page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed",
            "<p class=\"notice bad\" role=\"alert\">the request failed: try again</p>",
        )),
    }
}

fn folder_name(folder: &str) -> Option<&'static str> {
    match folder {
        "inbox" => Some("Inbox"),
        "sent" => Some("Sent Items"),
        _ => None,
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// `Name <address>` of a Graph recipient.
fn recipient(value: &Value) -> String {
    let address = value["emailAddress"]["address"]
        .as_str()
        .unwrap_or_default();
    match value["emailAddress"]["name"]
        .as_str()
        .filter(|n| !n.is_empty() && *n != address)
    {
        Some(name) => format!("{name} <{address}>"),
        None => address.to_string(),
    }
}

fn recipients(value: &Value) -> String {
    value
        .as_array()
        .map(|list| list.iter().map(recipient).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// `GET /`: the seeded mailboxes with their folders.
async fn mailboxes(State(emulator): Emulator) -> Response {
    let seed = match fetch(&emulator, "/_emulator/seed".into()).await {
        Ok(seed) => seed,
        Err(response) => return response,
    };
    let mut main = String::from(
        "<h1>Mailboxes</h1><section class=\"card\"><table><thead><tr><th scope=\"col\">Mailbox</th>\
         <th scope=\"col\">Name</th><th scope=\"col\">Folders</th></tr></thead><tbody>",
    );
    for m in seed["mailboxes"].as_array().into_iter().flatten() {
        let upn = str_of(m, "upn");
        let _ = write!(
            main,
            "<tr><td data-label=\"Mailbox\">{}</td><td data-label=\"Name\">{}</td>\
             <td data-label=\"Folders\"><a href=\"/mailboxes/{addr}/inbox\">Inbox</a> · \
             <a href=\"/mailboxes/{addr}/sent\">Sent Items</a></td></tr>",
            text(upn),
            text(str_of(m, "name")),
            addr = component(upn),
        );
    }
    main.push_str("</tbody></table></section>");
    page(StatusCode::OK, "Mailboxes", &main)
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p class=\"notice bad\" role=\"alert\">there is no such folder or message: start again from <a href=\"/\">the mailboxes</a></p>",
    )
}

/// `GET /mailboxes/{addr}/{folder}`: the messages, newest first.
async fn folder(
    State(emulator): Emulator,
    Path((addr, folder)): Path<(String, String)>,
) -> Response {
    let Some(name) = folder_name(&folder) else {
        return not_found();
    };
    let messages = match fetch(
        &emulator,
        format!("/_emulator/mailboxes/{}/{folder}", component(&addr)),
    )
    .await
    {
        Ok(messages) => messages,
        Err(response) => return response,
    };
    let list = messages.as_array().cloned().unwrap_or_default();
    let mut main = format!(
        "<p><a href=\"/\">← Mailboxes</a></p><h1>{} of {}</h1>",
        text(name),
        text(&addr)
    );
    if list.is_empty() {
        main.push_str("<p class=\"empty\">No messages.</p>");
    } else {
        main.push_str(
            "<div class=\"scroll\"><table class=\"emails\"><thead><tr><th scope=\"col\">From</th><th scope=\"col\">To</th>\
             <th scope=\"col\">Subject</th><th scope=\"col\">Attachments</th><th scope=\"col\">Date</th></tr></thead><tbody>",
        );
        for (index, m) in list.iter().enumerate().rev() {
            let date = if str_of(m, "receivedDateTime").is_empty() {
                str_of(m, "sentDateTime")
            } else {
                str_of(m, "receivedDateTime")
            };
            let subject = str_of(m, "subject");
            let _ = write!(
                main,
                "<tr><td data-label=\"From\">{}</td><td data-label=\"To\">{}</td>\
                 <td data-label=\"Subject\" class=\"subject\"><a href=\"/mailboxes/{}/{folder}/{index}\">{}</a></td>\
                 <td data-label=\"Attachments\" class=\"num\">{}</td><td data-label=\"Date\">{}</td></tr>",
                text(&recipient(&m["from"])),
                text(&recipients(&m["toRecipients"])),
                component(&addr),
                text(if subject.is_empty() {
                    "(no subject)"
                } else {
                    subject
                }),
                m["attachments"].as_array().map_or(0, Vec::len),
                text(date),
            );
        }
        main.push_str("</tbody></table></div>");
    }
    page(StatusCode::OK, name, &main)
}

/// `GET /mailboxes/{addr}/{folder}/{index}`: one message with its attachments.
async fn message(
    State(emulator): Emulator,
    Path((addr, folder, index)): Path<(String, String, usize)>,
) -> Response {
    let Some(name) = folder_name(&folder) else {
        return not_found();
    };
    let messages = match fetch(
        &emulator,
        format!("/_emulator/mailboxes/{}/{folder}", component(&addr)),
    )
    .await
    {
        Ok(messages) => messages,
        Err(response) => return response,
    };
    let Some(m) = messages.as_array().and_then(|l| l.get(index)) else {
        return not_found();
    };
    let subject = str_of(m, "subject");
    let mut main = format!(
        "<p><a href=\"/mailboxes/{}/{folder}\">← {} of {}</a></p><section class=\"card\">\
         <h1 class=\"subject\">{}</h1><dl class=\"fields\">",
        component(&addr),
        text(name),
        text(&addr),
        text(if subject.is_empty() {
            "(no subject)"
        } else {
            subject
        })
    );
    let mut row = |label: &str, value: &str| {
        if !value.is_empty() {
            let _ = write!(main, "<dt>{}</dt><dd>{}</dd>", text(label), text(value));
        }
    };
    let from = recipient(&m["from"]);
    let sender = recipient(&m["sender"]);
    row("From", &from);
    if !sender.is_empty() && sender != from {
        row("Sender", &sender);
    }
    row("To", &recipients(&m["toRecipients"]));
    row("Cc", &recipients(&m["ccRecipients"]));
    row("Bcc", &recipients(&m["bccRecipients"]));
    row("Reply-To", &recipients(&m["replyTo"]));
    row("Sent", str_of(m, "sentDateTime"));
    row("Received", str_of(m, "receivedDateTime"));
    row("Message-ID", str_of(m, "internetMessageId"));
    for h in m["internetMessageHeaders"].as_array().into_iter().flatten() {
        row(str_of(h, "name"), str_of(h, "value"));
    }
    main.push_str("</dl></section>");
    let attachments = m["attachments"].as_array().cloned().unwrap_or_default();
    let _ = write!(
        main,
        "<section class=\"card\" aria-labelledby=\"att-h\"><h2 id=\"att-h\">Attachments ({})</h2>",
        attachments.len()
    );
    if attachments.is_empty() {
        main.push_str("<p class=\"empty\">None.</p>");
    } else {
        main.push_str("<ul class=\"attachments\">");
        for a in &attachments {
            let _ = write!(
                main,
                "<li><b>{}</b> <span class=\"help\">{} · {} · SHA-256 <code>{}</code></span></li>",
                text(str_of(a, "name")),
                text(&size(a["size"].as_u64().unwrap_or_default())),
                text(str_of(a, "contentType")),
                text(str_of(a, "sha256")),
            );
        }
        main.push_str("</ul>");
    }
    let body = &m["body"];
    let _ = write!(
        main,
        "</section><section class=\"card\" aria-labelledby=\"body-h\"><h2 id=\"body-h\">Body ({})</h2>\
         <pre class=\"body\">{}</pre></section>",
        text(str_of(body, "contentType")),
        text(str_of(body, "content"))
    );
    page(StatusCode::OK, subject, &main)
}
