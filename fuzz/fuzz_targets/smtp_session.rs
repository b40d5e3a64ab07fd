//! The SMTP session state machine fed arbitrary client bytes; see
//! `mailhost::front::smtp::session::replay` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    install_hook();
    mailhost::front::smtp::session::replay::replay(data);
});

/// libFuzzer's hook aborts on every panic; panics inside mail-parser are caught by the code
/// under test (a known upstream bug on malformed multiparts), so only those are let through.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("mail-parser"));
            if !in_mail_parser {
                default(info);
                std::process::abort();
            }
        }));
    });
}
