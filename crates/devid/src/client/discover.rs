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

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use devid_core::types::{IntegrationId, MAX_INTEGRATION_ID};
use indicatif::ProgressBar;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Client, ServerArgs, progress, summary_lines};

/// Arguments of `devid discover`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["git", "commits_csv"])))]
pub struct DiscoverArgs {
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
pub async fn discover(args: DiscoverArgs) -> Result<()> {
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
pub struct Target<'a> {
    pub integration: IntegrationId,
    /// The source label whose contributors the upload replaces.
    pub source: &'a str,
    pub dry_run: bool,
}

/// Sends `rows` as NDJSON to `POST /v2/contributors?source=…&mode=replace` (plus
/// `dryRun=true`) and returns the server's JSON answer; `bar` advances as the body is
/// sent. A refusal is an error holding the server's message and its samples, each
/// naming the contributor of its line.
pub async fn upload(client: &Client, rows: &[Contributor], target: &Target<'_>, bar: &ProgressBar) -> Result<Value> {
    const CHUNK_BYTES: usize = 64 * 1024;
    let body = ndjson(rows, target.integration)?;
    let mut query = vec![("source", target.source), ("mode", "replace")];
    if target.dry_run {
        query.push(("dryRun", "true"));
    }
    let length = body.len();
    bar.set_length(length as u64);
    let sent = bar.clone();
    let chunks: Vec<Vec<u8>> = body.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        sent.inc(chunk.len() as u64);
        if sent.position() as usize >= length {
            sent.set_message("sent; the server is applying it");
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    let request = client
        .post("/v2/contributors")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        // Declared so the server knows the size up front, as it would for a file.
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(reqwest::Body::wrap_stream(stream));
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
    /// "Found 12 contributors (10 commit, 2 other) in 31 commits of PATH".
    fn describe(&self, input: &Input) -> String {
        let commit = self.contributors.iter().filter(|c| c.kind == Kind::Commit).count();
        let other = self.contributors.len() - commit;
        let of = match input {
            Input::Git(path) | Input::Csv(path) => path.display(),
        };
        format!(
            "Found {} ({commit} commit, {other} other) in {} of {of}",
            plural(self.contributors.len() as u64, "contributor"),
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
pub struct ReadStats {
    /// Commits (or CSV rows) read.
    pub commits: u64,
    /// Commits with at least one name or email that is not UTF-8.
    pub not_utf8: u64,
    /// Authors, co-authors and committers skipped because their email is empty.
    pub empty_emails: u64,
    /// Commits skipped because their author or committer line cannot be parsed.
    pub unreadable: u64,
}

impl ReadStats {
    /// One sentence per thing the reader had to replace or skip.
    pub fn warnings(&self) -> Vec<String> {
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

/// How a contributor was seen: `commit` (author or co-author) or `other` (committer of
/// someone else's commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Commit,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Other => "other",
        }
    }
}

/// One person of one commit, as read.
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    pub kind: Kind,
    pub name: &'a str,
    pub email: &'a str,
    /// Seconds since the Unix epoch.
    pub at: i64,
}

/// One output row: a (kind, email, name) and how often and when it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contributor {
    pub kind: Kind,
    pub name: String,
    /// As first recorded (case kept); rows are keyed by its lower-case form.
    pub email: String,
    /// Commits it appears in with this kind.
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// Tallies sightings per (kind, lower-cased email, name).
#[derive(Debug, Default)]
pub struct Tally {
    rows: HashMap<(Kind, String, String), Contributor>,
    empty_emails: u64,
}

impl Tally {
    /// Adds one commit's sightings. A person seen twice in one commit with the same
    /// kind (a co-author trailer repeated by a squash merge, or naming the author)
    /// counts once for it. Names and emails are trimmed; an empty email is skipped and
    /// counted.
    pub fn commit(&mut self, sightings: &[Sighting<'_>]) {
        let mut seen: Vec<(Kind, String, &str)> = Vec::with_capacity(sightings.len());
        for s in sightings {
            let (name, email) = (s.name.trim(), s.email.trim());
            if email.is_empty() {
                self.empty_emails += 1;
                continue;
            }
            let lower = email.to_lowercase();
            if seen.iter().any(|(k, e, n)| *k == s.kind && *e == lower && *n == name) {
                continue;
            }
            let key = (s.kind, lower, name.to_string());
            seen.push((s.kind, key.1.clone(), name));
            self.rows
                .entry(key)
                .and_modify(|row| {
                    row.count += 1;
                    row.first_seen = row.first_seen.min(s.at);
                    row.last_seen = row.last_seen.max(s.at);
                })
                .or_insert_with(|| Contributor {
                    kind: s.kind,
                    name: name.to_string(),
                    email: email.to_string(),
                    count: 1,
                    first_seen: s.at,
                    last_seen: s.at,
                });
        }
    }

    /// The rows, ordered by lower-cased email, name and kind (so the same history always
    /// gives the same file), and how many sightings were skipped for an empty email.
    pub fn finish(self) -> (Vec<Contributor>, u64) {
        let mut rows: Vec<_> = self.rows.into_iter().collect();
        rows.sort_unstable_by(|((ka, ea, na), _), ((kb, eb, nb), _)| (ea, na, ka).cmp(&(eb, nb, kb)));
        (rows.into_iter().map(|(_, row)| row).collect(), self.empty_emails)
    }
}

/// Bytes as text; marks `lossy` when they are not UTF-8 and had to be replaced.
fn text<'a>(bytes: &'a [u8], lossy: &mut bool) -> Cow<'a, str> {
    let text = String::from_utf8_lossy(bytes);
    *lossy |= matches!(text, Cow::Owned(_));
    text
}

/// The name and email of every `Co-authored-by: Name <email>` line of a commit message,
/// the token in any case. Every line counts, not only the final trailer block, because
/// a squash of several commits keeps each one's trailers where they were. A line
/// without a `<…>` at its end, or with nothing between the brackets, is ignored.
pub fn co_authors(message: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    message.split(|&b| b == b'\n').filter_map(co_author)
}

fn co_author(line: &[u8]) -> Option<(&[u8], &[u8])> {
    const TOKEN: &[u8] = b"co-authored-by:";
    let line = line.trim_ascii();
    if !line.get(..TOKEN.len())?.eq_ignore_ascii_case(TOKEN) {
        return None;
    }
    let rest = line[TOKEN.len()..].trim_ascii().strip_suffix(b">")?;
    let open = rest.iter().rposition(|&b| b == b'<')?;
    let (name, email) = (rest[..open].trim_ascii(), rest[open + 1..].trim_ascii());
    if email.is_empty() || email.contains(&b'>') {
        return None;
    }
    Some((name, email))
}

/// Opens the repository at `path` as it is (never a parent directory's), reading only
/// its own configuration: what is in the repository, not the user's or system's git
/// settings or `GIT_*` variables, decides what is read.
fn open_repository(path: &Path) -> Result<gix::Repository> {
    if !path.exists() {
        bail!("There is no directory {}; pass --git the top directory of a git clone.", path.display());
    }
    gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a git repository that can be read ({e}). Pass --git the top directory of a clone (the one holding .git) or a bare repository.",
            path.display()
        )
    })
}

