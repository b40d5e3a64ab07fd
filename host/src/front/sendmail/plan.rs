//! Who sends a sendmail message and who receives it, from the command line, the environment,
//! the message's headers and `staff.toml`:
//! - recipients: the arguments (comma-separated lists allowed) and, with `-t`, the To, Cc and
//!   Bcc addresses of the message, in that order, each once. Arguments are added to `-t`'s
//!   recipients, as Postfix and Exim do (classic sendmail instead left them out; adding them
//!   never loses a recipient the caller named);
//! - the staff member: `--staff`, else `$MAILHOST_STAFF`, else the one whose address is the
//!   message's From, else the one whose address is `-f`;
//! - the envelope sender: `-f`, else the staff member's address;
//! - the From for a message without one: `-F NAME <-f address>`, else the staff member.

use mailhost_plugin_api::Mailbox;

use super::args::SendmailArgs;
use crate::config::staff::StaffFile;
use crate::delivery::compose::parse_mailbox;
use crate::delivery::mime::ReadMessage;

/// What to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The sending staff member.
    pub staff_id: String,
    /// The envelope sender.
    pub envelope_from: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The From to add when the message has none.
    pub default_from: Option<Mailbox>,
}

/// Why a message cannot be planned; each maps to a sendmail exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Bad arguments or no recipients (EX_USAGE).
    Usage(String),
    /// No staff member could be chosen (EX_NOUSER).
    NoUser(String),
}

/// Plans the message `read` sent with `args`; `env_staff` is `$MAILHOST_STAFF`.
///
/// # Errors
/// See [`PlanError`].
pub fn plan(
    args: &SendmailArgs,
    env_staff: Option<&str>,
    read: &ReadMessage,
    staff: &StaffFile,
) -> Result<Plan, PlanError> {
    let envelope_from = match args.envelope_from.as_deref().map(str::trim) {
        None | Some("" | "<>") => None,
        Some(text) => Some(
            parse_mailbox("-f", text)
                .map_err(|e| PlanError::Usage(format!("-f: {e}")))?
                .address
                .to_string(),
        ),
    };
    if let Some(name) = &args.full_name
        && name.contains(['\r', '\n'])
    {
        return Err(PlanError::Usage(
            "-F: the name contains a line break (CR or LF), which is not allowed in email headers"
                .into(),
        ));
    }
    let recipients = recipients(args, read)?;
    let staff_id = choose_staff(args, env_staff, read, envelope_from.as_deref(), staff)?;
    let Some(record) = staff.staff.get(&staff_id) else {
        return Err(PlanError::NoUser(staff.unknown(&staff_id).to_string()));
    };
    let envelope_from = envelope_from.unwrap_or_else(|| record.email.clone());
    let default_from = read.from.is_empty().then(|| {
        let name = match &args.full_name {
            Some(name) => name.trim().to_string(),
            None if envelope_from.eq_ignore_ascii_case(&record.email) => record.name.clone(),
            None => String::new(),
        };
        Mailbox::new(&envelope_from, &name)
    });
    Ok(Plan {
        staff_id,
        envelope_from,
        recipients,
        default_from,
    })
}

fn recipients(args: &SendmailArgs, read: &ReadMessage) -> Result<Vec<String>, PlanError> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |address: &str| {
        if !out.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            out.push(address.to_string());
        }
    };
    if args.extract_recipients {
        for mailbox in read.to.iter().chain(&read.cc).chain(&read.bcc) {
            add(&mailbox.address);
        }
    }
    for arg in &args.recipients {
        for text in arg.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let mailbox =
                parse_mailbox("recipient", text).map_err(|e| PlanError::Usage(e.to_string()))?;
            add(&mailbox.address);
        }
    }
    if out.is_empty() {
        let hint = if args.extract_recipients {
            "the message has no To, Cc or Bcc address and none was given as an argument"
        } else {
            "give them as arguments, or pass -t to take them from the message's To, Cc and Bcc headers"
        };
        return Err(PlanError::Usage(format!("no recipients: {hint}")));
    }
    Ok(out)
}

