//! The webhook family of the storage contract: where to announce change sets, and the
//! outbox of deliveries.
//!
//! A delivery is written by the change's own transaction (when its change set is
//! recorded), so a committed change is never lost to a crash and a rolled-back one is
//! never announced. The dispatcher (in the server) takes each webhook's oldest pending
//! delivery when it is due and records every attempt here.

use async_trait::async_trait;
use devid_core::change::ChangeKind;
use devid_core::time::Micros;
use serde::Serialize;

use crate::changes::ChangeSet;
use crate::{AccountId, ChangeContext, StoreResult};

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    /// The kinds of change set wanted; empty for all.
    pub kinds: Vec<ChangeKind>,
    pub secret: String,
}

/// A webhook as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// The kinds of change set it receives; empty for all.
    pub kinds: Vec<String>,
    pub created_at: String,
    /// Deliveries waiting (to be sent or retried).
    pub pending: u64,
    /// Deliveries given up on after retrying for 24 hours.
    pub failed: u64,
}

/// One announcement of one change set to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub change_id: i64,
    pub kind: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

/// A delivery due now, with what it takes to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub account: AccountId,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub change: ChangeSet,
    pub attempts: u32,
    /// When retrying stops: 24 hours after the change was committed, or after a
    /// redelivery was asked for.
    pub expires_at: Micros,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Micros,
    /// The receiver answered 2xx.
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// When to try again; `None` with `delivered == false` gives up (failed).
    pub retry_at: Option<Micros>,
}

/// The outbox at a glance, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    pub pending: u64,
    /// When the oldest pending delivery was written.
    pub oldest_pending: Option<Micros>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Registers a webhook; it receives the change sets committed after it, starting with
    /// its own registration when it wants `webhook` changes (a ping).
    async fn create_webhook(&self, ctx: &ChangeContext, new: NewWebhook) -> StoreResult<Webhook>;

    async fn list_webhooks(&self, account: AccountId) -> StoreResult<Vec<Webhook>>;

    /// Deletes a webhook and its deliveries; `false` when the account has none with that id.
    async fn delete_webhook(&self, ctx: &ChangeContext, id: i64) -> StoreResult<bool>;

    /// A webhook's deliveries, newest first, before `before` (a delivery id; 0 for the
    /// newest), at most `limit`; `None` when the account has no such webhook.
    async fn list_deliveries(
        &self,
        account: AccountId,
        webhook: i64,
        before: i64,
        limit: u64,
    ) -> StoreResult<Option<(Vec<Delivery>, bool)>>;

    /// Sends a delivery again (pending, due now, attempts kept); `None` when the account
    /// has no such webhook and delivery.
    async fn redeliver(&self, ctx: &ChangeContext, webhook: i64, delivery: i64) -> StoreResult<Option<Delivery>>;

    /// Each webhook's oldest pending delivery, where it is due by `now`, across accounts:
    /// deliveries to one webhook go out in order, one at a time. One index seek per
    /// webhook, whatever the backlog (a `GROUP BY` over the pending deliveries read the
    /// whole backlog for every delivery: 37,000 drained at 325 a second).
    async fn due_deliveries(&self, now: Micros, limit: u64) -> StoreResult<Vec<DueDelivery>>;

    /// When the next delivery is due (of those at the head of their webhook's queue), if
    /// any is pending.
    async fn next_due(&self) -> StoreResult<Option<Micros>>;

    async fn record_attempt(&self, delivery: i64, attempt: Attempt) -> StoreResult<()>;

    async fn outbox_depth(&self) -> StoreResult<OutboxDepth>;
}

/// The kinds as stored: a comma-separated list, empty for all.
pub(crate) fn kinds_text(kinds: &[ChangeKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
}

pub(crate) fn kinds_list(text: &str) -> Vec<String> {
    text.split(',').filter(|k| !k.is_empty()).map(str::to_string).collect()
}
