//! The behaviour every backend must show, written once and run against each backend
//! by its test file (`tests/sqlite.rs`, `tests/postgres.rs`). Each check receives a
//! fresh, empty store.

mod changes;
mod contributors;
mod locks;
mod matching;
mod sessions;
mod webhooks;

pub use changes::*;
pub use contributors::*;
pub use locks::*;
pub use matching::*;
pub use sessions::*;
pub use webhooks::*;

use devid_core::errors::Position;
use devid_core::plan::{Addressing, IntegrationInfo, ParsedUpload, RawRow, RawValue, plan_delete, plan_upload};
use devid_core::types::{ApplicationType, Scope};

use crate::query::{CursorKey, IdentityQuery, Paging, SortKey, SortOrder};
use crate::{
    AuditQuery, AuthOutcome, ChangeContext, DeleteIntegrationOutcome, IdentityRecord, NewIntegration, NewKey, Store,
    StoreError, UploadSummary,
};

/// Panics with the check's context; contract checks are test code.
fn ok<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

async fn account(store: &dyn Store, name: &str) -> ChangeContext {
    let account = ok(store.ensure_account(name).await, "ensure account");
    ChangeContext { account: account.id, key_id: Some("test-key".into()), request_id: Some("req-1".into()) }
}

async fn integration(store: &dyn Store, ctx: &ChangeContext, id: i64, t: ApplicationType) {
    ok(
        store
            .create_integration(ctx, NewIntegration { id: Some(id), application_type: t, name: format!("{t} {id}") })
            .await,
        "create integration",
    );
}

/// The rows as a parsed upload addressed by integration id.
pub fn rows(rows: &[(&str, i64, &str)]) -> ParsedUpload {
    ParsedUpload::new(
        Addressing::IntegrationId,
        rows.iter()
            .enumerate()
            .map(|(i, (email, id, identity))| RawRow {
                position: Position::Index(i as u64),
                email: RawValue::Text(email.to_string()),
                integration: RawValue::Number(id.to_string()),
                identity: RawValue::Text(identity.to_string()),
            })
            .collect(),
    )
}

/// Generated rows, as `upload` takes them.
pub fn refs(rows: &[(String, i64, String)]) -> Vec<(&str, i64, &str)> {
    rows.iter().map(|(e, i, k)| (e.as_str(), *i, k.as_str())).collect()
}

pub async fn upload(
    store: &dyn Store,
    ctx: &ChangeContext,
    data: &[(&str, i64, &str)],
    dry_run: bool,
) -> Result<UploadSummary, StoreError> {
    let infos = ok(store.integration_infos(ctx.account).await, "integration infos");
    let plan = ok(plan_upload(rows(data), &infos).map_err(|p| p.into_groups()), "plan");
    store.apply_upload(ctx, plan, dry_run).await
}

pub async fn dump(store: &dyn Store, ctx: &ChangeContext) -> Vec<IdentityRecord> {
    ok(store.list_identities(ctx.account, IdentityQuery::default()).await, "dump").records
}

pub async fn bootstrap_creates_one_admin_key_once(store: &dyn Store) {
    let key = ok(store.bootstrap().await, "bootstrap").expect("first bootstrap creates a key");
    assert!(key.key.starts_with("pat.default."));
    assert_eq!(key.info.scopes, vec![Scope::Admin]);
    assert!(ok(store.bootstrap().await, "second bootstrap").is_none());
    match ok(store.authenticate(&key.key).await, "auth") {
        AuthOutcome::Valid(p) => {
            assert_eq!(p.account_name, "default");
            assert_eq!(p.scopes, vec![Scope::Admin]);
        }
        other => panic!("bootstrap key not valid: {other:?}"),
    }
}

