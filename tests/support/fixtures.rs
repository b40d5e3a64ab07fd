//! Fixture plugin libraries for the loading tests.
//!
//! - In-workspace fixtures (`tests/fixtures/*`, packages `fixture-*`) are built with the other
//!   test artifacts; [`fixture_path`] finds them.
//! - Fixtures built against *another version of the plugin API* cannot live in the workspace
//!   (one package, one version). [`api_fixture`] makes them at test time: it copies
//!   `plugin-api/` into `<target>/fixture-builds/src/`, rewrites its version (and strips the
//!   lines between the `@api-since 1.N begin/end` markers of every later minor: 1.1 and 1.2 for
//!   1.0, 1.2 for 1.1), writes a tiny provider
//!   against it as a stand-alone cargo project (`[workspace]`, the workspace `Cargo.lock`
//!   copied in so dependency versions match), and builds it into
//!   `<target>/fixture-builds`. Builds are cached for the process and reused across processes
//!   (cargo's own freshness check), and serialised by a lock file.
//! - [`copy_library`] puts a library into a test's own folder (so it can be modified, moved or
//!   have its mode changed), and [`renamed_echo`] makes a copy of the echo fixture that
//!   registers under another name.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::{plugin_path, target_dir, workspace_root};

/// The path of an in-workspace fixture library by its short name (`null`, `panics`, ...).
pub fn fixture_path(name: &str) -> PathBuf {
    plugin_path(&format!("fixture_{}", name.replace('-', "_")))
}

/// Copies the library at `source` into `dir` (created, mode 0755) as `file_name`, with mode
/// 0755, and returns the copy's path.
pub fn copy_library(source: &Path, dir: &Path, file_name: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    set_mode(dir, 0o755);
    let target = dir.join(file_name);
    fs::copy(source, &target)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", source.display(), target.display()));
    set_mode(&target, 0o755);
    target
}

/// Sets a Unix file mode (no-op elsewhere).
pub fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// The echo fixture's registry name in the built library.
pub const ECHO_NAME: &str = "echo-00";

/// A copy of the echo fixture in `dir` that registers as `echo-NN` (`index` < 100), made by
/// replacing the name's bytes in the library (same length, so the file stays valid).
pub fn renamed_echo(dir: &Path, index: u32) -> PathBuf {
    assert!(index < 100, "two digits only");
    let name = format!("echo-{index:02}");
    let bytes = fs::read(fixture_path("echo")).unwrap();
    let from = ECHO_NAME.as_bytes();
    let to = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut replaced = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            replaced += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    assert!(
        replaced > 0,
        "the echo fixture does not contain its name {ECHO_NAME}"
    );
    fs::create_dir_all(dir).unwrap();
    set_mode(dir, 0o755);
    let path = dir.join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    fs::write(&path, out).unwrap();
    set_mode(&path, 0o755);
    path
}

/// Which plugin API a generated fixture is built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiFixture {
    /// API 2.0.0: another major version; the host must refuse it.
    Major2,
    /// API 1.9.0: a newer minor than the host's; the host must refuse it.
    Minor9,
    /// API 1.0.0, without the 1.1 functions (`sign_in`, `sign_out`) and the 1.2 ones: must
    /// load and send.
    V1_0,
    /// API 1.1.0, without the 1.2 functions (`limits`, `send_mime`, `reconcile`, ...): must
    /// load and send.
    V1_1,
    /// API 2.0.0 with a static initialiser (`.init_array`) that aborts while the library is
    /// opened, before any version check can run: `plugin add` must survive and refuse it.
    Major2CrashingInit,
}

impl ApiFixture {
    /// The API version the fixture is built against.
    pub fn version(self) -> &'static str {
        match self {
            Self::Major2 | Self::Major2CrashingInit => "2.0.0",
            Self::Minor9 => "1.9.0",
            Self::V1_0 => "1.0.0",
            Self::V1_1 => "1.1.0",
        }
    }

    /// The plugin's registry name.
    pub fn plugin_name(self) -> &'static str {
        match self {
            Self::Major2 => "api-2-0",
            Self::Minor9 => "api-1-9",
            Self::V1_0 => "api-1-0",
            Self::V1_1 => "api-1-1",
            Self::Major2CrashingInit => "api-2-0-crashing-init",
        }
    }

    /// The minor versions whose marked lines its copy of the API leaves out.
    fn stripped_minors(self) -> &'static [&'static str] {
        match self {
            Self::V1_0 => &["1.1", "1.2"],
            Self::V1_1 => &["1.2"],
            Self::Major2 | Self::Minor9 | Self::Major2CrashingInit => &[],
        }
    }
}

