//! The storage contract on PostgreSQL, each test in a schema of its own. Every test is
//! `#[ignore]`d so that, without DEVID_TEST_POSTGRES_URL, the runner reports it as
//! ignored rather than passed; `.ci/run` sets the variable and adds `--include-ignored`.

use std::sync::Arc;

use devid_store::contract::PgTestSchema;
use devid_store::{PostgresStore, Store};

async fn fresh() -> (Arc<dyn Store>, PgTestSchema) {
    let (url, schema) = PgTestSchema::create().await;
    let store = PostgresStore::connect(&url).await.expect("connect to the test schema");
    (Arc::new(store), schema)
}

devid_store::contract_tests!(with [#[ignore = "needs DEVID_TEST_POSTGRES_URL"]] || fresh());

#[ignore = "needs DEVID_TEST_POSTGRES_URL"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_twice_are_a_no_op() {
    let (url, _schema) = PgTestSchema::create().await;
    let store = PostgresStore::connect(&url).await.expect("connect");
    assert_eq!(store.migrate().await.expect("migrate again"), 0);
    let second = PostgresStore::connect(&url).await.expect("second replica");
    assert!(store.bootstrap().await.expect("bootstrap").is_some());
    assert!(second.bootstrap().await.expect("bootstrap").is_none(), "only one replica bootstraps");
}

/// CI must not pass by ignoring them: there the variable is always set.
#[test]
fn postgres_tests_are_not_ignored_in_ci() {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        assert!(
            std::env::var(devid_store::contract::POSTGRES_URL_VAR).is_ok(),
            "CI is set but DEVID_TEST_POSTGRES_URL is not: the PostgreSQL tests would be ignored, or fail under --include-ignored"
        );
    }
}

#[ignore = "needs DEVID_TEST_POSTGRES_URL"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_history_from_before_change_sets_is_migrated_into_them() {
    let (url, _schema) = PgTestSchema::create().await;
    let store = PostgresStore::connect(&url).await.expect("connect");
    let recorded = devid_store::contract::history_for_migration(&store).await;
    drop(store);
    // Back to the schema before change sets, the audit history kept.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    let running = tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE change_sets; DROP TABLE webhooks; DROP TABLE webhook_deliveries; DROP TABLE ui_sessions;
         DROP INDEX audit_by_new_email; DROP INDEX audit_by_old_email;
         ALTER TABLE contributor_sources DROP COLUMN utc_offsets;
             DELETE FROM schema_migrations WHERE version >= 8;",
        )
        .await
        .expect("roll back");
    drop(client);
    let _ = running.await;
    let migrated = PostgresStore::connect(&url).await.expect("reconnect and migrate");
    devid_store::contract::history_was_migrated(&migrated, &recorded).await;
}