pub async fn keys_authenticate_revoke_and_expire(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    let new = |expires_at| NewKey { scopes: vec![Scope::DeveloperRecordsRead], label: "ci".into(), expires_at };
    let key = ok(store.create_key(&ctx, new(None)).await, "create key");
    assert!(matches!(ok(store.authenticate(&key.key).await, "auth"), AuthOutcome::Valid(_)));

    let wrong_secret = format!("{}x", key.key);
    assert_eq!(ok(store.authenticate(&wrong_secret).await, "auth"), AuthOutcome::Unknown);
    let wrong_account = key.key.replacen("acme", "other", 1);
    assert_eq!(ok(store.authenticate(&wrong_account).await, "auth"), AuthOutcome::Unknown);
    assert_eq!(ok(store.authenticate("garbage").await, "auth"), AuthOutcome::Unknown);

    let listed = ok(store.list_keys(Some(ctx.account)).await, "list keys");
    assert_eq!(listed.len(), 1);
    let listed_text = format!("{listed:?}");
    let secret = key.key.rsplit('.').next().unwrap_or_default();
    assert!(!listed_text.contains(secret), "a listing must never show a secret");

    let revoked = ok(store.revoke_key(&ctx, &key.info.id, false).await, "revoke");
    assert!(revoked.revoked);
    assert_eq!(ok(store.authenticate(&key.key).await, "auth"), AuthOutcome::Revoked);

    let expired = ok(store.create_key(&ctx, new(Some(crate::now_micros() - 1))).await, "create expired");
    assert_eq!(ok(store.authenticate(&expired.key).await, "auth"), AuthOutcome::Expired);

    let other = account(store, "other").await;
    let err = store.revoke_key(&other, &expired.info.id, false).await;
    assert!(matches!(err, Err(StoreError::NotFound(_))), "one account cannot revoke another's key");
}

pub async fn integrations_are_managed_and_guarded(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 7, ApplicationType::Github).await;
    let dup = store
        .create_integration(
            &ctx,
            NewIntegration { id: Some(7), application_type: ApplicationType::Jira, name: "x".into() },
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let next = ok(
        store
            .create_integration(
                &ctx,
                NewIntegration { id: None, application_type: ApplicationType::Jira, name: "j".into() },
            )
            .await,
        "next id",
    );
    assert_eq!(next.id, 8);
    // After the largest id allowed, the next one assigned is the first gap, never above it.
    integration(store, &ctx, devid_core::types::MAX_INTEGRATION_ID, ApplicationType::Custom).await;
    let gap = ok(
        store
            .create_integration(
                &ctx,
                NewIntegration { id: None, application_type: ApplicationType::Jira, name: "g".into() },
            )
            .await,
        "first gap",
    );
    assert_eq!(gap.id, 1);
    ok(store.delete_integration(&ctx, gap.id, true).await, "delete gap");
    ok(store.delete_integration(&ctx, devid_core::types::MAX_INTEGRATION_ID, true).await, "delete largest");

    ok(upload(store, &ctx, &[("a@x.com", 7, "alice")], false).await, "upload");
    let listed = ok(store.list_integrations(ctx.account).await, "list");
    assert_eq!(listed.iter().map(|i| (i.id, i.identity_count)).collect::<Vec<_>>(), vec![(7, 1), (8, 0)]);

    let to_jira = crate::IntegrationPatch { application_type: Some(ApplicationType::Jira), name: None };
    let refused = store.update_integration(&ctx, 7, to_jira.clone()).await;
    assert!(matches!(refused, Err(StoreError::Conflict(_))), "case rules cannot change under stored identities");
    let to_gitlab =
        crate::IntegrationPatch { application_type: Some(ApplicationType::GitlabCloud), name: Some("GL".into()) };
    let changed = ok(store.update_integration(&ctx, 7, to_gitlab).await, "same case rules").expect("exists");
    assert_eq!((changed.application_type, changed.name.as_str()), (ApplicationType::GitlabCloud, "GL"));
    assert!(ok(store.update_integration(&ctx, 8, to_jira.clone()).await, "empty integration").is_some());
    assert!(ok(store.update_integration(&ctx, 99, to_jira).await, "missing").is_none());

    let refused = ok(store.delete_integration(&ctx, 7, false).await, "delete");
    assert_eq!(refused, DeleteIntegrationOutcome::HasIdentities(1));
    let deleted = ok(store.delete_integration(&ctx, 7, true).await, "force delete");
    assert_eq!(deleted, DeleteIntegrationOutcome::Deleted { identities_deleted: 1 });
    assert!(dump(store, &ctx).await.is_empty());
    assert_eq!(ok(store.delete_integration(&ctx, 7, true).await, "again"), DeleteIntegrationOutcome::NotFound);
}

