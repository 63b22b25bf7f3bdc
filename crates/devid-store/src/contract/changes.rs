//! Contract checks of change sets: every write that changed something is one change set
//! of the right kind holding exactly its own events, listed oldest first.

use devid_core::change::ChangeKind;
use devid_core::plan::{Provenance, plan_delete};
use devid_core::types::{ApplicationType, Scope};

use super::{account, integration, ok, rows, upload};
use crate::changes::{ChangeQuery, ChangeSet};
use crate::revert::{RevertOptions, RevertOutcome};
use crate::{ChangeContext, NewKey, Store};

async fn feed(store: &dyn Store, ctx: &ChangeContext, query: ChangeQuery) -> Vec<ChangeSet> {
    ok(store.list_changes(ctx.account, ChangeQuery { limit: 100, ..query }).await, "list changes").changes
}

fn kinds(changes: &[ChangeSet]) -> Vec<&str> {
    changes.iter().map(|c| c.kind.as_str()).collect()
}

pub async fn every_write_is_one_change_set_of_its_own_events(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(
        upload(store, &ctx, &[("a@x.com", 1, "alice"), ("b@x.com", 1, "bob"), ("c@x.com", 1, "carol")], false).await,
        "seed",
    );
    // Nothing changes: no change set.
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice")], false).await, "same again");
    // A dry run changes nothing either.
    ok(upload(store, &ctx, &[("z@x.com", 1, "alice")], true).await, "dry run");
    ok(upload(store, &ctx, &[("z@x.com", 1, "alice")], false).await, "move");
    let infos = ok(store.integration_infos(ctx.account).await, "infos");
    let plan = ok(plan_delete(rows(&[("", 1, "bob")]), &infos).map_err(|p| p.into_groups()), "plan");
    ok(store.delete_identities(&ctx, plan, false).await, "delete");
    let plan = ok(plan_delete(rows(&[("", 1, "carol")]), &infos).map_err(|p| p.into_groups()), "plan");
    ok(store.set_locked(&ctx, plan, true).await, "lock");
    ok(store.create_key(&ctx, NewKey { scopes: vec![Scope::Admin], label: "k".into(), expires_at: None }).await, "key");

    let changes = feed(store, &ctx, ChangeQuery::default()).await;
    assert_eq!(kinds(&changes), ["integration", "upload", "upload", "delete", "lock", "key"]);
    assert!(changes.windows(2).all(|w| w[0].id < w[1].id), "ids increase: {changes:?}");
    let seed = &changes[1];
    assert_eq!((seed.events, seed.counts.get("identity.created")), (3, Some(&3)));
    assert_eq!((seed.key_id.as_deref(), seed.request_id.as_deref()), (Some("test-key"), Some("req-1")));
    assert_eq!(changes[2].counts.get("identity.updated").or(changes[2].counts.get("identity.reassigned")), Some(&1));

    // A change set's events are its own, in order, paged by event id.
    let first = ok(store.change_events(ctx.account, seed.id, 0, 2).await, "events");
    assert_eq!(first.events.len(), 2);
    assert!(first.has_next);
    let rest = ok(store.change_events(ctx.account, seed.id, first.events[1].id, 2).await, "events");
    assert_eq!(rest.events.len(), 1);
    assert!(!rest.has_next);
    let identities: Vec<_> =
        first.events.iter().chain(&rest.events).map(|e| e.identity.clone().unwrap_or_default()).collect();
    assert_eq!(identities, ["alice", "bob", "carol"]);
    let moved = ok(store.change_events(ctx.account, changes[2].id, 0, 10).await, "events").events;
    assert_eq!(moved.len(), 1);
    assert_eq!((moved[0].old_email.as_deref(), moved[0].new_email.as_deref()), (Some("a@x.com"), Some("z@x.com")));
    assert_eq!(ok(store.get_change(ctx.account, seed.id).await, "get").as_ref(), Some(seed));
}