/// Walks every commit reachable from HEAD (merges included: a merge is its author's
/// work too) in the order gix finds them, and tallies its people.
fn read_git(path: &Path, tally: &mut Tally, bar: &ProgressBar) -> Result<ReadStats> {
    let repo = open_repository(path)?;
    let mut head = repo.head().with_context(|| format!("cannot read HEAD of the repository {}", path.display()))?;
    if head.is_unborn() {
        bail!(
            "The repository {} has no commits yet (HEAD names a branch without any), so there is nothing to discover.",
            path.display()
        );
    }
    let tip = head
        .peel_to_commit()
        .with_context(|| format!("HEAD of the repository {} does not lead to a commit", path.display()))?
        .id;
    let walk = repo.rev_walk([tip]).all().with_context(|| format!("cannot walk the history of {}", path.display()))?;
    let mut stats = ReadStats::default();
    for info in walk {
        let info = info.with_context(|| format!("cannot walk the history of {}", path.display()))?;
        let commit = info.object().with_context(|| format!("cannot read commit {} in {}", info.id, path.display()))?;
        let decoded =
            commit.decode().with_context(|| format!("cannot parse commit {} in {}", info.id, path.display()))?;
        stats.commits += 1;
        bar.inc(1);
        let (Ok(author), Ok(committer)) = (decoded.author(), decoded.committer()) else {
            stats.unreadable += 1;
            continue;
        };
        let mut lossy = false;
        let author_name = text(author.name, &mut lossy);
        let author_email = text(author.email, &mut lossy);
        let committer_name = text(committer.name, &mut lossy);
        let committer_email = text(committer.email, &mut lossy);
        let trailers: Vec<(Cow<str>, Cow<str>)> = co_authors(decoded.message)
            .map(|(name, email)| (text(name, &mut lossy), text(email, &mut lossy)))
            .collect();
        stats.not_utf8 += u64::from(lossy);
        let at = author.seconds();
        let mut sightings = vec![Sighting { kind: Kind::Commit, name: &author_name, email: &author_email, at }];
        sightings.extend(trailers.iter().map(|(name, email)| Sighting { kind: Kind::Commit, name, email, at }));
        if !committer_email.trim().eq_ignore_ascii_case(author_email.trim()) {
            let at = committer.seconds();
            sightings.push(Sighting { kind: Kind::Other, name: &committer_name, email: &committer_email, at });
        }
        tally.commit(&sightings);
    }
    Ok(stats)
}