/// A patch that changes nothing writes nothing (no `updatedAt` bump, no audit event);
/// a change of type moves the identities version, because listings filter by type.
pub async fn integration_patches_record_only_real_changes(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(upload(store, &ctx, &[("a@x.com", 1, "alice")], false).await, "upload");
    let before = ok(store.list_integrations(ctx.account).await, "list").remove(0);
    async fn audit_count(store: &dyn Store, ctx: &ChangeContext) -> u64 {
        ok(store.list_audit(ctx.account, AuditQuery { page_size: 10, ..Default::default() }).await, "audit").total_count
    }
    let audit = |store| audit_count(store, &ctx);
    let audit_before = audit(store).await;
    let version_before = ok(store.identities_version(ctx.account).await, "version");
    std::thread::sleep(std::time::Duration::from_millis(2));
    for patch in [
        crate::IntegrationPatch { application_type: None, name: None },
        crate::IntegrationPatch { application_type: Some(ApplicationType::Github), name: Some(before.name.clone()) },
    ] {
        let same = ok(store.update_integration(&ctx, 1, patch).await, "no-op patch").expect("exists");
        assert_eq!(same.updated_at, before.updated_at, "a no-op patch keeps updatedAt");
    }
    assert_eq!(audit(store).await, audit_before, "a no-op patch writes no audit event");
    assert_eq!(ok(store.identities_version(ctx.account).await, "version"), version_before);

    let renamed = crate::IntegrationPatch { application_type: None, name: Some("renamed".into()) };
    ok(store.update_integration(&ctx, 1, renamed).await, "rename");
    assert_eq!(audit(store).await, audit_before + 1);
    let to_gitlab = crate::IntegrationPatch { application_type: Some(ApplicationType::GitlabCloud), name: None };
    ok(store.update_integration(&ctx, 1, to_gitlab).await, "retype");
    assert!(
        ok(store.identities_version(ctx.account).await, "version") > version_before,
        "a new type makes listings filtered by type count again"
    );
}

pub async fn uploads_create_reassign_and_are_idempotent(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    let data = [("jane@x.com", 1, "JDoe"), ("jane@x.com", 2, "081de7ae"), ("bob@x.com", 1, "bob")];
    let first = ok(upload(store, &ctx, &data, false).await, "first upload");
    assert_eq!((first.received, first.created, first.unchanged, first.developers_created), (3, 3, 0, 2));

    let again = ok(upload(store, &ctx, &data, false).await, "same upload");
    assert_eq!((again.created, again.reassigned, again.unchanged, again.developers_created), (0, 0, 3, 0));

    let moved = ok(upload(store, &ctx, &[("bob@x.com", 1, "jdoe")], false).await, "reassign");
    assert_eq!((moved.reassigned, moved.created), (1, 0));
    let records = dump(store, &ctx).await;
    let jdoe = records.iter().find(|r| r.integration_id == 1 && r.identity.eq_ignore_ascii_case("jdoe"));
    assert_eq!(jdoe.map(|r| (r.email.as_str(), r.identity.as_str())), Some(("bob@x.com", "jdoe")));

    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit");
    let actions: Vec<&str> =
        audit.events.iter().map(|e| e.action.as_str()).filter(|a| a.starts_with("identity.")).collect();
    assert_eq!(actions, vec!["identity.reassigned", "identity.created", "identity.created", "identity.created"]);
    let reassigned = &audit.events[0];
    assert_eq!(reassigned.old_email.as_deref(), Some("jane@x.com"));
    assert_eq!(reassigned.new_email.as_deref(), Some("bob@x.com"));
    assert_eq!(reassigned.key_id.as_deref(), Some("test-key"));
    assert_eq!(reassigned.request_id.as_deref(), Some("req-1"));
}

