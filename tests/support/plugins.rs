//! Helpers for tests about registered plugins: install a library into a test's home, register
//! it, and read `plugin list --json` without depending on more of its shape than the contract
//! promises (name, version, API version, enabled, path, state).

use std::path::PathBuf;

use serde_json::Value;

use crate::Home;
use crate::fixtures::copy_library;

impl Home {
    /// The folder of this home where tests put the libraries they register (mode 0755).
    pub fn libs(&self) -> PathBuf {
        self.path().join("libs")
    }

    /// Copies a built library into [`Home::libs`] and returns the copy's path.
    pub fn install(&self, source: &std::path::Path) -> PathBuf {
        let name = source
            .file_name()
            .and_then(|n| n.to_str())
            .expect("library has a file name")
            .to_string();
        copy_library(source, &self.libs(), &name)
    }

    /// Copies a built library into [`Home::libs`] and registers it, enabled.
    pub fn add_enabled(&self, source: &std::path::Path) -> PathBuf {
        let path = self.install(source);
        self.register_enabled(&path);
        path
    }

    /// Registers the library at `path` where it is (`plugin add PATH --enable`), asserting
    /// success.
    pub fn register_enabled(&self, path: &std::path::Path) {
        self.ok(&[
            "plugin",
            "add",
            path.to_str().expect("utf-8 path"),
            "--enable",
        ]);
    }

    /// `plugin list --json` as a list of entries (accepts a bare array or `{"plugins": [..]}`).
    pub fn plugin_list(&self) -> Vec<Value> {
        entries(self.json(&["plugin", "list", "--json"]))
    }

    /// The `plugin list --json` entry of `name`.
    pub fn plugin_entry(&self, name: &str) -> Value {
        let list = self.plugin_list();
        list.iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no plugin '{name}' in plugin list --json: {list:#?}"))
    }
}

/// The entries of a listing printed as a bare array or as an object holding one array.
pub fn entries(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Object(map) => {
            let arrays: Vec<Value> = map.into_values().filter(Value::is_array).collect();
            match arrays.into_iter().next() {
                Some(Value::Array(items)) => items,
                _ => panic!("listing has no array of entries"),
            }
        }
        other => panic!("listing is neither an array nor an object: {other}"),
    }
}

/// An entry's state as lower-case text, whether the host prints a string or an object.
pub fn state_text(entry: &Value) -> String {
    let state = entry.get("state").unwrap_or(&Value::Null);
    match state {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string().to_lowercase(),
    }
}
