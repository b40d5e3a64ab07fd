//! The command line, declared with clap. See `DESIGN.md` for the contract; handlers live in
//! [`crate::front::commands`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Send email through provider plugins loaded at run time.
#[derive(Debug, Parser)]
#[command(name = "mailhost", version, about, long_about = None)]
pub struct Cli {
    /// The mailhost home (plugins.toml, settings.toml, staff.toml, secrets, mail.db).
    #[arg(long, global = true, env = "MAILHOST_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Run even when mail or secrets under the home are readable by other users (they are
    /// reported; fix them with the `chmod` shown).
    #[arg(long, global = true)]
    pub allow_unsafe_permissions: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plugin Maintenance: register, list, enable, disable, verify provider plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// System Configuration: the settings each plugin declares.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Staff Maintenance: who sends, through which provider.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Interactive sign-in for a staff member (device code, MFA); caches tokens.
    Login {
        /// The staff ID.
        staff_id: String,
        /// Sign in in a browser (authorization code with PKCE, through the provider's
        /// RedirectURI) instead of with a device code.
        #[arg(long)]
        browser: bool,
        /// With --browser: print the sign-in address instead of opening a browser.
        #[arg(long, requires = "browser")]
        no_open: bool,
    },
    /// Forget a staff member's cached sign-in.
    Logout {
        /// The staff ID.
        staff_id: String,
    },
    /// Check the whole set-up without sending (unless --send-test): plugins load, settings,
    /// sign-in, permissions, certificates; one line per finding, each non-ok one with its fix.
    /// Exit 0 when nothing failed, 1 otherwise.
    Doctor {
        /// Check only this staff member (and their provider).
        staff_id: Option<String>,
        /// Also send a test email to this address (and look for it where the provider can).
        #[arg(long, value_name = "ADDR")]
        send_test: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Email Maintenance: send email, list, show and retry stored emails, send a batch.
    #[command(subcommand)]
    Email(EmailCommand),
    /// sendmail-compatible: send the RFC 5322 message on standard input (`mailhost sendmail
    /// --help` lists the flags: -t, -i, -oi, -f ADDR, -F NAME, --staff ID, RECIPIENT...).
    /// Exits with sendmail's statuses: 0 sent, 75 queued, 64/65/67 refused.
    #[command(disable_help_flag = true)]
    Sendmail {
        /// sendmail's flags and the recipients.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// The secret store: list the names (never values) and move them between backends.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// The audit trail: who changed the configuration, when, what (never secret values).
    Audit {
        /// Only entries since this long ago (`7d`, `12h`) or this time (RFC 3339, `2026-12-01`).
        #[arg(long, value_name = "DURATION|TIME")]
        since: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The embedded demo: start the local Microsoft 365 emulator, configure the Graph plugin in
    /// a temporary home, send an email with an attachment and show what arrived.
    Demo(DemoArgs),
    /// Internal: run one provider library for the host that started this process, speaking
    /// the isolation protocol on the Unix socket at SOCKET.
    #[command(name = "provider-child", hide = true)]
    ProviderChild {
        /// The host's socket.
        #[arg(long, value_name = "SOCKET")]
        socket: PathBuf,
    },
    /// Per sending mailbox: what its sending limits allow now, and when the next send may go.
    Limits {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The always-on service: sends every queued email when due, under the sending limits,
    /// retries and reconciles; serves the SMTP relay and the HTTP API when asked.
    Serve(ServeArgs),
    /// HTTP API tokens: made once and shown once, stored only as their SHA-256 in mail.db.
    #[command(subcommand)]
    ApiToken(ApiTokenCommand),
}

/// `mailhost api-token ...`
#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Make a token for the HTTP API and print it (only this once).
    Create {
        /// A name for who uses it, such as the business application (letters, digits, '.', '_', '-').
        name: String,
    },
    /// List tokens: names, when created, when last used (never the tokens or their hashes).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a token; requests presenting it get 401 from then on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// `mailhost serve` options (they override serve.toml).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Send worker threads (sends in flight at once, across every mailbox).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// How long in-flight sends may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Serve the HTTP API on ADDR:PORT (overrides `[http] listen` in serve.toml; port 0 picks
    /// a free port, printed in the ready line). Without it, the API runs when serve.toml has an
    /// `[http]` section.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<String>,
    /// Run the SMTP relay on this address (repeatable; replaces serve.toml's `[smtp] listen`).
    #[arg(long = "smtp", value_name = "ADDR:PORT")]
    pub smtp: Vec<std::net::SocketAddr>,
}

/// Parses `90`, `90s`, `10m`, `2h` or `1d` (a number alone is seconds).
///
/// # Errors
/// The text is not such a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: write 90s, 10m, 2h or 7d"))?;
    let seconds = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "'{other}' is not a unit of time: use s, m, h or d (as in 90s, 10m, 2h, 7d)"
            ));
        }
    };
    Ok(Duration::from_secs(value.saturating_mul(seconds)))
}