/// A plan normally lists each email once; one that lists an email twice (rows naming
/// either entry) must still make one developer per email, for a few rows (looked up one
/// by one) and for many (walked in order).
pub async fn equal_emails_make_one_developer_however_they_are_held(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    for (label, developers) in [("few", 2), ("many", 6_000)] {
        let data: Vec<(String, i64, String)> = (0..developers)
            .flat_map(|d| [1, 2].map(|i| (format!("{label}{d}@x.com"), i, format!("{label}-{d}"))))
            .collect();
        let infos = ok(store.integration_infos(ctx.account).await, "integration infos");
        let mut plan = ok(plan_upload(rows(&refs(&data)), &infos).map_err(|p| p.into_groups()), "plan");
        for row in plan.rows.iter_mut().skip(1).step_by(2) {
            row.developer = plan.emails.len() as u32;
            plan.emails.push(std::sync::Arc::from(&*row.email));
        }
        let summary = ok(store.apply_upload(&ctx, plan, false).await, "upload");
        assert_eq!((summary.created, summary.developers_created), (developers * 2, developers), "{label}");
        let records = dump(store, &ctx).await;
        assert_eq!(records.iter().filter(|r| r.email == format!("{label}0@x.com")).count(), 2, "{label}");
    }
}

pub async fn dry_runs_change_nothing(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(upload(store, &ctx, &[("a@x.com", 1, "a")], false).await, "seed");
    let before = dump(store, &ctx).await;
    let audit_before =
        ok(store.list_audit(ctx.account, AuditQuery { page_size: 10, ..Default::default() }).await, "audit");
    let dry = ok(upload(store, &ctx, &[("b@x.com", 1, "a"), ("b@x.com", 1, "b")], true).await, "dry run");
    assert_eq!((dry.reassigned, dry.created, dry.developers_created), (1, 1, 1));
    assert_eq!(dump(store, &ctx).await, before);
    let audit_after =
        ok(store.list_audit(ctx.account, AuditQuery { page_size: 10, ..Default::default() }).await, "audit");
    assert_eq!(audit_after.total_count, audit_before.total_count, "a dry run writes no audit events");
}

/// A dry run answers exactly what applying the same upload then answers, for few rows
/// (looked up one by one) and for many (walked in order), across integrations.
pub async fn dry_runs_count_exactly_what_the_upload_then_does(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    let seed: Vec<(String, i64, String)> =
        (0..6_000).map(|n| (format!("dev{}@x.com", n / 3), 1 + (n % 2) as i64, format!("User{n:05}"))).collect();
    ok(upload(store, &ctx, &refs(&seed), false).await, "seed");
    for size in [12usize, 9_000] {
        // A third unchanged (case differs on GitHub: still the same identity), a third
        // moved to other (partly new) developers, a third new identities.
        let next: Vec<(String, i64, String)> = (0..size)
            .map(|n| match n % 3 {
                0 => (format!("dev{}@x.com", n / 3), 1 + (n % 2) as i64, format!("User{n:05}")),
                1 => (format!("moved{}@x.com", n % 50), 1 + (n % 2) as i64, format!("User{n:05}")),
                _ => (format!("new{n}@y.com"), 1 + (n % 2) as i64, format!("Fresh{n:05}-{size}")),
            })
            .collect();
        let dry = ok(upload(store, &ctx, &refs(&next), true).await, "dry run");
        let applied = ok(upload(store, &ctx, &refs(&next), false).await, "apply");
        assert_eq!(dry, applied, "{size} rows: the dry run's counts are the upload's");
        assert!(applied.created > 0 && applied.reassigned > 0 && applied.unchanged > 0, "{applied:?}");
    }
}

