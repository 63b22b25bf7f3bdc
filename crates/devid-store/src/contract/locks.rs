//! Contract checks of provenance and locks: every mapping says how it was made, and a
//! locked one moves only when an upload is forced.

use devid_core::plan::{Provenance, plan_delete, plan_upload};
use devid_core::types::ApplicationType;

use super::{account, dump, integration, ok, rows, upload};
use crate::{AuditQuery, ChangeContext, IdentityRecord, Store, StoreError, UploadSummary};

pub(super) async fn upload_as(
    store: &dyn Store,
    ctx: &ChangeContext,
    data: &[(&str, i64, &str)],
    provenance: Provenance,
    lock: bool,
    force: bool,
    dry_run: bool,
) -> Result<UploadSummary, StoreError> {
    let infos = ok(store.integration_infos(ctx.account).await, "integration infos");
    let mut plan = ok(plan_upload(rows(data), &infos).map_err(|p| p.into_groups()), "plan");
    plan.provenance = provenance;
    plan.lock = lock;
    plan.force = force;
    store.apply_upload(ctx, plan, dry_run).await
}

async fn set_locked(
    store: &dyn Store,
    ctx: &ChangeContext,
    data: &[(i64, &str)],
    locked: bool,
) -> crate::locks::LockSummary {
    let infos = ok(store.integration_infos(ctx.account).await, "integration infos");
    let named: Vec<(&str, i64, &str)> = data.iter().map(|(i, k)| ("", *i, *k)).collect();
    let plan = ok(plan_delete(rows(&named), &infos).map_err(|p| p.into_groups()), "plan");
    ok(store.set_locked(ctx, plan, locked).await, "set locked")
}

fn record<'a>(records: &'a [IdentityRecord], identity: &str) -> &'a IdentityRecord {
    records.iter().find(|r| r.identity == identity).unwrap_or_else(|| panic!("{identity} is listed"))
}

pub async fn every_mapping_records_how_it_was_made(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(upload(store, &ctx, &[("jane@corp.com", 1, "jdoe")], false).await, "upload");
    ok(upload_as(store, &ctx, &[("bob@corp.com", 1, "bob")], Provenance::Csv, false, false, false).await, "csv");
    ok(
        upload_as(store, &ctx, &[("ann@corp.com", 1, "ann")], Provenance::Suggestion, true, false, false).await,
        "accepted suggestion",
    );
    let records = dump(store, &ctx).await;
    assert_eq!((record(&records, "jdoe").source.as_str(), record(&records, "jdoe").locked), ("upload", false));
    assert_eq!((record(&records, "bob").source.as_str(), record(&records, "bob").locked), ("csv", false));
    assert_eq!((record(&records, "ann").source.as_str(), record(&records, "ann").locked), ("suggestion", true));
    // A move records its own provenance; an unchanged row keeps what it had.
    ok(
        upload_as(
            store,
            &ctx,
            &[("jane@corp.com", 1, "bob"), ("jane@corp.com", 1, "jdoe")],
            Provenance::PreviousApi,
            false,
            false,
            false,
        )
        .await,
        "previous api",
    );
    let records = dump(store, &ctx).await;
    assert_eq!(record(&records, "bob").source, "previous-api");
    assert_eq!(record(&records, "jdoe").source, "upload");
}

