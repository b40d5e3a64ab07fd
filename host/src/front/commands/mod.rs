//! The handlers behind each command: they read the files, call the library, and print human
//! lines or JSON on stdout. Errors go back to `main`, which prints them once.

mod api_token;
pub(crate) mod audit;
mod batch;
mod check;
mod config;
mod doctor;
pub(crate) mod email;
pub(crate) mod limits;
mod login;
mod plugin;
mod purge;
pub(crate) mod secret_input;
mod secrets;
mod staff;

use std::io::Write;

use crate::config::home::Home;
use crate::config::permissions;
use crate::error::{EXIT_OK, Error};
use crate::front::cli::{Cli, Command};
use crate::front::terminal;
use crate::plugins::quarantine;

/// Runs the parsed command line; returns the exit status for outcomes that are not errors
/// (such as a failed send already reported as JSON).
///
/// # Errors
/// Whatever the command failed with; [`Error::exit_code`] gives the status.
pub fn run(cli: Cli) -> Result<u8, Error> {
    // The demo makes its own temporary home and never touches --home or $MAILHOST_HOME.
    if let Command::Demo(args) = &cli.command {
        return crate::front::demo::run(args);
    }
    // sendmail prints its own lines and exits with sendmail's statuses.
    if let Command::Sendmail { args } = cli.command {
        return Ok(crate::front::sendmail::run(
            args,
            cli.home.as_deref(),
            cli.allow_unsafe_permissions,
        ));
    }
    // The provider child touches no file of the home: everything goes through its host.
    if let Command::ProviderChild { socket } = &cli.command {
        return Ok(crate::plugins::isolation::child::run(socket));
    }
    let home = Home::resolve(cli.home.as_deref())?;
    // As ssh refuses a private key others can read: mail or secrets open to other users stop
    // every command (exit 2) unless --allow-unsafe-permissions; other files are warned about.
    for warning in permissions::enforce(&home, cli.allow_unsafe_permissions)? {
        warn(&warning);
    }
    match quarantine::recover(&home) {
        Ok(warnings) => warnings.iter().for_each(|w| warn(w)),
        Err(e) => warn(&format!("cannot record a plugin crash: {e}")),
    }
    match cli.command {
        Command::Plugin(command) => plugin::run(&home, command),
        Command::Config(command) => config::run(&home, command),
        Command::Staff(command) => staff::run(&home, command),
        Command::Login {
            staff_id,
            browser,
            no_open,
        } => login::login(&home, &staff_id, browser, no_open),
        Command::Doctor {
            staff_id,
            send_test,
            json,
        } => doctor::run(&home, staff_id.as_deref(), send_test.as_deref(), json),
        Command::Logout { staff_id } => login::logout(&home, &staff_id),
        Command::Email(command) => email::run(&home, command),
        Command::ApiToken(command) => api_token::run(&home, command),
        Command::Secrets(command) => secrets::run(&home, command),
        Command::Audit { since, json } => audit::run(&home, since.as_deref(), json),
        Command::Limits { json } => limits::run(&home, json),
        Command::Serve(args) => crate::front::serve::run(&home, &args),
        Command::Demo(_) | Command::Sendmail { .. } | Command::ProviderChild { .. } => OK,
    }
}

/// Prints `text` and a newline on stdout.
pub(crate) fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(Error::Output)?;
    Ok(())
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &serde_json::Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Output(e.into()))?;
    print(&text)
}

/// `text` with control characters other than newline and tab (ANSI escapes, CR, bells) shown
/// as `\u{..}` escapes, so provider- or client-supplied text cannot redraw the terminal.
pub(crate) fn terminal_safe(text: &str) -> String {
    terminal::escape_keeping_lines(text)
}

/// Prints a warning on stderr.
pub(crate) fn warn(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "mailhost: warning: {}", terminal::escape(text));
}

/// The most characters a table cell shows (`--json` has the whole value).
pub(crate) const MAX_CELL: usize = 1024;

/// Lays out rows as aligned columns (the last column is not padded). Every cell is escaped
/// for the terminal (one cell is one line) and cut to [`MAX_CELL`] characters.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| terminal::shorten(&terminal::escape(cell), MAX_CELL).into_owned())
                .collect()
        })
        .collect();
    let columns = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    // Padded by hand: `{:<width$}` panics on widths past u16::MAX.
                    let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The success exit status.
pub(crate) const OK: Result<u8, Error> = Ok(EXIT_OK);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(terminal_safe("ok\x1b[2Jsent"), "ok\\u{1b}[2Jsent");
        assert_eq!(terminal_safe("a\nb\tc"), "a\nb\tc");
        assert_eq!(terminal_safe("x\ry"), "x\\u{d}y");
    }

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["NAME".to_string(), "STATE".to_string()],
            vec!["pickup-dir".to_string(), "ready".to_string()],
        ];
        assert_eq!(table(&rows), "NAME        STATE\npickup-dir  ready");
    }

    proptest::proptest! {
        /// Any strings, however long or odd, lay out without a panic: one line per row, no
        /// control character left, every cell's start aligned.
        #[test]
        fn any_cells_lay_out(
            rows in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<String>(), 0..4),
                0..5,
            ),
            long in 0usize..70_000,
        ) {
            let mut rows = rows;
            rows.push(vec!["x".repeat(long), "\u{1b}[31m\n".into(), "end".into()]);
            let text = table(&rows);
            let lines: Vec<&str> = text.split('\n').collect();
            proptest::prop_assert_eq!(lines.len(), rows.len());
            proptest::prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
            for line in &lines {
                proptest::prop_assert!(line.chars().count() <= 4 * (MAX_CELL + 2));
            }
        }
    }
}
