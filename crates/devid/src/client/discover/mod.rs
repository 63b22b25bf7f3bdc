//! `devid discover`: finds the people in a repository's history and uploads them as
//! contributors of one GIT integration.
//!
//! It reads a repository with gix (every commit reachable from HEAD, merges included),
//! or the same facts from a CSV of commits, and turns each commit into sightings: its
//! author and every `Co-authored-by:` trailer as kind `commit`, its committer as kind
//! `other` when the committer's email is not the author's. Sightings are tallied per
//! (kind, lower-cased email, name); the tallies go to `POST /v2/contributors` as NDJSON,
//! in `mode=replace` for the source label, or to a file with `--out`.
//!
//! Guarantees: history is never a reason to panic. Names and emails that are not UTF-8
//! are read with U+FFFD replacements and counted in the summary; entries with an empty
//! email are skipped and counted; a commit whose author line cannot be parsed is skipped
//! and counted; a path that is not a repository, or a CSV row that cannot be read, is an
//! error naming the path (and line). An empty result is never uploaded, because with
//! `mode=replace` it would remove every contributor of the source.
//!
//! This module is the command: its arguments, the run from reading to the upload or the
//! file, and the counts both readers report. Reading a repository is `git`, reading a
//! CSV is `csv`, and turning sightings into rows and rows into NDJSON is `tally`.

mod csv;
mod git;
mod tally;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use devid_core::types::{IntegrationId, MAX_INTEGRATION_ID};
use indicatif::ProgressBar;
use serde_json::Value;

use self::csv::read_commits_csv;
use self::git::read_git;
use self::tally::{Contributor, Kind, Tally, ndjson};
use super::{Client, ServerArgs, progress, summary_lines};

/// Arguments of `devid discover`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["git", "commits_csv"])))]
pub(crate) struct DiscoverArgs {
    /// The repository to read: a clone's top directory (the one holding `.git`) or a
    /// bare repository. Every commit reachable from HEAD is read, merges included. No
    /// `git` program is needed.
    #[arg(long, value_name = "PATH")]
    git: Option<PathBuf>,
    /// Read the same facts from a CSV file instead of a repository: a header naming at
    /// least author_name, author_email, authored_at (RFC 3339 with an offset),
    /// committer_name and committer_email, in any order; committed_at is used when
    /// present, and other columns are ignored. A CSV has no messages, so no
    /// Co-authored-by trailers.
    #[arg(long, value_name = "FILE")]
    commits_csv: Option<PathBuf>,
    /// Id of the integration the contributors belong to: a GIT-type integration
    /// (`GET /v2/integrations` lists them).
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(IntegrationId).range(1..=MAX_INTEGRATION_ID))]
    integration: IntegrationId,
    /// Where these contributors come from. The upload replaces the contributors
    /// previously uploaded with the same label, so use one label per repository.
    /// Default: `git:<repository directory name>` or `csv:<file name without extension>`.
    #[arg(long, value_name = "LABEL")]
    source: Option<String>,
    /// Ask the server to check the upload and say what it would change, changing nothing.
    #[arg(long, conflicts_with = "out")]
    dry_run: bool,
    /// Write the NDJSON that would be uploaded to FILE (`-` for stdout) instead of
    /// uploading it; no server or API key is needed then.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `devid discover`: read, tally, then write or upload, and say what happened.
