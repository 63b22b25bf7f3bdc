//! S12–S13: the change feed over the history the upload scenarios left (S1's change set
//! holds one event per row: a million at full size), and the revert of S1's upload.
//! They run last: S13 deletes what S1 created.

use std::time::Instant;

use anyhow::Result;
use serde_json::Value;

use crate::server::Server;
use crate::{Outcome, check, percentile};

pub struct ChangeRun<'a> {
    pub server: &'a Server,
    pub client: &'a reqwest::Client,
    /// Rows S1 uploaded.
    pub rows: usize,
    pub requests: usize,
    pub judged: bool,
}

/// A deterministic spread of positions in `0..n`.
fn spread(i: usize, n: usize) -> usize {
    (i.wrapping_mul(2_654_435_761) ^ (i >> 3)) % n.max(1)
}

impl ChangeRun<'_> {
    async fn latencies(&self, label: &str, paths: &[String], expect: impl Fn(&Value) -> bool) -> Result<Outcome> {
        let mut latencies = Vec::with_capacity(paths.len());
        let started = Instant::now();
        for path in paths {
            let t = Instant::now();
            let page = self.server.get_path(self.client, path).await?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            check(expect(&page), || format!("{label}: {path} answered {}", truncated(&page)))?;
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let p99 = percentile(&latencies, 99.0);
        let mut outcome = Outcome {
            scenario: label.into(),
            work: format!("{} requests", latencies.len()),
            seconds,
            throughput: latencies.len() as f64 / seconds,
            unit: "req/s",
            p50_ms: Some(percentile(&latencies, 50.0)),
            p99_ms: Some(p99),
            target: "p99 ≤ 10 ms per page".into(),
            ..Default::default()
        };
        outcome.judge(self.judged, p99 <= 10.0);
        Ok(outcome)
    }

    pub async fn run(&self) -> Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        let uploads = self.server.get_path(self.client, "/v2/changes?kind=upload&limit=1").await?;
        let s1 = &uploads["changes"][0];
        let s1_id = s1["id"].as_i64().unwrap_or_default();
        check(s1["counts"]["identity.created"].as_u64() == Some(self.rows as u64), || {
            format!("S12: S1's change set is {}", truncated(s1))
        })?;

        // The feed itself: its first pages, as a sync that starts over reads them.
        let feed: Vec<String> = (0..self.requests).map(|_| "/v2/changes?limit=100".to_string()).collect();
        outcomes.push(
            self.latencies("S12 change feed: first page", &feed, |page| page["changes"].as_array().is_some()).await?,
        );

        // S1's events, 100 a page, from places spread over the whole million.
        let first = self.server.get_path(self.client, &format!("/v2/changes/{s1_id}?limit=1")).await?;
        let first_event = first["events"][0]["id"].as_i64().unwrap_or_default();
        let last_start = self.rows.saturating_sub(100);
        let pages: Vec<String> = (0..self.requests)
            .map(|i| {
                let after = first_event - 1 + spread(i, last_start + 1) as i64;
                format!("/v2/changes/{s1_id}?limit=100&after={after}")
            })
            .collect();
        let full = self.rows >= 100;
        outcomes.push(
            self.latencies(&format!("S12 change events: pages of S1's {} events", self.rows), &pages, |page| {
                !full || page["events"].as_array().is_some_and(|e| e.len() == 100)
            })
            .await?,
        );

        // S13: S1's upload reverted. S3 (and S6–S7 where they ran) touched some of its
        // identities since, so those are skipped (force) and the rest deleted.
        self.server.reset_peak_rss();
        let started = Instant::now();
        let (_, answer) = self
            .server
            .post_body(self.client, &format!("/v2/changes/{s1_id}/revert?force=true"), "application/json", Vec::new())
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let summary = &answer["summary"];
        let (deleted, skipped) = (summary["deleted"].as_u64().unwrap_or(0), summary["skipped"].as_u64().unwrap_or(0));
        check(deleted + skipped == self.rows as u64 && deleted > 0, || {
            format!("S13: revert answered {}", truncated(&answer))
        })?;
        let throughput = self.rows as f64 / seconds;
        let mut s13 = Outcome {
            scenario: format!("S13 revert of S1's upload ({deleted} deleted, {skipped} skipped: later changes)"),
            work: format!("{} rows", self.rows),
            seconds,
            throughput,
            unit: "rows/s",
            peak_rss_mib: self.server.peak_rss_mib(),
            target: "≥ 100k rows/s".into(),
            ..Default::default()
        };
        s13.judge(self.judged, throughput >= 100_000.0);
        outcomes.push(s13);
        Ok(outcomes)
    }
}

fn truncated(value: &Value) -> String {
    value.to_string().chars().take(300).collect()
}
