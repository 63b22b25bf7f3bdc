//! S7, fair sharing between accounts: while one account uploads a million rows, and
//! then dry-runs a million rows, another account sends one small upload after another.
//! Their latency, beside the same small uploads on an otherwise idle server (measured
//! in the same run), shows how long one account's large work stalls another's writes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::server::Server;
use crate::{Outcome, percentile};

/// Seconds of small uploads on the idle server, the same-run baseline.
const IDLE_SECONDS: u64 = 3;

pub async fn run(
    server: &Server,
    bin: &Path,
    database: &str,
    client: &reqwest::Client,
    rows: usize,
    upload_csv: Vec<u8>,
    dry_run_csv: Vec<u8>,
) -> Result<Vec<Outcome>> {
    let other_key = other_account_key(bin, database)?;
    let created = client
        .post(format!("{}/v2/integrations", server.base()))
        .header("x-api-key", &other_key)
        .json(&json!({"id": 1, "applicationType": "GITHUB", "name": "other account's GitHub"}))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!("S7: creating the other account's integration: {}", created.text().await.unwrap_or_default());
    }
    let small = SmallUploads { url: format!("{}/v2/developers/identities", server.base()), key: other_key };

    let idle_until = Instant::now() + Duration::from_secs(IDLE_SECONDS);
    let idle = small.until(client, async { tokio::time::sleep_until(idle_until.into()).await }).await?;
    let idle_p99 = percentile(&idle, 99.0);
    let mut outcomes = vec![small.outcome("idle server (baseline)", &idle, None, idle_p99)];

    let phases = [
        (format!("during a {rows}-row upload of another account"), upload_csv, ""),
        (format!("during a {rows}-row dry run of another account"), dry_run_csv, "dryRun=true"),
    ];
    for (label, csv, query) in phases {
        let large = server.upload_csv_with(client, csv, query);
        let (latencies, answer) = {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let loop_until_done = small.until(client, async {
                let _ = rx.await;
            });
            let large = async {
                let answer = large.await;
                let _ = tx.send(());
                answer
            };
            let (latencies, answer) = tokio::join!(loop_until_done, large);
            (latencies?, answer?)
        };
        let (seconds, _) = answer;
        outcomes.push(small.outcome(&label, &latencies, Some(seconds), idle_p99));
        // Whatever the large upload left the server doing is not the next phase's.
        server.settle().await;
    }
    Ok(outcomes)
}

/// An admin key of a second account, made with the CLI beside the running server.
fn other_account_key(bin: &Path, database: &str) -> Result<String> {
    let output = Command::new(bin)
        .args(["keys", "create", "--account", "s7-other", "--scope", "admin", "--label", "bench S7"])
        .args(["--database", database])
        .output()
        .with_context(|| format!("cannot run {} keys create", bin.display()))?;
    if !output.status.success() {
        bail!("S7: keys create failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

struct SmallUploads {
    url: String,
    key: String,
}

impl SmallUploads {
    /// One 10-row upload after another until `done` resolves; their latencies in ms.
    async fn until(&self, client: &reqwest::Client, done: impl std::future::Future<Output = ()>) -> Result<Vec<f64>> {
        let mut done = std::pin::pin!(done);
        let mut latencies = Vec::new();
        let mut round = 0usize;
        loop {
            let rows: Vec<_> = (0..10)
                .map(|k| json!({"email": format!("s7-{}@other.com", round % 2), "integrationId": 1, "identity": format!("s7-{k}")}))
                .collect();
            let started = Instant::now();
            let mut request = std::pin::pin!(client.patch(&self.url).header("x-api-key", &self.key).json(&rows).send());
            let (response, finished) = tokio::select! {
                r = &mut request => (r, false),
                // The large work has answered; the small upload in flight may have waited
                // for all of it, so it is finished and counted too.
                () = &mut done => (request.await, true),
            };
            let response = response?;
            if !response.status().is_success() {
                bail!(
                    "S7: a small upload answered {}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
            }
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            if finished {
                break;
            }
            round += 1;
        }
        latencies.sort_by(f64::total_cmp);
        Ok(latencies)
    }

    fn outcome(&self, label: &str, latencies: &[f64], large_seconds: Option<f64>, idle_p99: f64) -> Outcome {
        let p99 = percentile(latencies, 99.0);
        let max = latencies.last().copied().unwrap_or(0.0);
        let seconds: f64 = latencies.iter().sum::<f64>() / 1000.0;
        Outcome {
            scenario: format!("S7 small upload of one account, {label}"),
            work: format!(
                "{} uploads, max {max:.0} ms{}",
                latencies.len(),
                large_seconds.map(|s| format!(", large work {s:.1} s")).unwrap_or_default()
            ),
            seconds,
            throughput: latencies.len() as f64 / seconds.max(1e-9),
            unit: "req/s",
            p50_ms: Some(percentile(latencies, 50.0)),
            p99_ms: Some(p99),
            // For this scenario the column holds p99 / idle p99: how much slower.
            ratio_to_floor: large_seconds.map(|_| p99 / idle_p99.max(1e-9)),
            target: "reported, not judged".into(),
            ..Default::default()
        }
    }
}
