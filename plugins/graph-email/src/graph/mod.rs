//! Microsoft Graph mail: authenticated calls (a 401 refreshes the token once), the per-mailbox
//! concurrency limit, sendMail and the large-attachment draft flow.

pub mod errors;
pub mod mime_send;
pub mod send;
pub mod sent_items;
pub mod upload;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mailhost_plugin_api::ProviderError;
use reqwest::StatusCode;
use tokio::sync::Semaphore;

use self::errors::http_error;
use crate::Context;
use crate::auth::{Account, Auth};
use crate::http::{Request, Response};

/// Per app + mailbox semaphores, so concurrent sends stay within Outlook's limit instead of
/// being throttled.
#[derive(Debug, Default)]
pub struct MailboxLimits {
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl MailboxLimits {
    /// The semaphore of `client_id` + `mailbox` allowing `limit` requests at once
    /// (`ConcurrentRequests`; 0 = no limit).
    pub fn of(&self, client_id: &str, mailbox: &str, limit: u64) -> Arc<Semaphore> {
        let permits = match usize::try_from(limit) {
            Ok(0) | Err(_) => Semaphore::MAX_PERMITS,
            Ok(n) => n.min(Semaphore::MAX_PERMITS),
        };
        let key = format!(
            "{}|{}|{permits}",
            client_id.to_ascii_lowercase(),
            mailbox.to_ascii_lowercase()
        );
        match self.limits.lock() {
            Ok(mut limits) => limits
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(permits)))
                .clone(),
            Err(_) => Arc::new(Semaphore::new(permits)),
        }
    }
}

/// Graph calls for one send: the context, the account and the mailbox's concurrency limit.
#[derive(Debug)]
pub struct Graph<'a> {
    /// The call's settings and staff member.
    pub ctx: &'a Context<'a>,
    /// The token source.
    pub auth: &'a Auth,
    /// Who the call signs in as.
    pub account: Account,
    /// The mailbox's concurrency limit.
    pub limit: Arc<Semaphore>,
}

impl Graph<'_> {
    /// Runs an authenticated Graph request. A 401 drops the rejected token and retries once
    /// with a new one (the 401 means the request was not accepted, so this never sends twice).
    ///
    /// # Errors
    /// Sign-in and transport failures; an HTTP error status is returned as a [`Response`].
    pub async fn call(&self, request: Request, what: &str) -> Result<Response, ProviderError> {
        let token = self.auth.token(self.ctx, &self.account).await?;
        let response = self.run(request.clone().bearer(&token), what).await?;
        if response.status != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        log::debug!(
            "graph-email: Graph answered 401 to {what}; getting a new token and trying once more"
        );
        self.auth.reject(&self.account, &token);
        let token = self.auth.token(self.ctx, &self.account).await?;
        self.run(request.bearer(&token), what).await
    }

    /// Runs a request without a token (upload-session PUTs carry their own authorization).
    ///
    /// # Errors
    /// Transport failures.
    pub async fn run(&self, request: Request, what: &str) -> Result<Response, ProviderError> {
        let client = self
            .ctx
            .http
            .client(self.ctx.settings.connect_timeout)
            .map_err(|e| http_error(e, "Microsoft Graph", self.ctx))?;
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| ProviderError::internal("the mailbox concurrency limit was closed"))?;
        self.ctx
            .http
            .execute(&client, &request, &self.ctx.policy())
            .await
            .map_err(|e| http_error(e, &format!("Microsoft Graph ({what})"), self.ctx))
    }
}
