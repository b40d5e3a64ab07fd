//! sendmail's command line, parsed by hand: its classic flags are single-dash words (`-oi`,
//! `-odq`, `-fADDR`) that no option parser models, and programs that call sendmail pass them in
//! every spelling (`-f ADDR`, `-fADDR`, `-F "Name"`). Flags that only tune how the classic MTA
//! delivers (`-odi`, `-odb`, `-odq`, `-oem`, `-oee`, `-om`, `-bm`, `-v`, `-B TYPE`) are accepted
//! and change nothing; anything else is refused with one line naming it.

use std::path::PathBuf;

/// The help text of `mailhost sendmail --help` (and `sendmail --help`).
pub const HELP: &str = "\
mailhost sendmail: send an RFC 5322 message read from standard input (sendmail-compatible)

Usage: mailhost sendmail [-t] [-i] [-f ADDR] [-F NAME] [--staff ID] [RECIPIENT...] < message
       sendmail [-t] [-i] [-f ADDR] [RECIPIENT...] < message   (through a symlink named sendmail)

  -t             also send to the To, Cc and Bcc addresses of the message (the Bcc header
                 is removed from what is sent); recipients given as arguments are added
  -i, -oi        a line holding only '.' does not end the message (without it, it does)
  -f ADDR        the envelope sender (also -fADDR, -r ADDR); the From when the message has none
  -F NAME        the From's display name when the message has no From
  --staff ID     the sending staff member (else $MAILHOST_STAFF, else the staff member whose
                 address is the message's From, or -f)
  --home DIR     the mailhost home (else $MAILHOST_HOME)
  --max-wait DURATION
                 how long to wait for a sending limit or a short retry before leaving the
                 email queued and exiting 75 (default 60s; 0s: do not wait)
  --allow-unsafe-permissions
                 run even when mail or secrets in the home are readable by other users
  -v             print what happened on standard output
  -q             send every queued email that is due, then exit (`mailhost email flush`);
                 no message is read
  -h, --help     this text
  Accepted and ignored: -odi -odb -odq -oem -oee -om -bm -B TYPE

Exit status (sysexits.h, as sendmail): 0 sent; 75 accepted and queued (a sending limit or a
temporary fault; `mailhost serve` or `mailhost email flush` sends it later); 1 the provider
refused it (kept as failed: `mailhost email retry ID`); 64 bad usage or no recipients;
65 a bad message (header injection, bad address, over 200 MiB); 67 unknown staff member; 69 the provider
cannot be used; 74 standard input or the spool could not be read or written; 78 the
configuration is wrong.
";

/// What a sendmail command line asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendmailArgs {
    /// `-t`: take recipients from the message's To, Cc and Bcc headers too.
    pub extract_recipients: bool,
    /// `-i`/`-oi`: a lone `.` line does not end the input.
    pub ignore_dots: bool,
    /// `-f`/`-r`: the envelope sender.
    pub envelope_from: Option<String>,
    /// `-F`: the sender's full name.
    pub full_name: Option<String>,
    /// `--staff`.
    pub staff: Option<String>,
    /// `--home`.
    pub home: Option<PathBuf>,
    /// `--max-wait DURATION`, as written (`0s`, `90s`, `10m`).
    pub max_wait: Option<String>,
    /// `-v`.
    pub verbose: bool,
    /// `-h`/`--help`.
    pub help: bool,
    /// `--allow-unsafe-permissions`: run even when mail or secrets are readable by others.
    pub allow_unsafe_permissions: bool,
    /// `-q`: send every queued email that is due (as `mailhost email flush`), read no message.
    pub flush: bool,
    /// The recipients given as arguments.
    pub recipients: Vec<String>,
}

/// Classic flags that only tune the classic MTA's own delivery: accepted, no effect.
const IGNORED: [&str; 8] = ["-odi", "-odb", "-odq", "-oem", "-oee", "-om", "-bm", "-U"];