pub async fn deletes_are_counted_and_audited(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ok(upload(store, &ctx, &[("a@x.com", 1, "Alice"), ("b@x.com", 1, "bob")], false).await, "seed");
    let infos = ok(store.integration_infos(ctx.account).await, "infos");
    let plan =
        ok(plan_delete(rows(&[("", 1, "ALICE"), ("", 1, "nobody")]), &infos).map_err(|p| p.into_groups()), "plan");
    let summary = ok(store.delete_identities(&ctx, plan, false).await, "delete");
    assert_eq!((summary.deleted, summary.not_found), (1, 1));
    let left: Vec<String> = dump(store, &ctx).await.into_iter().map(|r| r.identity).collect();
    assert_eq!(left, vec!["bob"]);
    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 1, ..Default::default() }).await, "audit");
    assert_eq!(audit.events[0].action, "identity.deleted");
    assert_eq!(audit.events[0].old_email.as_deref(), Some("a@x.com"));
}

pub async fn accounts_never_see_each_other(store: &dyn Store) {
    let a = account(store, "a").await;
    let b = account(store, "b").await;
    integration(store, &a, 1, ApplicationType::Github).await;
    integration(store, &b, 1, ApplicationType::Jira).await;
    ok(upload(store, &a, &[("a@x.com", 1, "secret-a")], false).await, "upload a");
    assert!(dump(store, &b).await.is_empty());
    assert_eq!(ok(store.list_integrations(b.account).await, "list b")[0].application_type, ApplicationType::Jira);
    let audit_b = ok(store.list_audit(b.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit b");
    assert!(audit_b.events.iter().all(|e| e.identity.as_deref() != Some("secret-a")));
    assert!(matches!(ok(store.delete_integration(&b, 2, true).await, "delete"), DeleteIntegrationOutcome::NotFound));
}

/// Walks every sort key and order by offset and by cursor: each row once, in order.
/// Small uploads arriving together share a transaction (group commit) on both
/// backends; each must still succeed or fail on its own, across accounts, and a failed
/// one must leave nothing behind.
pub async fn concurrent_uploads_succeed_or_fail_each_on_their_own(store: &dyn Store) {
    let acme = account(store, "acme").await;
    integration(store, &acme, 1, ApplicationType::Github).await;
    let beta = account(store, "beta").await;
    integration(store, &beta, 1, ApplicationType::Github).await;
    let uploads = (0..24).map(|i| {
        let ctx = if i % 4 < 2 { &acme } else { &beta };
        async move {
            // Odd uploads name integration 99, as if it was deleted after they were
            // validated: the store refuses them.
            let integration_id = if i % 2 == 0 { 1 } else { 99 };
            let data: Vec<(String, i64, String)> =
                (0..3).map(|k| (format!("d{i}@x.com"), integration_id, format!("u{i}-{k}"))).collect();
            let mut infos = ok(store.integration_infos(ctx.account).await, "infos");
            infos.push(IntegrationInfo { id: 99, application_type: ApplicationType::Github });
            let plan = ok(plan_upload(rows(&refs(&data)), &infos).map_err(|p| p.into_groups()), "plan");
            (i, store.apply_upload(ctx, plan, false).await)
        }
    });
    for (i, outcome) in futures_util::future::join_all(uploads).await {
        if i % 2 == 0 {
            assert_eq!(ok(outcome, "a valid upload").created, 3, "upload {i}");
        } else {
            assert!(matches!(outcome, Err(StoreError::Conflict(_))), "upload {i}: {outcome:?}");
        }
    }
    for ctx in [&acme, &beta] {
        let stored = dump(store, ctx).await;
        assert_eq!(stored.len(), 6 * 3, "exactly the rows of the valid uploads");
        assert!(stored.iter().all(|r| r.integration_id == 1));
        let audit =
            ok(store.list_audit(ctx.account, AuditQuery { page_size: 1000, ..Default::default() }).await, "audit");
        assert_eq!(audit.events.iter().filter(|e| e.action == "identity.created").count(), 6 * 3);
        let developers: std::collections::HashSet<&str> = stored.iter().map(|r| r.email.as_str()).collect();
        assert_eq!(developers.len(), 6, "no developer of a failed upload survives");
    }
}

/// Export batches, chained by their cursors, hold exactly the listing's rows in the
/// listing's order, for every sort and for batch sizes that do and do not divide the
/// row count.
pub async fn export_batches_walk_every_row_once(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Custom).await;
    let data: Vec<(String, i64, String)> =
        (0..23).map(|i| (format!("dev{}@x.com", i % 7), 1 + (i % 2), format!("id-{:02}", 23 - i))).collect();
    ok(upload(store, &ctx, &refs(&data), false).await, "seed");
    let encode: crate::ExportEncoder = std::sync::Arc::new(|row: &crate::ExportRow<'_>, out: &mut Vec<u8>| {
        let line = format!(
            "{}|{}|{}|{}|{}\n",
            row.email, row.integration_id, row.identity, row.application_type, row.updated_at
        );
        out.extend_from_slice(line.as_bytes());
    });
    for (sort, _) in SortKey::ALL {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let listed = ok(
                store.list_identities(ctx.account, IdentityQuery { sort, order, ..Default::default() }).await,
                "all",
            )
            .records;
            let expected: Vec<String> = listed
                .iter()
                .map(|r| {
                    let micros = ok(devid_core::time::parse_rfc3339(&r.updated_at), "timestamp");
                    format!("{}|{}|{}|{}|{micros}", r.email, r.integration_id, r.identity, r.application_type.as_str())
                })
                .collect();
            for batch_size in [1, 5, 23, 100] {
                let mut exported = String::new();
                let mut batches = 0;
                let mut paging = Some(Paging::Offset { page_index: 0, page_size: batch_size });
                while let Some(paging_now) = paging.take() {
                    let query = IdentityQuery { sort, order, paging: paging_now, ..Default::default() };
                    let batch = ok(store.export_batch(ctx.account, query, encode.clone()).await, "batch");
                    assert!(batch.rows <= batch_size);
                    exported.push_str(&String::from_utf8_lossy(&batch.bytes));
                    batches += 1;
                    paging = batch.next_cursor.map(|cursor| Paging::After { cursor, page_size: batch_size });
                }
                assert_eq!(exported.lines().collect::<Vec<_>>(), expected, "{sort:?} {order:?} by {batch_size}");
                assert_eq!(batches, 23u64.div_ceil(batch_size).max(1), "no empty batch at the end");
            }
        }
    }
}