pub(crate) async fn discover(args: DiscoverArgs) -> Result<()> {
    let input = match (&args.git, &args.commits_csv) {
        (Some(path), _) => Input::Git(path.clone()),
        (None, Some(path)) => Input::Csv(path.clone()),
        // clap's `input` group requires one of them.
        (None, None) => bail!("Pass --git PATH or --commits-csv FILE."),
    };
    // A missing key is reported before the history is read, not after.
    let client = match args.out {
        Some(_) => None,
        None => Some(Client::new(&args.server)?),
    };
    let started = Instant::now();
    let reading = input.clone();
    let discovery = tokio::task::spawn_blocking(move || reading.read()).await.context("the reading task stopped")??;
    let source = match args.source.as_deref().map(str::trim) {
        Some("") => bail!("--source must not be empty."),
        Some(label) => label.to_string(),
        None => discovery.default_source.clone(),
    };
    for warning in discovery.stats.warnings() {
        eprintln!("devid: {warning}");
    }
    let found = discovery.describe(&input);
    let elapsed = || format!("{:.2} s", started.elapsed().as_secs_f64());
    match (&args.out, client) {
        (Some(out), _) => {
            write_out(out, &ndjson(&discovery.contributors, args.integration)?)?;
            let to = if out.as_os_str() == "-" { "stdout".to_string() } else { out.display().to_string() };
            eprintln!("{found}; wrote the upload to {to} in {}.", elapsed());
        }
        (None, Some(client)) => {
            if discovery.contributors.is_empty() {
                bail!(
                    "{found}, so nothing was uploaded: an empty upload would remove every contributor of source `{source}`."
                );
            }
            let bar = progress(Some(0), "{spinner} Uploading {bytes}/{total_bytes} {bar:30} {msg}");
            let target = Target { integration: args.integration, source: &source, dry_run: args.dry_run };
            let answer = upload(&client, &discovery.contributors, &target, &bar).await;
            bar.finish_and_clear();
            let answer = answer.inspect_err(|_| eprintln!("{found}; the upload failed:"))?;
            if let Some(message) = answer.get("message").and_then(Value::as_str) {
                println!("{message}");
            }
            for line in summary_lines(&answer) {
                println!("{line}");
            }
            let (what, note) =
                if args.dry_run { ("checked by", " (dry run: nothing was changed)") } else { ("uploaded to", "") };
            eprintln!(
                "{found}; {what} {} for integration {} as source `{source}` in {}{note}.",
                client.base(),
                args.integration,
                elapsed()
            );
        }
        (None, None) => bail!("No server to upload to."),
    }
    Ok(())
}

/// Where an upload goes.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    integration: IntegrationId,
    /// The source label whose contributors the upload replaces.
    source: &'a str,
    dry_run: bool,
}

/// Sends `rows` as NDJSON to `POST /v2/contributors?source=…&mode=replace` (plus
/// `dryRun=true`) and returns the server's JSON answer; `bar` advances as the body is
/// sent. A refusal is an error holding the server's message and its samples, each
/// naming the contributor of its line.
async fn upload(client: &Client, rows: &[Contributor], target: &Target<'_>, bar: &ProgressBar) -> Result<Value> {
    let body = ndjson(rows, target.integration)?;
    let mut query = vec![("source", target.source), ("mode", "replace")];
    if target.dry_run {
        query.push(("dryRun", "true"));
    }
    let (body, length) = super::body_with_progress(body, bar);
    let request = client
        .post("/v2/contributors")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        // Declared so the server knows the size up front, as it would for a file.
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(body);
    // Line n of the body is rows[n - 1].
    let who = |line: u64| {
        let row = rows.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        Some(format!("{} <{}>, {}", row.name, row.email, row.kind.as_str()))
    };
    client.send_json(request, &who).await
}

fn write_out(out: &Path, body: &[u8]) -> Result<()> {
    if out.as_os_str() == "-" {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(body).and_then(|()| stdout.flush()).context("cannot write the NDJSON to stdout")
    } else {
        std::fs::write(out, body).with_context(|| format!("cannot write {}", out.display()))
    }
}

#[derive(Debug, Clone)]
enum Input {
    Git(PathBuf),
    Csv(PathBuf),
}

