//! S14–S15: the client CLI against the server the other scenarios filled. S14 runs
//! `devid export` of every identity to a file, beside the server's own download read by
//! the harness (the floor: the CLI can only add to it); S15 runs `devid sync --prune` of a
//! source made from that export with 1 % of its rows changed (new identities in place
//! of old ones), so the server holds the other 99 % and the sync must send only the
//! 1 % created and the 1 % deleted. Both measure the client's wall time and peak RSS
//! (its high-water mark read from /proc while it runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::server::Server;
use crate::{Outcome, check};

pub struct ClientRun<'a> {
    pub server: &'a Server,
    pub bin: &'a Path,
    pub workdir: &'a Path,
    pub judged: bool,
}

/// What a finished client process did.
struct Finished {
    seconds: f64,
    peak_rss_mib: Option<f64>,
    stdout: String,
    stderr: String,
}

impl ClientRun<'_> {
    /// Runs `devid <args>` against the server, sampling its peak RSS until it exits.
    fn run_client(&self, args: &[&str]) -> Result<Finished> {
        let started = Instant::now();
        let out_path = self.workdir.join("client.stdout");
        let err_path = self.workdir.join("client.stderr");
        let mut child = Command::new(self.bin)
            .args(args)
            .env("DEVID_URL", self.server.base())
            .env("DEVID_API_KEY", self.server.key())
            .env("DEVID_CONFIG", self.workdir.join("no-config.toml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(&err_path)?)
            .spawn()
            .context("starting the devid client")?;
        let status_path = PathBuf::from(format!("/proc/{}/status", child.id()));
        let mut peak: Option<f64> = None;
        let status = loop {
            // VmHWM is the process's own high-water mark: the last reading before it
            // exits is its peak.
            if let Some(hwm) = std::fs::read_to_string(&status_path).ok().and_then(|s| vm_hwm_mib(&s)) {
                peak = Some(peak.map_or(hwm, |p: f64| p.max(hwm)));
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let seconds = started.elapsed().as_secs_f64();
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        check(status.success(), || format!("devid {} failed ({status}): {stdout}{stderr}", args.join(" ")))?;
        Ok(Finished { seconds, peak_rss_mib: peak, stdout, stderr })
    }

    pub fn run(&self, client: &reqwest::Client) -> Result<Vec<Outcome>> {
        // The server's own download, read by the harness without writing it anywhere:
        // what the CLI's export cannot beat, measured just before it.
        let (download_seconds, download_lines) =
            tokio::runtime::Handle::current().block_on(self.server.download_csv(client))?;
        let download_rate = download_lines.saturating_sub(1) as f64 / download_seconds;
        let export_path = self.workdir.join("export.csv");
        let export_arg = export_path.to_string_lossy().into_owned();
        let exported = self.run_client(&["export", "-o", &export_arg])?;
        let text = std::fs::read_to_string(&export_path).context("reading the export")?;
        let rows = text.lines().count().saturating_sub(1);
        check(exported.stderr.contains(&format!("Exported {rows} identities")), || {
            format!("S14: the client reports another count than the file's {rows} rows: {}", exported.stderr)
        })?;
        let throughput = rows as f64 / exported.seconds;
        let mut s14 = Outcome {
            scenario: "S14 devid export to a file".into(),
            work: format!("{rows} rows"),
            seconds: exported.seconds,
            throughput,
            unit: "rows/s",
            peak_rss_mib: exported.peak_rss_mib,
            floor_throughput: Some(download_rate),
            ratio_to_floor: Some(throughput / download_rate),
            target: "≥ 500,000 rows/s (floor: the server's download read by the harness)".into(),
            ..Default::default()
        };
        s14.judge(self.judged, throughput >= 500_000.0);

        // The source: the export with every 100th row's identity renamed.
        let mut source = String::with_capacity(text.len() + rows);
        let mut changed = 0usize;
        for (n, line) in text.lines().enumerate() {
            let cells: Vec<&str> = line.splitn(4, ',').collect();
            if n == 0 {
                source.push_str("email,integrationId,identity\n");
                continue;
            }
            check(cells.len() == 4 && !line.contains('"'), || {
                format!("S15: an export line the harness cannot split: {line}")
            })?;
            if n % 100 == 0 {
                source.push_str(&format!("{},{},{}-synced\n", cells[0], cells[1], cells[2]));
                changed += 1;
            } else {
                source.push_str(&format!("{},{},{}\n", cells[0], cells[1], cells[2]));
            }
        }
        drop(text);
        let source_path = self.workdir.join("sync-source.csv");
        std::fs::write(&source_path, source).context("writing the sync source")?;
        let source_arg = source_path.to_string_lossy().into_owned();
        let synced = self.run_client(&["sync", "--source", &source_arg, "--prune", "--max-deletes", "2%"])?;
        let expected = format!("{changed} created, 0 reassigned, {changed} deleted");
        check(synced.stdout.contains(&expected), || {
            format!("S15: expected `{expected}` from the sync: {}{}", synced.stdout, synced.stderr)
        })?;
        check(synced.stdout.contains(&format!("received: {changed}")), || {
            format!("S15: the upload should carry only the {changed} changed rows: {}", synced.stdout)
        })?;
        let mut s15 = Outcome {
            scenario: "S15 devid sync --prune, 1 % changed".into(),
            work: format!("{rows}-row source, {changed} created + {changed} deleted"),
            seconds: synced.seconds,
            throughput: rows as f64 / synced.seconds,
            unit: "rows/s",
            peak_rss_mib: synced.peak_rss_mib,
            target: "≤ 15 s end to end; client peak RSS ≤ 500 MiB".into(),
            ..Default::default()
        };
        let met = synced.seconds <= 15.0 && synced.peak_rss_mib.is_some_and(|p| p <= 500.0);
        s15.judge(self.judged, met);
        Ok(vec![s14, s15])
    }
}

fn vm_hwm_mib(status: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