pub async fn locked_identities_move_only_when_forced(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(upload(store, &ctx, &[("jane@corp.com", 1, "jdoe"), ("bob@corp.com", 1, "bob")], false).await, "upload");
    let summary = set_locked(store, &ctx, &[(1, "JDoe"), (1, "ghost")], true).await;
    assert_eq!((summary.received, summary.changed, summary.not_found), (2, 1, 1), "{summary:?}");
    assert_eq!(set_locked(store, &ctx, &[(1, "jdoe")], true).await.unchanged, 1, "locking twice changes nothing");
    let before = dump(store, &ctx).await;
    assert!(record(&before, "jdoe").locked);

    // Moving the locked one (beside an allowed move and a new row) applies nothing.
    let moves = [("mallory@corp.com", 1, "jdoe"), ("mallory@corp.com", 1, "bob"), ("new@corp.com", 1, "new")];
    for dry_run in [true, false] {
        match upload_as(store, &ctx, &moves, Provenance::Upload, false, false, dry_run).await {
            Err(StoreError::Locked { total, rows }) => {
                assert_eq!(total, 1);
                assert_eq!(rows.len(), 1);
                assert_eq!((rows[0].identity.as_str(), rows[0].integration_id), ("jdoe", 1));
                assert_eq!(
                    (rows[0].locked_to.as_str(), rows[0].requested.as_str()),
                    ("jane@corp.com", "mallory@corp.com")
                );
            }
            other => panic!("a move of a locked identity is refused (dry run {dry_run}): {other:?}"),
        }
        assert_eq!(dump(store, &ctx).await, before, "nothing applied (dry run {dry_run})");
    }
    // The same mapping again is no move: allowed.
    ok(upload(store, &ctx, &[("jane@corp.com", 1, "jdoe")], false).await, "re-upload of a locked mapping");

    let forced = ok(upload_as(store, &ctx, &moves, Provenance::Upload, false, true, false).await, "forced");
    assert_eq!((forced.reassigned, forced.created), (2, 1));
    let after = dump(store, &ctx).await;
    assert_eq!(record(&after, "jdoe").email, "mallory@corp.com");
    assert!(!record(&after, "jdoe").locked, "a forced move by an upload leaves the identity unlocked");

    ok(upload(store, &ctx, &[("jane@corp.com", 1, "bob")], false).await, "lock");
    set_locked(store, &ctx, &[(1, "bob")], true).await;
    assert_eq!(set_locked(store, &ctx, &[(1, "bob")], false).await.changed, 1);
    ok(upload(store, &ctx, &[("bob@corp.com", 1, "bob")], false).await, "an unlocked identity moves again");

    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit");
    let actions: Vec<&str> = audit.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "identity.locked").count(), 2, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "identity.unlocked").count(), 1, "{actions:?}");
}

pub async fn large_uploads_refuse_locked_moves_too(store: &dyn Store) {
    // Beyond the sizes at which backends switch to their bulk paths.
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    let first: Vec<(String, i64, String)> =
        (0..6_000).map(|i| (format!("dev{i}@corp.com"), 1, format!("dev{i}@corp.com"))).collect();
    ok(upload(store, &ctx, &super::refs(&first), false).await, "upload");
    set_locked(store, &ctx, &[(1, "dev4321@corp.com"), (1, "dev17@corp.com")], true).await;
    let moved: Vec<(String, i64, String)> =
        (0..6_000).map(|i| ("someone@corp.com".to_string(), 1, format!("dev{i}@corp.com"))).collect();
    for dry_run in [true, false] {
        match upload_as(store, &ctx, &super::refs(&moved), Provenance::Csv, false, false, dry_run).await {
            Err(StoreError::Locked { total, rows }) => {
                assert_eq!(total, 2);
                let mut identities: Vec<&str> = rows.iter().map(|r| r.identity.as_str()).collect();
                identities.sort_unstable();
                assert_eq!(identities, ["dev17@corp.com", "dev4321@corp.com"]);
            }
            other => panic!("a large upload moving locked identities is refused (dry run {dry_run}): {other:?}"),
        }
    }
    let query = crate::IdentityQuery { emails: vec!["someone@corp.com".into()], ..Default::default() };
    let moved_away = ok(store.list_identities(ctx.account, query).await, "listing").total_count;
    assert_eq!(moved_away, 0, "nothing of the refused upload was applied");
}

pub async fn locks_stay_in_their_account(store: &dyn Store) {
    let acme = account(store, "acme").await;
    let other = account(store, "other").await;
    for ctx in [&acme, &other] {
        integration(store, ctx, 1, ApplicationType::Github).await;
        ok(upload(store, ctx, &[("jane@corp.com", 1, "jdoe")], false).await, "upload");
    }
    set_locked(store, &acme, &[(1, "jdoe")], true).await;
    ok(upload(store, &other, &[("bob@corp.com", 1, "jdoe")], false).await, "another account's lock does not apply");
    assert!(!record(&dump(store, &other).await, "jdoe").locked);
}