/// Builds (once) and returns the library of a provider built against another API version.
pub fn api_fixture(which: ApiFixture) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<ApiFixture, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let cache = built.get_or_insert_with(HashMap::new);
    if let Some(path) = cache.get(&which) {
        return path.clone();
    }
    let root = target_dir().join("fixture-builds");
    fs::create_dir_all(&root).unwrap();
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("generate.lock"))
        .unwrap();
    #[allow(clippy::incompatible_msrv)] // File::lock: the workspace builds with a newer toolchain
    lock_file.lock().unwrap();

    let slug = which.plugin_name();
    let src = root.join("src").join(slug);
    let api_dir = src.join("api");
    let provider_dir = src.join("provider");
    write_api_copy(&api_dir, which.version(), which.stripped_minors());
    write_provider(&provider_dir, which);

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(provider_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&root)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| panic!("run cargo build for the {slug} fixture: {e}"));
    assert!(
        output.status.success(),
        "building the {slug} fixture failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lib = root.join("debug").join(format!(
        "{}fixture_{}{}",
        std::env::consts::DLL_PREFIX,
        slug.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        lib.exists(),
        "the {slug} fixture was built but {} is missing",
        lib.display()
    );
    drop(lock_file);
    cache.insert(which, lib.clone());
    lib
}

/// Writes `contents` to `path` unless it already holds exactly that (keeps cargo's
/// freshness check happy across processes).
fn write_if_changed(path: &Path, contents: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(contents) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
}

/// The root `[workspace.package]` and `[workspace.dependencies]` tables.
fn workspace_tables() -> (toml::Table, toml::Table) {
    let text = fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let root: toml::Table = text.parse().unwrap();
    let workspace = root["workspace"].as_table().unwrap();
    let package = workspace
        .get("package")
        .and_then(|p| p.as_table())
        .cloned()
        .unwrap_or_default();
    let deps = workspace
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    (package, deps)
}

/// Resolves `x.workspace = true` entries of a table against the workspace's tables.
fn resolve_inherited(table: &mut toml::Table, from: &toml::Table, is_deps: bool) {
    for (key, value) in table.iter_mut() {
        let inherits = value
            .as_table()
            .and_then(|t| t.get("workspace"))
            .and_then(|w| w.as_bool())
            == Some(true);
        if !inherits {
            continue;
        }
        let mut resolved = from
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("workspace has no entry for {key}"));
        if is_deps {
            // `dep = "1"` or `dep = { version = .. }`, plus the member's own keys (features).
            let mut merged = match resolved {
                toml::Value::String(version) => {
                    let mut t = toml::Table::new();
                    t.insert("version".into(), toml::Value::String(version));
                    t
                }
                toml::Value::Table(t) => t,
                other => panic!("unexpected workspace dependency {key} = {other}"),
            };
            if let Some(own) = value.as_table() {
                for (k, v) in own {
                    if k != "workspace" {
                        merged.insert(k.clone(), v.clone());
                    }
                }
            }
            resolved = toml::Value::Table(merged);
        }
        *value = resolved;
    }
}