/// `mailhost plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Inspect and validate a library, pin its SHA-256 and register it.
    Add {
        /// The plugin library (.so, .dylib, .dll).
        path: PathBuf,
        /// Enable it right away.
        #[arg(long)]
        enable: bool,
    },
    /// List registered plugins with their state.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everything about one plugin, including its settings and staff fields.
    Info {
        /// The plugin name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enable a plugin (also lifts a crash quarantine).
    Enable {
        /// The plugin name.
        name: String,
    },
    /// Disable a plugin.
    Disable {
        /// The plugin name.
        name: String,
    },
    /// Unregister a plugin (its settings are kept for a later `plugin add`).
    Remove {
        /// The plugin name.
        name: String,
    },
    /// Re-check hash, ABI and version of registered plugins.
    Verify {
        /// Only this plugin.
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Where the provider runs: `process` (its own child process, the default: a crash or hang
    /// cannot take mailhost down) or `in-process` (loaded into mailhost: faster by
    /// microseconds, but a crash of the provider is a crash of mailhost).
    Isolate {
        /// The plugin name.
        name: String,
        /// `process` or `in-process`.
        #[arg(value_name = "MODE", value_parser = clap::builder::PossibleValuesParser::new(["process", "in-process"]))]
        mode: String,
    },
    /// Conformance run for provider authors: load a library without registering it (in a
    /// child process) and check its description, settings, sends and secret handling.
    Check(CheckArgs),
}

/// `mailhost plugin check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin library (.so, .dylib, .dll).
    pub path: PathBuf,
    /// A value for a declared setting or staff field, KEY=VALUE (repeatable); required ones
    /// not given get an automatic value where the type allows.
    #[arg(long = "setting", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Seconds one step (loading, one send) may take before it counts as a hang.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Internal: run the checks in this process, using this work folder (set by the parent).
    #[arg(long, value_name = "DIR", hide = true)]
    pub child_work: Option<PathBuf>,
}

/// `mailhost config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List settings (all plugins, or one), with defaults and missing required values.
    List {
        /// Only this plugin.
        plugin: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one setting's value (secret values are not printed).
    Get {
        /// The plugin name.
        plugin: String,
        /// The setting key.
        key: String,
    },
    /// Set a setting (`mailhost` as PLUGIN: the host's own settings).
    Set {
        /// The plugin name, or `mailhost`.
        plugin: String,
        /// The setting key.
        key: String,
        /// The value.
        #[arg(
            required_unless_present = "value_stdin",
            conflicts_with = "value_stdin"
        )]
        value: Option<String>,
        /// Read the value from standard input (one line; typed without echo on a terminal),
        /// so a secret never appears on the command line.
        #[arg(long)]
        value_stdin: bool,
    },
    /// Remove a setting (its default applies again).
    Unset {
        /// The plugin name.
        plugin: String,
        /// The setting key.
        key: String,
    },
}

