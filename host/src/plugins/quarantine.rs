//! Crash quarantine, the "dead man's pedal" of GStreamer and JUCE: before a library is opened
//! and initialised, the host writes `loading.<pid>.marker` (plugin name, path, SHA-256, process
//! id) in the home and removes it afterwards. A marker that outlives its process means the
//! library crashed the host while loading; the next mailhost command quarantines that plugin
//! (`[plugin.quarantine]` in plugins.toml) so it is skipped until its file changes or the user
//! runs `mailhost plugin enable NAME` again.
//!
//! A bare `loading.marker` (no pid in the name) is also recognised and always counts as a crash.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::files::FileError;
use crate::config::home::Home;
use crate::plugins::registry::{self, Quarantine, Registry, RegistryError};

/// What a marker records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerContent {
    /// The plugin's registered name; empty while `plugin add` inspects a new library.
    #[serde(default)]
    pub name: String,
    /// The library file.
    #[serde(default)]
    pub path: PathBuf,
    /// The hash of the file being loaded.
    #[serde(default)]
    pub sha256: String,
    /// The process that wrote the marker.
    #[serde(default)]
    pub pid: u32,
}

/// A marker on disk for as long as the value lives.
#[derive(Debug)]
pub struct LoadingMarker {
    path: PathBuf,
}

impl LoadingMarker {
    /// Writes the marker for the current process.
    ///
    /// # Errors
    /// The marker cannot be written (the load must not go ahead unguarded).
    pub fn arm(home: &Home, name: &str, library: &Path, sha256: &str) -> Result<Self, FileError> {
        let pid = std::process::id();
        let path = home.path().join(format!("loading.{pid}.marker"));
        let content = MarkerContent {
            name: name.to_string(),
            path: library.to_path_buf(),
            sha256: sha256.to_string(),
            pid,
        };
        let text = toml::to_string(&content).unwrap_or_default();
        fs::write(&path, text).map_err(|e| FileError::new("write the loading marker", &path, e))?;
        Ok(Self { path })
    }
}

impl Drop for LoadingMarker {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path) {
            log::warn!(
                "cannot remove the loading marker {}: {e}",
                self.path.display()
            );
        }
    }
}

/// A marker left behind by a process that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// The marker file.
    pub marker: PathBuf,
    /// What it recorded.
    pub content: MarkerContent,
}

