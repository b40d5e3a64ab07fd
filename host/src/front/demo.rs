//! `mailhost demo`: the embedded default job. It runs the mission's testing step end to end on
//! this machine, with nothing leaving it:
//!
//! 1. finds `mailhost-emulator` and the Graph plugin library next to the `mailhost` executable
//!    (both built by `cargo build --release`);
//! 2. starts the emulator on a free loopback port (a child process, stopped on every exit path);
//! 3. in a fresh temporary home, registers and enables the Graph plugin, sets `ClientID`,
//!    `TenantID`, `Authority` and `GraphEndpoint` from the emulator's seed, and adds a
//!    NonInteractive staff member with username, password and display name, through the same
//!    command handlers the CLI runs;
//! 4. saves an email with To, Subject, Body and an attachment with status Sent, which sends it
//!    through the durable store exactly as `mailhost email send` does;
//! 5. prints what arrived in the recipient's Inbox and the sender's Sent Items (from the
//!    emulator's admin API), then the same for an alternate From (Send As), and the records'
//!    final status.
//!
//! With `--web` it then keeps running and serves the Email Maintenance page and the emulator's
//! mailboxes on loopback until Ctrl-C (`web.rs`).
//!
//! Exit 0 when everything arrived; 1 when a send failed; 2 when the binaries are missing.

mod emulator;
mod http;
mod web;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::home::Home;
use crate::config::secrets::{self, SecretStore};
use crate::delivery::compose::Draft;
use crate::delivery::outbox::{EmailRecord, Status};
use crate::error::{EXIT_OK, Error};
use crate::front::cli::{Cli, DemoArgs};
use crate::front::commands::email;
use crate::front::commands::print;
use emulator::EmulatorProcess;

/// The seeded sender: a normal user with a password and no MFA (the NonInteractive account).
const SENDER: &str = "alex@contoso.onmicrosoft.com";
/// The seeded recipient.
const RECIPIENT: &str = "lynne@contoso.onmicrosoft.com";
/// A seeded shared mailbox on which the sender has Send As.
const SEND_AS: &str = "sales@contoso.onmicrosoft.com";
/// The seeded public-client app registration.
const APP_NAME: &str = "mailhost";
/// The staff ID the demo creates.
const STAFF_ID: &str = "alex";
/// The Graph plugin's registry name.
const PLUGIN: &str = "graph-email";

/// Runs the demo.
///
/// # Errors
/// Missing binaries (exit 2), an emulator that does not start, or a send that failed (exit 1).
pub fn run(args: &DemoArgs) -> Result<u8, Error> {
    let (emulator_bin, plugin_lib) = locate()?;
    let dir = tempfile::Builder::new()
        .prefix("mailhost-demo-")
        .tempdir()
        .map_err(|e| Error::Failed(format!("cannot create a temporary home for the demo: {e}")))?;
    let emulator = EmulatorProcess::start(&emulator_bin)?;
    let home = Home::open(dir.path())?;
    print("mailhost demo: the mission's testing step, against a local Microsoft 365 emulator")?;
    print(&format!(
        "  emulator: {} ({})",
        emulator.base_url(),
        emulator_bin.display()
    ))?;
    let kept = if args.keep {
        "kept after the demo"
    } else {
        "deleted after the demo; --keep keeps it"
    };
    print(&format!("  home:     {} ({kept})", home.path().display()))?;
    let mut result = steps(&home, &emulator, &plugin_lib);
    if args.web && result.is_ok() {
        result = web::serve(&home, emulator.base_url()).and(result);
    }
    drop(emulator);
    if args.keep {
        let path = dir.keep();
        print(&format!(
            "the demo's home is kept at {}: try `mailhost --home {} email list`",
            path.display(),
            path.display()
        ))?;
    }
    result
}

