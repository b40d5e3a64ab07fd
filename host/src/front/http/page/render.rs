//! The page's HTML, rendered on the server. Every value that came from outside (a subject, a
//! name, an address, an error, a header, a file name) goes through [`text`] or, in a URL,
//! [`component`]; the markup itself has no inline script or style (see the CSP in `mod.rs`).

use std::fmt::Write as _;

use super::html::{component, cut, size, text};
use crate::delivery::engine::{MailboxUse, WindowUse};
use crate::delivery::limits::window_name;
use crate::delivery::outbox::{
    Address, AttemptRecord, BrowsePage, EmailRecord, LastError, Status, Timestamp,
};
use crate::plugins::registry::PluginEntry;

/// Who is signed in: the token's name and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The API token's name.
    pub name: String,
    /// The CSRF token the session's forms carry.
    pub csrf: String,
}

/// The list page's filter, as the query gave it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this status.
    pub status: Option<Status>,
    /// The search text.
    pub search: String,
}

impl Filter {
    /// The list's address with this filter and `extra` (`name=value`, already encoded).
    pub fn href(&self, extra: Option<(&str, String)>) -> String {
        let mut parts = Vec::new();
        if let Some(status) = self.status {
            parts.push(format!("status={}", status.as_str()));
        }
        if !self.search.is_empty() {
            parts.push(format!("q={}", component(&self.search)));
        }
        if let Some((name, value)) = extra {
            parts.push(format!("{name}={}", component(&value)));
        }
        if parts.is_empty() {
            "/".into()
        } else {
            format!("/?{}", parts.join("&amp;"))
        }
    }
}

/// The whole document around `main`.
pub fn layout(title: &str, session: Option<&Session>, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 1500);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"same-origin\">\n",
    );
    let _ = writeln!(out, "<title>{} · mailhost</title>", text(title));
    out.push_str(
        "<link rel=\"icon\" href=\"/assets/icon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/assets/page.css\">\n\
         <script src=\"/assets/page.js\" defer></script>\n</head>\n<body>\n\
         <header class=\"top\"><a class=\"brand\" href=\"/\">mailhost</a>\
         <span class=\"what\">Email Maintenance</span>",
    );
    if let Some(session) = session {
        let _ = write!(
            out,
            "<form class=\"signout\" method=\"post\" action=\"/signout\">\
             <span class=\"who\">token <b>{}</b></span>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            text(&session.name),
            text(&session.csrf)
        );
    }
    out.push_str("</header>\n<main id=\"main\">\n");
    out.push_str(main);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The sign-in form, with why the last attempt failed.
pub fn sign_in(problem: Option<&str>) -> String {
    let mut main = String::from("<section class=\"card narrow\"><h1>Sign in</h1>");
    if let Some(problem) = problem {
        let _ = write!(
            main,
            "<p class=\"notice bad\" role=\"alert\">{}</p>",
            text(problem)
        );
    }
    main.push_str(
        "<form method=\"post\" action=\"/signin\">\
         <label for=\"token\">API token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus \
          aria-describedby=\"token-help\">\
         <p id=\"token-help\" class=\"help\">Make one on the server with \
          <code>mailhost api-token create NAME</code>. It is kept in a cookie no script can read, \
          until you sign out or close the browser.</p>\
         <button type=\"submit\">Sign in</button></form></section>",
    );
    layout("Sign in", None, &main)
}

/// An error page.
pub fn problem(session: Option<&Session>, title: &str, message: &str) -> String {
    let main = format!(
        "<section class=\"card\"><h1>{}</h1><p class=\"notice bad\" role=\"alert\">{}</p>\
         <p><a href=\"/\">Back to the emails</a></p></section>",
        text(title),
        text(message)
    );
    layout(title, session, &main)
}

