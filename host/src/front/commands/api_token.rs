//! `mailhost api-token create|list|revoke`: the bearer tokens of the HTTP API. A token is
//! printed once, when made, on stdout alone (so `TOKEN=$(mailhost api-token create erp)`
//! works); mail.db keeps only its SHA-256. Listings show names and dates, never tokens or
//! hashes.

use serde_json::json;

use super::{OK, print, print_json, table};
use crate::config::home::Home;
use crate::error::Error;
use crate::front::cli::ApiTokenCommand;
use crate::front::http::tokens::{self, TokenError};

pub(super) fn run(home: &Home, command: ApiTokenCommand) -> Result<u8, Error> {
    let outbox = super::email::open_store(home)?;
    match command {
        ApiTokenCommand::Create { name } => {
            let (token, _record) = tokens::create(&outbox, &name).map_err(error)?;
            super::audit::note(home, "api-token create", json!({"name": name}));
            print(&token)?;
            eprintln!(
                "mailhost: API token '{name}' created; it is shown only this once, so store it now (send it as `Authorization: Bearer <token>`; `mailhost api-token revoke {name}` withdraws it)"
            );
            OK
        }
        ApiTokenCommand::List { json } => {
            let records = outbox.api_tokens()?;
            if json {
                return print_json(&json!({ "tokens": records })).map(|()| 0);
            }
            if records.is_empty() {
                print("no API tokens: make one with `mailhost api-token create NAME`")?;
                return OK;
            }
            let mut rows = vec![vec![
                "NAME".to_string(),
                "CREATED".to_string(),
                "LAST USED".to_string(),
            ]];
            rows.extend(records.iter().map(|r| {
                vec![
                    r.name.clone(),
                    r.created_at.to_string(),
                    r.last_used_at
                        .map_or_else(|| "never".to_string(), |t| t.to_string()),
                ]
            }));
            print(&table(&rows))?;
            OK
        }
        ApiTokenCommand::Revoke { name } => {
            tokens::revoke(&outbox, &name).map_err(error)?;
            super::audit::note(home, "api-token revoke", json!({"name": name}));
            print(&format!("revoked API token '{name}'"))?;
            OK
        }
    }
}

/// Input errors are exit 2; store errors keep their own exit status.
fn error(error: TokenError) -> Error {
    match error {
        TokenError::Store(e) => Error::Outbox(e),
        other => Error::Usage(other.to_string()),
    }
}