pub async fn paging_walks_every_row_once(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Custom).await;
    let mut data = Vec::new();
    for i in 0..23 {
        data.push((format!("dev{}@x.com", i % 7), 1 + (i % 2), format!("id-{:02}", 23 - i)));
    }
    let borrowed = refs(&data);
    ok(upload(store, &ctx, &borrowed, false).await, "seed");
    for (sort, _) in SortKey::ALL {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let all = ok(
                store.list_identities(ctx.account, IdentityQuery { sort, order, ..Default::default() }).await,
                "all",
            )
            .records;
            assert_eq!(all.len(), 23);
            let mut by_offset = Vec::new();
            for page_index in 0..5 {
                let page = ok(
                    store
                        .list_identities(
                            ctx.account,
                            IdentityQuery {
                                sort,
                                order,
                                paging: Paging::Offset { page_index, page_size: 5 },
                                ..Default::default()
                            },
                        )
                        .await,
                    "page",
                );
                assert_eq!(page.total_count, 23);
                assert_eq!(page.has_next, page_index < 4);
                by_offset.extend(page.records);
            }
            assert_eq!(by_offset, all, "offset walk {sort:?} {order:?}");
            let mut by_cursor = Vec::new();
            let mut cursor: Option<CursorKey> = None;
            loop {
                let paging = match cursor.take() {
                    None => Paging::Offset { page_index: 0, page_size: 4 },
                    Some(cursor) => Paging::After { cursor, page_size: 4 },
                };
                let page = ok(
                    store
                        .list_identities(ctx.account, IdentityQuery { sort, order, paging, ..Default::default() })
                        .await,
                    "page",
                );
                by_cursor.extend(page.records);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(by_cursor, all, "cursor walk {sort:?} {order:?}");
        }
    }
}