/// The `mailhost-emulator` binary and the Graph plugin library next to this executable.
fn locate() -> Result<(PathBuf, PathBuf), Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Usage(format!("cannot tell where the mailhost executable is: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new(".")).to_path_buf();
    let emulator = dir.join(format!("mailhost-emulator{}", std::env::consts::EXE_SUFFIX));
    let plugin = dir.join(format!(
        "{}graph_email{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    for path in [&emulator, &plugin] {
        if !path.is_file() {
            return Err(Error::Usage(format!(
                "mailhost demo needs {} next to the mailhost executable: build everything with `cargo build --release` at the workspace root, then run target/release/mailhost demo",
                path.display()
            )));
        }
    }
    Ok((emulator, plugin))
}

fn steps(home: &Home, emulator: &EmulatorProcess, plugin_lib: &Path) -> Result<u8, Error> {
    let base = emulator.base_url();
    let seed = http::get_json(base, "/_emulator/seed").map_err(Error::Failed)?;
    let (client_id, tenant_id, password, name) = seed_values(&seed)?;

    heading("1. Plugin Maintenance: register and enable the Microsoft Graph provider")?;
    let lib = plugin_lib.to_string_lossy();
    cli(home, &["plugin", "add", &lib, "--enable"])?;

    heading("2. System Configuration: the app registration, and the emulator as Microsoft 365")?;
    for (key, value) in [
        ("ClientID", client_id.as_str()),
        ("TenantID", tenant_id.as_str()),
        ("Authority", base),
        ("GraphEndpoint", base),
    ] {
        cli(home, &["config", "set", PLUGIN, key, value])?;
    }

    heading("3. Staff Maintenance: a NonInteractive staff member (username and password sign-in)")?;
    cli(
        home,
        &[
            "staff",
            "add",
            STAFF_ID,
            "--provider",
            PLUGIN,
            "--email",
            SENDER,
            "--name",
            &name,
            "--username",
            SENDER,
            "--field",
            "NonInteractive=true",
        ],
    )?;
    SecretStore::open(home)?.put(&secrets::staff_password_key(STAFF_ID), &password)?;
    print(&format!(
        "$ mailhost staff set {STAFF_ID} --password-stdin   # the seeded password, kept in the secret store"
    ))?;

    heading("4. Email Maintenance: a new email with an attachment, status Sent, saved")?;
    let attachment = home.path().join("Invoice-1001.txt");
    let content =
        "Contoso invoice 1001\nAmount due: 1,250.00 EUR\nDue date: 30 days from receipt\n"
            .repeat(20);
    std::fs::write(&attachment, content).map_err(|e| {
        Error::Failed(format!(
            "cannot write the demo attachment {}: {e}",
            attachment.display()
        ))
    })?;
    let engine = email::engine(home, email::open_store(home)?)?;
    let draft = Draft {
        to: vec![RECIPIENT.to_string()],
        subject: "Invoice 1001 from Contoso".to_string(),
        body: Some("Hello Lynne,\n\nplease find invoice 1001 attached.\n\nAlex".to_string()),
        attach: vec![attachment],
        ..Draft::default()
    };
    let first = save(home, &engine, &draft)?;

    heading("5. What arrived")?;
    show_arrival(
        base,
        &format!("Inbox of {RECIPIENT}"),
        &mailbox_path(RECIPIENT, "inbox"),
        &draft.subject,
    )?;
    show_arrival(
        base,
        &format!("Sent Items of {SENDER}"),
        &mailbox_path(SENDER, "sent"),
        &draft.subject,
    )?;

    heading(&format!(
        "6. Alternate From: the same staff member sends as the shared mailbox {SEND_AS} (Send As)"
    ))?;
    let send_as = Draft {
        from: Some(SEND_AS.to_string()),
        subject: "Your order has shipped".to_string(),
        body: Some("Hello Lynne,\n\nyour order 5521 has shipped.\n\nContoso Sales".to_string()),
        attach: Vec::new(),
        ..draft.clone()
    };
    let second = save(home, &engine, &send_as)?;
    show_arrival(
        base,
        &format!("Inbox of {RECIPIENT}"),
        &mailbox_path(RECIPIENT, "inbox"),
        &send_as.subject,
    )?;
    // Send As through /users/{from}/sendMail keeps the copy in the shared mailbox; through the
    // `from` property it stays in the sender's own Sent Items.
    if show_arrival(
        base,
        &format!("Sent Items of {SEND_AS}"),
        &mailbox_path(SEND_AS, "sent"),
        &send_as.subject,
    )
    .is_err()
    {
        show_arrival(
            base,
            &format!("Sent Items of {SENDER}"),
            &mailbox_path(SENDER, "sent"),
            &send_as.subject,
        )?;
    }

    heading("7. The email records (mail.db)")?;
    for record in [&first, &second] {
        let now = engine.outbox().get(&record.id)?;
        print(&format!(
            "  {}  {}  attempts {}  \"{}\"",
            now.id, now.status, now.attempts, now.subject
        ))?;
    }
    print("\ndemo passed: both emails were sent with no error and arrived")?;
    Ok(EXIT_OK)
}

/// The seed values the demo needs: client id, tenant id, the sender's password and name.
fn seed_values(seed: &Value) -> Result<(String, String, String, String), Error> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let missing = |what: &str| {
        Error::Failed(format!(
            "the emulator's seed has no {what}; is the emulator up to date? rebuild with `cargo build --release`"
        ))
    };
    let client_id = seed["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == APP_NAME))
        .and_then(|a| text(&a["client_id"]))
        .ok_or_else(|| missing("'mailhost' app"))?;
    let tenant_id = text(&seed["tenant"]["id"]).ok_or_else(|| missing("tenant id"))?;
    let sender = seed["mailboxes"]
        .as_array()
        .and_then(|m| {
            m.iter().find(|m| {
                m["upn"]
                    .as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(SENDER))
            })
        })
        .ok_or_else(|| missing(SENDER))?;
    let password = text(&sender["password"]).ok_or_else(|| missing("password for the sender"))?;
    let name = text(&sender["name"]).unwrap_or_default();
    Ok((client_id, tenant_id, password, name))
}

/// Saves (and so sends) `draft` as the demo's staff member, and prints the record.
fn save(
    home: &Home,
    engine: &crate::delivery::engine::Engine,
    draft: &Draft,
) -> Result<EmailRecord, Error> {
    print(&format!(
        "  from:       {}",
        draft.from.as_deref().unwrap_or(SENDER)
    ))?;
    print(&format!("  to:         {}", draft.to.join(", ")))?;
    print(&format!("  subject:    {}", draft.subject))?;
    for path in &draft.attach {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        print(&format!("  attachment: {} ({size} bytes)", path.display()))?;
    }
    print("  status:     Sent → save")?;
    let record = email::submit(
        engine,
        STAFF_ID,
        draft,
        false,
        std::time::Duration::from_secs(60),
    )?;
    print(&format!(
        "  → email {}: {} (attempts {})",
        record.id, record.status, record.attempts
    ))?;
    if record.status != Status::Sent {
        let why = record
            .error
            .as_ref()
            .map_or_else(String::new, ToString::to_string);
        return Err(Error::Failed(format!(
            "the demo email {} was not sent ({why}); see `mailhost --home {} email show {}`",
            record.id,
            home.path().display(),
            record.id
        )));
    }
    Ok(record)
}

fn mailbox_path(address: &str, folder: &str) -> String {
    format!("/_emulator/mailboxes/{address}/{folder}")
}

/// Prints the message with `subject` in a mailbox folder of the emulator.
fn show_arrival(base: &str, label: &str, path: &str, subject: &str) -> Result<(), Error> {
    let messages = http::get_json(base, path).map_err(Error::Failed)?;
    let found = messages
        .as_array()
        .and_then(|list| list.iter().rev().find(|m| m["subject"] == subject))
        .ok_or_else(|| Error::Failed(format!("the email \"{subject}\" is not in the {label}")))?;
    print(&format!("  {label}:"))?;
    let from = mailbox(&found["from"]);
    let sender = mailbox(&found["sender"]);
    if !sender.is_empty()
        && found["sender"]["emailAddress"]["address"] != found["from"]["emailAddress"]["address"]
    {
        print(&format!("    from:       {sender} on behalf of {from}"))?;
    } else {
        print(&format!("    from:       {from}"))?;
    }
    let to: Vec<String> = found["toRecipients"]
        .as_array()
        .map(|l| l.iter().map(mailbox).collect())
        .unwrap_or_default();
    print(&format!("    to:         {}", to.join(", ")))?;
    print(&format!(
        "    subject:    {}",
        found["subject"].as_str().unwrap_or_default()
    ))?;
    for a in found["attachments"].as_array().into_iter().flatten() {
        print(&format!(
            "    attachment: {} ({} bytes, {})",
            a["name"].as_str().unwrap_or_default(),
            a["size"].as_u64().unwrap_or_default(),
            a["contentType"].as_str().unwrap_or_default()
        ))?;
    }
    Ok(())
}

/// `Name <address>` of a Graph recipient object.
fn mailbox(value: &Value) -> String {
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

fn heading(text: &str) -> Result<(), Error> {
    print(&format!("\n{text}"))
}

/// Runs one CLI command in-process against the demo's home, echoing it first.
fn cli(home: &Home, args: &[&str]) -> Result<(), Error> {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                (*a).to_string()
            }
        })
        .collect();
    print(&format!("$ mailhost {}", shown.join(" ")))?;
    let home_arg = home.path().to_string_lossy().into_owned();
    let argv = ["mailhost", "--home", home_arg.as_str()]
        .into_iter()
        .chain(args.iter().copied());
    let parsed =
        <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| Error::Usage(e.to_string()))?;
    match crate::front::commands::run(parsed)? {
        EXIT_OK => Ok(()),
        code => Err(Error::Failed(format!(
            "`mailhost {}` exited with status {code}",
            shown.join(" ")
        ))),
    }
}
