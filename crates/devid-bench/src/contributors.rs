//! Contributor scenarios, run on the identities S1 (and S3) left: S8 ingests as many
//! contributors as there are identities (half of them the identities themselves, so
//! mapped; half accounts nobody mapped; a few bots), S9 lists the unmapped ones by
//! activity (first page, and by cursor deep in the list), S10 asks for coverage (the
//! first answer after a change, then answers served until the next change), and S11
//! runs `devid discover --commits-csv` over numpy's history end to end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;

use crate::data::Row;
use crate::server::Server;
use crate::{Outcome, check, percentile};

/// Absolute targets on the reference machine (docs/benchmarks.md).
const S8_TARGET_ROWS_PER_SECOND: f64 = 200_000.0;
const S8_TARGET_RSS_MIB: f64 = 300.0;
const S9_TARGET_P99_MS: f64 = 10.0;
const S10_TARGET_MS: f64 = 200.0;
const S11_TARGET_SECONDS: f64 = 2.0;

/// The integration S11 discovers into.
const GIT_INTEGRATION: i64 = 6;

/// Contributors for `rows` identities: every other one an identity of the dataset (so
/// mapped), the others accounts of the same systems nobody mapped, one in 200 a bot.
pub fn csv(rows: &[Row]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 96));
    let _ = writer.write_record(["integrationId", "identity", "name", "kind", "count", "lastSeen"]);
    let kinds = ["commit", "pr", "review", "issue"];
    for (i, row) in rows.iter().enumerate() {
        let identity = if i % 200 == 7 {
            format!("ci-runner-{i}[bot]")
        } else if i % 2 == 0 {
            row.identity.clone()
        } else {
            format!("unmapped-{i}")
        };
        let name = format!("Person {}", i / 2);
        let count = 1 + (i * 7919) % 500;
        let day = 1 + i % 28;
        let _ = writer.write_record([
            row.integration_id.to_string().as_str(),
            identity.as_str(),
            name.as_str(),
            kinds[i % kinds.len()],
            count.to_string().as_str(),
            format!("2026-11-{day:02}").as_str(),
        ]);
    }
    writer.into_inner().unwrap_or_default()
}

pub struct ContributorRun<'a> {
    pub server: &'a Server,
    pub client: &'a reqwest::Client,
    pub bin: &'a Path,
    pub rows: &'a [Row],
    pub requests: usize,
    pub judged: bool,
    /// S1's floor: raw rows/s of the database, the reference for S8.
    pub insert_floor: f64,
    /// S4's floor: raw 100-row pages per second.
    pub page_floor: f64,
}

