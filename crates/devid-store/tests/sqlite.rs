//! The storage contract on SQLite, plus what only SQLite has.

use std::sync::Arc;

use devid_core::types::ApplicationType;
use devid_store::{ChangeContext, NewIntegration, SqliteStore, Store, StoreError};

async fn fresh() -> Option<(Arc<dyn Store>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("devid.db")).expect("open store");
    Some((Arc::new(store), dir))
}

devid_store::contract_tests!(|| fresh());

#[tokio::test]
async fn migrations_run_twice_are_a_no_op_and_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("devid.db");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.migrate().expect("migrate again"), 0);
    let key = store.bootstrap().await.expect("bootstrap").expect("key");
    drop(store);
    let reopened = SqliteStore::open(&path).expect("reopen");
    assert!(reopened.bootstrap().await.expect("bootstrap").is_none());
    assert!(matches!(reopened.authenticate(&key.key).await, Ok(devid_store::AuthOutcome::Valid(_))));
}

#[tokio::test]
async fn a_failure_half_way_through_an_upload_leaves_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("devid.db")).expect("open");
    let account = store.ensure_account("acme").await.expect("account");
    let ctx = ChangeContext { account: account.id, key_id: None, request_id: None };
    store
        .create_integration(
            &ctx,
            NewIntegration { id: Some(1), application_type: ApplicationType::Github, name: "gh".into() },
        )
        .await
        .expect("integration");
    let data: Vec<(String, i64, String)> = (0..100).map(|i| (format!("d{i}@x.com"), 1, format!("u{i}"))).collect();
    let rows: Vec<(&str, i64, &str)> = data.iter().map(|(e, i, d)| (e.as_str(), *i, d.as_str())).collect();
    store.inject_failure_after_rows(50);
    let failed = devid_store::contract::upload(&store, &ctx, &rows, false).await;
    assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
    assert!(devid_store::contract::dump(&store, &ctx).await.is_empty());
    let audit = store
        .list_audit(ctx.account, devid_store::AuditQuery { page_size: 10, ..Default::default() })
        .await
        .expect("audit");
    assert!(audit.events.iter().all(|e| !e.action.starts_with("identity.")), "no audit rows survive a rollback");
    store.inject_failure_after_rows(0);
    let done = devid_store::contract::upload(&store, &ctx, &rows, false).await.expect("upload");
    assert_eq!(done.created, 100);
}