/// Where the needed columns are in a commits CSV.
struct Columns {
    author_name: usize,
    author_email: usize,
    authored_at: usize,
    committer_name: usize,
    committer_email: usize,
    committed_at: Option<usize>,
}

impl Columns {
    fn find(header: &csv::ByteRecord, label: &str) -> Result<Self> {
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = String::from_utf8_lossy(name);
                // A UTF-8 byte order mark is not part of the first name.
                let name = if i == 0 { name.trim_start_matches('\u{feff}') } else { &name };
                name.trim().to_ascii_lowercase()
            })
            .collect();
        let at = |wanted: &str| names.iter().position(|n| n == wanted);
        let required = ["author_name", "author_email", "authored_at", "committer_name", "committer_email"];
        let missing: Vec<&str> = required.into_iter().filter(|name| at(name).is_none()).collect();
        if !missing.is_empty() {
            bail!(
                "{label}: the header lacks {}. A commits CSV names author_name, author_email, authored_at, committer_name and committer_email in its first line; it has {}.",
                missing.join(", "),
                names.join(", ")
            );
        }
        let need = |name: &str| at(name).unwrap_or_default();
        Ok(Self {
            author_name: need("author_name"),
            author_email: need("author_email"),
            authored_at: need("authored_at"),
            committer_name: need("committer_name"),
            committer_email: need("committer_email"),
            committed_at: at("committed_at"),
        })
    }
}

