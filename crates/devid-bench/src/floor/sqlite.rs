//! SQLite floors: each scenario's work done straight through rusqlite on devid's own
//! schema and pragmas (WAL, `synchronous=FULL`), with no HTTP, no parsing and no
//! validation. They run on `floor.db`, a database of their own, in the order the
//! scenarios run: [`insert`] loads it, [`lookup`] re-reads it, [`reassign`] moves the
//! same rows S3 moves, and [`small_transactions`] commits what S6 sends.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::data::{Dataset, INTEGRATIONS, Row};

fn open(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;",
    )?;
    conn.busy_timeout(Duration::from_secs(60))?;
    Ok(conn)
}

/// Rows per second of a raw bulk insert into devid's own SQLite schema (same indexes,
/// same pragmas), one transaction.
pub fn insert(path: &Path, dataset: &Dataset) -> Result<f64> {
    drop(devid_store::SqliteStore::open(path).context("create the floor schema")?);
    let mut conn = open(path)?;
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
pub fn scan(path: &Path) -> Result<f64> {
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

/// The key devid compares an identity by; the floor lower-cases every type alike,
/// which costs the same.
fn key(row: &Row) -> String {
    row.identity.to_lowercase()
}

/// S2's floor: every row looked up by its unique key in one read transaction, its email
/// compared with the stored one. Rows per second.
pub fn lookup(path: &Path, rows: &[Row]) -> Result<f64> {
    let mut conn = open(path)?;
    let started = Instant::now();
    let tx = conn.transaction()?;
    let mut same = 0usize;
    {
        let mut stmt = tx.prepare(
            "SELECT email FROM identities WHERE account_id = 1 AND integration_id = ?1 AND identity_key = ?2",
        )?;
        for row in rows {
            let email: String = stmt.query_row(rusqlite::params![row.integration_id, key(row)], |r| r.get(0))?;
            same += usize::from(email == row.email);
        }
    }
    tx.commit()?;
    anyhow::ensure!(same == rows.len(), "the S2 floor found {same} of {} rows unchanged", rows.len());
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// S3's floor: every row looked up, and the ones whose email differs moved to that
/// email's developer, in one durable transaction. Rows per second, over all rows.
pub fn reassign(path: &Path, rows: &[Row]) -> Result<f64> {
    let mut conn = open(path)?;
    let started = Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut current = tx.prepare(
            "SELECT email FROM identities WHERE account_id = 1 AND integration_id = ?1 AND identity_key = ?2",
        )?;
        let mut developer = tx.prepare("SELECT id FROM developers WHERE account_id = 1 AND email = ?1")?;
        let mut new_developer =
            tx.prepare("INSERT INTO developers (account_id, email, created_at, updated_at) VALUES (1, ?1, 1, 1)")?;
        let mut update = tx.prepare(
            "UPDATE identities SET developer_id = ?1, email = ?2, updated_at = 1
             WHERE account_id = 1 AND integration_id = ?3 AND identity_key = ?4",
        )?;
        for row in rows {
            let key = key(row);
            let email: String = current.query_row(rusqlite::params![row.integration_id, key], |r| r.get(0))?;
            if email == row.email {
                continue;
            }
            let id: i64 = match developer.query_row([&row.email], |r| r.get(0)) {
                Ok(id) => id,
                Err(rusqlite::Error::QueryReturnedNoRows) => {
                    new_developer.execute([&row.email])?;
                    tx.last_insert_rowid()
                }
                Err(e) => return Err(e.into()),
            };
            update.execute(rusqlite::params![id, row.email, row.integration_id, key])?;
        }
    }
    tx.commit()?;
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// S4's floor: the first 100 identities in email order, read by the index that serves
/// it, `requests` times one after another. Queries per second.
pub fn page(path: &Path, requests: usize) -> Result<f64> {
    let conn = open(path)?;
    let mut stmt = conn.prepare(
        "SELECT email, integration_id, identity, created_at, updated_at FROM identities
         WHERE account_id = 1 ORDER BY email, integration_id, identity_key LIMIT 100",
    )?;
    let started = Instant::now();
    for _ in 0..requests {
        let mut n = 0;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            std::hint::black_box(r.get_ref(0)?.as_str()?);
            n += 1;
        }
        anyhow::ensure!(n > 0, "the S4 floor read an empty page");
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

/// S6's floor: `clients` threads, each with its own connection, committing the same
/// 10-row transactions S6's clients send (their identities moved back and forth between
/// two developers), each commit durable, for `length`. SQLite has one writer, so the
/// threads queue for it on a mutex, as devid's requests do; left to SQLite's busy
/// handler they would measure its sleeps rather than the database. Transactions per
/// second.
pub fn small_transactions(path: &Path, clients: usize, length: Duration) -> Result<f64> {
    let setup = open(path)?;
    let mut developers = Vec::with_capacity(clients);
    for c in 0..clients {
        let mut pair = [0i64; 2];
        for (half, id) in pair.iter_mut().enumerate() {
            setup.execute(
                "INSERT INTO developers (account_id, email, created_at, updated_at) VALUES (1, ?1, 0, 0)
                 ON CONFLICT (account_id, email) DO NOTHING",
                [format!("floor-s6-{c}-{half}@company.com")],
            )?;
            *id = setup.query_row(
                "SELECT id FROM developers WHERE account_id = 1 AND email = ?1",
                [format!("floor-s6-{c}-{half}@company.com")],
                |r| r.get(0),
            )?;
        }
        developers.push(pair);
    }
    drop(setup);
    let writer = Arc::new(Mutex::new(()));
    let started = Instant::now();
    let threads: Vec<_> = developers
        .into_iter()
        .enumerate()
        .map(|(c, pair)| {
            let (path, writer) = (path.to_path_buf(), Arc::clone(&writer));
            std::thread::spawn(move || -> Result<usize> {
                let mut conn = open(&path)?;
                let mut done = 0usize;
                while started.elapsed() < length {
                    let half = done % 2;
                    let _turn = writer.lock().unwrap_or_else(|e| e.into_inner());
                    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    {
                        let mut upsert = tx.prepare_cached(
                            "INSERT INTO identities (account_id, integration_id, identity_key, identity, developer_id, email, created_at, updated_at)
                             VALUES (1, ?1, ?2, ?2, ?3, ?4, 0, 1)
                             ON CONFLICT (account_id, integration_id, identity_key)
                             DO UPDATE SET developer_id = excluded.developer_id, email = excluded.email, updated_at = excluded.updated_at",
                        )?;
                        for k in 0..10 {
                            upsert.execute(rusqlite::params![
                                1 + k % 5,
                                format!("floor-s6-{c}-{k}"),
                                pair[half],
                                format!("floor-s6-{c}-{half}@company.com")
                            ])?;
                        }
                    }
                    tx.commit()?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for t in threads {
        total += t.join().map_err(|_| anyhow::anyhow!("an S6 floor thread panicked"))??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
