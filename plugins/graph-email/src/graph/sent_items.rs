//! Exactly once: finding a sent message again in the sending mailbox's Sent Items (Microsoft's
//! advice, microsoft-graph-docs#3766; `GRAPH.md` §7).
//!
//! Every structured message carries the single-value extended property [`MAILHOST_ID_PROPERTY`]
//! holding the email's id. When an outcome is in doubt (a 5xx, a timeout after the request
//! left), the provider looks for it with
//! `GET /{mailbox}/mailFolders/SentItems/messages?$filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '<id>')&$select=id,internetMessageId,sentDateTime`,
//! or by `internetMessageId eq '<Message-ID>'` for messages sent as MIME. Found means sent;
//! absent once `ReconcileWaitSeconds` have passed since the first attempt means not sent;
//! anything else stays unknown. With `SaveToSentItems` false there is no copy to find.

use std::time::{Duration, Instant};

use mailhost_plugin_api::{ProviderError, Receipt, ReconcileOutcome, ReconcileRequest};
use reqwest::Method;

use super::Graph;
use super::errors::{Doing, graph_error};
use super::send::Route;
use crate::http::{Request, Safety};
use crate::settings::{RECONCILE_WAIT, SAVE_TO_SENT_ITEMS};

/// mailhost's property set GUID (fixed; never change it, or sent mail can no longer be found).
pub const PROPERTY_SET: &str = "{8b0c5c1e-4f3a-4d7e-9a26-6d1f0e2b7c53}";
/// The single-value extended property holding the email's id on every structured message.
pub const MAILHOST_ID_PROPERTY: &str =
    "String {8b0c5c1e-4f3a-4d7e-9a26-6d1f0e2b7c53} Name MailhostId";

/// A message found in Sent Items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Graph's item id.
    pub id: String,
    /// The Message-ID Exchange gave it.
    pub internet_message_id: String,
    /// When it was sent (ISO 8601).
    pub sent_date_time: String,
}

/// An OData string literal: single quotes, inner quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The `$filter` finding the message tagged with `email_id`.
pub fn property_filter(email_id: &str) -> String {
    format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq {} and ep/value eq {})",
        literal(MAILHOST_ID_PROPERTY),
        literal(email_id)
    )
}

