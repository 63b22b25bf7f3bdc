//! The devid server under test: the real release binary, started on a free port.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::data::INTEGRATIONS;

pub fn build_release_binary() -> Result<PathBuf> {
    eprintln!("  building the release binary (cargo build --release -p devid)…");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "devid", "--bin", "devid"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release -p devid failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    Ok(Path::new(&target).join("release").join("devid"))
}

pub struct Server {
    child: Child,
    base: String,
    key: String,
}

impl Server {
    /// Starts devid on an empty database; its first admin key is read from `key_file`,
    /// where devid writes it because its stderr here is a pipe, not a terminal.
    pub fn start(bin: &Path, database: &str, log: Option<&Path>, key_file: &Path) -> Result<Server> {
        let mut log = match log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            ),
            None => None,
        };
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .args(["--max-multipart-body", "4294967296", "--max-upload-rows", "20000000"])
            // The harness measures throughput: one key sends far more than a client would.
            .args(["--rate-limit", "0", "--account-rate-limit", "0"])
            // S6's webhook receiver listens on loopback, beside the harness.
            .arg("--allow-private-webhooks")
            .arg("--first-key-file")
            .arg(key_file)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps draining the server's log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut server = Server { child, base: String::new(), key: String::new() };
        while server.base.is_empty() {
            let line = rx.recv_timeout(Duration::from_secs(60)).context("devid did not start in time")?;
            if let Some(rest) = line.split("address=").nth(1) {
                server.base = format!("http://{}", rest.split_whitespace().next().unwrap_or_default());
            }
        }
        let key = std::fs::read_to_string(key_file)
            .with_context(|| format!("devid wrote no admin key to {}: was the database empty?", key_file.display()))?;
        server.key = key.trim().to_string();
        Ok(server)
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    fn status_value(&self, field: &str) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    pub fn rss_mib(&self) -> Option<f64> {
        self.status_value("VmRSS:")
    }

    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.status_value("VmHWM:")
    }

    /// CPU time the server has used so far (user + system), in clock ticks.
    fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    /// Waits until the server has finished what a scenario left behind after its answer
    /// (the WAL checkpoint of a large upload, giving memory back, PostgreSQL's ANALYZE):
    /// until it uses under 5 % of a core for half a second, or 60 s at most. Returns
    /// how long that took, which the harness reports: the work is real, it just does
    /// not delay the client.
    pub async fn settle(&self) -> f64 {
        let started = Instant::now();
        let quiet = Duration::from_millis(500);
        let Some(mut before) = self.cpu_ticks() else { return 0.0 };
        while started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(quiet).await;
            let Some(now) = self.cpu_ticks() else { break };
            // 100 ticks a second on Linux: under 2.5 ticks in 0.5 s is under 5 % of a core.
            if now.saturating_sub(before) * 100 < 250 {
                break;
            }
            before = now;
        }
        started.elapsed().as_secs_f64()
    }

    /// Starts a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM).
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }

    pub async fn create_integrations(&self, client: &reqwest::Client) -> Result<()> {
        for (id, t) in INTEGRATIONS {
            let r = client
                .post(format!("{}/v2/integrations", self.base))
                .header("x-api-key", &self.key)
                .json(&json!({"id": id, "applicationType": t, "name": t}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("creating integration {id}: {}", r.text().await.unwrap_or_default());
            }
        }
        Ok(())
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Uploads a CSV as multipart; returns the seconds it took and the summary.
    pub async fn upload_csv(&self, client: &reqwest::Client, csv: Vec<u8>) -> Result<(f64, Value)> {
        self.upload_csv_with(client, csv, "").await
    }

    /// [`Server::upload_csv`] with a query string (`dryRun=true`).
    pub async fn upload_csv_with(&self, client: &reqwest::Client, csv: Vec<u8>, query: &str) -> Result<(f64, Value)> {
        let part = reqwest::multipart::Part::bytes(csv).file_name("identities.csv");
        let form = reqwest::multipart::Form::new().part("file", part);
        let started = Instant::now();
        let r = client
            .patch(format!("{}/v2/developers/identities?{query}", self.base))
            .header("x-api-key", &self.key)
            .multipart(form)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        let seconds = started.elapsed().as_secs_f64();
        if !status.is_success() {
            bail!("upload answered {status}: {body}");
        }
        Ok((seconds, body["summary"].clone()))
    }

    /// GET `path` (with its query) as JSON; an error answer is an error.
    pub async fn get_path(&self, client: &reqwest::Client, path: &str) -> Result<Value> {
        let r = client.get(format!("{}{path}", self.base)).header("x-api-key", &self.key).send().await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }

    /// POSTs `body` with `content_type` to `path`; returns the seconds it took and the answer.
    pub async fn post_body(
        &self,
        client: &reqwest::Client,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(f64, Value)> {
        let started = Instant::now();
        let r = client
            .post(format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let status = r.status();
        let answer: Value = r.json().await?;
        let seconds = started.elapsed().as_secs_f64();
        if !status.is_success() {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok((seconds, answer))
    }

    /// The admin key the harness uses, for commands run beside it.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn get_json(&self, client: &reqwest::Client, query: &str) -> Result<Value> {
        let r = client
            .get(format!("{}/v2/developers/identities?{query}", self.base))
            .header("x-api-key", &self.key)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        if !status.is_success() {
            bail!("GET ?{query} answered {status}: {body}");
        }
        Ok(body)
    }

    /// Downloads the whole CSV, counting lines as they stream in.
    pub async fn download_csv(&self, client: &reqwest::Client) -> Result<(f64, usize)> {
        let started = Instant::now();
        let mut r = client
            .get(format!("{}/v2/developers/identities", self.base))
            .header("x-api-key", &self.key)
            .header("accept", "text/csv")
            .send()
            .await?;
        let mut lines = 0;
        while let Some(chunk) = r.chunk().await? {
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
        Ok((started.elapsed().as_secs_f64(), lines))
    }

    /// `clients` tasks each sending 10-row JSON uploads that reassign their own
    /// identities back and forth, for `length`. Returns requests, errors, seconds and
    /// latencies in milliseconds.
    pub async fn small_uploads(
        &self,
        client: &reqwest::Client,
        clients: usize,
        length: Duration,
    ) -> Result<(usize, usize, f64, Vec<f64>)> {
        let errors = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let client = client.clone();
            let url = format!("{}/v2/developers/identities", self.base);
            let key = self.key.clone();
            let errors = errors.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut round = 0usize;
                while started.elapsed() < length {
                    let rows: Vec<Value> = (0..10)
                        .map(|k| json!({"email": format!("s6-{c}-{}@company.com", round % 2), "integrationId": 1 + k % 5, "identity": format!("s6-{c}-{k}")}))
                        .collect();
                    let t = Instant::now();
                    match client.patch(&url).header("x-api-key", &key).json(&rows).send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    round += 1;
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await?);
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok((all.len(), errors.load(Ordering::Relaxed), seconds, all))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
