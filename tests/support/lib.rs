//! Support for the integration tests: builds the `mailhost` binary and the plugin libraries the
//! tests load (so `cargo test --workspace` works on a clean clone), gives each test a temporary
//! home, and runs commands in it.
//!
//! Test files live in `tests/tests/*.rs`; each one is its own test binary.

#![allow(clippy::unwrap_used)] // test support: a failed set-up step should stop the test loudly
#![allow(unreachable_pub)]

pub mod bench;
pub mod fixtures;
pub mod homes;
pub mod plugins;
pub mod python;
pub mod service;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target directory the workspace builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `debug` or `release`, whichever profile built this test.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// The directory holding the built binaries and libraries of this test's profile.
pub fn artifact_dir() -> PathBuf {
    target_dir().join(profile())
}

/// The packages whose binaries and libraries the integration tests load.
const ARTIFACT_PACKAGES: &[&str] = &[
    "mailhost",
    "pickup-dir",
    "fixture-not-a-plugin",
    "fixture-panics",
    "fixture-crash-on-load",
    "fixture-null",
    "fixture-echo",
    "fixture-check-bad-name",
    "fixture-check-bad-version",
    "fixture-check-duplicate-keys",
    "fixture-check-bad-default",
    "fixture-check-logs-password",
    "fixture-check-aborts",
    "fixture-check-hangs",
    "fixture-fault-segfault",
    "fixture-fault-abort",
    "fixture-fault-stack-overflow",
    "fixture-fault-exit",
    "fixture-fault-hang",
    "fixture-fault-stdout",
    "fixture-fault-static-init",
    "fixture-fault-long-version",
    "fixture-fault-bad-keys",
    "fixture-fault-thread-panic",
    "fixture-fault-orphan",
    "fixture-fault-leaky-log",
    "graph-email",
    "mailhost-emulator",
];

/// Builds the `mailhost` binary and the plugin libraries once per test process. Cargo's own
/// lock serialises concurrent test binaries; a second build is a no-op.
pub fn build_artifacts() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            .arg("build")
            .arg("--quiet");
        if profile() == "release" {
            command.arg("--release");
        }
        for package in ARTIFACT_PACKAGES {
            // Only packages present in this checkout's workspace are built.
            if workspace_root()
                .join(package_dir(package))
                .join("Cargo.toml")
                .exists()
            {
                command.args(["-p", package]);
            }
        }
        let status = command
            .status()
            .expect("run cargo build for the test artifacts");
        assert!(status.success(), "building the test artifacts failed");
    });
}

fn package_dir(package: &str) -> PathBuf {
    match package {
        "mailhost" => PathBuf::from("host"),
        "mailhost-emulator" => PathBuf::from("tests/emulator"),
        other if other.starts_with("fixture-") => {
            PathBuf::from("tests/fixtures").join(other.trim_start_matches("fixture-"))
        }
        other => PathBuf::from("plugins").join(other),
    }
}

/// The path of the `mailhost` binary (built on first use).
pub fn mailhost_bin() -> PathBuf {
    build_artifacts();
    artifact_dir().join(format!("mailhost{}", std::env::consts::EXE_SUFFIX))
}

/// The path of a built binary of the workspace, such as `mailhost-emulator`.
pub fn bin_path(name: &str) -> PathBuf {
    build_artifacts();
    artifact_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The path of a plugin library by its crate library name, such as `pickup_dir`.
pub fn plugin_path(lib_name: &str) -> PathBuf {
    build_artifacts();
    artifact_dir().join(format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// Builds package `package` of the workspace (once per test process; the shared
/// [`build_artifacts`] builds only the packages it knows) and returns the path of its library
/// `lib_name`.
pub fn build_library(package: &str, lib_name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace_root())
            .args(["build", "--quiet", "-p", package]);
        if profile() == "release" {
            command.arg("--release");
        }
        assert!(
            command.status().unwrap().success(),
            "cargo build -p {package} failed"
        );
        built.push(package.to_string());
    }
    drop(built);
    plugin_path(lib_name)
}

/// A temporary mailhost home for one test.
#[derive(Debug)]
pub struct Home {
    dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// A new, empty home (mode 0700).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mailhost-test-")
            .tempdir()
            .expect("create a temporary home");
        // As `mailhost` creates a home: private (tempfile leaves the umask's mode).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .expect("make the temporary home private");
        }
        Self { dir }
    }

    /// The home directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `mailhost --home HOME ARGS...` command, with a clean environment for logging.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(mailhost_bin());
        command
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env_remove("MAILHOST_HOME")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    /// Runs `mailhost ARGS...` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mailhost")
    }

    /// Runs `mailhost ARGS...` with `input` on standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailhost");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait for mailhost")
    }

    /// Runs `mailhost ARGS...`, asserts exit status 0 and returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_exit(&output, 0, args);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `mailhost ARGS...`, asserts exit status `code` and returns standard error.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        assert_exit(&output, code, args);
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Runs `mailhost ARGS... --json` (the caller includes `--json`), asserts success and
    /// parses standard output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("mailhost {args:?} printed invalid JSON ({e}):\n{stdout}"))
    }
}

impl Home {
    /// Runs `mailhost ARGS...` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().expect("run mailhost")
    }

    /// Runs `mailhost ARGS...`, asserts that it failed with exit status 1 or 2 (not success,
    /// not killed by a signal) and returns standard error.
    pub fn refused(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_failed(&output, args);
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Reads a file of the home, such as `plugins.toml`.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name))
            .unwrap_or_else(|e| panic!("read {name} in the test home: {e}"))
    }
}

/// Asserts that a command failed the way the contract says a refusal fails: exit status 1 or
/// 2, a normal exit (no signal), and something on standard error.
pub fn assert_failed(output: &Output, args: &[&str]) {
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "mailhost {args:?} exited with {:?}, expected a refusal (1 or 2)\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        !output.stderr.is_empty(),
        "mailhost {args:?} failed without saying why on standard error"
    );
}

/// Asserts that `stderr` is one line (the contract's "one clear line" for a refusal) and
/// returns it.
pub fn one_line(stderr: &str) -> &str {
    let trimmed = stderr.trim();
    assert_eq!(
        trimmed.lines().count(),
        1,
        "expected one line on standard error, got:\n{stderr}"
    );
    trimmed
}

/// Asserts an exit status, printing both output streams when it differs.
pub fn assert_exit(output: &Output, code: i32, args: &[&str]) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "mailhost {args:?} exited with {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
