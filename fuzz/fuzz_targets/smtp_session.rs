//! The SMTP session state machine fed arbitrary client bytes; see
//! `mailhost::front::smtp::session::replay` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailhost::front::smtp::session::replay::replay(data);
});