/// `mailhost secrets ...`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// The names of the stored secrets and where each lives (never values).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move every secret to another backend and make it the home's `SecretBackend`.
    Migrate {
        /// file or keyring (systemd credentials are read-only).
        #[arg(long, value_name = "BACKEND")]
        to: String,
    },
}

/// The options `staff add` and `staff set` share.
#[derive(Debug, Args)]
pub struct StaffOptions {
    /// The provider plugin: its name or display name (`graph-email`, `Microsoft Graph`).
    #[arg(long, value_name = "PLUGIN")]
    pub provider: Option<String>,
    /// The staff member's address, the default From.
    #[arg(long, value_name = "ADDR")]
    pub email: Option<String>,
    /// The display name.
    #[arg(long, value_name = "DISPLAY")]
    pub name: Option<String>,
    /// The sign-in name.
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
    /// A provider custom field, KEY=VALUE (repeatable; an empty value removes it).
    #[arg(long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
}

/// `staff set` options for the SMTP relay (`mailhost serve --smtp`).
#[derive(Debug, Default, Args)]
pub struct RelayOptions {
    /// Read the SMTP relay password from standard input (one line); only its Argon2id hash is
    /// stored. The relay's user name is the staff ID or the staff member's address.
    #[arg(long, conflicts_with = "password_stdin")]
    pub relay_password_stdin: bool,
    /// Delete the SMTP relay password (the staff member can no longer AUTH to the relay).
    #[arg(long, conflicts_with = "relay_password_stdin")]
    pub clear_relay_password: bool,
    /// A further From address the relay lets them send as (repeatable; added to the list).
    #[arg(long = "relay-from", value_name = "ADDR")]
    pub relay_from: Vec<String>,
    /// Empty the relay From list first (alone: clear it).
    #[arg(long)]
    pub clear_relay_from: bool,
}

/// `mailhost staff ...`
#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff member.
    Add {
        /// The staff ID.
        id: String,
        /// The staff member's details.
        #[command(flatten)]
        options: StaffOptions,
    },
    /// Change a staff member (only the options given).
    Set {
        /// The staff ID.
        id: String,
        /// The details to change.
        #[command(flatten)]
        options: StaffOptions,
        /// Delete the stored password.
        #[arg(long, conflicts_with = "password_stdin")]
        clear_password: bool,
        /// The SMTP relay credential and From addresses.
        #[command(flatten)]
        relay: RelayOptions,
    },
    /// Show one staff member.
    Show {
        /// The staff ID.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List staff members.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a staff member and their stored password.
    Remove {
        /// The staff ID.
        id: String,
    },
}

