//! Data protection, driven through the real binary: private file modes under a permissive
//! umask, the start-up refusal of mail or secrets readable by others (and its override),
//! retention over a store of 10,000 emails, secrets read without echo on a terminal, the secret
//! backends (file, systemd credentials, the operating system's keyring through a real Secret
//! Service where gnome-keyring is installed), and the audit trail.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailhost_emulator::{Emulator, seed};
use mailhost_tests::homes::{graph_home, pickup_home};
use mailhost_tests::{Home, assert_exit, mailhost_bin, one_line, plugin_path};
use serde_json::Value;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `mailhost --home HOME ARGS...` run with umask 000, so only mailhost's own care keeps files
/// private.
fn run_umask_000(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(mailhost_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("MAILHOST_HOME")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 0, args);
    output
}

/// Every file and folder under `root` except the test's own folders `skip`, with its mode.
fn modes_under(root: &Path, skip: &[&str]) -> BTreeMap<PathBuf, u32> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if dir == root && skip.contains(&name.as_str()) {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.insert(path.clone(), mode(&path));
        }
    }
    out
}

fn assert_private(root: &Path, skip: &[&str], after: &str) {
    assert_eq!(mode(root), 0o700, "the home after {after}");
    for (path, found) in modes_under(root, skip) {
        let wanted = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            found,
            wanted,
            "{} is {found:o} after {after}, expected {wanted:o}",
            path.display()
        );
    }
}

#[test]
fn every_file_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    // A home mailhost creates itself, under umask 000.
    let home = dir.path().join("home");
    let libs = dir.path().join("libs");
    std::fs::create_dir(&libs).unwrap();
    let lib = libs.join("libpickup_dir.so");
    std::fs::copy(plugin_path("pickup_dir"), &lib).unwrap();
    set_mode(&lib, 0o755);
    let pickup = dir.path().join("pickup");
    std::fs::create_dir(&pickup).unwrap();
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(
        &batch,
        "{\"to\": [\"alex@contoso.com\"], \"subject\": \"one\"}\n{\"to\": [\"alex@contoso.com\"], \"subject\": \"two\"}\n",
    )
    .unwrap();
    let steps: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec!["plugin", "add", lib.to_str().unwrap(), "--enable"],
            None,
        ),
        (
            vec![
                "config",
                "set",
                "pickup-dir",
                "Directory",
                pickup.to_str().unwrap(),
            ],
            None,
        ),
        (vec!["config", "set", "mailhost", "RetainDays", "60"], None),
        (
            vec![
                "staff",
                "add",
                "adele",
                "--provider",
                "pickup-dir",
                "--email",
                "adele@contoso.com",
                "--password-stdin",
            ],
            Some("hunter2\n"),
        ),
        (
            vec![
                "email",
                "send",
                "--staff",
                "adele",
                "--to",
                "alex@contoso.com",
                "--subject",
                "modes",
            ],
            None,
        ),
        (
            vec![
                "email",
                "send-batch",
                batch.to_str().unwrap(),
                "--staff",
                "adele",
            ],
            None,
        ),
        (vec!["email", "retry", "--failed"], None),
        (vec!["plugin", "disable", "pickup-dir"], None),
        (vec!["plugin", "enable", "pickup-dir"], None),
        (vec!["plugin", "verify"], None),
        (vec!["staff", "set", "adele", "--name", "Adele"], None),
        (vec!["config", "unset", "mailhost", "RetainDays"], None),
        (vec!["email", "purge", "--older-than", "1d"], None),
        (vec!["secrets", "migrate", "--to", "file"], None),
        (vec!["secrets", "list"], None),
        (vec!["audit"], None),
    ];
    for (args, stdin) in &steps {
        run_umask_000(&home, args, *stdin);
        assert_private(&home, &[], &args.join(" "));
    }
    for name in [
        "plugins.toml",
        "settings.toml",
        "staff.toml",
        "secrets.toml",
        "mail.db",
        "audit.log",
    ] {
        assert!(home.join(name).is_file(), "{name} was not created");
    }

    // mail.db's WAL and SHM, created by another process with a wide mode while it holds the
    // database open, are narrowed by the next mailhost that opens it.
    let conn = rusqlite::Connection::open(home.join("mail.db")).unwrap();
    let _: i64 = conn
        .query_row("SELECT count(*) FROM emails", [], |r| r.get(0))
        .unwrap();
    for suffix in ["-wal", "-shm"] {
        let path = home.join(format!("mail.db{suffix}"));
        assert!(path.exists(), "{} is not there while open", path.display());
        set_mode(&path, 0o666);
    }
    // 0666 sidecars are refused like the database itself; the override runs and narrows them.
    run_umask_000(
        &home,
        &["--allow-unsafe-permissions", "email", "list"],
        None,
    );
    for suffix in ["-wal", "-shm"] {
        assert_eq!(
            mode(&home.join(format!("mail.db{suffix}"))),
            0o600,
            "mail.db{suffix}"
        );
    }
    drop(conn);
    assert_private(&home, &[], "email list");
}

