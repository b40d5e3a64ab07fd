//! A Python virtual environment for tests that use real third-party clients and servers from
//! PyPI (Microsoft's MSAL for Python, aiosmtpd). Created once under the target directory and
//! reused; packages are installed by pip on first use.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The interpreter of the shared test virtual environment, with `packages` installed.
///
/// Serialised by a lock file so concurrent test binaries do not run pip at the same time.
pub fn venv_python(packages: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = crate::target_dir().join("test-venv");
    std::fs::create_dir_all(crate::target_dir()).expect("create the target directory");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(crate::target_dir().join("test-venv.lock"))
        .expect("open the venv lock file");
    lock_file.lock().expect("lock the venv lock file");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&system)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap_or_else(|e| panic!("run {system} -m venv: {e}"));
        assert!(
            status.success(),
            "creating the test virtual environment failed"
        );
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| {
            let name = package
                .split(['=', '<', '>', '~', '['])
                .next()
                .unwrap_or(package);
            !Command::new(&python)
                .args(["-m", "pip", "show", "--quiet", name])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(&missing)
            .status()
            .expect("run pip install");
        assert!(status.success(), "pip install {missing:?} failed");
    }
    python
}
