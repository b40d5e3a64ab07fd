//! Reading a secret from standard input, in one place for every `--*-stdin` flag
//! (`--password-stdin`, `config set --value-stdin`): with a terminal on stdin the value is typed
//! without echo after a prompt (on the terminal, not stdout); piped input is read as one line,
//! unchanged.

use std::io::{BufRead, IsTerminal};

use crate::error::Error;

/// Reads one secret for `flag` (such as `--password-stdin`); `what` names it in the prompt
/// (`password for staff member 'ada'`).
///
/// # Errors
/// Standard input cannot be read or holds no value.
pub(crate) fn read_secret(flag: &str, what: &str) -> Result<String, Error> {
    let cannot = |e: std::io::Error| {
        Error::Usage(format!(
            "{flag}: cannot read the {what} from standard input: {e}"
        ))
    };
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{}: ", capitalised(what))).map_err(cannot)?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(cannot)?;
        line
    };
    let value = line.strip_suffix('\n').unwrap_or(&line);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(Error::Usage(format!(
            "{flag}: standard input held no {what} (give it as one line)"
        )));
    }
    Ok(value.to_string())
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