/// Parses `args` (without the program name).
///
/// # Errors
/// One line naming the unknown flag or the missing value.
pub fn parse<I, S>(args: I) -> Result<SendmailArgs, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut parsed = SendmailArgs::default();
    let mut only_recipients = false;
    while let Some(arg) = args.next() {
        if only_recipients || !arg.starts_with('-') || arg == "-" {
            parsed.recipients.push(arg);
            continue;
        }
        let mut value_of = |flag: &str, attached: &str| -> Result<String, String> {
            if attached.is_empty() {
                args.next()
                    .ok_or_else(|| format!("option {flag} needs a value: {flag} VALUE"))
            } else {
                Ok(attached.to_string())
            }
        };
        match arg.as_str() {
            "--" => only_recipients = true,
            "-t" => parsed.extract_recipients = true,
            "-i" | "-oi" => parsed.ignore_dots = true,
            "-v" => parsed.verbose = true,
            "-h" | "--help" => parsed.help = true,
            "-q" => parsed.flush = true,
            "--allow-unsafe-permissions" => parsed.allow_unsafe_permissions = true,
            flag if flag.starts_with("-q") => {
                return Err(format!(
                    "sendmail option '{flag}' (a queue run at an interval or for some emails) is not supported: run `mailhost serve` to send queued email continuously, or `mailhost sendmail -q` (`mailhost email flush`) once"
                ));
            }
            flag if IGNORED.contains(&flag) => {}
            "-B" => {
                value_of("-B", "")?;
            }
            flag if flag.starts_with("-B") => {}
            "--staff" => parsed.staff = Some(value_of("--staff", "")?),
            "--home" => parsed.home = Some(PathBuf::from(value_of("--home", "")?)),
            "--max-wait" => parsed.max_wait = Some(value_of("--max-wait", "")?),
            flag if flag.starts_with("--max-wait=") => {
                parsed.max_wait = Some(flag["--max-wait=".len()..].to_string());
            }
            flag if flag.starts_with("--staff=") => {
                parsed.staff = Some(flag["--staff=".len()..].to_string());
            }
            flag if flag.starts_with("--home=") => {
                parsed.home = Some(PathBuf::from(&flag["--home=".len()..]));
            }
            flag if flag.starts_with("-f") || flag.starts_with("-r") => {
                parsed.envelope_from = Some(value_of(&flag[..2], &flag[2..])?);
            }
            flag if flag.starts_with("-F") => {
                parsed.full_name = Some(value_of("-F", &flag[2..])?);
            }
            flag => {
                return Err(format!(
                    "sendmail option '{flag}' is not supported: mailhost sendmail takes -t, -i, -oi, -f ADDR, -F NAME, --staff ID and recipients (see `mailhost sendmail --help`)"
                ));
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> SendmailArgs {
        parse(args.iter().copied()).unwrap()
    }

    #[test]
    fn classic_spellings() {
        let a = ok(&["-t", "-oi", "-fadele@contoso.com", "-F", "Adele Vance"]);
        assert!(a.extract_recipients && a.ignore_dots);
        assert_eq!(a.envelope_from.as_deref(), Some("adele@contoso.com"));
        assert_eq!(a.full_name.as_deref(), Some("Adele Vance"));
        let a = ok(&[
            "-i",
            "-f",
            "a@x.com",
            "-FAdele",
            "alex@contoso.com",
            "b@x.com",
        ]);
        assert!(a.ignore_dots && !a.extract_recipients);
        assert_eq!(a.envelope_from.as_deref(), Some("a@x.com"));
        assert_eq!(a.full_name.as_deref(), Some("Adele"));
        assert_eq!(a.recipients, ["alex@contoso.com", "b@x.com"]);
        assert_eq!(
            ok(&["-r", "x@y.com"]).envelope_from.as_deref(),
            Some("x@y.com")
        );
    }

    #[test]
    fn host_options_in_both_forms() {
        let a = ok(&["--staff", "adele", "--home", "/h", "x@y.com"]);
        assert_eq!(a.staff.as_deref(), Some("adele"));
        assert_eq!(a.home, Some(PathBuf::from("/h")));
        assert_eq!(ok(&["--max-wait", "0s"]).max_wait.as_deref(), Some("0s"));
        assert_eq!(ok(&["--max-wait=5m"]).max_wait.as_deref(), Some("5m"));
        let a = ok(&["--staff=adele", "--home=/h"]);
        assert_eq!(a.staff.as_deref(), Some("adele"));
        assert_eq!(a.home, Some(PathBuf::from("/h")));
    }

    #[test]
    fn delivery_tuning_is_accepted_and_ignored() {
        let a = ok(&[
            "-odi", "-odq", "-oem", "-bm", "-v", "-B", "8BITMIME", "-B7BIT", "x@y.com",
        ]);
        assert!(a.verbose);
        assert_eq!(a.recipients, ["x@y.com"]);
    }

    #[test]
    fn a_double_dash_ends_the_options() {
        assert_eq!(ok(&["--", "-odd@x.com"]).recipients, ["-odd@x.com"]);
    }

    #[test]
    fn unknown_flags_and_missing_values_are_refused() {
        let e = parse(["-bs"]).unwrap_err();
        assert!(e.contains("'-bs' is not supported"), "{e}");
        assert!(ok(&["-q"]).flush);
        assert!(ok(&["--allow-unsafe-permissions"]).allow_unsafe_permissions);
        let e = parse(["-q15m"]).unwrap_err();
        assert!(e.contains("mailhost serve"), "{e}");
        assert!(parse(["-oQ/var/spool"]).is_err());
        let e = parse(["-f"]).unwrap_err();
        assert!(e.contains("-f needs a value"), "{e}");
        assert!(parse(["--staff"]).is_err());
        assert!(ok(&["--help"]).help && ok(&["-h"]).help);
    }
}