#[test]
fn readable_mail_or_secrets_stop_every_command_unless_overridden() {
    let (home, _pickup) = pickup_home();
    home.ok(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "alex@contoso.com",
    ]);
    let db = home.path().join("mail.db");
    assert_eq!(mode(&db), 0o600);

    set_mode(&db, 0o644);
    for args in [
        vec!["email", "list"],
        vec!["staff", "list"],
        vec!["plugin", "list"],
    ] {
        let stderr = home.fails(&args, 2);
        let line = one_line(&stderr);
        assert!(
            line.contains(&format!("chmod 600 {}", db.display()))
                && line.contains("--allow-unsafe-permissions"),
            "{stderr}"
        );
    }
    let output = home.run(&["--allow-unsafe-permissions", "email", "list"]);
    assert_exit(&output, 0, &["email", "list"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    set_mode(&db, 0o600);

    // Secrets, and a spool folder, the same; the fix names chmod 700 for a folder.
    home.run_with_stdin(&["staff", "set", "adele", "--password-stdin"], "pw\n");
    let secrets = home.path().join("secrets.toml");
    set_mode(&secrets, 0o640);
    let stderr = home.fails(&["staff", "show", "adele"], 2);
    assert!(
        stderr.contains(&format!("chmod 600 {}", secrets.display())),
        "{stderr}"
    );
    set_mode(&secrets, 0o600);
    let spool = home.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    set_mode(&spool, 0o755);
    let stderr = home.fails(&["email", "list"], 2);
    assert!(
        stderr.contains(&format!("chmod 700 {}", spool.display())),
        "{stderr}"
    );
    set_mode(&spool, 0o700);

    // Other files are only warned about.
    let settings = home.path().join("settings.toml");
    set_mode(&settings, 0o644);
    let output = home.run(&["email", "list"]);
    assert_exit(&output, 0, &["email", "list"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("chmod 600 {}", settings.display())),
        "{stderr}"
    );
}

const DAY_MS: i64 = 86_400_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The status and age in days (plus half a day, away from any boundary) of email `i`.
fn shape(i: u32) -> (&'static str, i64) {
    let status = match i % 10 {
        0..=5 => "sent",
        6 => "queued",
        7 => "failed",
        8 => "unknown",
        _ => "sent",
    };
    (status, i64::from(i % 200))
}

fn counts(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn purge_applies_retention_over_ten_thousand_emails() {
    let (home, _pickup) = pickup_home();
    // The first send creates mail.db at the current schema.
    home.ok(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "alex@contoso.com",
    ]);
    let db = home.path().join("mail.db");
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("DELETE FROM emails", []).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO emails (id, staff_id, provider, from_address, to_json, subject, body, \
                     status, created_at, updated_at, sent_at) \
                     VALUES (?1, 'adele', 'pickup-dir', 'adele@contoso.com', \
                     '[{\"address\":\"alex@contoso.com\",\"name\":\"\"}]', ?2, ?3, ?4, ?5, ?5, ?6)",
                )
                .unwrap();
            let now = now_ms();
            for i in 0..10_000u32 {
                let (status, days) = shape(i);
                let when = now - days * DAY_MS - DAY_MS / 2;
                let sent = (status == "sent").then_some(when);
                insert
                    .execute(rusqlite::params![
                        format!("email-{i:05}"),
                        format!("subject {i}"),
                        format!("body of email {i} {}", "x".repeat(200)),
                        status,
                        when,
                        sent
                    ])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    // Spool folders for every 50th email.
    for i in (0..10_000u32).step_by(50) {
        let dir = home.path().join("spool").join(format!("email-{i:05}"));
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o700);
        std::fs::write(dir.join("attachment.bin"), vec![7u8; 1000]).unwrap();
        set_mode(&dir.join("attachment.bin"), 0o600);
    }
    set_mode(&home.path().join("spool"), 0o700);

    let (mut delete, mut drop_body) = (0, 0);
    for i in 0..10_000u32 {
        match shape(i) {
            ("sent", d) if d >= 90 => delete += 1,
            ("sent", d) if d >= 30 => drop_body += 1,
            _ => {}
        }
    }

    let dry = home.json(&["email", "purge", "--dry-run", "--json"]);
    assert_eq!(dry["records_deleted"], delete, "{dry}");
    assert_eq!(dry["bodies_dropped"], drop_body, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&db, "SELECT count(*) FROM emails"), 10_000);

    let size_before = std::fs::metadata(&db).unwrap().len();
    let report = home.json(&["email", "purge", "--json"]);
    assert_eq!(report["records_deleted"], delete, "{report}");
    assert_eq!(report["bodies_dropped"], drop_body, "{report}");
    // 3,150 deleted rows of about 300 bytes: mail.db gives its pages back to the file system.
    let spool_bytes = report["spool_bytes"].as_u64().unwrap();
    assert_eq!(spool_bytes, 150 * 1000, "{report}"); // 150 of the 200 spool folders go
    let db_bytes = report["bytes_reclaimed"].as_u64().unwrap() - spool_bytes;
    assert!(db_bytes > 500_000, "{report}");
    let size_after = std::fs::metadata(&db).unwrap().len();
    assert!(
        size_after + 500_000 < size_before,
        "mail.db went from {size_before} to {size_after} bytes"
    );
    assert_eq!(counts(&db, "SELECT count(*) FROM emails"), 10_000 - delete);

    // What stays and what goes, email by email.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut rows: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT id, status, body, subject FROM emails")
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
    {
        let (id, rest): (String, (String, String, String)) = row.unwrap();
        rows.insert(id, rest);
    }
    for i in 0..10_000u32 {
        let id = format!("email-{i:05}");
        let (status, days) = shape(i);
        let spool = home.path().join("spool").join(&id);
        match (status, rows.get(&id)) {
            ("sent", None) if days >= 90 => {}
            ("sent", Some((_, body, subject))) if (30..90).contains(&days) => {
                assert!(body.is_empty(), "{id}: body kept");
                assert_eq!(subject, &format!("subject {i}"), "{id}: the record is kept");
            }
            (_, Some((stored, body, _))) if stored == status && (status != "sent" || days < 30) => {
                assert!(body.starts_with("body of email"), "{id}: body dropped");
            }
            other => panic!("{id} ({status}, {days} days): {other:?}"),
        }
        if i % 50 == 0 {
            let gone = status == "sent" && days >= 30;
            assert_eq!(!spool.exists(), gone, "{id}: spool");
        }
    }
    drop(stmt);
    drop(conn);
    // A dropped body is shown as such, and such an email cannot be sent again.
    let shown = home.ok(&["email", "show", "email-00031"]);
    assert!(
        shown.contains("retention:") && shown.contains("dropped"),
        "{shown}"
    );
    let shown = home.json(&["email", "show", "email-00031", "--json"]);
    assert!(
        shown["body_dropped_at"].as_str().unwrap().ends_with('Z'),
        "{shown}"
    );
    let stderr = home.fails(&["email", "retry", "email-00031", "--force"], 2);
    assert!(stderr.contains("dropped by retention"), "{stderr}");

    // Queued, failed and unknown emails stay however old they are; nothing left to purge.
    assert_eq!(
        counts(&db, "SELECT count(*) FROM emails WHERE status = 'queued'"),
        1000
    );
    let again = home.json(&["email", "purge", "--json"]);
    assert_eq!(
        (
            again["records_deleted"].as_u64(),
            again["bodies_dropped"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // Named statuses go too; `sending` never.
    let failed = home.json(&[
        "email",
        "purge",
        "--status",
        "failed",
        "--older-than",
        "100d",
        "--json",
    ]);
    assert_eq!(failed["records_deleted"], 500, "{failed}");
    assert_eq!(
        counts(&db, "SELECT count(*) FROM emails WHERE status = 'failed'"),
        500
    );
    assert_eq!(
        counts(&db, "SELECT count(*) FROM emails WHERE status = 'queued'"),
        1000
    );
    let stderr = home.fails(&["email", "purge", "--status", "sending"], 2);
    assert!(stderr.contains("sending"), "{stderr}");

    // RetainDays 0 keeps records forever; --older-than overrides it.
    home.ok(&["config", "set", "mailhost", "RetainDays", "0"]);
    home.ok(&["config", "set", "mailhost", "RetainBodyDays", "0"]);
    let kept = home.json(&["email", "purge", "--status", "unknown", "--json"]);
    assert_eq!(
        (
            kept["records_deleted"].as_u64(),
            kept["bodies_dropped"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let listed = home.json(&["config", "list", "mailhost", "--json"]);
    assert!(listed.to_string().contains("RetainDays"), "{listed}");

    // The totals for /metrics, and the store uses incremental vacuum.
    let totals = counts(&db, "SELECT records_deleted FROM retention_totals");
    assert_eq!(totals, delete + 500);
    assert_eq!(counts(&db, "PRAGMA auto_vacuum"), 2);
}

/// Runs `mailhost ARGS` on a pseudo-terminal (python3's pty module), types `typed` at the
/// prompt and returns everything the terminal showed.
fn on_a_terminal(home: &Home, args: &[&str], typed: &str) -> (i32, String) {
    let script = r#"
import os, pty, sys, time, select
argv = sys.argv[2:]
typed = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen = b""
deadline = time.time() + 30
sent = False
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    if not sent and b":" in seen:
        time.sleep(0.2)
        os.write(fd, typed + b"\r")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut argv = vec![
        mailhost_bin().to_string_lossy().to_string(),
        "--home".into(),
        home.path().to_string_lossy().to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(typed)
        .args(&argv)
        .output()
        .expect("run python3");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn secrets_typed_on_a_terminal_are_not_echoed() {
    let (home, _pickup) = pickup_home();
    let (code, screen) = on_a_terminal(
        &home,
        &["staff", "set", "adele", "--password-stdin"],
        "hunter2-typed",
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("Password for staff member 'adele'"),
        "{screen}"
    );
    assert!(
        !screen.contains("hunter2-typed"),
        "the password was echoed: {screen}"
    );
    assert!(home.read("secrets.toml").contains("hunter2-typed"));

    let emulator = Emulator::start().unwrap();
    let graph = graph_home(&emulator);
    let (code, screen) = on_a_terminal(
        &graph,
        &[
            "config",
            "set",
            "graph-email",
            "ClientSecret",
            "--value-stdin",
        ],
        "s3cret-typed",
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        !screen.contains("s3cret-typed"),
        "the value was echoed: {screen}"
    );
    assert!(graph.read("secrets.toml").contains("s3cret-typed"));

    // Piped input is read as before, also by --value-stdin.
    let output = graph.run_with_stdin(
        &[
            "config",
            "set",
            "graph-email",
            "ClientSecret",
            "--value-stdin",
        ],
        "piped-secret\n",
    );
    assert_exit(&output, 0, &["config", "set"]);
    assert!(graph.read("secrets.toml").contains("\"piped-secret\""));
}

fn listed(home: &Home, env: &[(&str, &str)]) -> Value {
    let output = home.run_env(&["secrets", "list", "--json"], env);
    assert_exit(&output, 0, &["secrets", "list", "--json"]);
    serde_json::from_slice(&output.stdout).unwrap()
}

fn location(list: &Value, name: &str) -> Option<String> {
    list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["location"].as_str().unwrap().to_string())
}

#[test]
fn file_and_systemd_backends_list_names_never_values() {
    let (home, _pickup) = pickup_home();
    home.run_with_stdin(&["staff", "set", "adele", "--password-stdin"], "file-pw\n");
    let list = listed(&home, &[]);
    assert_eq!(list["backend"], "file");
    assert_eq!(
        location(&list, "staff.adele.password").as_deref(),
        Some("file")
    );
    assert!(!list.to_string().contains("file-pw"));
    let text = home.ok(&["secrets", "list"]);
    assert!(
        text.contains("staff.adele.password") && !text.contains("file-pw"),
        "{text}"
    );

    // systemd credentials: a prepared $CREDENTIALS_DIRECTORY, read-only, winning over the file.
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("staff.adele.password"), "from-systemd\n").unwrap();
    std::fs::write(creds.path().join("config.pickup-dir.Token"), "t\n").unwrap();
    home.ok(&["config", "set", "mailhost", "SecretBackend", "systemd"]);
    let env = [("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())];
    let list = listed(&home, &env);
    assert_eq!(list["backend"], "systemd");
    assert_eq!(
        location(&list, "staff.adele.password").as_deref(),
        Some("systemd")
    );
    assert_eq!(
        location(&list, "config.pickup-dir.Token").as_deref(),
        Some("systemd")
    );
    assert!(!list.to_string().contains("from-systemd"));
    let mut command = home.command(["staff", "set", "adele", "--password-stdin"]);
    command.env("CREDENTIALS_DIRECTORY", creds.path());
    let output = {
        use std::io::Write;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"new\n").unwrap();
        child.wait_with_output().unwrap()
    };
    assert_exit(&output, 2, &["staff", "set", "adele", "--password-stdin"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("read-only") && stderr.contains("LoadCredential"),
        "{stderr}"
    );
    let output = home.run_env(&["secrets", "migrate", "--to", "systemd"], &env);
    assert_exit(&output, 2, &["secrets", "migrate", "--to", "systemd"]);
    // Migrating back copies the credential into the file.
    let output = home.run_env(&["secrets", "migrate", "--to", "file"], &env);
    assert_exit(&output, 0, &["secrets", "migrate", "--to", "file"]);
    assert!(home.read("secrets.toml").contains("from-systemd"));
    assert!(
        home.read("settings.toml")
            .contains("SecretBackend = \"file\"")
    );
    assert_eq!(mode(&home.path().join("secrets.toml")), 0o600);
}

/// Runs `script` (sh) in a private D-Bus session with an unlocked gnome-keyring, so the
/// keyring backend talks to a real Secret Service. `None` when the tools are not installed.
fn in_keyring_session(script: &str, env: &[(&str, &Path)]) -> Option<Output> {
    let present = |tool: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !present("dbus-run-session") || !present("gnome-keyring-daemon") {
        return None;
    }
    let xdg = tempfile::tempdir().unwrap();
    let full = format!(
        "printf test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\nsleep 0.5\n{script}"
    );
    let mut command = Command::new("dbus-run-session");
    command
        .arg("--")
        .arg("sh")
        .arg("-ec")
        .arg(full)
        .env("HOME", xdg.path())
        .env("XDG_DATA_HOME", xdg.path().join("data"))
        .env("XDG_RUNTIME_DIR", xdg.path())
        .env("MH", mailhost_bin())
        .env_remove("MAILHOST_HOME")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    set_mode(xdg.path(), 0o700);
    Some(command.output().unwrap())
}

#[test]
fn keyring_backend_stores_in_a_real_secret_service() {
    let (home, _pickup) = pickup_home();
    home.run_with_stdin(
        &["staff", "set", "adele", "--password-stdin"],
        "before-keyring\n",
    );
    let script = r#"
"$MH" --home "$H" secrets migrate --to keyring
printf 'in-keyring\n' | "$MH" --home "$H" staff set adele --password-stdin
"$MH" --home "$H" secrets list --json > "$OUT/list.json"
cp "$H/secrets.toml" "$OUT/file-during.toml" 2>/dev/null || true
# Switched back by hand: the keyring's secrets are named as stranded, and migrate brings them.
"$MH" --home "$H" config set mailhost SecretBackend file
"$MH" --home "$H" secrets list 2> "$OUT/stranded.txt"
"$MH" --home "$H" secrets migrate --to file
"$MH" --home "$H" secrets list 2> "$OUT/after.txt"
"#;
    let out = tempfile::tempdir().unwrap();
    let Some(output) = in_keyring_session(script, &[("H", home.path()), ("OUT", out.path())])
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install gnome-keyring and dbus (dbus-run-session) for the keyring test"
        );
        eprintln!("skipped: no gnome-keyring-daemon or dbus-run-session installed");
        return;
    };
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let parent = out.path();
    let list: Value =
        serde_json::from_str(&std::fs::read_to_string(parent.join("list.json")).unwrap()).unwrap();
    assert_eq!(list["backend"], "keyring");
    assert_eq!(
        location(&list, "staff.adele.password").as_deref(),
        Some("keyring")
    );
    let during = std::fs::read_to_string(parent.join("file-during.toml")).unwrap_or_default();
    assert!(
        !during.contains("in-keyring") && !during.contains("before-keyring"),
        "{during}"
    );
    assert!(!home.read("secrets.index").contains("in-keyring"));
    assert_eq!(mode(&home.path().join("secrets.index")), 0o600);
    // Migrated back: the value set while on the keyring is in the file again.
    assert!(home.read("secrets.toml").contains("in-keyring"));
    let stranded = std::fs::read_to_string(parent.join("stranded.txt")).unwrap();
    assert!(
        stranded.contains("staff.adele.password") && stranded.contains("secrets migrate --to file"),
        "{stranded}"
    );
    let after = std::fs::read_to_string(parent.join("after.txt")).unwrap();
    assert!(!after.contains("keyring"), "{after}");
}

fn audit_commands(home: &Home) -> Vec<String> {
    home.json(&["audit", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["command"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_configuration_change_is_audited_without_secrets() {
    let emulator = Emulator::start().unwrap();
    emulator.set_device_code_interval(1);
    let home = graph_home(&emulator);
    home.ok(&[
        "config",
        "set",
        "graph-email",
        "RedirectURI",
        "http://localhost:8400/cb",
    ]);
    home.ok(&["config", "unset", "graph-email", "RedirectURI"]);
    let output = home.run_with_stdin(
        &[
            "config",
            "set",
            "graph-email",
            "ClientSecret",
            "--value-stdin",
        ],
        "s3cret-value\n",
    );
    assert_exit(&output, 0, &["config", "set", "--value-stdin"]);
    home.ok(&["config", "unset", "graph-email", "ClientSecret"]);
    home.ok(&["config", "set", "mailhost", "RetainBodyDays", "10"]);
    home.ok(&["plugin", "disable", "graph-email"]);
    home.ok(&["plugin", "enable", "graph-email"]);
    home.ok(&[
        "staff",
        "add",
        "megan",
        "--provider",
        "graph-email",
        "--email",
        seed::MFA_USER_UPN,
        "--field",
        "NonInteractive=false",
    ]);
    let output = home.run_with_stdin(
        &["staff", "set", "megan", "--password-stdin"],
        "hunter2-pw\n",
    );
    assert_exit(&output, 0, &["staff", "set"]);

    // login (device code, approved in the emulator) and logout.
    let child = home
        .command(["login", "megan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(pending) = emulator.pending_device_codes().into_iter().next() {
            break pending.user_code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no device code"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    emulator
        .approve_device_code(&code, seed::MFA_USER_UPN)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 0, &["login", "megan"]);
    // The token cache went through the host's secret store: listed by name, private.
    let list = listed(&home, &[]);
    assert!(
        list["secrets"].as_array().unwrap().iter().any(|s| s["name"]
            .as_str()
            .unwrap()
            .starts_with("plugin.graph-email.")),
        "{list}"
    );
    assert_eq!(mode(&home.path().join("secrets.toml")), 0o600);
    home.ok(&["logout", "megan"]);
    home.ok(&["staff", "remove", "megan"]);
    home.ok(&["email", "purge"]);
    home.ok(&["secrets", "migrate", "--to", "file"]);
    home.ok(&["plugin", "remove", "graph-email"]);

    let commands = audit_commands(&home);
    for expected in [
        "plugin add",
        "config set",
        "config unset",
        "staff add",
        "plugin disable",
        "plugin enable",
        "staff set",
        "login",
        "logout",
        "staff remove",
        "email purge",
        "secrets migrate",
        "plugin remove",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "no '{expected}' in {commands:?}"
        );
    }
    let log = home.read("audit.log");
    for secret in ["s3cret-value", "hunter2-pw", seed::USER_PASSWORD] {
        assert!(!log.contains(secret), "audit.log holds a secret");
    }
    assert!(log.contains("\"value\":\"changed\""), "{log}");
    assert!(log.contains("\"key\":\"RetainBodyDays\""), "{log}");
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(entry["time"].as_str().unwrap().ends_with('Z'), "{entry}");
        assert!(
            entry["uid"].is_u64() && !entry["user"].as_str().unwrap().is_empty(),
            "{entry}"
        );
    }
    assert_eq!(mode(&home.path().join("audit.log")), 0o600);
    assert_eq!(audit_commands(&home).len(), log.lines().count());
    let since = home.json(&["audit", "--since", "1h", "--json"]);
    assert_eq!(since.as_array().unwrap().len(), log.lines().count());
    let future = home.json(&["audit", "--since", "2099-01-01", "--json"]);
    assert!(future.as_array().unwrap().is_empty());
    let table = home.ok(&["audit"]);
    assert!(
        table.contains("plugin enable") && !table.contains("s3cret"),
        "{table}"
    );
    home.fails(&["audit", "--since", "last tuesday"], 2);
}

#[test]
fn mailhost_is_reserved_for_the_host_settings() {
    let home = Home::new();
    let stderr = home.fails(&["config", "set", "mailhost", "SecretBackend", "vault"], 2);
    assert!(stderr.contains("file, keyring, systemd"), "{stderr}");
    let stderr = home.fails(&["config", "set", "mailhost", "Nope", "1"], 2);
    assert!(stderr.contains("RetainDays"), "{stderr}");
    home.ok(&["config", "set", "mailhost", "retaindays", "45"]);
    assert_eq!(
        home.ok(&["config", "get", "mailhost", "RetainDays"]).trim(),
        "45"
    );
    assert_eq!(
        home.ok(&["config", "get", "mailhost", "RetainBodyDays"])
            .trim(),
        "30"
    );
    let listed = home.ok(&["config", "list"]);
    assert!(
        listed.contains("[mailhost]") && listed.contains("(default)"),
        "{listed}"
    );
    home.ok(&["config", "unset", "mailhost", "RetainDays"]);
    assert_eq!(
        home.ok(&["config", "get", "mailhost", "RetainDays"]).trim(),
        "90"
    );
}