pub async fn the_change_feed_pages_and_filters(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    for i in 0..5 {
        let email = format!("dev{i}@x.com");
        let identity = format!("dev{i}");
        ok(upload(store, &ctx, &[(email.as_str(), 1, identity.as_str())], false).await, "upload");
    }
    let all = feed(store, &ctx, ChangeQuery::default()).await;
    assert_eq!(all.len(), 6);
    // Keyset paging: each change set once, in order.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page =
            ok(store.list_changes(ctx.account, ChangeQuery { after, limit: 2, ..Default::default() }).await, "page");
        seen.extend(page.changes.iter().map(|c| c.id));
        match page.changes.last() {
            Some(last) if page.has_next => after = last.id,
            _ => break,
        }
    }
    assert_eq!(seen, all.iter().map(|c| c.id).collect::<Vec<_>>());
    let uploads = feed(store, &ctx, ChangeQuery { kind: Some(ChangeKind::Upload), ..Default::default() }).await;
    assert_eq!(uploads.len(), 5);
    let about_dev3 = feed(store, &ctx, ChangeQuery { identity: Some("dev3".into()), ..Default::default() }).await;
    assert_eq!(about_dev3.iter().map(|c| c.id).collect::<Vec<_>>(), [all[4].id]);
    let by_email = feed(store, &ctx, ChangeQuery { email: Some("dev1@x.com".into()), ..Default::default() }).await;
    assert_eq!(by_email.iter().map(|c| c.id).collect::<Vec<_>>(), [all[2].id]);
    let by_key = feed(store, &ctx, ChangeQuery { key_id: Some("other".into()), ..Default::default() }).await;
    assert!(by_key.is_empty());
    let at = &all[3].at;
    let from = ok(devid_core::time::parse_rfc3339(at), "time");
    let since = feed(store, &ctx, ChangeQuery { from: Some(from), ..Default::default() }).await;
    assert_eq!(since.first().map(|c| c.id), Some(all[3].id));

    // An address is found where an identity arrived, where it left, and where it was deleted.
    ok(upload(store, &ctx, &[("moved@x.com", 1, "dev1")], false).await, "move");
    let infos = ok(store.integration_infos(ctx.account).await, "infos");
    let plan = ok(plan_delete(rows(&[("", 1, "dev1")]), &infos).map_err(|p| p.into_groups()), "plan");
    ok(store.delete_identities(&ctx, plan, false).await, "delete");
    let later = feed(store, &ctx, ChangeQuery { after: all[5].id, ..Default::default() }).await;
    assert_eq!(kinds(&later), ["upload", "delete"]);
    let ids = |changes: Vec<ChangeSet>| changes.iter().map(|c| c.id).collect::<Vec<_>>();
    let by_email = |email: &str| ChangeQuery { email: Some(email.into()), ..Default::default() };
    assert_eq!(ids(feed(store, &ctx, by_email("dev1@x.com")).await), [all[2].id, later[0].id]);
    assert_eq!(ids(feed(store, &ctx, by_email("moved@x.com")).await), [later[0].id, later[1].id]);
    // So is one named by a change set too large to list its addresses in its own write.
    let bulk: Vec<(String, i64, String)> =
        (0..6_000).map(|i| (format!("bulk{}@x.com", i % 3), 1, format!("bulk{i}"))).collect();
    let bulk: Vec<(&str, i64, &str)> = bulk.iter().map(|(e, i, id)| (e.as_str(), *i, id.as_str())).collect();
    ok(upload(store, &ctx, &bulk, false).await, "bulk upload");
    let last = feed(store, &ctx, ChangeQuery { after: later[1].id, ..Default::default() }).await;
    assert_eq!((kinds(&last), last.first().map(|c| c.events)), (vec!["upload"], Some(6_000)));
    assert_eq!(ids(feed(store, &ctx, by_email("bulk2@x.com")).await), [last[0].id]);
    assert!(feed(store, &ctx, by_email("bulk3@x.com")).await.is_empty());
}

pub async fn change_sets_stay_in_their_account(store: &dyn Store) {
    let a = account(store, "a").await;
    let b = account(store, "b").await;
    integration(store, &a, 1, ApplicationType::Github).await;
    integration(store, &b, 1, ApplicationType::Github).await;
    ok(upload(store, &a, &[("a1@x.com", 1, "a1")], false).await, "a");
    ok(upload(store, &b, &[("b1@x.com", 1, "b1"), ("b2@x.com", 1, "b2")], false).await, "b");
    ok(upload(store, &a, &[("a2@x.com", 1, "a2")], false).await, "a again");
    let changes_a = feed(store, &a, ChangeQuery::default()).await;
    let changes_b = feed(store, &b, ChangeQuery::default()).await;
    assert_eq!((changes_a.len(), changes_b.len()), (3, 2));
    // a's last upload holds its own event only, though b wrote in between.
    let last_a = ok(store.change_events(a.account, changes_a[2].id, 0, 10).await, "events").events;
    assert_eq!(last_a.iter().map(|e| e.identity.clone().unwrap_or_default()).collect::<Vec<_>>(), ["a2"]);
    assert_eq!(ok(store.get_change(b.account, changes_a[2].id).await, "get"), None);
    assert!(ok(store.change_events(b.account, changes_a[2].id, 0, 10).await, "events").events.is_empty());
}

