//! sendmail's exit statuses (sysexits.h), which the programs that call sendmail understand:
//! 0 sent; 75 `EX_TEMPFAIL` accepted and queued, not yet sent; 1 the provider refused it (the
//! email is kept as failed); 64 `EX_USAGE` bad flags or no recipients; 65 `EX_DATAERR` a bad
//! message; 67 `EX_NOUSER` no such staff member; 69 `EX_UNAVAILABLE` the provider cannot be
//! used (the email is kept as failed); 70 `EX_SOFTWARE` an internal error; 74 `EX_IOERR`
//! standard input, the spool or mail.db could not be read or written; 78 `EX_CONFIG` the
//! home's configuration is wrong (or its mail and secrets are readable by other users).

use super::plan::PlanError;
use crate::config::staff::StaffError;
use crate::delivery::mime::MimeError;
use crate::delivery::outbox::{EmailRecord, Status};
use crate::error::Error;

/// Sent.
pub const EX_OK: u8 = 0;
/// The provider refused the email; it is kept as failed (or unknown).
pub const EX_FAILED: u8 = 1;
/// Bad flags, or no recipients.
pub const EX_USAGE: u8 = 64;
/// The message is not acceptable.
pub const EX_DATAERR: u8 = 65;
/// No such staff member.
pub const EX_NOUSER: u8 = 67;
/// The provider cannot be used now.
pub const EX_UNAVAILABLE: u8 = 69;
/// An internal error.
pub const EX_SOFTWARE: u8 = 70;
/// Input or output failed.
pub const EX_IOERR: u8 = 74;
/// Accepted and queued; it will be sent later.
pub const EX_TEMPFAIL: u8 = 75;
/// The configuration is wrong.
pub const EX_CONFIG: u8 = 78;

/// How a sendmail run ends: its status and the line to print on stderr, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit status.
    pub code: u8,
    /// The line for stderr (without the `mailhost: ` prefix).
    pub message: Option<String>,
}

impl Exit {
    /// Success, silently.
    pub fn ok() -> Self {
        Self {
            code: EX_OK,
            message: None,
        }
    }

    fn with(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }

    /// Bad usage.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::with(EX_USAGE, message)
    }

    /// A bad message.
    pub fn data(message: impl Into<String>) -> Self {
        Self::with(EX_DATAERR, message)
    }

    /// An input or output failure.
    pub fn io(message: impl Into<String>) -> Self {
        Self::with(EX_IOERR, message)
    }

    /// The status for an error raised before or while recording (nothing was recorded unless
    /// the store says otherwise).
    pub fn from_error(error: &Error) -> Self {
        let code = match error {
            Error::Usage(_) => EX_USAGE,
            Error::Failed(_) => EX_FAILED,
            Error::Mime(MimeError::Spool { .. }) | Error::Outbox(_) | Error::Output(_) => EX_IOERR,
            Error::Mime(_) | Error::Compose(_) => EX_DATAERR,
            Error::Staff(StaffError::Unknown { .. }) => EX_NOUSER,
            Error::Load(_) => EX_UNAVAILABLE,
            Error::Home(_)
            | Error::File(_)
            | Error::Registry(_)
            | Error::Settings(_)
            | Error::Secrets(_)
            | Error::Permissions(_)
            | Error::Staff(_) => EX_CONFIG,
            _ => EX_SOFTWARE,
        };
        Self::with(code, error.to_string())
    }

    /// The status for a recorded email, by where it now is.
    pub fn of_record(record: &EmailRecord) -> Self {
        let id = &record.id;
        let why = record
            .error
            .as_ref()
            .map_or_else(|| "no error was recorded".to_string(), ToString::to_string);
        match record.status {
            Status::Sent => Self::ok(),
            Status::Queued | Status::Sending => {
                let when = record
                    .not_before
                    .map(|t| format!(" from {t}"))
                    .unwrap_or_default();
                let reason = record
                    .error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                Self::with(
                    EX_TEMPFAIL,
                    format!(
                        "email {id} is accepted and queued, not yet sent{reason}; it can go{when}: `mailhost serve` sends it then, or run `mailhost email flush`"
                    ),
                )
            }
            Status::Unknown => Self::with(
                EX_FAILED,
                format!(
                    "email {id} may or may not have been sent by {} ({why}); it is kept as unknown: check the recipient's mailbox, and if it did not arrive run `mailhost email retry {id} --force`",
                    record.provider
                ),
            ),
            Status::Failed => {
                let not_ready = record
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == "PROVIDER_NOT_READY");
                Self::with(
                    if not_ready { EX_UNAVAILABLE } else { EX_FAILED },
                    format!(
                        "email {id} was not sent: {} failed ({why}); it is kept in mail.db as failed: fix the cause, then run `mailhost email retry {id}`",
                        record.provider
                    ),
                )
            }
        }
    }
}

impl From<PlanError> for Exit {
    fn from(error: PlanError) -> Self {
        match error {
            PlanError::Usage(message) => Self::with(EX_USAGE, message),
            PlanError::NoUser(message) => Self::with(EX_NOUSER, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_sysexits() {
        assert_eq!(Exit::from_error(&Error::Usage("x".into())).code, EX_USAGE);
        assert_eq!(
            Exit::from_error(&Error::Mime(MimeError::BareCr { line: 2 })).code,
            EX_DATAERR
        );
        let spool = MimeError::Spool {
            path: "/h/spool/x".into(),
            reason: "disk full".into(),
        };
        assert_eq!(Exit::from_error(&Error::Mime(spool)).code, EX_IOERR);
        let unknown = StaffError::Unknown {
            id: "eve".into(),
            known: vec![],
        };
        assert_eq!(Exit::from_error(&Error::Staff(unknown)).code, EX_NOUSER);
        assert_eq!(Exit::from(PlanError::NoUser("x".into())).code, EX_NOUSER);
        assert_eq!(Exit::from(PlanError::Usage("x".into())).code, EX_USAGE);
    }
}