/// Markers in `home` whose process is gone.
pub fn find_crashes(home: &Home) -> Vec<Crash> {
    let Ok(entries) = fs::read_dir(home.path()) else {
        return Vec::new();
    };
    let own = std::process::id();
    let mut crashes = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let name = file_name.to_string_lossy();
        if !(name.starts_with("loading.") && name.ends_with(".marker")) {
            continue;
        }
        let marker = entry.path();
        let content = fs::read_to_string(&marker)
            .ok()
            .and_then(|text| toml::from_str::<MarkerContent>(&text).ok())
            .unwrap_or(MarkerContent {
                name: String::new(),
                path: PathBuf::new(),
                sha256: String::new(),
                pid: 0,
            });
        let named_pid = name
            .strip_prefix("loading.")
            .and_then(|rest| rest.strip_suffix(".marker"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = named_pid
            && pid != own
            && process_alive(pid)
        {
            continue; // another mailhost is loading right now
        }
        crashes.push(Crash { marker, content });
    }
    crashes
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    false
}

/// Quarantines the plugin a crash points at (by name, else by path). Returns the name of the
/// plugin quarantined, or `None` when no registered plugin matches (a crash during
/// `plugin add`).
pub fn apply(registry: &mut Registry, crash: &MarkerContent, now: &str) -> Option<String> {
    let index = registry
        .plugins
        .iter()
        .position(|p| !crash.name.is_empty() && p.name == crash.name)
        .or_else(|| {
            registry
                .plugins
                .iter()
                .position(|p| !crash.path.as_os_str().is_empty() && p.path == crash.path)
        })?;
    let entry = registry.plugins.get_mut(index)?;
    let sha256 = if crash.sha256.is_empty() {
        entry.sha256.clone()
    } else {
        crash.sha256.clone()
    };
    entry.quarantine = Some(Quarantine {
        reason: "it crashed mailhost while loading".into(),
        since: now.to_string(),
        sha256,
    });
    Some(entry.name.clone())
}

/// How many provider-process crashes within [`CRASH_WINDOW_SECS`] quarantine a plugin.
pub const CRASH_LIMIT: usize = 3;

/// The window crashes are counted in: 10 minutes.
pub const CRASH_WINDOW_SECS: i64 = 600;

/// Records that `name`'s provider process crashed (`how`: a signal name or exit status) while
/// running the file `sha256`, at `now` (seconds since the epoch). Crashes are counted across
/// every mailhost process of the home; the third within 10 minutes quarantines the plugin.
/// Returns the quarantine's reason when this crash set it.
///
/// # Errors
/// The registry cannot be updated.
pub fn record_crash(
    home: &Home,
    name: &str,
    sha256: &str,
    how: &str,
    now: i64,
) -> Result<Option<String>, RegistryError> {
    registry::update(home, |registry| -> Result<_, RegistryError> {
        let Some(entry) = registry.find_mut(name) else {
            return Ok(None);
        };
        if entry.sha256 != sha256 || entry.quarantined().is_some() {
            return Ok(None);
        }
        entry.crashes.retain(|t| now - *t < CRASH_WINDOW_SECS);
        entry.crashes.push(now);
        if entry.crashes.len() < CRASH_LIMIT {
            return Ok(None);
        }
        let reason = format!(
            "its provider process crashed {} times in 10 minutes (last: {how})",
            entry.crashes.len()
        );
        entry.crashes.clear();
        entry.quarantine = Some(Quarantine {
            reason: reason.clone(),
            since: crate::config::time::now_rfc3339(),
            sha256: sha256.to_string(),
        });
        Ok(Some(reason))
    })
}

/// Looks for crash markers at start-up, quarantines the plugins they name and removes them.
/// Returns one warning line per crash for the user.
///
/// # Errors
/// The registry cannot be updated; the markers are then kept for the next run.
pub fn recover(home: &Home) -> Result<Vec<String>, RegistryError> {
    let crashes = find_crashes(home);
    if crashes.is_empty() {
        return Ok(Vec::new());
    }
    let now = crate::config::time::now_rfc3339();
    let warnings = registry::update(home, |registry| -> Result<_, RegistryError> {
        Ok(crashes
            .iter()
            .map(|crash| match apply(registry, &crash.content, &now) {
                Some(name) => format!(
                    "plugin '{name}' crashed mailhost while loading; it is quarantined until its file changes or you run `mailhost plugin enable {name}`"
                ),
                None => format!(
                    "the library {} crashed mailhost while it was being inspected; do not add it again until it is fixed",
                    crash.content.path.display()
                ),
            })
            .collect::<Vec<_>>())
    })?;
    for crash in &crashes {
        let _ = fs::remove_file(&crash.marker);
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::registry::PluginEntry;

    fn entry(name: &str) -> PluginEntry {
        PluginEntry {
            sha256: "aa".into(),
            size: 1,
            mtime: 1,
            ..PluginEntry::for_test(name, format!("/p/lib{name}.so"))
        }
    }

    #[test]
    fn a_marker_is_removed_when_the_load_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        {
            let _marker =
                LoadingMarker::arm(&home, "a", Path::new("/p/liba.so"), "aa").expect("arm");
            assert_eq!(fs::read_dir(home.path()).expect("list").count(), 1);
        }
        assert_eq!(fs::read_dir(home.path()).expect("list").count(), 0);
    }

    #[test]
    fn a_leftover_marker_quarantines_its_plugin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        registry::update(&home, |r| -> Result<(), RegistryError> {
            r.plugins.push(entry("a"));
            r.plugins.push(entry("b"));
            Ok(())
        })
        .expect("registry");
        // A marker from a process that no longer exists (pid 0 is never a user process).
        fs::write(
            home.path().join("loading.marker"),
            "name = \"b\"\nsha256 = \"aa\"\n",
        )
        .expect("marker");
        let warnings = recover(&home).expect("recover");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("plugin 'b'"), "{warnings:?}");
        let registry = registry::load(&home).expect("load");
        assert!(registry.require("b").expect("b").quarantined().is_some());
        assert!(registry.require("a").expect("a").quarantined().is_none());
        assert!(find_crashes(&home).is_empty());
        assert!(recover(&home).expect("again").is_empty());
    }

    #[test]
    fn three_crashes_in_ten_minutes_quarantine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        registry::update(&home, |r| -> Result<(), RegistryError> {
            r.plugins.push(entry("a"));
            Ok(())
        })
        .expect("registry");
        let crash = |t| record_crash(&home, "a", "aa", "killed by SIGSEGV", t).expect("record");
        assert_eq!(crash(1_000), None);
        // The first crash is more than 10 minutes old by the third: not quarantined yet.
        assert_eq!(crash(1_500), None);
        assert_eq!(crash(1_700), None);
        let reason = crash(1_800).expect("quarantined");
        assert!(
            reason.contains("3 times in 10 minutes (last: killed by SIGSEGV)"),
            "{reason}"
        );
        let a = registry::load(&home)
            .expect("load")
            .require("a")
            .expect("a")
            .clone();
        assert!(a.quarantined().is_some() && a.crashes.is_empty());
        // Another file's crash does not count.
        assert_eq!(
            record_crash(&home, "a", "bb", "x", 1_900).expect("other"),
            None
        );
    }

    #[test]
    fn markers_of_live_processes_are_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        // pid 1 is always alive on Linux.
        fs::write(home.path().join("loading.1.marker"), "name = \"b\"\n").expect("marker");
        let found = find_crashes(&home);
        if cfg!(target_os = "linux") {
            assert!(found.is_empty());
        }
    }

    #[test]
    fn crashes_during_add_match_by_path_or_nothing() {
        let mut registry = Registry::default();
        registry.plugins.push(entry("a"));
        let by_path = MarkerContent {
            name: String::new(),
            path: PathBuf::from("/p/liba.so"),
            sha256: "aa".into(),
            pid: 0,
        };
        assert_eq!(apply(&mut registry, &by_path, "now"), Some("a".into()));
        let unknown = MarkerContent {
            path: PathBuf::from("/elsewhere.so"),
            ..by_path
        };
        assert_eq!(apply(&mut registry, &unknown, "now"), None);
    }
}
