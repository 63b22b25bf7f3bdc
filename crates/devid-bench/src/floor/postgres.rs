//! PostgreSQL floors: each scenario's work done straight through tokio-postgres on
//! devid's own schema, with no HTTP, no parsing and no validation, in the set-based way
//! a careful hand would write it (binary COPY into a temporary table, then one
//! statement), in a schema of the floor's own that [`insert`] loads.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use devid_store::contract::PgTestSchema;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::data::{Dataset, INTEGRATIONS, Row};

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A schema of its own for the benchmark server, with devid's migrations applied.
pub async fn schema(base: &str) -> Result<(String, PgTestSchema)> {
    Ok(PgTestSchema::create_in(base).await)
}

/// S1's floor: rows per second of binary COPY into devid's own PostgreSQL schema, in a
/// schema of its own that the later floors work on; returned with its URL, and dropped
/// when the guard is.
pub async fn insert(base: &str, dataset: &Dataset) -> Result<(f64, String, PgTestSchema)> {
    let (url, schema_guard) = schema(base).await?;
    drop(devid_store::PostgresStore::connect(&url).await.context("create the floor schema")?);
    let mut client = connect(&url).await?;
    let started = Instant::now();
    let tx = client.transaction().await?;
    tx.batch_execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'floor', 0)").await?;
    for (id, t) in INTEGRATIONS {
        tx.execute(
            "INSERT INTO integrations (account_id, id, application_type, name, created_at, updated_at) VALUES (1, $1, $2, $2, 0, 0)",
            &[&id, &t],
        )
        .await?;
    }
    let sink = tx.copy_in("COPY developers (id, account_id, email, created_at, updated_at) FROM STDIN BINARY").await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::TEXT, Type::INT8, Type::INT8]);
    pin_mut!(writer);
    let mut last_email = String::new();
    let mut developer_ids = Vec::with_capacity(dataset.rows.len());
    let mut next_id = 0i64;
    for row in &dataset.rows {
        if row.email != last_email {
            next_id += 1;
            writer.as_mut().write(&[&next_id, &1i64, &row.email, &0i64, &0i64]).await?;
            last_email.clone_from(&row.email);
        }
        developer_ids.push(next_id);
    }
    writer.finish().await?;
    let sink = tx
        .copy_in("COPY identities (account_id, integration_id, identity_key, identity, developer_id, email, created_at, updated_at) FROM STDIN BINARY")
        .await?;
    let writer = BinaryCopyInWriter::new(
        sink,
        &[Type::INT8, Type::INT8, Type::TEXT, Type::TEXT, Type::INT8, Type::TEXT, Type::INT8, Type::INT8],
    );
    pin_mut!(writer);
    for (row, developer_id) in dataset.rows.iter().zip(developer_ids) {
        let key = row.identity.to_lowercase();
        writer
            .as_mut()
            .write(&[&1i64, &row.integration_id, &key, &row.identity, &developer_id, &row.email, &0i64, &0i64])
            .await?;
    }
    writer.finish().await?;
    tx.commit().await?;
    Ok((dataset.rows.len() as f64 / started.elapsed().as_secs_f64(), url, schema_guard))
}