/// Writes a history of several kinds over two accounts, their writes interleaved, for
/// the checks that history from before change sets is migrated into them: returns
/// each account's feed as it was recorded live.
pub async fn history_for_migration(store: &dyn Store) -> Vec<(ChangeContext, Vec<ChangeSet>)> {
    let a = account(store, "a").await;
    let b = ChangeContext { request_id: Some("req-b".into()), ..account(store, "b").await };
    integration(store, &a, 1, ApplicationType::Github).await;
    integration(store, &b, 1, ApplicationType::Github).await;
    let a2 = ChangeContext { request_id: Some("req-2".into()), ..a.clone() };
    ok(upload(store, &a2, &[("a1@x.com", 1, "a1"), ("a2@x.com", 1, "a2")], false).await, "a upload");
    ok(upload(store, &b, &[("b1@x.com", 1, "b1")], false).await, "b upload");
    let a3 = ChangeContext { request_id: Some("req-3".into()), ..a.clone() };
    ok(upload(store, &a3, &[("moved@x.com", 1, "a1")], false).await, "a move");
    let infos = ok(store.integration_infos(a.account).await, "infos");
    let plan = ok(plan_delete(rows(&[("", 1, "a2")]), &infos).map_err(|p| p.into_groups()), "plan");
    let a4 = ChangeContext { request_id: Some("req-4".into()), ..a.clone() };
    ok(store.delete_identities(&a4, plan, false).await, "a delete");
    let mut feeds = Vec::new();
    for ctx in [a, b] {
        let changes = feed(store, &ctx, ChangeQuery::default()).await;
        feeds.push((ctx, changes));
    }
    feeds
}

/// After the migration, each account's feed must read as it did when recorded live
/// (ids aside: the migration numbers them afresh).
pub async fn history_was_migrated(store: &dyn Store, recorded: &[(ChangeContext, Vec<ChangeSet>)]) {
    for (ctx, live) in recorded {
        let migrated = feed(store, ctx, ChangeQuery::default()).await;
        let strip = |c: &ChangeSet| ChangeSet { id: 0, ..c.clone() };
        assert_eq!(migrated.iter().map(strip).collect::<Vec<_>>(), live.iter().map(strip).collect::<Vec<_>>());
        for (m, l) in migrated.iter().zip(live) {
            let events = |id| async move { ok(store.change_events(ctx.account, id, 0, 100).await, "events").events };
            assert_eq!(events(m.id).await, events(l.id).await);
        }
    }
    // The email filter finds migrated history too (an address it arrived at, left, deleted at).
    let a = &recorded[0].0;
    let kinds_naming = |email: &'static str| async move {
        let changes = feed(store, a, ChangeQuery { email: Some(email.into()), ..Default::default() }).await;
        changes.iter().map(|c| c.kind.clone()).collect::<Vec<_>>()
    };
    assert_eq!(kinds_naming("a1@x.com").await, ["upload", "upload"]);
    assert_eq!(kinds_naming("a2@x.com").await, ["upload", "delete"]);
    assert_eq!(kinds_naming("moved@x.com").await, ["upload"]);
}

/// (email, identity, created at, source, locked) of every identity, by identity.
async fn state(store: &dyn Store, ctx: &ChangeContext) -> Vec<(String, String, String, String, bool)> {
    let mut rows: Vec<_> = super::dump(store, ctx)
        .await
        .into_iter()
        .map(|r| (r.identity, r.email, r.created_at, r.source, r.locked))
        .collect();
    rows.sort();
    rows.into_iter().map(|(i, e, c, s, l)| (e, i, c, s, l)).collect()
}

async fn revert(store: &dyn Store, ctx: &ChangeContext, id: i64, force: bool, dry_run: bool) -> RevertOutcome {
    ok(store.revert_change(ctx, id, RevertOptions { force, dry_run }).await, "revert")
}

async fn last_change(store: &dyn Store, ctx: &ChangeContext) -> ChangeSet {
    feed(store, ctx, ChangeQuery::default()).await.pop().expect("a change set")
}