/// What the list page shows.
#[derive(Debug)]
pub struct ListView<'a> {
    /// The filter.
    pub filter: &'a Filter,
    /// The page of emails.
    pub page: &'a BrowsePage,
    /// Emails by status.
    pub counts: &'a [(Status, u64)],
    /// The registered plugins.
    pub plugins: &'a [PluginEntry],
    /// Each sending mailbox's limits in use.
    pub mailboxes: &'a [MailboxUse],
    /// A problem to show above the list (a bad query).
    pub notice: Option<&'a str>,
}

/// The list page.
pub fn list(session: &Session, view: &ListView<'_>) -> String {
    let mut main = String::with_capacity(64 * 1024);
    main.push_str("<h1 class=\"visually-hidden\">Emails</h1>");
    if let Some(notice) = view.notice {
        let _ = write!(
            main,
            "<p class=\"notice bad\" role=\"alert\">{}</p>",
            text(notice)
        );
    }
    filter_form(&mut main, view.filter);
    main.push_str("<div id=\"live\" data-live=\"3\">");
    counts(&mut main, view.filter, view.counts);
    email_table(&mut main, view.page);
    paging(&mut main, view.filter, view.page);
    main.push_str("<div class=\"side\">");
    limits(&mut main, view.mailboxes);
    plugins(&mut main, view.plugins);
    main.push_str("</div></div>");
    layout("Emails", Some(session), &main)
}

fn filter_form(out: &mut String, filter: &Filter) {
    out.push_str(
        "<form class=\"filter\" method=\"get\" action=\"/\" role=\"search\">\
         <div class=\"field\"><label for=\"status\">Status</label><select id=\"status\" name=\"status\">",
    );
    let _ = write!(
        out,
        "<option value=\"\"{}>all</option>",
        if filter.status.is_none() {
            " selected"
        } else {
            ""
        }
    );
    for status in Status::ALL {
        let _ = write!(
            out,
            "<option value=\"{0}\"{1}>{0}</option>",
            status.as_str(),
            if filter.status == Some(status) {
                " selected"
            } else {
                ""
            }
        );
    }
    let _ = write!(
        out,
        "</select></div><div class=\"field grow\"><label for=\"q\">Search</label>\
         <input id=\"q\" name=\"q\" type=\"search\" value=\"{}\" maxlength=\"200\" \
          placeholder=\"subject, sender or recipient\" aria-keyshortcuts=\"/\"></div>\
         <button type=\"submit\">Filter</button>\
         <label class=\"toggle\" hidden><input id=\"live-toggle\" type=\"checkbox\" checked> Live refresh</label>\
         </form>",
        text(&filter.search)
    );
}

fn counts(out: &mut String, filter: &Filter, counts: &[(Status, u64)]) {
    out.push_str("<nav class=\"counts\" aria-label=\"Emails by status\"><ul>");
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let all = Filter {
        status: None,
        search: filter.search.clone(),
    };
    let _ = write!(
        out,
        "<li><a href=\"{}\"{}>all <b>{total}</b></a></li>",
        all.href(None),
        if filter.status.is_none() {
            " aria-current=\"true\""
        } else {
            ""
        }
    );
    for (status, n) in counts {
        let one = Filter {
            status: Some(*status),
            search: filter.search.clone(),
        };
        let _ = write!(
            out,
            "<li><a class=\"status-{0}\" href=\"{1}\"{2}>{0} <b data-count=\"{0}\">{n}</b></a></li>",
            status.as_str(),
            one.href(None),
            if filter.status == Some(*status) {
                " aria-current=\"true\""
            } else {
                ""
            }
        );
    }
    out.push_str("</ul></nav>");
}

fn mailbox(a: &Address) -> String {
    if a.name.is_empty() {
        a.address.clone()
    } else {
        format!("{} <{}>", a.name, a.address)
    }
}

/// A sender for the list: the name, with the address below it.
fn person(a: &Address) -> String {
    if a.name.is_empty() {
        text(&cut(&a.address, 60))
    } else {
        format!(
            "<span>{}<span class=\"addr\">{}</span></span>",
            text(&cut(&a.name, 60)),
            text(&cut(&a.address, 60))
        )
    }
}