/// Reads a commits CSV (columns found by name, see [`DiscoverArgs`]) and tallies its
/// people like [`read_git`] without trailers; `label` names the file in errors, which
/// give the line of the first row that cannot be read. `bar` follows the bytes read.
pub fn read_commits_csv(input: impl Read, label: &str, tally: &mut Tally, bar: &ProgressBar) -> Result<ReadStats> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader.byte_headers().with_context(|| format!("cannot read the header of {label}"))?.clone();
    let columns = Columns::find(&header, label)?;
    let mut record = csv::ByteRecord::new();
    let mut stats = ReadStats::default();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| format!(" line {}", p.line())).unwrap_or_default();
                bail!("{label}{line} cannot be read as CSV: {e}. Fix the file and run again; nothing was uploaded.");
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        let field = |i: usize, name: &str| {
            record.get(i).with_context(|| {
                format!(
                    "{label} line {line} has {} fields, but the header puts {name} in field {}; every row needs the header's columns.",
                    record.len(),
                    i + 1
                )
            })
        };
        let mut lossy = false;
        let author_name = text(field(columns.author_name, "author_name")?, &mut lossy);
        let author_email = text(field(columns.author_email, "author_email")?, &mut lossy);
        let committer_name = text(field(columns.committer_name, "committer_name")?, &mut lossy);
        let committer_email = text(field(columns.committer_email, "committer_email")?, &mut lossy);
        let authored = parse_time(field(columns.authored_at, "authored_at")?, label, line, "authored_at")?;
        let committed = match columns.committed_at.map(|i| field(i, "committed_at")).transpose()? {
            Some(cell) if !cell.trim_ascii().is_empty() => parse_time(cell, label, line, "committed_at")?,
            _ => authored,
        };
        stats.commits += 1;
        stats.not_utf8 += u64::from(lossy);
        let mut sightings =
            vec![Sighting { kind: Kind::Commit, name: &author_name, email: &author_email, at: authored }];
        if !committer_email.trim().eq_ignore_ascii_case(author_email.trim()) {
            sightings.push(Sighting {
                kind: Kind::Other,
                name: &committer_name,
                email: &committer_email,
                at: committed,
            });
        }
        tally.commit(&sightings);
        if stats.commits % 1024 == 0 {
            bar.set_position(record.position().map_or(0, csv::Position::byte));
        }
    }
    Ok(stats)
}

fn parse_time(cell: &[u8], label: &str, line: u64, column: &str) -> Result<i64> {
    let cell = String::from_utf8_lossy(cell);
    let cell = cell.trim();
    OffsetDateTime::parse(cell, &Rfc3339).map(OffsetDateTime::unix_timestamp).map_err(|_| {
        anyhow::anyhow!(
            "{label} line {line}: {column} `{cell}` is not an RFC 3339 time with an offset, such as 2024-05-01T12:00:00+02:00. Fix the row and run again; nothing was uploaded."
        )
    })
}

/// One NDJSON line of the upload, in the server's field names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    integration_id: IntegrationId,
    identity: &'a str,
    name: &'a str,
    email: &'a str,
    kind: &'static str,
    count: u64,
    first_seen: String,
    last_seen: String,
}

