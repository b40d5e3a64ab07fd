//! The `mailhost` binary: parses the command line, runs it, and prints any error once as
//! `mailhost: <message>` on stderr.
//!
//! Exit status: 0 success (also when stdout is a closed pipe); 1 the operation failed (a send
//! the provider refused, a plugin that failed verification); 2 bad usage, configuration or input.
//!
//! Run through a link named `sendmail` (`ln -s /usr/local/bin/mailhost /usr/sbin/sendmail`),
//! the binary is `mailhost sendmail`: `sendmail -t -i < message` works as programs expect, with
//! sendmail's exit statuses (see `mailhost sendmail --help`).

use std::process::ExitCode;

use clap::Parser;
use mailhost::front::cli::Cli;
use mailhost::front::commands;
use mailhost::front::terminal;

fn main() -> ExitCode {
    // Every file this process creates starts private (mail.db's WAL and SHM included).
    mailhost::config::files::restrict_umask();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .target(env_logger::Target::Stderr)
        .init();
    run()
}

fn run() -> ExitCode {
    let mut argv = std::env::args_os();
    if argv.next().as_deref().is_some_and(is_sendmail_name) {
        let args: Result<Vec<String>, _> = argv.map(std::ffi::OsString::into_string).collect();
        let Ok(args) = args else {
            eprintln!(
                "mailhost: an argument is not valid UTF-8: pass addresses and names as UTF-8"
            );
            return ExitCode::from(mailhost::front::sendmail::exit::EX_USAGE);
        };
        let home = std::env::var_os("MAILHOST_HOME").map(std::path::PathBuf::from);
        return ExitCode::from(mailhost::front::sendmail::run(args, home.as_deref(), false));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            // One line, whatever a provider put in it.
            eprintln!("mailhost: {}", terminal::escape(&error.to_string()));
            ExitCode::from(error.exit_code())
        }
    }
}

/// Whether the program was started under the name `sendmail` (a link to this binary).
fn is_sendmail_name(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0)
        .file_name()
        .is_some_and(|name| name == "sendmail")
}
