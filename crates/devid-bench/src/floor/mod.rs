//! Floors: each scenario's work done straight through the database library, with no
//! HTTP, no parsing and no validation, in the same run as devid itself. A floor moves
//! with the machine (a slower or busier one lowers both), so devid's ratio to it can be
//! judged anywhere, where absolute targets hold only on the machine they were set on.

pub mod postgres;
pub mod sqlite;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use devid_store::contract::PgTestSchema;

use crate::data::{Dataset, Row};

/// The database the floors work on, loaded by S1's floor and kept for the others.
pub enum FloorDb {
    Sqlite(PathBuf),
    /// The URL of the floor's schema, and the guard that drops it when the floors end.
    Postgres {
        url: String,
        _schema: PgTestSchema,
    },
}

impl FloorDb {
    /// Loads `dataset` into a new floor database (S1's floor); rows per second.
    pub async fn load(postgres_url: Option<&str>, sqlite_path: PathBuf, dataset: &Dataset) -> Result<(FloorDb, f64)> {
        match postgres_url {
            Some(base) => {
                let (rate, url, schema) = postgres::insert(base, dataset).await?;
                Ok((FloorDb::Postgres { url, _schema: schema }, rate))
            }
            None => {
                let rate = sqlite::insert(&sqlite_path, dataset)?;
                Ok((FloorDb::Sqlite(sqlite_path), rate))
            }
        }
    }

    pub async fn lookup(&self, rows: &[Row]) -> Result<f64> {
        match self {
            FloorDb::Sqlite(path) => sqlite::lookup(path, rows),
            FloorDb::Postgres { url, .. } => postgres::lookup(url, rows).await,
        }
    }

    pub async fn reassign(&self, rows: &[Row]) -> Result<f64> {
        match self {
            FloorDb::Sqlite(path) => sqlite::reassign(path, rows),
            FloorDb::Postgres { url, .. } => postgres::reassign(url, rows).await,
        }
    }

    pub async fn page(&self, requests: usize) -> Result<f64> {
        match self {
            FloorDb::Sqlite(path) => sqlite::page(path, requests),
            FloorDb::Postgres { url, .. } => postgres::page(url, requests).await,
        }
    }

    pub async fn small_transactions(&self, clients: usize, length: Duration) -> Result<f64> {
        match self {
            FloorDb::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || sqlite::small_transactions(&path, clients, length)).await?
            }
            FloorDb::Postgres { url, .. } => postgres::small_transactions(url, clients, length).await,
        }
    }
}