/// The `$filter` finding the message with Message-ID `internet_message_id`.
pub fn message_id_filter(internet_message_id: &str) -> String {
    format!("internetMessageId eq {}", literal(internet_message_id))
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

async fn query(
    graph: &Graph<'_>,
    route: &Route,
    filter: &str,
) -> Result<Option<Found>, ProviderError> {
    let mut url = graph.ctx.settings.graph_url(&format!(
        "{}/mailFolders/SentItems/messages",
        route.mailbox_path
    ));
    url.set_query(Some(&format!(
        "$filter={}&$select=id,internetMessageId,sentDateTime&$top=1",
        encode(filter)
    )));
    let response = graph
        .call(
            Request::new(Method::GET, url, Safety::Idempotent),
            "Sent Items lookup",
        )
        .await?;
    if !response.status.is_success() {
        return Err(graph_error(
            graph.ctx,
            Doing {
                what: "looking for the email in Sent Items (needs Mail.Read or Mail.ReadWrite)",
                from: route.from.address.as_str(),
                mode: graph.account.mode,
                other_mailbox: route.mailbox_path != "me"
                    && !graph.ctx.staff.owns(route.from.address.as_str()),
            },
            &response,
        ));
    }
    let json = response.json().unwrap_or_default();
    let Some(item) = json["value"].as_array().and_then(|v| v.first()) else {
        return Ok(None);
    };
    let text = |name: &str| item[name].as_str().unwrap_or("").to_string();
    Ok(Some(Found {
        id: text("id"),
        internet_message_id: text("internetMessageId"),
        sent_date_time: text("sentDateTime"),
    }))
}

/// Looks for the email in the Sent Items of `route`'s mailbox: by the mailhost id property,
/// then by `internet_message_id` (messages sent as MIME carry no property).
///
/// # Errors
/// The lookup failed (permissions, network); the error says what to change.
pub async fn find(
    graph: &Graph<'_>,
    route: &Route,
    email_id: &str,
    internet_message_id: &str,
) -> Result<Option<Found>, ProviderError> {
    if !email_id.is_empty()
        && let Some(found) = query(graph, route, &property_filter(email_id)).await?
    {
        return Ok(Some(found));
    }
    let internet_message_id = internet_message_id.trim();
    if !internet_message_id.is_empty() {
        return query(graph, route, &message_id_filter(internet_message_id)).await;
    }
    Ok(None)
}

/// The receipt of a message found in Sent Items.
pub fn receipt_of(found: &Found, route: &Route, why: &str) -> Receipt {
    Receipt {
        message_id: found.internet_message_id.clone().into(),
        request_id: String::new().into(),
        detail: format!(
            "found in the Sent Items of {} (sent {}; {why})",
            route.from.address, found.sent_date_time
        )
        .into(),
    }
}

/// What a bounded look in Sent Items after an ambiguous answer showed.
#[derive(Debug)]
pub enum Settled {
    /// The message is there: it was sent.
    Sent(Found),
    /// Still absent `ReconcileWaitSeconds` after the first attempt: it was not sent.
    Absent,
    /// Not found within the time allowed, or no way to look: in doubt.
    Unknown(String),
}

/// After an ambiguous answer (`why`), looks in Sent Items until the message is found, proven
/// absent (`ReconcileWaitSeconds` after `first_attempt`), or `MaxRetryWaitSeconds` have been
/// spent waiting.
pub async fn settle(
    graph: &Graph<'_>,
    route: &Route,
    email_id: &str,
    first_attempt: Instant,
    retry_after: Option<Duration>,
    why: &str,
) -> Settled {
    let settings = graph.ctx.settings;
    if !settings.save_to_sent_items {
        return Settled::Unknown(format!(
            "{why}, and with {SAVE_TO_SENT_ITEMS}=false there is no Sent Items copy to check, so it is not sent again"
        ));
    }
    if email_id.is_empty() {
        return Settled::Unknown(format!("{why}, and the email has no id to look it up by"));
    }
    let started = Instant::now();
    let budget = settings.max_retry_wait;
    let mut wait = retry_after
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(250), Duration::from_secs(10));
    let mut lookups = 0u32;
    loop {
        let left = budget.saturating_sub(started.elapsed());
        tokio::time::sleep(wait.min(left)).await;
        lookups += 1;
        match find(graph, route, email_id, "").await {
            Ok(Some(found)) => {
                log::info!(
                    "graph-email: email {email_id}: {why}, but it is in Sent Items ({} lookups): not sending it again",
                    lookups
                );
                return Settled::Sent(found);
            }
            Ok(None) if first_attempt.elapsed() >= settings.reconcile_wait => {
                log::info!(
                    "graph-email: email {email_id}: {why}, and it is not in Sent Items {} s after the first attempt: sending it again",
                    first_attempt.elapsed().as_secs()
                );
                return Settled::Absent;
            }
            Ok(None) => {}
            Err(error) => {
                return Settled::Unknown(format!(
                    "{why}, and looking in Sent Items failed: {}",
                    error.message
                ));
            }
        }
        if started.elapsed() >= budget {
            return Settled::Unknown(format!(
                "{why}, and it was not in the Sent Items of {} within {} s ({RECONCILE_WAIT} is {} s), so it is not sent again now; `mailhost email reconcile` settles it later",
                route.from.address,
                budget.as_secs(),
                settings.reconcile_wait.as_secs()
            ));
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// The provider's `reconcile`: SENT when the email is in Sent Items, NOT_SENT when it is still
/// absent `ReconcileWaitSeconds` after the first attempt, UNKNOWN otherwise.
pub async fn reconcile(
    graph: &Graph<'_>,
    route: &Route,
    request: &ReconcileRequest,
    now_unix: i64,
) -> ReconcileOutcome {
    let settings = graph.ctx.settings;
    let email_id = request.request.message.id.as_str();
    if !settings.save_to_sent_items {
        return ReconcileOutcome::unknown(&format!(
            "{SAVE_TO_SENT_ITEMS} is false, so Microsoft keeps no Sent Items copy that would prove the email was sent or not: check with the recipients, then resend it with --force if it did not arrive (or set {SAVE_TO_SENT_ITEMS}=true for later emails)"
        ));
    }
    match find(graph, route, email_id, request.internet_message_id.as_str()).await {
        Ok(Some(found)) => {
            let receipt = receipt_of(&found, route, "reconciled");
            ReconcileOutcome::sent(receipt.clone(), receipt.detail.as_str())
        }
        Ok(None) => {
            let waited = now_unix.saturating_sub(request.first_attempt_unix);
            let wait = i64::try_from(settings.reconcile_wait.as_secs()).unwrap_or(i64::MAX);
            if waited >= wait {
                ReconcileOutcome::not_sent(&format!(
                    "not in the Sent Items of {} {waited} s after the first attempt ({RECONCILE_WAIT} is {wait} s): it was not sent",
                    route.from.address
                ))
            } else {
                ReconcileOutcome::unknown(&format!(
                    "not in the Sent Items of {} yet; Exchange may take up to {RECONCILE_WAIT}={wait} s to file the copy: ask again in {} s",
                    route.from.address,
                    wait - waited
                ))
            }
        }
        Err(error) => {
            ReconcileOutcome::unknown(&format!("could not look in Sent Items: {}", error.message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_graphs() {
        assert_eq!(
            property_filter("e-1"),
            "singleValueExtendedProperties/Any(ep: ep/id eq 'String {8b0c5c1e-4f3a-4d7e-9a26-6d1f0e2b7c53} Name MailhostId' and ep/value eq 'e-1')"
        );
        assert_eq!(
            message_id_filter("<o'brien@mailhost>"),
            "internetMessageId eq '<o''brien@mailhost>'"
        );
        assert_eq!(encode("a b+c"), "a%20b%2Bc");
    }
}
