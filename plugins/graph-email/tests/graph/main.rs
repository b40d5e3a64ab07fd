//! graph-email against the Microsoft 365 emulator, in process: every sign-in path, alternate
//! From, large attachments, throttling, the errors a user can act on, token reuse and what the
//! provider logs. One test binary, so the test host is installed once.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod browser;
mod certificates;
mod device_code;
mod diagnose;
mod errors;
mod exactly_once;
mod faults;
mod limits;
mod mime;
mod sending;
mod sign_in;
mod support;
mod tokens;
