//! Floors: the same work done straight through the database library, with no HTTP, no
//! parsing and no validation, in the same run, so ratios mean something on any machine.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use devid_store::contract::PgTestSchema;
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::data::{Dataset, INTEGRATIONS};

/// Rows per second of a raw bulk insert into devid's own SQLite schema (same indexes,
/// same pragmas), one transaction.
pub fn sqlite_insert(path: &Path, dataset: &Dataset) -> Result<f64> {
    drop(devid_store::SqliteStore::open(path).context("create the floor schema")?);
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;",
    )?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    tx.execute("INSERT INTO accounts (id, name, created_at) VALUES (1, 'floor', 0)", [])?;
    for (id, t) in INTEGRATIONS {
        tx.execute(
            "INSERT INTO integrations (account_id, id, application_type, name, created_at, updated_at) VALUES (1, ?1, ?2, ?2, 0, 0)",
            rusqlite::params![id, t],
        )?;
    }
    {
        let mut developer =
            tx.prepare("INSERT INTO developers (account_id, email, created_at, updated_at) VALUES (1, ?1, 0, 0)")?;
        let mut identity = tx.prepare(
            "INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email, created_at, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, 0, 0)",
        )?;
        let mut last_email = String::new();
        let mut developer_id = 0;
        for row in &dataset.rows {
            if row.email != last_email {
                developer.execute([&row.email])?;
                developer_id = tx.last_insert_rowid();
                last_email.clone_from(&row.email);
            }
            identity.execute(rusqlite::params![
                row.integration_id,
                row.identity.to_lowercase(),
                row.identity,
                developer_id,
                row.email
            ])?;
        }
    }
    tx.commit()?;
    Ok(dataset.rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// Rows per second of reading every identity through rusqlite.
pub fn sqlite_scan(path: &Path) -> Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    let started = Instant::now();
    let mut stmt = conn.prepare("SELECT email, integration_id, identity, updated_at FROM identities ORDER BY email, integration_id, identity_key")?;
    let mut rows = stmt.query([])?;
    let mut n = 0usize;
    let mut bytes = 0usize;
    while let Some(r) = rows.next()? {
        bytes += r.get_ref(0)?.as_str()?.len() + r.get_ref(2)?.as_str()?.len();
        n += 1;
    }
    std::hint::black_box(bytes);
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// A schema of its own for the benchmark server, with devid's migrations applied.
pub async fn postgres_schema(base: &str) -> Result<(String, PgTestSchema)> {
    Ok(PgTestSchema::create_in(base).await)
}

/// Rows per second of binary COPY into devid's own PostgreSQL schema.
pub async fn postgres_insert(base: &str, dataset: &Dataset) -> Result<f64> {
    let (url, _schema) = postgres_schema(base).await?;
    drop(devid_store::PostgresStore::connect(&url).await.context("create the floor schema")?);
    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
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
    Ok(dataset.rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// Rows per second of reading every identity through tokio-postgres.
pub async fn postgres_scan(url: &str) -> Result<f64> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
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
