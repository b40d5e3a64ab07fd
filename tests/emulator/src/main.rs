//! `mailhost-emulator`: the local Microsoft 365 emulator as a standalone process.
//!
//! Prints exactly one first line, `mailhost-emulator listening on http://127.0.0.1:PORT`
//! (https with `--tls-dir`), then serves until killed or, with `--exit-on-stdin-eof`, until
//! its standard input closes.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mailhost_emulator::{Config, Emulator};

/// A local Microsoft 365 emulator (Entra ID v2.0 + Microsoft Graph mail) on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "mailhost-emulator", version)]
struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve HTTPS with a generated test CA written to DIR/ca.pem.
    #[arg(long, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// Added latency on every non-admin request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Access-token lifetime in seconds.
    #[arg(long)]
    access_token_lifetime_secs: Option<u64>,
    /// Device-code polling interval in seconds.
    #[arg(long)]
    device_code_interval_secs: Option<u64>,
    /// Turn off the 4-concurrent-requests-per-app-and-mailbox limit.
    #[arg(long)]
    no_concurrency_limit: bool,
    /// Exit when standard input reaches end of file (so a parent that dies does not leave the
    /// emulator running).
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = Config {
        port: args.port,
        tls_dir: args.tls_dir,
        latency_ms: args.latency_ms,
        ..Config::default()
    };
    if let Some(secs) = args.access_token_lifetime_secs {
        config.access_token_lifetime_secs = secs;
    }
    if let Some(secs) = args.device_code_interval_secs {
        config.device_code_interval_secs = secs;
    }
    config.concurrency_limit = !args.no_concurrency_limit;
    let emulator = match Emulator::start_with(config) {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("mailhost-emulator: {error}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "mailhost-emulator listening on {}",
        emulator.base_url()
    );
    let _ = stdout.flush();
    if args.exit_on_stdin_eof {
        let mut sink = [0u8; 1024];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(emulator);
        ExitCode::SUCCESS
    } else {
        emulator.wait();
        ExitCode::SUCCESS
    }
}
