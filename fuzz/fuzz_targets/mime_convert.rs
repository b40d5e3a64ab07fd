//! The MIME-to-Graph conversions fed arbitrary messages; see `graph_email::mime::replay` for
//! the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    graph_email::mime::replay::replay(data);
});