/// Copies `plugin-api/` to `dir` as version `version`, a stand-alone package.
fn write_api_copy(dir: &Path, version: &str, strip: &[&str]) {
    let api = workspace_root().join("plugin-api");
    let (ws_package, ws_deps) = workspace_tables();
    let mut manifest: toml::Table = fs::read_to_string(api.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest.remove("lints");
    manifest.remove("dev-dependencies");
    if let Some(package) = manifest.get_mut("package").and_then(|p| p.as_table_mut()) {
        resolve_inherited(package, &ws_package, false);
        package.insert("version".into(), toml::Value::String(version.into()));
        package.remove("publish");
    }
    if let Some(deps) = manifest
        .get_mut("dependencies")
        .and_then(|d| d.as_table_mut())
    {
        resolve_inherited(deps, &ws_deps, true);
    }
    write_if_changed(
        &dir.join("Cargo.toml"),
        &toml::to_string(&manifest).unwrap(),
    );

    copy_tree(&api, dir, &api, strip);
}

/// Copies every file under `from` (except `Cargo.toml` at the root and build output) to `to`,
/// stripping the lines of the minors in `strip` from `src/module.rs` and `src/export.rs`.
fn copy_tree(from: &Path, to: &Path, root: &Path, strip: &[&str]) {
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let relative = path.strip_prefix(root).unwrap();
        if relative == Path::new("Cargo.toml") || relative.starts_with("target") {
            continue;
        }
        if path.is_dir() {
            copy_tree(&path, to, root, strip);
            continue;
        }
        let target = to.join(relative);
        let Ok(mut text) = fs::read_to_string(&path) else {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            fs::copy(&path, &target).unwrap();
            continue;
        };
        if relative == Path::new("src/module.rs") || relative == Path::new("src/export.rs") {
            for minor in strip {
                text = strip_since(&text, minor);
            }
            for (minor, field) in [("1.1", "sign_in:"), ("1.2", "reconcile:")] {
                assert!(
                    !strip.contains(&minor) || !text.contains(field),
                    "stripping the {minor} lines from {} left a {field} field",
                    relative.display()
                );
            }
        }
        write_if_changed(&target, &text);
    }
}

/// Removes every line from `// @api-since MINOR begin` to `// @api-since MINOR end`, inclusive.
pub fn strip_since(text: &str, minor: &str) -> String {
    let begin = format!("// @api-since {minor} begin");
    let end = format!("// @api-since {minor} end");
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed == begin {
            skipping = true;
        } else if trimmed == end {
            skipping = false;
        } else if !skipping {
            out.push_str(line);
        }
    }
    out
}

/// Writes the tiny provider crate for `which` into `dir`.
fn write_provider(dir: &Path, which: ApiFixture) {
    let slug = which.plugin_name();
    let manifest = format!(
        r#"[package]
name = "fixture-{slug}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
mailhost-plugin-api = {{ path = "../api" }}

# Stand-alone: not part of the mailhost workspace.
[workspace]
"#
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    let source = format!(
        r#"//! Generated test fixture: a provider built against mailhost-plugin-api {version}.
use mailhost_plugin_api::{{Provider, ProviderError, ProviderInfo, Receipt, SendRequest, export_provider}};

struct Fixture;

impl Provider for Fixture {{
    fn describe(&self) -> Result<ProviderInfo, ProviderError> {{
        Ok(ProviderInfo {{
            name: "{slug}".into(),
            display_name: "API {version} Fixture".into(),
            version: "0.1.0".into(),
            description: "Built against plugin API {version} (test fixture)".into(),
            settings: Default::default(),
            staff_fields: Default::default(),
            capabilities: Default::default(),
        }})
    }}

    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {{
        Ok(Receipt {{
            message_id: format!("<{{}}@{slug}.invalid>", request.message.id).into(),
            request_id: Default::default(),
            detail: "sent by the API {version} fixture".into(),
        }})
    }}
}}

export_provider!(|| Fixture);
{crashing_init}"#,
        version = which.version(),
        crashing_init = if which == ApiFixture::Major2CrashingInit {
            r#"
extern "C" fn crash_while_opening() {
    std::process::abort();
}

#[used]
#[unsafe(link_section = ".init_array")]
static CRASH_WHILE_OPENING: extern "C" fn() = crash_while_opening;
"#
        } else {
            ""
        }
    );
    write_if_changed(&dir.join("src/lib.rs"), &source);
    // The workspace's lock file, so abi_stable and friends resolve to the same versions.
    let lock = fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap();
    if !dir.join("Cargo.lock").exists() {
        write_if_changed(&dir.join("Cargo.lock"), &lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds all four generated fixtures (slow on a cold target directory).
    #[test]
    fn generated_fixtures_build() {
        for which in [
            ApiFixture::Major2,
            ApiFixture::Minor9,
            ApiFixture::V1_0,
            ApiFixture::V1_1,
        ] {
            assert!(api_fixture(which).exists());
        }
    }

    #[test]
    fn strips_only_the_marked_lines() {
        let text = "a\n    // @api-since 1.1 begin\n    b\n    // @api-since 1.1 end\nc\n";
        assert_eq!(strip_since(text, "1.1"), "a\nc\n");
        assert_eq!(strip_since(text, "1.2"), text);
    }
}
