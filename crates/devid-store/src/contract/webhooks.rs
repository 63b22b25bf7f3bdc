//! Contract checks of webhooks and their outbox: a committed change set is queued for
//! every webhook that wants its kind, in the change's own transaction; deliveries to
//! one webhook come due one at a time, in order; attempts are recorded.

use devid_core::change::ChangeKind;
use devid_core::types::ApplicationType;

use super::{account, integration, ok, upload};
use crate::webhooks::{Attempt, NewWebhook};
use crate::{ChangeContext, Store, now_micros};

async fn hook(store: &dyn Store, ctx: &ChangeContext, url: &str, kinds: Vec<ChangeKind>) -> i64 {
    let new = NewWebhook { url: url.into(), kinds, secret: "0123456789abcdef".into() };
    ok(store.create_webhook(ctx, new).await, "create webhook").id
}

pub async fn committed_changes_are_queued_for_the_webhooks_that_want_them(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    let all = hook(store, &ctx, "https://a.example.com/hook", Vec::new()).await;
    let deletes = hook(store, &ctx, "https://b.example.com/hook", vec![ChangeKind::Delete]).await;
    // Another account's change is not announced here.
    let other = account(store, "other").await;
    integration(store, &other, 1, ApplicationType::Github).await;
    ok(upload(store, &other, &[("x@y.com", 1, "x")], false).await, "other upload");
    // A dry run and a refused write announce nothing; a committed upload does.
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice")], true).await, "dry run");
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice")], false).await, "upload");
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice")], false).await, "unchanged: no change set");

    // The webhook for every kind hears of its own registration (a ping), the second
    // webhook's, and the upload; the one for deletes of nothing yet.
    let listed = ok(store.list_webhooks(ctx.account).await, "list");
    assert_eq!(listed.iter().map(|w| (w.id, w.pending)).collect::<Vec<_>>(), [(all, 3), (deletes, 0)]);
    assert_eq!(listed[1].kinds, ["delete"]);
    let (deliveries, _) = ok(store.list_deliveries(ctx.account, all, 0, 10).await, "deliveries").expect("webhook");
    let kinds: Vec<(&str, &str)> = deliveries.iter().map(|d| (d.kind.as_str(), d.status.as_str())).collect();
    assert_eq!(kinds, [("upload", "pending"), ("webhook", "pending"), ("webhook", "pending")], "newest first");

    let due = ok(store.due_deliveries(now_micros() + 1, 10).await, "due");
    assert_eq!(due.len(), 1, "one at a time per webhook");
    assert_eq!(
        (due[0].webhook_id, due[0].url.as_str(), due[0].change.kind.as_str()),
        (all, "https://a.example.com/hook", "webhook")
    );
    assert_eq!(due[0].secret, "0123456789abcdef");
    assert_eq!(Some(due[0].change.id), deliveries.last().map(|d| d.change_id), "the oldest first");
    let depth = ok(store.outbox_depth().await, "depth");
    assert_eq!(depth.pending, 3);
    assert!(depth.oldest_pending.is_some());
    // Another account cannot see or redeliver them.
    assert!(ok(store.list_deliveries(other.account, all, 0, 10).await, "theirs").is_none());
    assert!(ok(store.redeliver(&other, all, deliveries[0].id).await, "theirs").is_none());
}

pub async fn deliveries_to_one_webhook_go_out_in_order_and_attempts_are_recorded(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    let webhook = hook(store, &ctx, "https://a.example.com/hook", vec![ChangeKind::Upload]).await;
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice")], false).await, "first");
    ok(upload(store, &ctx, &[("b@x.com", 1, "bob")], false).await, "second");
    let now = now_micros() + 1;
    let due = ok(store.due_deliveries(now, 10).await, "due");
    assert_eq!(due.len(), 1, "one at a time per webhook");
    let first = due[0].id;
    // It fails: retried later, and nothing else of the webhook goes out meanwhile.
    let retry = now + 60_000_000;
    let failed =
        Attempt { at: now, delivered: false, status: Some(500), error: Some("500".into()), retry_at: Some(retry) };
    ok(store.record_attempt(first, failed).await, "attempt");
    assert!(ok(store.due_deliveries(now + 1, 10).await, "due").is_empty());
    assert_eq!(ok(store.next_due().await, "next"), Some(retry));
    let again = ok(store.due_deliveries(retry, 10).await, "due");
    assert_eq!((again[0].id, again[0].attempts), (first, 1));
    ok(
        store
            .record_attempt(
                first,
                Attempt { at: retry, delivered: true, status: Some(204), error: None, retry_at: None },
            )
            .await,
        "ok",
    );
    let next = ok(store.due_deliveries(retry, 10).await, "due");
    assert_ne!(next[0].id, first, "the second goes out once the first is done");
    // Given up on: failed, and the webhook moves on.
    ok(
        store
            .record_attempt(
                next[0].id,
                Attempt { at: retry, delivered: false, status: None, error: Some("down".into()), retry_at: None },
            )
            .await,
        "give up",
    );
    assert!(ok(store.due_deliveries(retry + 1, 10).await, "due").is_empty());
    let (listed, _) = ok(store.list_deliveries(ctx.account, webhook, 0, 10).await, "list").expect("webhook");
    let states: Vec<(&str, u32, Option<u16>)> =
        listed.iter().map(|d| (d.status.as_str(), d.attempts, d.last_status)).collect();
    assert_eq!(states, [("failed", 1, None), ("delivered", 2, Some(204))]);
    assert!(listed[1].delivered_at.is_some());
    // Redelivered: pending and due now, attempts kept.
    let again = ok(store.redeliver(&ctx, webhook, listed[0].id).await, "redeliver").expect("found");
    assert_eq!((again.status.as_str(), again.attempts), ("pending", 1));
    assert_eq!(ok(store.due_deliveries(now_micros() + 1, 10).await, "due")[0].id, listed[0].id);
    // Deleting the webhook takes its deliveries with it.
    assert!(ok(store.delete_webhook(&ctx, webhook).await, "delete"));
    assert!(!ok(store.delete_webhook(&ctx, webhook).await, "delete again"));
    assert!(ok(store.due_deliveries(now_micros() + 1, 10).await, "due").is_empty());
    assert!(ok(store.list_deliveries(ctx.account, webhook, 0, 10).await, "gone").is_none());
}
