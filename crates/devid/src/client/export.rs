//! `devid export`: every identity matching the listing's filters, as the server's CSV
//! download (streamed to the file as it arrives) or as a JSON array of the listing's
//! records (walked page by page with the keyset cursor).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{Client, ServerArgs, progress, unavailable, usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// `email,integrationId,identity,applicationType,updatedAt`: uploads back unchanged.
    Csv,
    /// A JSON array of the listing's records (with createdAt, locked and source).
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Write to this file (replaced only once the export is complete); standard output
    /// when left out or `-`.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Only these developers' identities (comma-separated emails).
    #[arg(long)]
    pub emails: Option<String>,
    /// Only these integrations (comma-separated ids).
    #[arg(long)]
    pub integration_ids: Option<String>,
    /// Only these types (comma-separated, such as GITHUB,JIRA).
    #[arg(long)]
    pub application_types: Option<String>,
    /// Only identities whose email or identity contains this text (any case).
    #[arg(long)]
    pub search: Option<String>,
    /// Only identities changed after this time (RFC 3339, such as 2026-01-31T00:00:00Z).
    #[arg(long)]
    pub updated_after: Option<String>,
    /// email, integrationId, identity or updatedAt.
    #[arg(long, default_value = "email")]
    pub sort_key: String,
    /// asc or desc.
    #[arg(long, default_value = "asc")]
    pub sort_order: String,
    /// CSV: add the columns locked and source.
    #[arg(long)]
    pub provenance: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl ExportArgs {
    fn filters(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("sortKey", self.sort_key.clone()), ("sortOrder", self.sort_order.clone())];
        let optional = [
            ("emails", &self.emails),
            ("integrationIds", &self.integration_ids),
            ("applicationTypes", &self.application_types),
            ("searchValue", &self.search),
            ("updatedAfter", &self.updated_after),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        query
    }
}

/// Where the rows go: standard output, or a temporary file beside the target that
/// becomes the target when the export completes (an interrupted export leaves no
/// truncated file that looks whole).
enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File { file: std::io::BufWriter<std::fs::File>, partial: PathBuf, target: PathBuf },
}

impl Sink {
    fn open(output: Option<&Path>) -> Result<Sink> {
        match output.filter(|p| p.as_os_str() != "-") {
            None => Ok(Sink::Stdout(std::io::BufWriter::with_capacity(1 << 20, std::io::stdout()))),
            Some(target) => {
                let mut partial = target.as_os_str().to_owned();
                partial.push(".partial");
                let partial = PathBuf::from(partial);
                let file = std::fs::File::create(&partial)
                    .map_err(|e| usage(format!("Cannot write {}: {e}.", partial.display())))?;
                Ok(Sink::File {
                    file: std::io::BufWriter::with_capacity(1 << 20, file),
                    partial,
                    target: target.into(),
                })
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let result = match self {
            Sink::Stdout(out) => out.write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        };
        result.map_err(|e| usage(format!("Cannot write the export: {e}.")))
    }

    fn finish(self) -> Result<String> {
        match self {
            Sink::Stdout(mut out) => {
                out.flush().map_err(|e| usage(format!("Cannot write the export: {e}.")))?;
                Ok("standard output".into())
            }
            Sink::File { file, partial, target } => {
                let file = file.into_inner().map_err(|e| usage(format!("Cannot write {}: {e}.", partial.display())))?;
                file.sync_all().map_err(|e| usage(format!("Cannot write {}: {e}.", partial.display())))?;
                std::fs::rename(&partial, &target)
                    .map_err(|e| usage(format!("Cannot move {} to {}: {e}.", partial.display(), target.display())))?;
                Ok(target.display().to_string())
            }
        }
    }

    fn abandon(self) {
        if let Sink::File { partial, .. } = self {
            let _ = std::fs::remove_file(partial);
        }
    }
}

pub async fn export(args: ExportArgs) -> Result<()> {
    let client = Client::new(&args.server)?;
    let mut sink = Sink::open(args.output.as_deref())?;
    let started = Instant::now();
    let result = match args.format {
        ExportFormat::Csv => export_csv(&client, &args, &mut sink).await,
        ExportFormat::Json => export_json(&client, &args, &mut sink).await,
    };
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            sink.abandon();
            return Err(e);
        }
    };
    let place = sink.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "Exported {rows} identities to {place} in {seconds:.1} s ({:.0} rows/s).",
        rows as f64 / seconds.max(1e-6)
    );
    Ok(())
}

/// Copies the server's CSV as it arrives; counts rows by their line ends (a quoted
/// cell may hold one, so the count is for the progress bar and the summary only).
async fn export_csv(client: &Client, args: &ExportArgs, sink: &mut Sink) -> Result<u64> {
    let mut query = args.filters();
    query.push(("format", "csv".into()));
    if args.provenance {
        query.push(("provenance", "true".into()));
    }
    let mut response = client.send(client.get("/v2/developers/identities").query(&query)).await?;
    let bar = progress(None, "{spinner} Exporting: {human_pos} rows [{elapsed}] {per_sec}");
    let mut line_ends = 0u64;
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            unavailable(format!(
                "The download from {} broke off: {e}. Nothing was written; run the export again.",
                client.base()
            ))
        })?;
        let Some(chunk) = chunk else { break };
        let ends = memchr_count(&chunk);
        line_ends += ends;
        bar.inc(ends);
        sink.write(&chunk)?;
    }
    bar.finish_and_clear();
    Ok(line_ends.saturating_sub(1))
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Walks the JSON listing 1,000 records at a time with its cursor and writes one array.
async fn export_json(client: &Client, args: &ExportArgs, sink: &mut Sink) -> Result<u64> {
    let base = args.filters();
    let bar = progress(Some(0), "{spinner} Exporting {human_pos}/{human_len} {wide_bar} {per_sec}");
    let mut cursor: Option<String> = None;
    let mut rows = 0u64;
    sink.write(b"[")?;
    loop {
        let mut query = base.clone();
        query.push(("pageSize", "1000".into()));
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let page = client.send_json(client.get("/v2/developers/identities").query(&query), &|_| None).await?;
        if cursor.is_none() {
            let total = page.pointer("/_metadata/total_count").and_then(Value::as_u64).unwrap_or(0);
            bar.set_length(total);
        }
        for record in page.get("records").and_then(Value::as_array).into_iter().flatten() {
            sink.write(if rows == 0 { b"\n" } else { b",\n" })?;
            let text = serde_json::to_vec(record).map_err(|e| usage(format!("cannot encode a record: {e}")))?;
            sink.write(&text)?;
            rows += 1;
            bar.inc(1);
        }
        match page.pointer("/_metadata/next_cursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => cursor = Some(next.to_string()),
            _ => break,
        }
    }
    sink.write(b"\n]\n")?;
    bar.finish_and_clear();
    Ok(rows)
}