impl Input {
    fn read(&self) -> Result<Discovery> {
        let mut tally = Tally::default();
        let stats = match self {
            Input::Git(path) => {
                let bar = progress(None, "{spinner} Reading commits: {human_pos} [{elapsed}]");
                let stats = read_git(path, &mut tally, &bar);
                bar.finish_and_clear();
                stats?
            }
            Input::Csv(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("Cannot open the CSV file {}; check the path.", path.display()))?;
                let size = file.metadata().map(|m| m.len()).ok();
                let bar = progress(size, "{spinner} Reading {bytes}/{total_bytes} {wide_bar}");
                let stats = read_commits_csv(file, &path.display().to_string(), &mut tally, &bar);
                bar.finish_and_clear();
                stats?
            }
        };
        let (contributors, empty_emails) = tally.finish();
        Ok(Discovery {
            contributors,
            stats: ReadStats { empty_emails, ..stats },
            default_source: self.default_source(),
        })
    }

    /// `git:<directory name>` (a `.git` directory stands for its parent, and a bare
    /// `name.git` for `name`) or `csv:<file stem>`.
    fn default_source(&self) -> String {
        match self {
            Input::Git(path) => {
                let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                let mut name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if name == ".git" {
                    name = path
                        .parent()
                        .and_then(Path::file_name)
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                }
                let name = name.strip_suffix(".git").filter(|n| !n.is_empty()).unwrap_or(&name);
                format!("git:{name}")
            }
            Input::Csv(path) => format!("csv:{}", path.file_stem().map(|n| n.to_string_lossy()).unwrap_or_default()),
        }
    }
}

/// What reading found: the tallied contributors and what had to be skipped or replaced.
#[derive(Debug)]
struct Discovery {
    contributors: Vec<Contributor>,
    stats: ReadStats,
    default_source: String,
}

impl Discovery {
    /// "Found 12 contributors (10 commit, 2 other) in 31 commits of PATH": contributors
    /// as the server keys them (one per email, whatever its case), those that authored
    /// a commit apart from those seen only committing.
    fn describe(&self, input: &Input) -> String {
        let mut authored: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
        for c in &self.contributors {
            *authored.entry(c.email.to_lowercase()).or_default() |= c.kind == Kind::Commit;
        }
        let commit = authored.values().filter(|a| **a).count();
        let other = authored.len() - commit;
        let of = match input {
            Input::Git(path) | Input::Csv(path) => path.display(),
        };
        format!(
            "Found {} ({commit} commit, {other} other) in {} of {of}",
            plural(authored.len() as u64, "contributor"),
            plural(self.stats.commits, "commit")
        )
    }
}

/// "1 commit", "2 commits".
fn plural(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// Counts a summary reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ReadStats {
    /// Commits (or CSV rows) read.
    commits: u64,
    /// Commits with at least one name or email that is not UTF-8.
    not_utf8: u64,
    /// Authors, co-authors and committers skipped because their email is empty.
    empty_emails: u64,
    /// Commits skipped because their author or committer line cannot be parsed.
    unreadable: u64,
}

impl ReadStats {
    /// One sentence per thing the reader had to replace or skip.
    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let commits = |n: u64| if n == 1 { "1 commit had".to_string() } else { format!("{n} commits had") };
        if self.not_utf8 > 0 {
            out.push(format!(
                "{} names or emails that are not UTF-8; they were read with U+FFFD replacements.",
                commits(self.not_utf8)
            ));
        }
        if self.empty_emails > 0 {
            let n = self.empty_emails;
            out.push(format!(
                "{n} {} an empty email and {} skipped.",
                if n == 1 { "author, co-author or committer had" } else { "authors, co-authors or committers had" },
                if n == 1 { "was" } else { "were" }
            ));
        }
        if self.unreadable > 0 {
            out.push(format!(
                "{} an author or committer line that cannot be parsed; {} skipped.",
                commits(self.unreadable),
                if self.unreadable == 1 { "it was" } else { "they were" }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sources_name_the_repository_or_the_file() {
        assert_eq!(Input::Csv("/data/numpy/commits.csv".into()).default_source(), "csv:commits");
        let dir = tempfile::tempdir().expect("dir");
        let bare = dir.path().join("numpy.git");
        std::fs::create_dir(&bare).expect("mkdir");
        assert_eq!(Input::Git(bare.clone()).default_source(), "git:numpy");
        let clone = dir.path().join("devid");
        std::fs::create_dir_all(clone.join(".git")).expect("mkdir");
        assert_eq!(Input::Git(clone.join(".git")).default_source(), "git:devid");
        assert_eq!(Input::Git(clone).default_source(), "git:devid");
    }
}