fn choose_staff(
    args: &SendmailArgs,
    env_staff: Option<&str>,
    read: &ReadMessage,
    envelope_from: Option<&str>,
    staff: &StaffFile,
) -> Result<String, PlanError> {
    let named = args.staff.as_deref().map(|id| (id, "--staff")).or_else(|| {
        env_staff
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| (id, "MAILHOST_STAFF"))
    });
    if let Some((id, source)) = named {
        return match staff.require(id) {
            Ok(_) => Ok(id.to_string()),
            Err(e) => Err(PlanError::NoUser(format!("{source}: {e}"))),
        };
    }
    let candidates = read
        .from
        .first()
        .map(|m| (m.address.as_str(), "the message's From"))
        .into_iter()
        .chain(envelope_from.map(|a| (a, "-f")));
    let mut tried = Vec::new();
    for (address, source) in candidates {
        let ids: Vec<&String> = staff
            .staff
            .iter()
            .filter(|(_, r)| r.email.eq_ignore_ascii_case(address))
            .map(|(id, _)| id)
            .collect();
        match ids.as_slice() {
            [id] => return Ok((*id).clone()),
            [] => tried.push(format!("{source} '{address}'")),
            many => {
                let ids: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(PlanError::Usage(format!(
                    "staff members {} all have the address '{address}' ({source}): choose one with --staff ID or MAILHOST_STAFF=ID",
                    ids.join(", ")
                )));
            }
        }
    }
    let what = if tried.is_empty() {
        "the message has no From and no -f was given".to_string()
    } else {
        format!("no staff member has the address of {}", tried.join(" or "))
    };
    Err(PlanError::NoUser(format!(
        "cannot tell which staff member sends this message: {what}; pass --staff ID, set MAILHOST_STAFF=ID, or send From (or -f) a staff member's address (`mailhost staff list`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::staff::StaffRecord;

    fn staff() -> StaffFile {
        let mut file = StaffFile::default();
        for (id, email, name) in [
            ("adele", "adele@contoso.com", "Adele Vance"),
            ("alex", "alex@contoso.com", ""),
        ] {
            file.staff.insert(
                id.into(),
                StaffRecord {
                    provider: "pickup-dir".into(),
                    email: email.into(),
                    name: name.into(),
                    username: String::new(),
                    fields: Default::default(),
                    relay_from: Vec::new(),
                },
            );
        }
        file
    }

    fn read(from: &[&str], to: &[&str], cc: &[&str], bcc: &[&str]) -> ReadMessage {
        let list = |l: &[&str]| l.iter().map(|a| Mailbox::new(a, "")).collect();
        ReadMessage {
            from: list(from),
            to: list(to),
            cc: list(cc),
            bcc: list(bcc),
            ..ReadMessage::default()
        }
    }

    fn args(list: &[&str]) -> SendmailArgs {
        super::super::args::parse(list.iter().copied()).unwrap()
    }

    #[test]
    fn dash_t_takes_header_recipients_and_adds_arguments() {
        let message = read(
            &["adele@contoso.com"],
            &["a@x.com"],
            &["B@x.com"],
            &["secret@x.com", "a@x.com"],
        );
        let plan = plan(&args(&["-t", "b@x.com, c@x.com"]), None, &message, &staff()).unwrap();
        assert_eq!(
            plan.recipients,
            ["a@x.com", "B@x.com", "secret@x.com", "c@x.com"]
        );
        assert_eq!(plan.staff_id, "adele");
        assert_eq!(plan.envelope_from, "adele@contoso.com");
        assert_eq!(plan.default_from, None);
        // Without -t only the arguments count.
        let plan = super::plan(&args(&["c@x.com"]), None, &message, &staff()).unwrap();
        assert_eq!(plan.recipients, ["c@x.com"]);
    }

    #[test]
    fn no_recipients_is_a_usage_error() {
        let message = read(&["adele@contoso.com"], &["a@x.com"], &[], &[]);
        let error = plan(&args(&[]), None, &message, &staff()).unwrap_err();
        assert!(
            matches!(&error, PlanError::Usage(m) if m.contains("pass -t")),
            "{error:?}"
        );
        let empty = read(&["adele@contoso.com"], &[], &[], &[]);
        assert!(matches!(
            plan(&args(&["-t"]), None, &empty, &staff()),
            Err(PlanError::Usage(_))
        ));
        assert!(matches!(
            plan(&args(&["not an address"]), None, &message, &staff()),
            Err(PlanError::Usage(_))
        ));
    }

    #[test]
    fn the_staff_member_comes_from_flag_env_from_or_dash_f() {
        let message = read(&["alex@contoso.com"], &["a@x.com"], &[], &[]);
        let to = ["a@x.com"];
        let p = |a: &[&str], env: Option<&str>, m: &ReadMessage| {
            let mut list = a.to_vec();
            list.extend(to);
            plan(&args(&list), env, m, &staff())
        };
        assert_eq!(
            p(&["--staff", "adele"], Some("alex"), &message)
                .unwrap()
                .staff_id,
            "adele"
        );
        assert_eq!(p(&[], Some("adele"), &message).unwrap().staff_id, "adele");
        assert_eq!(p(&[], Some(""), &message).unwrap().staff_id, "alex");
        assert_eq!(p(&[], None, &message).unwrap().staff_id, "alex");
        let no_from = read(&[], &["a@x.com"], &[], &[]);
        let plan = p(
            &["-f", "ADELE@contoso.com", "-F", "Adele V."],
            None,
            &no_from,
        )
        .unwrap();
        assert_eq!(plan.staff_id, "adele");
        assert_eq!(plan.envelope_from, "ADELE@contoso.com");
        assert_eq!(
            plan.default_from,
            Some(Mailbox::new("ADELE@contoso.com", "Adele V."))
        );
        let plan = p(&["--staff", "adele"], None, &no_from).unwrap();
        assert_eq!(
            plan.default_from,
            Some(Mailbox::new("adele@contoso.com", "Adele Vance"))
        );
    }

    #[test]
    fn an_unknown_staff_member_names_the_three_ways() {
        let stranger = read(&["eve@example.com"], &["a@x.com"], &[], &[]);
        let Err(PlanError::NoUser(text)) = plan(&args(&["a@x.com"]), None, &stranger, &staff())
        else {
            panic!("not refused");
        };
        assert!(text.contains("'eve@example.com'"), "{text}");
        assert!(
            text.contains("--staff ID") && text.contains("MAILHOST_STAFF"),
            "{text}"
        );
        let Err(PlanError::NoUser(text)) = plan(
            &args(&["--staff", "nobody", "a@x.com"]),
            None,
            &stranger,
            &staff(),
        ) else {
            panic!("not refused");
        };
        assert!(text.contains("--staff: no staff member 'nobody'"), "{text}");
        let nothing = read(&[], &["a@x.com"], &[], &[]);
        assert!(matches!(
            plan(&args(&["a@x.com"]), None, &nothing, &staff()),
            Err(PlanError::NoUser(t)) if t.contains("no From and no -f")
        ));
    }

    #[test]
    fn line_breaks_in_flags_are_refused() {
        let message = read(&["adele@contoso.com"], &[], &[], &[]);
        for bad in [
            vec!["-f", "adele@contoso.com\r\nBcc: x@y.com", "a@x.com"],
            vec!["-F", "Adele\nBcc: x@y.com", "a@x.com"],
            vec!["a@x.com\nBcc: x@y.com"],
        ] {
            assert!(
                matches!(
                    plan(&args(&bad), None, &message, &staff()),
                    Err(PlanError::Usage(_))
                ),
                "{bad:?}"
            );
        }
    }
}
