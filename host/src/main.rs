//! The `mailhost` binary: parses the command line, runs it, and prints any error once as
//! `mailhost: <message>` on stderr.
//!
//! Exit status: 0 success (also when stdout is a closed pipe); 1 the operation failed (a send
//! the provider refused, a plugin that failed verification); 2 bad usage, configuration or input.

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