/// The upload body: one JSON object per contributor and line, times in UTC.
pub fn ndjson(contributors: &[Contributor], integration: IntegrationId) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(contributors.len() * 200);
    for c in contributors {
        let line = Line {
            integration_id: integration,
            identity: &c.email,
            name: &c.name,
            email: &c.email,
            kind: c.kind.as_str(),
            count: c.count,
            first_seen: utc(c.first_seen),
            last_seen: utc(c.last_seen),
        };
        serde_json::to_writer(&mut out, &line).context("cannot encode a contributor as JSON")?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Seconds since the epoch as RFC 3339 UTC, clamped to years 1 to 9999 (git stores any
/// number a clock or a forger wrote; RFC 3339 has four-digit years).
fn utc(seconds: i64) -> String {
    const FIRST: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    OffsetDateTime::from_unix_timestamp(seconds.clamp(FIRST, LAST))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(kind: Kind, name: &'a str, email: &'a str, at: i64) -> Sighting<'a> {
        Sighting { kind, name, email, at }
    }

    fn tally_csv(csv: &[u8]) -> Result<(Vec<Contributor>, ReadStats)> {
        let mut tally = Tally::default();
        let stats = read_commits_csv(csv, "test.csv", &mut tally, &ProgressBar::hidden())?;
        let (rows, empty_emails) = tally.finish();
        Ok((rows, ReadStats { empty_emails, ..stats }))
    }

    #[test]
    fn sightings_are_tallied_per_kind_lowercased_email_and_name() {
        let mut tally = Tally::default();
        tally.commit(&[seen(Kind::Commit, "Jane Doe", "Jane@Example.com", 200)]);
        tally.commit(&[seen(Kind::Commit, " Jane Doe ", "jane@example.com ", 100)]);
        tally.commit(&[seen(Kind::Commit, "Jane Doe", "jane@example.com", 300)]);
        tally.commit(&[seen(Kind::Commit, "J. Doe", "jane@example.com", 50)]);
        tally.commit(&[seen(Kind::Other, "Jane Doe", "jane@example.com", 400)]);
        let (rows, empty) = tally.finish();
        assert_eq!(empty, 0);
        assert_eq!(rows.len(), 3, "{rows:?}");
        let jane = &rows[1];
        assert_eq!((jane.kind, jane.name.as_str(), jane.count), (Kind::Commit, "Jane Doe", 3));
        assert_eq!(jane.email, "Jane@Example.com", "the email is kept as first recorded");
        assert_eq!((jane.first_seen, jane.last_seen), (100, 300));
        assert_eq!((rows[0].name.as_str(), rows[0].count), ("J. Doe", 1));
        assert_eq!((rows[2].kind, rows[2].count), (Kind::Other, 1));
    }

    #[test]
    fn a_person_counts_once_per_commit_and_kind() {
        let mut tally = Tally::default();
        tally.commit(&[
            seen(Kind::Commit, "Jane", "jane@example.com", 1),
            seen(Kind::Commit, "Jane", "JANE@example.com", 1),
            seen(Kind::Commit, "Bob", "bob@example.com", 1),
            seen(Kind::Commit, "Bob", "bob@example.com", 1),
        ]);
        let (rows, _) = tally.finish();
        assert_eq!(rows.iter().map(|r| r.count).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn an_empty_email_is_skipped_and_counted() {
        let mut tally = Tally::default();
        tally.commit(&[seen(Kind::Commit, "Nobody", "  ", 1), seen(Kind::Other, "Jane", "jane@example.com", 1)]);
        let (rows, empty) = tally.finish();
        assert_eq!((rows.len(), empty), (1, 1));
    }

    #[test]
    fn co_authored_by_trailers_are_found_in_any_case_and_any_number() {
        let message = b"Fix the parser\n\nLonger text.\n\nCo-authored-by: Jane Doe <jane@example.com>\nco-authored-by:Bob <bob@example.com>  \r\n  CO-AUTHORED-BY: Ann Lee   < ann@example.com >\n";
        let found: Vec<_> = co_authors(message).collect();
        assert_eq!(
            found,
            [
                (&b"Jane Doe"[..], &b"jane@example.com"[..]),
                (&b"Bob"[..], &b"bob@example.com"[..]),
                (&b"Ann Lee"[..], &b"ann@example.com"[..]),
            ]
        );
    }

    #[test]
    fn malformed_co_authored_by_trailers_are_ignored() {
        let message = b"Subject\n\nCo-authored-by: Jane Doe jane@example.com\nCo-authored-by: Bob <>\nCo-authored-by: <bob@example.com> trailing\nCo-authored: Ann <ann@example.com>\nCo-authored-by\nSigned-off-by: Eve <eve@example.com>\nCo-authored-by: Al <a>b>\n";
        assert_eq!(co_authors(message).count(), 0, "{:?}", co_authors(message).collect::<Vec<_>>());
    }

    #[test]
    fn a_trailer_without_a_name_still_names_its_email() {
        let found: Vec<_> = co_authors(b"Co-authored-by: <jane@example.com>").collect();
        assert_eq!(found, [(&b""[..], &b"jane@example.com"[..])]);
    }

    #[test]
    fn csv_columns_are_found_by_name_and_extra_ones_ignored() {
        let csv = "\u{feff}extra,Committer_Email,committer_name,authored_at,author_email,author_name\n\
                   x,jane@example.com,Jane,2024-05-01T12:00:00+02:00,jane@example.com,Jane\n\
                   y,noreply@github.com,GitHub,2024-05-02T00:00:00Z,JANE@example.com,Jane\n";
        let (rows, stats) = tally_csv(csv.as_bytes()).expect("readable");
        assert_eq!(stats.commits, 2);
        assert_eq!(rows.len(), 2, "{rows:?}");
        let jane = &rows[0];
        assert_eq!((jane.kind, jane.count, jane.email.as_str()), (Kind::Commit, 2, "jane@example.com"));
        assert_eq!(utc(jane.first_seen), "2024-05-01T10:00:00Z");
        assert_eq!(utc(jane.last_seen), "2024-05-02T00:00:00Z");
        assert_eq!((rows[1].kind, rows[1].name.as_str()), (Kind::Other, "GitHub"));
    }

    #[test]
    fn a_committed_at_column_dates_the_committer() {
        let csv = "author_name,author_email,authored_at,committer_name,committer_email,committed_at\n\
                   Jane,jane@example.com,2024-05-01T00:00:00Z,Bob,bob@example.com,2024-06-01T00:00:00Z\n";
        let (rows, _) = tally_csv(csv.as_bytes()).expect("readable");
        let bob = rows.iter().find(|r| r.kind == Kind::Other).expect("the committer");
        assert_eq!(utc(bob.first_seen), "2024-06-01T00:00:00Z");
    }

    #[test]
    fn csv_cells_that_are_not_utf8_are_replaced_and_counted() {
        let mut csv = b"author_name,author_email,authored_at,committer_name,committer_email\n".to_vec();
        csv.extend_from_slice(b"Jos\xe9,jose@example.com,2024-05-01T00:00:00Z,Jos\xe9,jose@example.com\n");
        csv.extend_from_slice(b"Ann,ann@example.com,2024-05-01T00:00:00Z,Ann,ann@example.com\n");
        let (rows, stats) = tally_csv(&csv).expect("readable");
        assert_eq!(stats.not_utf8, 1, "one row had bytes that are not UTF-8");
        assert!(rows.iter().any(|r| r.name == "Jos\u{fffd}"), "{rows:?}");
        assert!(stats.warnings()[0].starts_with("1 commit had names or emails that are not UTF-8"));
    }

    #[test]
    fn a_bad_csv_row_is_an_error_naming_its_line() {
        let header = "author_name,author_email,authored_at,committer_name,committer_email\n";
        let good = "Ann,ann@example.com,2024-05-01T00:00:00Z,Ann,ann@example.com\n";
        let bad_time = format!("{header}{good}Bob,bob@example.com,yesterday,Bob,bob@example.com\n");
        let e = tally_csv(bad_time.as_bytes()).expect_err("a bad time").to_string();
        assert!(e.contains("test.csv line 3") && e.contains("`yesterday`"), "{e}");
        let short = format!("{header}{good}{good}Bob,bob@example.com\n");
        let e = tally_csv(short.as_bytes()).expect_err("a short row").to_string();
        assert!(e.contains("test.csv line 4 has 2 fields"), "{e}");
    }

    #[test]
    fn a_csv_without_the_needed_columns_names_what_is_missing() {
        let e =
            tally_csv(b"sha,author_name,author_email\nabc,Jane,jane@example.com\n").expect_err("missing").to_string();
        assert!(e.contains("authored_at, committer_name, committer_email"), "{e}");
    }

    #[test]
    fn rows_become_ndjson_lines_in_the_servers_field_names() {
        let rows = [Contributor {
            kind: Kind::Other,
            name: "Jane \"JD\" Doe".into(),
            email: "Jane@Example.com".into(),
            count: 4,
            first_seen: 0,
            last_seen: 1_714_557_600,
        }];
        let body = String::from_utf8(ndjson(&rows, 7).expect("encodes")).expect("utf-8");
        assert_eq!(
            body,
            "{\"integrationId\":7,\"identity\":\"Jane@Example.com\",\"name\":\"Jane \\\"JD\\\" Doe\",\"email\":\"Jane@Example.com\",\"kind\":\"other\",\"count\":4,\"firstSeen\":\"1970-01-01T00:00:00Z\",\"lastSeen\":\"2024-05-01T10:00:00Z\"}\n"
        );
    }

    #[test]
    fn times_outside_four_digit_years_are_clamped() {
        assert_eq!(utc(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(utc(i64::MIN), "0001-01-01T00:00:00Z");
    }

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