/// Rows per second of reading every identity through tokio-postgres.
pub async fn scan(url: &str) -> Result<f64> {
    let client = connect(url).await?;
    let started = Instant::now();
    let stream = client
        .query_raw(
            "SELECT email, integration_id, identity, updated_at FROM identities ORDER BY email, integration_id, identity_key",
            std::iter::empty::<i64>(),
        )
        .await?;
    pin_mut!(stream);
    let mut n = 0usize;
    while let Some(row) = futures_util::StreamExt::next(&mut stream).await {
        let row = row?;
        std::hint::black_box(row.try_get::<_, &str>(0)?);
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Copies `rows` (integration, key, email) into a temporary table `upload` of `tx`.
async fn stage(tx: &tokio_postgres::Transaction<'_>, rows: &[Row]) -> Result<()> {
    tx.batch_execute(
        "CREATE TEMPORARY TABLE upload (integration_id BIGINT, identity_key TEXT, email TEXT) ON COMMIT DROP",
    )
    .await?;
    let sink = tx.copy_in("COPY upload (integration_id, identity_key, email) FROM STDIN BINARY").await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TEXT, Type::TEXT]);
    pin_mut!(writer);
    for row in rows {
        writer.as_mut().write(&[&row.integration_id, &row.identity.to_lowercase(), &row.email]).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// S2's floor: the rows copied in and matched against the stored identities by their
/// unique key, emails compared. Rows per second.
pub async fn lookup(url: &str, rows: &[Row]) -> Result<f64> {
    let mut client = connect(url).await?;
    let started = Instant::now();
    let tx = client.transaction().await?;
    stage(&tx, rows).await?;
    let same: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM upload u JOIN identities i
               ON i.account_id = 1 AND i.integration_id = u.integration_id AND i.identity_key = u.identity_key
             WHERE i.email = u.email",
            &[],
        )
        .await?
        .get(0);
    tx.commit().await?;
    anyhow::ensure!(same as usize == rows.len(), "the S2 floor found {same} of {} rows unchanged", rows.len());
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// S3's floor: the rows copied in, and those whose email differs moved to that email's
/// developer with one UPDATE, committed. Rows per second, over all rows.
pub async fn reassign(url: &str, rows: &[Row]) -> Result<f64> {
    let mut client = connect(url).await?;
    let started = Instant::now();
    let tx = client.transaction().await?;
    stage(&tx, rows).await?;
    tx.execute(
        "UPDATE identities i SET developer_id = d.id, email = u.email, updated_at = 1
           FROM upload u JOIN developers d ON d.account_id = 1 AND d.email = u.email
          WHERE i.account_id = 1 AND i.integration_id = u.integration_id
            AND i.identity_key = u.identity_key AND i.email <> u.email",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// S4's floor: the first 100 identities in email order, `requests` times one after
/// another over one connection. Queries per second.
pub async fn page(url: &str, requests: usize) -> Result<f64> {
    let client = connect(url).await?;
    let stmt = client
        .prepare(
            "SELECT email, integration_id, identity, created_at, updated_at FROM identities
             WHERE account_id = 1 ORDER BY email, integration_id, identity_key LIMIT 100",
        )
        .await?;
    let started = Instant::now();
    for _ in 0..requests {
        let rows = client.query(&stmt, &[]).await?;
        anyhow::ensure!(!rows.is_empty(), "the S4 floor read an empty page");
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

/// S6's floor: `clients` connections, each committing the same 10-row transactions
/// S6's clients send (10 upserts moving their identities between two developers), for
/// `length`. Transactions per second.
pub async fn small_transactions(url: &str, clients: usize, length: Duration) -> Result<f64> {
    let setup = connect(url).await?;
    let first: i64 = setup.query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM developers", &[]).await?.get(0);
    let insert = setup
        .prepare("INSERT INTO developers (id, account_id, email, created_at, updated_at) VALUES ($1, 1, $2, 0, 0)")
        .await?;
    for c in 0..clients {
        for half in 0..2 {
            let id = first + (2 * c + half) as i64;
            setup.execute(&insert, &[&id, &format!("floor-s6-{c}-{half}@company.com")]).await?;
        }
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut client = connect(&url).await?;
            let upsert = client
                .prepare(
                    "INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email, created_at, updated_at)
                     VALUES (1, $1, $2, $2, $3, $4, 0, 1)
                     ON CONFLICT (account_id, integration_id, identity_key)
                     DO UPDATE SET developer_id = excluded.developer_id, email = excluded.email, updated_at = excluded.updated_at",
                )
                .await?;
            let mut done = 0usize;
            while started.elapsed() < length {
                let half = done % 2;
                let developer = first + (2 * c + half) as i64;
                let email = format!("floor-s6-{c}-{half}@company.com");
                let tx = client.transaction().await?;
                for k in 0..10i64 {
                    tx.execute(&upsert, &[&(1 + k % 5), &format!("floor-s6-{c}-{k}"), &developer, &email]).await?;
                }
                tx.commit().await?;
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.context("an S6 floor task panicked")??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
