//! Homes set up the way many tests start: staff member `adele` on a provider, the pickup-dir
//! provider writing into a folder of the home, and the real Graph plugin pointed at an
//! in-process emulator with a NonInteractive staff member.

use std::path::PathBuf;

use mailhost_emulator::{Emulator, seed};

use crate::{Home, assert_exit, plugin_path};

/// The staff ID used by the Graph homes.
pub const STAFF: &str = "alex";

/// The arguments of `staff add adele --provider PROVIDER --email adele@contoso.com`, then
/// `extra`.
pub fn add_adele_args<'a>(provider: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "staff",
        "add",
        "adele",
        "--provider",
        provider,
        "--email",
        "adele@contoso.com",
    ];
    args.extend_from_slice(extra);
    args
}

impl Home {
    /// Adds staff member `adele` (adele@contoso.com) on `provider`, with `extra` arguments,
    /// and asserts success.
    pub fn add_adele(&self, provider: &str, extra: &[&str]) {
        self.ok(&add_adele_args(provider, extra));
    }

    /// Registers pickup-dir, enabled, and sets its `Directory` to a new folder `folder` of this
    /// home; returns that folder.
    pub fn add_pickup_dir(&self, folder: &str) -> PathBuf {
        self.add_enabled(&plugin_path("pickup_dir"));
        let dir = self.path().join(folder);
        std::fs::create_dir(&dir).unwrap();
        self.ok(&[
            "config",
            "set",
            "pickup-dir",
            "Directory",
            dir.to_str().unwrap(),
        ]);
        dir
    }
}

/// A home with pickup-dir registered, enabled and configured (folder `pickup` of the home), and
/// staff member `adele` (Adele Vance) on it; returns the home and the pickup folder.
pub fn pickup_home() -> (Home, PathBuf) {
    let home = Home::new();
    let pickup = home.add_pickup_dir("pickup");
    home.add_adele("pickup-dir", &["--name", "Adele Vance"]);
    (home, pickup)
}

/// A home with the real Graph plugin pointed at `emulator`, and the NonInteractive staff
/// member [`STAFF`] (the seeded user, username and password). Exchange's 30 messages a minute
/// would pace tests that send many emails from one mailbox to a crawl, so the home sets
/// `MessagesPerMinute` to 0 (no limit); tests of the limits set it themselves.
pub fn graph_home(emulator: &Emulator) -> Home {
    let home = Home::new();
    home.add_enabled(&plugin_path("graph_email"));
    for (key, value) in [
        ("ClientID", seed::MAILHOST_CLIENT_ID),
        ("TenantID", seed::TENANT_ID),
        ("Authority", emulator.authority()),
        ("GraphEndpoint", emulator.graph_endpoint()),
        ("MessagesPerMinute", "0"),
    ] {
        home.ok(&["config", "set", "graph-email", key, value]);
    }
    let output = home.run_with_stdin(
        &[
            "staff",
            "add",
            STAFF,
            "--provider",
            "graph-email",
            "--email",
            seed::USER_UPN,
            "--name",
            seed::USER_NAME,
            "--username",
            seed::USER_UPN,
            "--field",
            "NonInteractive=true",
            "--password-stdin",
        ],
        &format!("{}\n", seed::USER_PASSWORD),
    );
    assert_exit(&output, 0, &["staff", "add", STAFF]);
    home
}

/// The arguments of `email send --staff adele --to megan@contoso.com`, then `extra`.
pub fn adele_send_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "megan@contoso.com",
    ];
    args.extend_from_slice(extra);
    args
}
