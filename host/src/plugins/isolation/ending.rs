//! How a provider process ended, in words: the signal's name and what it usually means, or the
//! exit status. Shared by the provider supervisor and `plugin check`.

use std::process::ExitStatus;

/// The signal that ended the process, if one did.
#[cfg(unix)]
pub fn signal_of(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// The signal that ended the process, if one did.
#[cfg(not(unix))]
pub fn signal_of(_status: ExitStatus) -> Option<i32> {
    None
}

/// The name and meaning of a well-known signal (Linux numbering).
pub fn signal_name(signal: i32) -> Option<(&'static str, &'static str)> {
    Some(match signal {
        1 => ("SIGHUP", "hang-up"),
        2 => ("SIGINT", "interrupted"),
        3 => ("SIGQUIT", "quit"),
        4 => ("SIGILL", "illegal instruction"),
        5 => ("SIGTRAP", "trap"),
        6 => (
            "SIGABRT",
            "aborted, for example a stack overflow or a failed assertion",
        ),
        7 => ("SIGBUS", "bus error"),
        8 => ("SIGFPE", "arithmetic error"),
        9 => ("SIGKILL", "killed"),
        11 => ("SIGSEGV", "segmentation fault"),
        13 => ("SIGPIPE", "broken pipe"),
        15 => ("SIGTERM", "terminated"),
        31 => ("SIGSYS", "bad system call"),
        _ => return None,
    })
}

/// Whether the process was stopped from outside (Ctrl-C, `kill`) rather than by a fault of
/// its own: such an ending does not count towards quarantine.
pub fn stopped_from_outside(status: ExitStatus) -> bool {
    matches!(signal_of(status), Some(1 | 2 | 15))
}

/// What the process did, to follow "the process": `was killed by SIGSEGV (segmentation
/// fault)`, `exited with status 0`.
pub fn describe(status: ExitStatus) -> String {
    match (signal_of(status), status.code()) {
        (Some(signal), _) => match signal_name(signal) {
            Some((name, meaning)) => format!("was killed by {name} ({meaning})"),
            None => format!("was killed by signal {signal}"),
        },
        (None, Some(code)) => format!("exited with status {code}"),
        (None, None) => "ended for an unknown reason".into(),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn signals_and_statuses_are_named() {
        assert_eq!(
            describe(ExitStatus::from_raw(11)),
            "was killed by SIGSEGV (segmentation fault)"
        );
        assert_eq!(describe(ExitStatus::from_raw(0)), "exited with status 0");
        assert_eq!(
            describe(ExitStatus::from_raw(3 << 8)),
            "exited with status 3"
        );
        assert_eq!(
            describe(ExitStatus::from_raw(40)),
            "was killed by signal 40"
        );
        assert!(stopped_from_outside(ExitStatus::from_raw(2)));
        assert!(!stopped_from_outside(ExitStatus::from_raw(6)));
    }
}