/// Large uploads take other paths in a backend (ordered index walks, bulk loads): every
/// row is still classified exactly.
pub async fn large_uploads_classify_every_row(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    // Over 5,000 identities per integration and 5,000 developers: the SQLite backend
    // walks its indexes instead of looking rows up one by one.
    let n = 24_000;
    let first: Vec<(String, i64, String)> =
        (0..n).map(|i| (format!("dev{}@x.com", i / 4), 1 + (i % 2) as i64, format!("User-{i:05}"))).collect();
    let created = ok(upload(store, &ctx, &refs(&first), false).await, "first");
    assert_eq!((created.created, created.developers_created), (n as u64, (n / 4) as u64));

    // 10 % move to another developer, 5 % change spelling (case) on GitHub, 5 % are new.
    let mut second = first.clone();
    for (i, row) in second.iter_mut().enumerate() {
        if i % 10 == 0 {
            row.0 = format!("moved{}@x.com", i / 4);
        } else if i % 20 == 2 && row.1 == 1 {
            row.2 = row.2.to_uppercase();
        }
    }
    second.extend((0..n / 20).map(|i| (format!("new{i}@x.com"), 2, format!("New-{i:05}"))));
    let summary = ok(upload(store, &ctx, &refs(&second), false).await, "second");
    assert_eq!(summary.reassigned, (n / 10) as u64, "{summary:?}");
    assert_eq!(summary.created, (n / 20) as u64, "{summary:?}");
    assert_eq!(summary.unchanged, (n - n / 10) as u64, "{summary:?}");
    assert_eq!(summary.developers_created, (n / 10 + n / 20) as u64, "existing developers are found: {summary:?}");
    let records = dump(store, &ctx).await;
    assert_eq!(records.len(), n + n / 20);
    let moved = records.iter().filter(|r| r.email.starts_with("moved")).count();
    assert_eq!(moved, n / 10);
    let respelled = records.iter().filter(|r| r.identity.starts_with("USER-")).count();
    assert!(respelled > 0, "the last spelling is kept");
    let again = ok(upload(store, &ctx, &refs(&second), false).await, "third");
    assert_eq!(again.unchanged, (n + n / 20) as u64);
}