fn people(list: &[Address]) -> String {
    list.iter().map(mailbox).collect::<Vec<_>>().join(", ")
}

fn time(at: Timestamp) -> String {
    let shown = at.to_string();
    format!(
        "<time datetime=\"{}\">{}</time>",
        text(&shown),
        text(&shown.replace('T', " ").replace('Z', ""))
    )
}

fn status_badge(status: Status) -> String {
    format!(
        "<span class=\"status status-{0}\">{0}</span>",
        status.as_str()
    )
}

fn email_table(out: &mut String, page: &BrowsePage) {
    if page.emails.is_empty() {
        out.push_str("<p class=\"empty\">No emails match.</p>");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table class=\"emails\"><caption class=\"visually-hidden\">Emails, newest first</caption>\
         <thead><tr><th scope=\"col\">Status</th><th scope=\"col\">From</th><th scope=\"col\">To</th>\
         <th scope=\"col\">Subject</th><th scope=\"col\">Attempts</th><th scope=\"col\">Last error</th>\
         <th scope=\"col\">Created</th><th scope=\"col\">Updated</th></tr></thead><tbody>",
    );
    for e in &page.emails {
        let subject = if e.subject.is_empty() {
            "(no subject)".to_string()
        } else {
            cut(&e.subject, 120)
        };
        let error = e
            .error
            .as_ref()
            .map(|err| cut(&err.to_string(), 110))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr data-id=\"{id}\" data-status=\"{status}\">\
             <td data-label=\"Status\">{badge}</td>\
             <td data-label=\"From\">{from}</td>\
             <td data-label=\"To\">{to}</td>\
             <td data-label=\"Subject\" class=\"subject\"><a href=\"/emails/{href}\">{subject}</a></td>\
             <td data-label=\"Attempts\" class=\"num\">{attempts}</td>\
             <td data-label=\"Last error\" class=\"error\">{error}</td>\
             <td data-label=\"Created\">{created}</td>\
             <td data-label=\"Updated\">{updated}</td></tr>",
            id = text(&e.id),
            status = e.status.as_str(),
            badge = status_badge(e.status),
            from = person(&e.from),
            to = text(&cut(&people(&e.to), 80)),
            href = component(&e.id),
            subject = text(&subject),
            attempts = e.attempts,
            error = text(&error),
            created = time(e.created_at),
            updated = time(e.sent_at.unwrap_or(e.updated_at)),
        );
    }
    out.push_str("</tbody></table></div>");
}

fn paging(out: &mut String, filter: &Filter, page: &BrowsePage) {
    if page.newer.is_none() && page.older.is_none() {
        return;
    }
    out.push_str("<nav class=\"paging\" aria-label=\"Pages\">");
    if page.newer.is_some() {
        let _ = write!(out, "<a href=\"{}\">Newest</a>", filter.href(None));
    }
    if let Some(newer) = page.newer {
        let _ = write!(
            out,
            "<a rel=\"prev\" href=\"{}\">← Newer</a>",
            filter.href(Some(("after", newer.to_string())))
        );
    }
    if let Some(older) = page.older {
        let _ = write!(
            out,
            "<a rel=\"next\" href=\"{}\">Older →</a>",
            filter.href(Some(("before", older.to_string())))
        );
    }
    out.push_str("</nav>");
}

fn meter(out: &mut String, id: &str, label: &str, w: &WindowUse) {
    let _ = write!(
        out,
        "<div class=\"bar\"><label for=\"{id}\">{label} per {window}</label>\
         <meter id=\"{id}\" min=\"0\" max=\"{max}\" low=\"{low}\" high=\"{high}\" optimum=\"0\" value=\"{used}\">{used} of {max}</meter>\
         <span class=\"num\">{used} of {max}</span></div>",
        id = text(id),
        label = text(label),
        window = text(&window_name(w.window_ms)),
        max = w.max,
        low = w.max / 2,
        high = w.max.saturating_mul(9) / 10,
        used = w.used,
    );
}