impl ContributorRun<'_> {
    pub async fn run(&self) -> Result<Vec<Outcome>> {
        let mut out = vec![self.ingest().await?];
        out.extend(self.listing().await?);
        out.extend(self.coverage().await?);
        out.push(self.discover().await?);
        Ok(out)
    }

    async fn ingest(&self) -> Result<Outcome> {
        let body = csv(self.rows);
        let n = self.rows.len();
        self.server.reset_peak_rss();
        let (seconds, answer) =
            self.server.post_body(self.client, "/v2/contributors?source=bench", "text/csv", body).await?;
        check(answer["summary"]["contributorsCreated"] == json!(n), || format!("S8: {answer}"))?;
        let background = self.server.settle().await;
        let throughput = n as f64 / seconds;
        let peak = self.server.peak_rss_mib();
        let mut o = Outcome {
            scenario: "S8 contributor CSV ingest".into(),
            work: format!("{n} rows"),
            seconds,
            throughput,
            background_seconds: Some(background),
            unit: "rows/s",
            peak_rss_mib: peak,
            floor_throughput: Some(self.insert_floor),
            ratio_to_floor: Some(throughput / self.insert_floor),
            target: format!("≥ {}k rows/s, peak RSS ≤ {S8_TARGET_RSS_MIB} MiB", S8_TARGET_ROWS_PER_SECOND / 1000.0),
            ..Default::default()
        };
        o.judge(self.judged, throughput >= S8_TARGET_ROWS_PER_SECOND && peak.is_some_and(|p| p <= S8_TARGET_RSS_MIB));
        Ok(o)
    }

    /// Runs `path` `requests` times, checking each answer; p50 and p99 in ms.
    async fn repeat(&self, label: &str, path: &str, expect: impl Fn(&serde_json::Value) -> bool) -> Result<Outcome> {
        let mut latencies = Vec::with_capacity(self.requests);
        let started = Instant::now();
        for _ in 0..self.requests {
            let t = Instant::now();
            let page = self.server.get_path(self.client, path).await?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            check(expect(&page), || format!("{label}: {page}"))?;
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let throughput = latencies.len() as f64 / seconds;
        Ok(Outcome {
            scenario: label.into(),
            work: format!("{} requests", latencies.len()),
            seconds,
            throughput,
            unit: "req/s",
            p50_ms: Some(percentile(&latencies, 50.0)),
            p99_ms: Some(percentile(&latencies, 99.0)),
            floor_throughput: Some(self.page_floor),
            ratio_to_floor: Some(throughput / self.page_floor),
            ..Default::default()
        })
    }

    async fn listing(&self) -> Result<Vec<Outcome>> {
        let first = "/v2/contributors?status=unmapped&pageSize=100";
        let mut first_page =
            self.repeat("S9 unmapped by activity: first page", first, |p| p["count"] == json!(100)).await?;
        // A cursor deep in the list: about half the contributors are unmapped, so page
        // 2,000 of 100 sits in the middle of a million-row run.
        let unmapped = self.rows.len() / 2;
        let deep = (unmapped / 100 / 2).clamp(1, 2000);
        let before = self
            .server
            .get_path(self.client, &format!("/v2/contributors?status=unmapped&pageSize=100&pageIndex={}", deep - 1))
            .await?;
        let cursor = before["_metadata"]["next_cursor"].as_str().context("S9: the deep page has a next cursor")?;
        let deep_path = format!("/v2/contributors?status=unmapped&pageSize=100&cursor={cursor}");
        let mut deep_page = self
            .repeat(&format!("S9 unmapped by activity: page {deep} by cursor"), &deep_path, |p| {
                p["count"] == json!(100)
            })
            .await?;
        for o in [&mut first_page, &mut deep_page] {
            o.target = format!("p99 ≤ {S9_TARGET_P99_MS} ms");
            let met = o.p99_ms.is_some_and(|p| p <= S9_TARGET_P99_MS);
            o.judge(self.judged, met);
        }
        Ok(vec![first_page, deep_page])
    }

    async fn coverage(&self) -> Result<Vec<Outcome>> {
        // The first answer after a change computes everything; later ones are served
        // from what it remembered until contributors or identities change again.
        let t = Instant::now();
        let first = self.server.get_path(self.client, "/v2/coverage").await?;
        let cold_ms = t.elapsed().as_secs_f64() * 1000.0;
        let contributors: u64 =
            first["overall"]["contributors"].as_u64().context("S10: coverage has an overall count")?;
        check(contributors == self.rows.len() as u64, || format!("S10: {contributors} contributors"))?;
        let mut cold = Outcome {
            scenario: "S10 coverage, computed (first request)".into(),
            work: "1 request".into(),
            seconds: cold_ms / 1000.0,
            throughput: 1000.0 / cold_ms,
            unit: "req/s",
            p50_ms: Some(cold_ms),
            p99_ms: Some(cold_ms),
            target: format!("≤ {S10_TARGET_MS} ms"),
            ..Default::default()
        };
        cold.judge(self.judged, cold_ms <= S10_TARGET_MS);
        // After a change, an account that uses coverage has it computed again in the
        // background; once that settles, the next request is answered from memory.
        let mut after_change = Vec::new();
        for round in 0..5 {
            let rows: Vec<_> = (0..10)
                .map(|i| json!({"email": format!("s10-{round}@corp.example"), "integrationId": 1, "identity": format!("s10-{round}-{i}")}))
                .collect();
            let r = self
                .client
                .patch(format!("{}/v2/developers/identities", self.server.base()))
                .header("x-api-key", self.server.key())
                .json(&rows)
                .send()
                .await?;
            check(r.status().is_success(), || format!("S10: the small change answered {}", r.status()))?;
            self.server.settle().await;
            let t = Instant::now();
            let answer = self.server.get_path(self.client, "/v2/coverage").await?;
            after_change.push(t.elapsed().as_secs_f64() * 1000.0);
            check(answer["overall"]["contributors"] == json!(contributors), || format!("S10: {answer}"))?;
        }
        after_change.sort_by(f64::total_cmp);
        let total_seconds = after_change.iter().sum::<f64>() / 1000.0;
        let mut settled = Outcome {
            scenario: "S10 coverage, after a change, warmed".into(),
            work: format!("{} changes", after_change.len()),
            seconds: total_seconds,
            throughput: after_change.len() as f64 / total_seconds,
            unit: "req/s",
            p50_ms: Some(percentile(&after_change, 50.0)),
            p99_ms: Some(percentile(&after_change, 99.0)),
            target: format!("≤ {S10_TARGET_MS} ms"),
            ..Default::default()
        };
        let met = settled.p99_ms.is_some_and(|p| p <= S10_TARGET_MS);
        settled.judge(self.judged, met);
        let mut warm = self
            .repeat("S10 coverage, unchanged data", "/v2/coverage", |c| {
                c["overall"]["contributors"] == json!(contributors)
            })
            .await?;
        warm.floor_throughput = None;
        warm.ratio_to_floor = None;
        warm.target = format!("p99 ≤ {S10_TARGET_MS} ms");
        let met = warm.p99_ms.is_some_and(|p| p <= S10_TARGET_MS);
        warm.judge(self.judged, met);
        Ok(vec![cold, settled, warm])
    }

    async fn discover(&self) -> Result<Outcome> {
        let csv_path = numpy_commits_csv()?;
        let created = self
            .client
            .post(format!("{}/v2/integrations", self.server.base()))
            .header("x-api-key", self.server.key())
            .json(&json!({"id": GIT_INTEGRATION, "applicationType": "GIT", "name": "numpy"}))
            .send()
            .await?;
        check(created.status().is_success(), || format!("S11: creating the GIT integration: {}", created.status()))?;
        let (bin, base, key) = (self.bin.to_path_buf(), self.server.base().to_string(), self.server.key().to_string());
        let started = Instant::now();
        let run = tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .args(["discover", "--integration", &GIT_INTEGRATION.to_string(), "--commits-csv"])
                .arg(&csv_path)
                .env("DEVID_URL", base)
                .env("DEVID_API_KEY", key)
                .output()
        })
        .await??;
        let seconds = started.elapsed().as_secs_f64();
        check(run.status.success(), || {
            format!("S11: devid discover failed: {}", String::from_utf8_lossy(&run.stderr))
        })?;
        let commits = 31_562.0;
        let mut o = Outcome {
            scenario: "S11 devid discover --commits-csv numpy".into(),
            work: "31,562 commits".into(),
            seconds,
            throughput: commits / seconds,
            unit: "commits/s",
            target: format!("≤ {S11_TARGET_SECONDS} s"),
            ..Default::default()
        };
        o.judge(self.judged, seconds <= S11_TARGET_SECONDS);
        Ok(o)
    }
}

/// numpy's commits CSV: beside the repository, in /work/shared/data, or under
/// DEVID_SHARED_DATA.
fn numpy_commits_csv() -> Result<PathBuf> {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    [std::env::var_os("DEVID_SHARED_DATA").map(PathBuf::from), Some(beside), Some(PathBuf::from("/work/shared/data"))]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("numpy/commits.csv"))
        .find(|p| p.exists())
        .context("numpy's commits.csv: put the shared data beside the repository or set DEVID_SHARED_DATA")
}