pub async fn reverts_undo_uploads_deletes_and_locks_exactly(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    let locked_row = [("kept@x.com", 1, "Kept")];
    ok(
        super::locks::upload_as(store, &ctx, &locked_row, Provenance::Suggestion, true, false, false).await,
        "accepted, locked",
    );
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice"), ("b@x.com", 1, "bob")], false).await, "seed");
    let before = state(store, &ctx).await;

    // An upload that creates one identity and moves two (one of them locked, forced).
    ok(
        super::locks::upload_as(
            store,
            &ctx,
            &[("new@x.com", 1, "carol"), ("moved@x.com", 1, "alice"), ("moved@x.com", 1, "kept")],
            Provenance::Csv,
            false,
            true,
            false,
        )
        .await,
        "upload",
    );
    let upload_change = last_change(store, &ctx).await;
    assert_ne!(state(store, &ctx).await, before);

    // A dry run answers the counts and changes nothing.
    let RevertOutcome::Reverted { change: None, summary, .. } =
        revert(store, &ctx, upload_change.id, false, true).await
    else {
        panic!("a dry run reverts with no change set")
    };
    assert_eq!((summary.deleted, summary.moved_back, summary.skipped), (1, 2, 0));
    assert_eq!(last_change(store, &ctx).await, upload_change, "nothing recorded");

    let RevertOutcome::Reverted { change: Some(revert_change), summary: applied, .. } =
        revert(store, &ctx, upload_change.id, false, false).await
    else {
        panic!("reverted")
    };
    assert_eq!(applied, summary);
    assert_eq!((revert_change.kind.as_str(), revert_change.reverts), ("revert", Some(upload_change.id)));
    assert_eq!(state(store, &ctx).await, before, "back exactly: emails, spelling, provenance, lock, createdAt");

    // The revert is itself a change set, and reverting it redoes the upload.
    let after_upload: Vec<_> = {
        ok(revert(store, &ctx, revert_change.id, false, false).await.into_reverted(), "redo");
        state(store, &ctx).await
    };
    assert!(after_upload.iter().any(|r| r.1 == "carol"));

    // A delete comes back with its original createdAt, provenance and lock.
    let snapshot = state(store, &ctx).await;
    let infos = ok(store.integration_infos(ctx.account).await, "infos");
    let plan = ok(plan_delete(rows(&[("", 1, "kept"), ("", 1, "bob")]), &infos).map_err(|p| p.into_groups()), "plan");
    ok(store.delete_identities(&ctx, plan, false).await, "delete");
    let delete_change = last_change(store, &ctx).await;
    ok(revert(store, &ctx, delete_change.id, false, false).await.into_reverted(), "undelete");
    assert_eq!(state(store, &ctx).await, snapshot);

    // A lock is undone too.
    let plan = ok(plan_delete(rows(&[("", 1, "bob")]), &infos).map_err(|p| p.into_groups()), "plan");
    ok(store.set_locked(&ctx, plan, true).await, "lock");
    let lock_change = last_change(store, &ctx).await;
    ok(revert(store, &ctx, lock_change.id, false, false).await.into_reverted(), "unlock");
    assert_eq!(state(store, &ctx).await, snapshot);
}

pub async fn reverts_refuse_what_later_changes_touched_unless_forced(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice"), ("b@x.com", 1, "bob")], false).await, "first");
    let first = last_change(store, &ctx).await;
    ok(upload(store, &ctx, &[("later@x.com", 1, "ALICE")], false).await, "later move, another spelling");
    let later = last_change(store, &ctx).await;
    let before = state(store, &ctx).await;
    match revert(store, &ctx, first.id, false, false).await {
        RevertOutcome::Conflicts { total, rows } => {
            assert_eq!(total, 1);
            assert_eq!((rows[0].integration_id, rows[0].identity.as_str()), (1, "alice"));
            assert_eq!(rows[0].later_changes, [later.id]);
        }
        other => panic!("expected conflicts, got {other:?}"),
    }
    assert_eq!(state(store, &ctx).await, before, "nothing applied");
    assert_eq!(last_change(store, &ctx).await, later);
    // Forced: bob is reverted, alice skipped and reported.
    let RevertOutcome::Reverted { summary, skipped, .. } = revert(store, &ctx, first.id, true, false).await else {
        panic!("forced revert applies")
    };
    assert_eq!((summary.deleted, summary.skipped), (1, 1));
    assert_eq!(skipped.iter().map(|s| s.identity.as_str()).collect::<Vec<_>>(), ["alice"]);
    let left: Vec<String> = state(store, &ctx).await.into_iter().map(|r| r.1).collect();
    assert_eq!(left, ["ALICE"]);
    // Changes that are not identity changes have no inverse here; unknown ids none.
    let integration_change = feed(store, &ctx, ChangeQuery::default()).await[0].clone();
    assert_eq!(integration_change.kind, "integration");
    assert!(matches!(revert(store, &ctx, integration_change.id, false, false).await, RevertOutcome::NotRevertible(_)));
    assert!(matches!(revert(store, &ctx, 987_654, false, false).await, RevertOutcome::NotFound));
    let other = account(store, "other").await;
    assert!(matches!(revert(store, &other, first.id, false, false).await, RevertOutcome::NotFound));
}