/// Runs every check above, each on a store from `fresh`. `with [attributes] fresh`
/// puts the attributes on every generated test: the PostgreSQL suite passes
/// `#[ignore = "needs DEVID_TEST_POSTGRES_URL"]` so the runner counts it as ignored,
/// not passed, where there is no database.
#[macro_export]
macro_rules! contract_tests {
    (@each [$($attr:tt)*] $fresh:expr; $(,)?) => {};
    // One test per step: the attributes are a group used once per name.
    (@each [$($attr:tt)*] $fresh:expr; $name:ident $(, $rest:ident)* $(,)?) => {
        // Several threads: a PostgreSQL connection must keep being served while the
        // test's schema guard blocks in its destructor.
        $($attr)*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let fresh = $fresh;
            let (store, _guard) = fresh().await;
            $crate::contract::$name(&*store).await;
        }
        $crate::contract_tests!(@each [$($attr)*] $fresh; $($rest),*);
    };
    (with [$($attr:tt)*] $fresh:expr) => {
        $crate::contract_tests!(@each [$($attr)*] $fresh;
            bootstrap_creates_one_admin_key_once,
            keys_authenticate_revoke_and_expire,
            integrations_are_managed_and_guarded,
            integration_patches_record_only_real_changes,
            uploads_create_reassign_and_are_idempotent,
            equal_emails_make_one_developer_however_they_are_held,
            dry_runs_change_nothing,
            dry_runs_count_exactly_what_the_upload_then_does,
            deletes_are_counted_and_audited,
            accounts_never_see_each_other,
            paging_walks_every_row_once,
            large_uploads_classify_every_row,
            export_batches_walk_every_row_once,
            concurrent_uploads_succeed_or_fail_each_on_their_own,
            contributor_sources_replace_and_add,
            contributor_dry_runs_change_nothing,
            contributors_are_mapped_by_their_integrations_case_rules,
            manual_bot_decisions_outlive_every_ingest,
            contributor_listings_page_by_cursor_and_filter,
            coverage_counts_attributed_activity_without_bots,
            contributors_stay_in_their_account_and_integration,
            bot_decisions_apply_in_the_order_sent,
            deleting_an_integration_forgets_its_contributors_and_decisions,
            every_ingest_is_audited_once_and_dry_runs_never,
            contributor_search_reads_names_and_emails_literally,
            match_input_reads_contributors_developers_and_mappings,
            match_input_gathers_each_contributors_zones_and_names_over_its_sources,
            decisions_are_recorded_once_with_their_cannot_links,
            accepting_suggestions_is_one_transaction_and_one_change_set,
            matching_state_stays_in_its_account,
            every_mapping_records_how_it_was_made,
            locked_identities_move_only_when_forced,
            locks_stay_in_their_account,
            large_uploads_refuse_locked_moves_too,
            every_write_is_one_change_set_of_its_own_events,
            the_change_feed_pages_and_filters,
            change_sets_stay_in_their_account,
            reverts_undo_uploads_deletes_and_locks_exactly,
            reverts_refuse_what_later_changes_touched_unless_forced,
            committed_changes_are_queued_for_the_webhooks_that_want_them,
            deliveries_to_one_webhook_go_out_in_order_and_attempts_are_recorded,
            sessions_live_on_their_key_and_end_when_signed_out_or_idle,
            idle_sessions_are_purged,
        );
    };
    ($fresh:expr) => {
        $crate::contract_tests!(with [] $fresh);
    };
}

/// A schema of its own in the test PostgreSQL database, dropped when this is dropped,
/// so PostgreSQL tests run in parallel without seeing each other.
pub struct PgTestSchema {
    base_url: String,
    schema: String,
}

/// The database PostgreSQL tests use. Those tests are `#[ignore]`d, so a plain
/// `cargo test` reports them as ignored; run with `-- --include-ignored` and this set.
pub const POSTGRES_URL_VAR: &str = "DEVID_TEST_POSTGRES_URL";

impl PgTestSchema {
    /// Creates the schema and returns a URL whose connections use it. Panics, saying
    /// what to set, when `DEVID_TEST_POSTGRES_URL` is not set: a PostgreSQL test that
    /// was asked for must fail rather than pass without having run.
    pub async fn create() -> (String, PgTestSchema) {
        let Ok(base_url) = std::env::var(POSTGRES_URL_VAR) else {
            panic!(
                "{POSTGRES_URL_VAR} is not set, but a PostgreSQL test was asked to run (--include-ignored). Set it, e.g. {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/test, or leave out --include-ignored."
            );
        };
        Self::create_in(&base_url).await
    }

    /// Creates the schema in the database at `base_url`.
    pub async fn create_in(base_url: &str) -> (String, PgTestSchema) {
        let base_url = base_url.to_string();
        let schema = format!("devid_test_{}", crate::keys::new_key_id());
        let (client, connection) =
            ok(tokio_postgres::connect(&base_url, tokio_postgres::NoTls).await, "connect to PostgreSQL");
        tokio::spawn(connection);
        ok(client.batch_execute(&format!("CREATE SCHEMA {schema}")).await, "create schema");
        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options=-c%20search_path%3D{schema}");
        (url, PgTestSchema { base_url, schema })
    }
}

impl Drop for PgTestSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.base_url.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}
