//! Plugin-host benchmarks (run with `cargo bench -p mailhost-tests --bench plugin_host`):
//!
//! - (a) cold `mailhost plugin list` wall time with several registered plugins: the release
//!   binary is run N times in a fresh process each, and the minimum and median are reported.
//!   Target: under 20 ms.
//! - (b) the cost of one `send` through the ABI boundary: the `null` fixture loaded as a
//!   cdylib through abi_stable (`lib_header_from_path` + `init_root_module`), against the same
//!   provider's `Provider::send` called directly from its rlib, over about a million calls
//!   each. Target: under 1 µs of overhead per call.
//!
//! A benchmark, not a test: it prints figures and asserts nothing about speed.

#![allow(clippy::unwrap_used)] // bench set-up: a failure should stop loudly

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use mailhost_plugin_api::{
    HostServices, HostServices_TO, LogLevel, Mailbox, Message, Provider, ProviderModule_Ref,
    SendRequest, Setting, StaffMember,
};
use mailhost_tests::fixtures::{copy_library, fixture_path};
use mailhost_tests::{Home, mailhost_bin, plugin_path};

const LIST_RUNS: usize = 40;
const CALLS: u32 = 1_000_000;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wants("plugin_list") {
        bench_plugin_list();
    }
    if wants("boundary") {
        bench_boundary();
    }
}

fn min_median(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[0], samples[samples.len() / 2])
}

fn bench_plugin_list() {
    let home = Home::new();
    let libs = home.path().join("libs");
    let plugins = [
        copy_library(&plugin_path("pickup_dir"), &libs, "libpickup_dir.so"),
        copy_library(&fixture_path("null"), &libs, "libfixture_null.so"),
        copy_library(&fixture_path("echo"), &libs, "libfixture_echo.so"),
        copy_library(&fixture_path("panics"), &libs, "libfixture_panics.so"),
    ];
    for plugin in &plugins {
        let path = plugin.to_str().unwrap();
        home.ok(&["plugin", "add", path, "--enable"]);
    }
    let bin = mailhost_bin();
    let run = |json: bool| {
        let mut command = Command::new(&bin);
        command
            .arg("--home")
            .arg(home.path())
            .args(["plugin", "list"]);
        if json {
            command.arg("--json");
        }
        command.env_remove("RUST_LOG").env_remove("MAILHOST_HOME");
        let start = Instant::now();
        let output = command.output().unwrap();
        let elapsed = start.elapsed();
        assert!(output.status.success(), "plugin list failed: {output:?}");
        elapsed
    };
    // Warm the page cache once; every measured run is still a new process.
    run(false);
    for json in [false, true] {
        let samples: Vec<Duration> = (0..LIST_RUNS).map(|_| run(json)).collect();
        let (min, median) = min_median(samples);
        println!(
            "plugin_list{}: {} plugins, {LIST_RUNS} runs: min {:.2} ms, median {:.2} ms (target < 20 ms)",
            if json { " --json" } else { "" },
            plugins.len(),
            min.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
        );
    }
}

/// Host services that do nothing, as cheap as the host's could be.
struct QuietHost;

impl HostServices for QuietHost {
    fn log(&self, _level: LogLevel, _target: RStr<'_>, _message: RStr<'_>) {}
    fn notify(&self, _message: RStr<'_>) {}
    fn secret_get(&self, _key: RStr<'_>) -> RResult<ROption<RString>, RString> {
        RResult::ROk(ROption::RNone)
    }
    fn secret_put(&self, _key: RStr<'_>, _value: RStr<'_>) -> RResult<(), RString> {
        RResult::ROk(())
    }
    fn secret_delete(&self, _key: RStr<'_>) -> RResult<(), RString> {
        RResult::ROk(())
    }
}

fn request() -> SendRequest {
    SendRequest {
        settings: RVec::from(vec![Setting::new("Directory", "/tmp")]),
        staff: StaffMember {
            id: "adele".into(),
            email: "adele@contoso.com".into(),
            display_name: "Adele Vance".into(),
            username: "".into(),
            password: ROption::RNone,
            fields: RVec::new(),
        },
        message: Message {
            id: "1".into(),
            from: Mailbox::new("adele@contoso.com", "Adele Vance"),
            to: RVec::from(vec![Mailbox::new("megan@contoso.com", "Megan Bowen")]),
            subject: "Benchmark".into(),
            body: "Hello".into(),
            ..Message::default()
        },
    }
}

fn time_calls(label: &str, mut call: impl FnMut() -> bool) -> f64 {
    // Warm up, then take the best of five rounds to damp noise from the shared machine.
    for _ in 0..CALLS / 10 {
        assert!(call());
    }
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..CALLS {
            if !call() {
                panic!("{label}: send failed");
            }
        }
        let per_call = start.elapsed().as_secs_f64() * 1e9 / f64::from(CALLS);
        best = best.min(per_call);
    }
    best
}

fn bench_boundary() {
    let library = fixture_path("null");
    let module = load(&library);
    let host = HostServices_TO::from_value(QuietHost, TD_Opaque);
    let init = module.init();
    assert!(
        init(host, LogLevel::Off).is_ok(),
        "null fixture init failed"
    );
    let send = module.send();
    let request = request();

    let through_abi = time_calls("abi", || {
        let result = send(black_box(&request));
        black_box(result).is_ok()
    });
    let provider = fixture_null::Null;
    let direct = time_calls("direct", || {
        let result = black_box(&provider).send(black_box(&request));
        black_box(result).is_ok()
    });
    println!(
        "send through the ABI boundary (null fixture cdylib): {through_abi:.1} ns/call over {CALLS} calls"
    );
    println!("send called directly (null fixture rlib):            {direct:.1} ns/call");
    println!(
        "boundary overhead: {:.1} ns/call (target < 1000 ns)",
        through_abi - direct
    );
}

fn load(path: &Path) -> ProviderModule_Ref {
    abi_stable::library::lib_header_from_path(path)
        .and_then(|header| header.init_root_module::<ProviderModule_Ref>())
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}