/// `mailhost email ...`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum EmailCommand {
    /// Send one email (it is recorded in mail.db first, so it is never lost).
    Send(SendArgs),
    /// List stored emails, newest first.
    List {
        /// Only emails with this status: queued, sending, sent, failed, unknown.
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// At most this many.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print JSON (every field).
        #[arg(long)]
        json: bool,
    },
    /// Everything about one stored email, including its error and receipt.
    Show {
        /// The email's id, or a unique start of it (at least 4 characters).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a stored email again: one by id, or every failed one with --failed.
    Retry {
        /// The email's id, or a unique start of it.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<String>,
        /// Retry every failed email.
        #[arg(long)]
        failed: bool,
        /// Also send an email that was already sent or whose outcome is unknown; with
        /// --failed, also emails that failed for a reason a retry cannot fix by itself
        /// (configuration, invalid message, invalid recipient).
        #[arg(long)]
        force: bool,
        /// How long to wait for a sending limit or a short retry before leaving the email
        /// queued (exit 75).
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
        max_wait: Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send one email per line of a JSON-lines file; rerunning the file resumes it.
    SendBatch(BatchArgs),
    /// Send every queued email that is due, then exit (like `sendmail -q`); 75 when some stay
    /// queued for later.
    Flush {
        /// Also wait for emails due within this long.
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
        max_wait: Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Settle `unknown` emails by asking their provider whether they were sent.
    Reconcile {
        /// The email's id, or a unique start of it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every unknown email.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete old emails and drop old bodies as RetainDays and RetainBodyDays say (sent emails
    /// only, unless --status names others).
    Purge(PurgeArgs),
}

/// `mailhost email purge` options.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Delete emails older than this (`90d`, `12h`) instead of RetainDays.
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Purge emails with this status (repeatable; default: sent). queued, failed and unknown
    /// emails are only purged when named.
    #[arg(long, value_name = "STATUS")]
    pub status: Vec<String>,
    /// Report what would go; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `mailhost email send-batch` options.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The batch file: one JSON object per line (to, cc, bcc, reply_to, from, subject, body,
    /// html, attach).
    #[arg(value_name = "FILE.jsonl")]
    pub file: PathBuf,
    /// The sending staff member.
    #[arg(long, value_name = "ID")]
    pub staff: String,
    /// Wait for a sending limit or a retry that frees within this long; emails that would
    /// wait longer stay queued (exit 75) for `mailhost serve`, `email flush` or a rerun.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub max_wait: Duration,
    /// Send worker threads (the provider's ConcurrentRequests limit still holds per mailbox).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Record every line as queued and return at once: `mailhost serve` (or `email flush`)
    /// sends them under the sending limits.
    #[arg(long)]
    pub queue: bool,
    /// Print the summary as one JSON object (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// `mailhost demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's temporary home (its path is printed) instead of deleting it. The demo
    /// never uses --home or $MAILHOST_HOME: it always starts from a fresh home.
    #[arg(long)]
    pub keep: bool,
    /// Then keep running and serve, on loopback, the Email Maintenance page over the demo's
    /// home and the emulator's mailboxes (Inbox and Sent Items); Ctrl-C ends it.
    #[arg(long)]
    pub web: bool,
}

/// `mailhost email send` options.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The sending staff member.
    #[arg(long, value_name = "ID")]
    pub staff: String,
    /// To recipients.
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub to: Vec<String>,
    /// Cc recipients.
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub cc: Vec<String>,
    /// Bcc recipients.
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub bcc: Vec<String>,
    /// An alternate From address (Send As / on behalf).
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Reply-To address.
    #[arg(long, value_name = "ADDR")]
    pub reply_to: Vec<String>,
    /// The subject.
    #[arg(long, default_value = "")]
    pub subject: String,
    /// The body text.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// A file holding the body.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// The body is HTML.
    #[arg(long)]
    pub html: bool,
    /// A file to attach (repeatable).
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// A custom header, 'X-Name: value' (repeatable).
    #[arg(long, value_name = "'X-Name: value'")]
    pub header: Vec<String>,
    /// Record the email as queued and return at once; `mailhost serve` (or `email flush`)
    /// sends it.
    #[arg(long)]
    pub queue: bool,
    /// How long to wait for a sending limit or a short retry before leaving the email queued
    /// (exit 75).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_wait: Duration,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sendmail_takes_its_flags_verbatim() {
        let cli = Cli::try_parse_from([
            "mailhost",
            "--home",
            "/h",
            "sendmail",
            "-t",
            "-oi",
            "-fadele@x.com",
            "--help",
            "a@x.com",
        ])
        .expect("parse");
        let Command::Sendmail { args } = cli.command else {
            panic!("not sendmail");
        };
        assert_eq!(args, ["-t", "-oi", "-fadele@x.com", "--help", "a@x.com"]);
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unit"));
    }

    #[test]
    fn home_is_accepted_anywhere() {
        let cli = Cli::try_parse_from(["mailhost", "plugin", "list", "--home", "/h", "--json"])
            .expect("parse");
        assert_eq!(cli.home, Some(PathBuf::from("/h")));
        let cli = Cli::try_parse_from([
            "mailhost", "--home", "/h", "email", "send", "--staff", "a", "--to", "x@y.com",
            "z@y.com",
        ])
        .expect("parse");
        let Command::Email(EmailCommand::Send(args)) = cli.command else {
            panic!("not a send");
        };
        assert_eq!(args.to.len(), 2);
    }
}