fn limits(out: &mut String, mailboxes: &[MailboxUse]) {
    out.push_str("<section class=\"card\" aria-labelledby=\"limits-h\"><h2 id=\"limits-h\">Sending limits in use</h2>");
    if mailboxes.is_empty() {
        out.push_str("<p class=\"empty\">No sending mailboxes: add a staff member with <code>mailhost staff add</code>.</p>");
    }
    for (index, m) in mailboxes.iter().enumerate() {
        let _ = write!(
            out,
            "<div class=\"mailbox\"><h3>{}</h3><p class=\"help\">staff {} · {}</p>",
            text(&m.mailbox),
            text(&m.staff),
            text(if m.provider.is_empty() {
                "no provider"
            } else {
                &m.provider
            })
        );
        match &m.limits {
            Err(problem) => {
                let _ = write!(
                    out,
                    "<p class=\"notice bad\">provider not usable: {}</p>",
                    text(problem)
                );
            }
            Ok(in_use) if in_use.limits.is_empty() => {
                out.push_str("<p>The provider declares no sending limits.</p>");
            }
            Ok(in_use) => {
                if let Some(w) = &in_use.messages {
                    meter(out, &format!("m{index}-messages"), "Messages", w);
                }
                if let Some(w) = &in_use.recipients {
                    meter(out, &format!("m{index}-recipients"), "Recipients", w);
                }
                if let Some(c) = &in_use.limits.concurrent {
                    let w = WindowUse {
                        setting: c.setting.clone(),
                        max: c.max,
                        window_ms: 0,
                        used: in_use.in_flight,
                    };
                    let _ = write!(
                        out,
                        "<div class=\"bar\"><label for=\"m{index}-flight\">Sends in flight</label>\
                         <meter id=\"m{index}-flight\" min=\"0\" max=\"{max}\" value=\"{used}\">{used} of {max}</meter>\
                         <span class=\"num\">{used} of {max}</span></div>",
                        max = w.max,
                        used = w.used
                    );
                }
                match &in_use.hold {
                    None => out.push_str("<p class=\"help\">Next send: now.</p>"),
                    Some(hold) => {
                        let when = hold.until.map_or_else(
                            || "when a send finishes".to_string(),
                            |at| at.to_string(),
                        );
                        let _ = write!(
                            out,
                            "<p class=\"help\">Next send: {} ({})</p>",
                            text(&when),
                            text(&hold.reason)
                        );
                    }
                }
            }
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");
}

fn plugins(out: &mut String, plugins: &[PluginEntry]) {
    out.push_str(
        "<section class=\"card\" aria-labelledby=\"plugins-h\"><h2 id=\"plugins-h\">Plugins</h2>",
    );
    if plugins.is_empty() {
        out.push_str(
            "<p class=\"empty\">No plugins: add one with <code>mailhost plugin add</code>.</p></section>",
        );
        return;
    }
    out.push_str("<ul class=\"plugins\">");
    for p in plugins {
        let (state, class) = if p.quarantined().is_some() {
            ("quarantined", "bad")
        } else if p.enabled {
            ("enabled", "good")
        } else {
            ("disabled", "muted")
        };
        let _ = write!(
            out,
            "<li data-plugin=\"{name}\"><b>{name}</b> <span class=\"help\">{display} {version}</span> \
             <span class=\"state {class}\">{state}</span>",
            name = text(&p.name),
            display = text(&p.display_name),
            version = text(&p.version),
        );
        if let Some(q) = p.quarantined() {
            let _ = write!(
                out,
                "<p class=\"notice bad\">since {}: {} — check it with <code>mailhost plugin check {}</code>, then <code>mailhost plugin enable {}</code></p>",
                text(&q.since),
                text(&q.reason),
                text(&p.name),
                text(&p.name)
            );
        }
        out.push_str("</li>");
    }
    out.push_str("</ul></section>");
}

/// What to do about an error of this kind (the error's own message says what happened).
pub fn fix(error: &LastError, record: &EmailRecord) -> String {
    let staff = &record.staff_id;
    let provider = &record.provider;
    if error.code == "PROVIDER_NOT_READY" {
        return format!(
            "The provider {provider} cannot be used now (disabled, quarantined or not configured): see Plugins on the list page and `mailhost plugin list`; the email waits and goes once it can."
        );
    }
    match error.kind.as_str() {
        "configuration" => format!(
            "A setting is missing or wrong: check `mailhost config show {provider}` and `mailhost staff show {staff}`, correct it with `mailhost config set` or `mailhost staff set`, then retry."
        ),
        "authentication" => format!(
            "Sign-in failed: store the password again with `mailhost staff set {staff} --password-stdin`, or sign in with `mailhost login {staff}`, then retry."
        ),
        "permission" => "The account may not send this way (consent, a Send As right): have an administrator grant it, then retry.".into(),
        "recipient" => "A recipient address was refused: correct the address and send a new email.".into(),
        "throttled" => "The service asked to slow down: the engine retries by itself after the wait it gave.".into(),
        "transient" => "A temporary fault (network, service): the engine retries by itself with a growing wait; retry now if the cause has passed.".into(),
        "too-large" => "The message or an attachment is larger than the service accepts: send it again with smaller attachments.".into(),
        "unsupported" => format!(
            "The provider {provider} cannot do this: give staff member {staff} another provider with `mailhost staff set`."
        ),
        "invalid-message" => "The message is malformed (a header, an attachment): correct it and send a new email.".into(),
        "unknown-outcome" => "It may have reached the recipients: check their mailbox; if it did not arrive, force a retry.".into(),
        _ => format!(
            "The provider plugin failed: see the service's log and `mailhost plugin check {provider}`; retry, and report it if it persists."
        ),
    }
}

/// What the email page shows.
#[derive(Debug)]
pub struct EmailView<'a> {
    /// The email.
    pub record: &'a EmailRecord,
    /// Its attempts.
    pub attempts: &'a [AttemptRecord],
    /// A message about what was just done (retried).
    pub done: Option<&'a str>,
    /// A problem with what was just asked.
    pub problem: Option<&'a str>,
}

fn row(out: &mut String, label: &str, value: &str) {
    if !value.is_empty() {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", text(label), text(value));
    }
}

/// One email's page.
pub fn email(session: &Session, view: &EmailView<'_>) -> String {
    let r = view.record;
    let mut main = String::with_capacity(16 * 1024);
    main.push_str("<p><a href=\"/\">← All emails</a></p>");
    if let Some(done) = view.done {
        let _ = write!(
            main,
            "<p class=\"notice good\" role=\"status\">{}</p>",
            text(done)
        );
    }
    if let Some(problem) = view.problem {
        let _ = write!(
            main,
            "<p class=\"notice bad\" role=\"alert\">{}</p>",
            text(problem)
        );
    }
    let refresh = if matches!(r.status, Status::Queued | Status::Sending) {
        " data-live=\"2\""
    } else {
        ""
    };
    let _ = write!(
        main,
        "<div id=\"live\"{refresh}><section class=\"card\" aria-labelledby=\"email-h\">\
         <h1 id=\"email-h\" class=\"subject\">{}</h1>\
         <p>{} <span class=\"help\">after {} attempt{}</span></p>",
        text(if r.subject.is_empty() {
            "(no subject)"
        } else {
            &r.subject
        }),
        status_badge(r.status),
        r.attempts,
        if r.attempts == 1 { "" } else { "s" }
    );
    actions(&mut main, session, r);
    main.push_str("<dl class=\"fields\">");
    row(&mut main, "From", &mailbox(&r.from));
    row(&mut main, "To", &people(&r.to));
    row(&mut main, "Cc", &people(&r.cc));
    row(&mut main, "Bcc", &people(&r.bcc));
    row(&mut main, "Reply-To", &people(&r.reply_to));
    row(&mut main, "Staff member", &r.staff_id);
    row(&mut main, "Provider", &r.provider);
    row(
        &mut main,
        "Mailbox",
        r.mailbox.as_deref().unwrap_or_default(),
    );
    row(&mut main, "Came in by", r.door.as_str());
    row(&mut main, "Message-ID", &r.message_id);
    row(&mut main, "Email id", &r.id);
    row(&mut main, "Created", &r.created_at.to_string());
    row(&mut main, "Updated", &r.updated_at.to_string());
    if let Some(at) = r.sent_at {
        row(&mut main, "Sent", &at.to_string());
    }
    if let Some(at) = r.not_before {
        row(&mut main, "Not before", &at.to_string());
    }
    main.push_str("</dl></section>");

    if let Some(error) = &r.error {
        let _ = write!(
            main,
            "<section class=\"card\" aria-labelledby=\"error-h\"><h2 id=\"error-h\">Last error</h2>\
             <p class=\"error\">{}</p><p class=\"fix\"><b>What to do:</b> {}</p></section>",
            text(&error.to_string()),
            text(&fix(error, r))
        );
    }

    let _ = write!(
        main,
        "<section class=\"card\" aria-labelledby=\"attempts-h\"><h2 id=\"attempts-h\">Attempts ({})</h2>",
        view.attempts.len()
    );
    if view.attempts.is_empty() {
        main.push_str("<p class=\"empty\">Not tried yet.</p>");
    } else {
        main.push_str(
            "<table class=\"attempts\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Started</th>\
             <th scope=\"col\">Ended</th><th scope=\"col\">Outcome</th><th scope=\"col\">Error and fix</th></tr></thead><tbody>",
        );
        for a in view.attempts {
            let error = a.error.as_ref().map_or_else(String::new, |e| {
                format!(
                    "<span class=\"error\">{}</span><br><span class=\"fix\">{}</span>",
                    text(&e.to_string()),
                    text(&fix(e, r))
                )
            });
            let _ = write!(
                main,
                "<tr><td data-label=\"#\" class=\"num\">{}</td><td data-label=\"Started\">{}</td>\
                 <td data-label=\"Ended\">{}</td><td data-label=\"Outcome\">{}</td><td data-label=\"Error\">{error}</td></tr>",
                a.attempt,
                time(a.started_at),
                a.ended_at.map(time).unwrap_or_default(),
                text(&a.outcome),
            );
        }
        main.push_str("</tbody></table>");
    }
    main.push_str("</section>");

    if let Some(receipt) = &r.receipt {
        main.push_str("<section class=\"card\" aria-labelledby=\"receipt-h\"><h2 id=\"receipt-h\">Receipt</h2><dl class=\"fields\">");
        row(&mut main, "Provider message id", &receipt.message_id);
        row(&mut main, "Request id", &receipt.request_id);
        row(&mut main, "Detail", &receipt.detail);
        main.push_str("</dl></section>");
    }

    let _ = write!(
        main,
        "<section class=\"card\" aria-labelledby=\"att-h\"><h2 id=\"att-h\">Attachments ({})</h2>",
        r.attachments.len()
    );
    if r.attachments.is_empty() {
        main.push_str("<p class=\"empty\">None.</p>");
    } else {
        main.push_str("<ul class=\"attachments\">");
        for a in &r.attachments {
            let _ = write!(
                main,
                "<li><b>{}</b> <span class=\"help\">{} · {}</span></li>",
                text(&a.name),
                text(&size(a.size)),
                text(&a.content_type)
            );
        }
        main.push_str("</ul>");
    }
    main.push_str("</section>");

    main.push_str(
        "<section class=\"card\" aria-labelledby=\"headers-h\"><h2 id=\"headers-h\">Headers</h2>",
    );
    if r.headers.is_empty() {
        main.push_str("<p class=\"empty\">No custom headers.</p>");
    } else {
        main.push_str("<dl class=\"fields\">");
        for h in &r.headers {
            row(&mut main, &h.name, &cut(&h.value, 300));
        }
        main.push_str("</dl>");
    }
    let _ = write!(
        main,
        "<details><summary>Body ({}{} characters)</summary><pre class=\"body\">{}</pre></details></section></div>",
        if r.html { "HTML source, " } else { "" },
        r.body.chars().count(),
        text(&cut(&r.body, 20_000))
    );
    layout(
        if r.subject.is_empty() {
            "Email"
        } else {
            &r.subject
        },
        Some(session),
        &main,
    )
}

fn actions(out: &mut String, session: &Session, r: &EmailRecord) {
    let href = component(&r.id);
    match r.status {
        Status::Failed | Status::Queued => {
            let _ = write!(
                out,
                "<form class=\"actions\" method=\"post\" action=\"/emails/{href}/retry\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" id=\"retry\">Retry now</button></form>",
                text(&session.csrf)
            );
        }
        Status::Unknown => {
            let _ = write!(
                out,
                "<p class=\"actions\"><a class=\"button\" id=\"force\" href=\"/emails/{href}/force\">Force retry…</a> \
                 <span class=\"help\">It may have been sent: check the recipients' mailbox first.</span></p>"
            );
        }
        Status::Sent | Status::Sending => {}
    }
}

/// The confirmation before a force retry of an `unknown` email.
pub fn confirm_force(session: &Session, r: &EmailRecord) -> String {
    let href = component(&r.id);
    let main = format!(
        "<section class=\"card narrow\" aria-labelledby=\"confirm-h\"><h1 id=\"confirm-h\">Send again?</h1>\
         <p>The outcome of <b>{subject}</b> to {to} is unknown: it may already have reached the recipients. \
         Sending it again could deliver it twice. Check the recipients' mailbox (or the sender's Sent Items) first.</p>\
         <form method=\"post\" action=\"/emails/{href}/retry\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"force\" value=\"true\">\
         <button type=\"submit\" id=\"confirm\" class=\"danger\">Yes, send it again</button> \
         <a href=\"/emails/{href}\">No, go back</a></form></section>",
        subject = text(&r.subject),
        to = text(&people(&r.to)),
        csrf = text(&session.csrf),
    );
    layout("Send again?", Some(session), &main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::engine::LimitsInUse;
    use crate::delivery::limits::{LimitValue, Limits, Usage};

    #[test]
    fn limits_in_use_are_drawn_as_labelled_meters_and_problems_escaped() {
        let limits = Limits {
            messages: Some(LimitValue {
                max: 30,
                window_ms: 60_000,
                setting: "MessagesPerMinute".into(),
            }),
            ..Limits::default()
        };
        let now = Timestamp::now();
        let usage = Usage {
            in_flight: 0,
            sends: vec![(now, 1), (now, 2)],
            recipients_used: None,
        };
        let rows = [
            MailboxUse {
                mailbox: "adele@contoso.com".into(),
                staff: "adele".into(),
                provider: "graph-email".into(),
                limits: Ok(LimitsInUse::new(&limits, &usage, now)),
            },
            MailboxUse {
                mailbox: "<b>x</b>@contoso.com".into(),
                staff: "x".into(),
                provider: String::new(),
                limits: Err("plugin \"<i>\" is disabled".into()),
            },
        ];
        let mut out = String::new();
        super::limits(&mut out, &rows);
        assert!(
            out.contains("<label for=\"m0-messages\">Messages per "),
            "{out}"
        );
        assert!(
            out.contains("<meter id=\"m0-messages\" min=\"0\" max=\"30\""),
            "{out}"
        );
        assert!(out.contains("value=\"2\""), "{out}");
        assert!(out.contains("&lt;b&gt;x&lt;/b&gt;@contoso.com"));
        assert!(out.contains("plugin &quot;&lt;i&gt;&quot; is disabled"));
    }
}
