//! S16: the review UI's pages over S1's identities and S8's contributors, signed in as a
//! browser is (a session cookie), each page asked for `requests` times after one
//! warm-up (the review queue's first answer computes the suggestions, which S13-style
//! runs measure on their own). The target is the page's p95, measured at the client
//! over loopback, so it includes rendering and transfer.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::data::Row;
use crate::server::Server;
use crate::{Outcome, percentile};

const TARGET_P95_MS: f64 = 100.0;

pub struct UiRun<'a> {
    pub server: &'a Server,
    pub rows: &'a [Row],
    pub requests: usize,
    pub judged: bool,
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

impl UiRun<'_> {
    pub async fn run(&self) -> Result<Vec<Outcome>> {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let base = self.server.base();
        let signed_in = client
            .post(format!("{base}/ui/sign-in"))
            .form(&[("key", self.server.key()), ("next", "/ui/")])
            .send()
            .await
            .context("S16: sign in")?;
        let cookie = signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("devid_session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
            .context("S16: the sign-in set no session cookie")?;
        let middle = &self.rows[self.rows.len() / 2];
        let pages = [
            ("overview", "/ui/".to_string()),
            ("review queue", "/ui/review".to_string()),
            ("identities", "/ui/identities".to_string()),
            ("identities, sorted by last change", "/ui/identities?sort=updatedAt&order=desc".to_string()),
            ("developer", format!("/ui/developer?email={}", encode(&middle.email))),
            ("bots", "/ui/bots".to_string()),
            ("changes", "/ui/changes".to_string()),
            ("upload", "/ui/upload".to_string()),
        ];
        let mut out = Vec::new();
        for (name, path) in pages {
            out.push(self.page(&client, &cookie, name, &path).await?);
        }
        Ok(out)
    }

    async fn page(&self, client: &reqwest::Client, cookie: &str, name: &str, path: &str) -> Result<Outcome> {
        let url = format!("{}{path}", self.server.base());
        let fetch = || async {
            let r = client.get(&url).header("cookie", cookie).send().await?;
            let status = r.status();
            let body = r.text().await?;
            if status != 200 || !body.contains("<main") {
                bail!("S16 {name}: {status} {}", body.chars().take(300).collect::<String>());
            }
            Ok::<usize, anyhow::Error>(body.len())
        };
        let warm = Instant::now();
        let bytes = fetch().await?;
        let first_ms = warm.elapsed().as_secs_f64() * 1000.0;
        let mut latencies = Vec::with_capacity(self.requests);
        let started = Instant::now();
        for _ in 0..self.requests {
            let t = Instant::now();
            fetch().await?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let p95 = percentile(&latencies, 95.0);
        let mut o = Outcome {
            scenario: format!("S16 UI page: {name}"),
            work: format!(
                "{} requests, p95 {p95:.1} ms, first {first_ms:.0} ms, {} KiB",
                latencies.len(),
                bytes / 1024
            ),
            seconds,
            throughput: latencies.len() as f64 / seconds,
            unit: "req/s",
            p50_ms: Some(percentile(&latencies, 50.0)),
            p99_ms: Some(percentile(&latencies, 99.0)),
            target: format!("p95 ≤ {TARGET_P95_MS} ms"),
            ..Default::default()
        };
        o.judge(self.judged, p95 <= TARGET_P95_MS);
        Ok(o)
    }
}
