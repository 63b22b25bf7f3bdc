//! `devid match`: the matching engine offline, on a CSV of authors or commits, writing
//! one line per distinct (name, email) pair with the person it was grouped into. This
//! is how matching accuracy is measured (`docs/matching.md`).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use devid_core::resolve::{Alias, Link, Options, Seen, Tier, cluster_seen};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["authors", "commits"])))]
pub struct MatchArgs {
    /// A CSV with the columns `author_name,author_email` (others are ignored), such as
    /// numpy's authors-mailmapped.csv.
    #[arg(long, value_name = "FILE")]
    authors: Option<PathBuf>,
    /// A CSV of commits with `author_name,author_email` columns (the format of
    /// `devid discover --commits-csv`'s input); each distinct pair is matched once. An
    /// `authored_at` column (RFC 3339) adds the time zones each pair wrote from, which
    /// lets one full name written from the same zone link at `auto`; `committer_name`
    /// and `committer_email` columns add who committed each pair's commits (the same
    /// name committing from another address is the same person).
    #[arg(long, value_name = "FILE")]
    commits: Option<PathBuf>,
    /// The weakest links applied: `auto` (what devid would apply by itself) or `review`
    /// (also what it would only suggest).
    #[arg(long, default_value = "auto", value_parser = parse_tier)]
    tier: Tier,
    /// Where to write `raw_name,raw_email,cluster_id,tier` (`-` for standard output).
    #[arg(long, value_name = "FILE", default_value = "-")]
    out: PathBuf,
    /// A link that would give one person more aliases than this is held back.
    #[arg(long, default_value_t = 10)]
    max_aliases: usize,
    /// Also write the evidence: one line per link applied, the two pairs it joined, the
    /// rule, its tier and the value it matched on
    /// (`name_a,email_a,name_b,email_b,rule,tier,value`).
    #[arg(long, value_name = "FILE")]
    links: Option<PathBuf>,
}

fn parse_tier(text: &str) -> Result<Tier, String> {
    Tier::parse(text).ok_or_else(|| format!("`{text}` is not a tier; use auto or review"))
}

pub fn run(args: MatchArgs) -> Result<()> {
    let path = args.authors.as_ref().or(args.commits.as_ref()).context("give --authors or --commits")?;
    let (aliases, seen) = read_aliases(path)?;
    let started = std::time::Instant::now();
    let clustering = cluster_seen(&aliases, &seen, args.tier, Options { max_aliases: args.max_aliases.max(1) });
    let elapsed = started.elapsed();
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&args.out).with_context(|| format!("cannot write {}", args.out.display()))?,
        ))
    };
    let mut writer = csv::Writer::from_writer(&mut out);
    writer.write_record(["raw_name", "raw_email", "cluster_id", "tier"])?;
    for (i, alias) in aliases.iter().enumerate() {
        let tier = clustering.tier[i].map_or("single", Tier::as_str);
        writer.write_record([alias.name.as_str(), alias.email.as_str(), &clustering.person[i].to_string(), tier])?;
    }
    writer.flush()?;
    drop(writer);
    out.flush()?;
    if let Some(path) = &args.links {
        write_links(path, &aliases, &clustering.links)?;
    }
    let people = clustering.person.iter().enumerate().filter(|(i, p)| i == *p).count();
    eprintln!(
        "Matched {} aliases into {} people with {} links (tier {}) in {:.0} ms.",
        aliases.len(),
        people,
        clustering.links.len(),
        args.tier.as_str(),
        elapsed.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn write_links(path: &PathBuf, aliases: &[Alias], links: &[Link]) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
    writer.write_record(["name_a", "email_a", "name_b", "email_b", "rule", "tier", "value"])?;
    for link in links {
        let (a, b) = (&aliases[link.a], &aliases[link.b]);
        writer.write_record([
            a.name.as_str(),
            a.email.as_str(),
            b.name.as_str(),
            b.email.as_str(),
            link.rule.as_str(),
            link.tier.as_str(),
            link.value.as_str(),
        ])?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The distinct (name, email) pairs of the file's `author_name` and `author_email`
/// columns, in first-seen order, exactly as written, with the UTC offsets of their
/// `authored_at` dates and their commits' committers where the file has those columns.
fn read_aliases(path: &PathBuf) -> Result<(Vec<Alias>, Vec<Seen>)> {
    let mut reader = csv::ReaderBuilder::new()
        .from_path(path)
        .with_context(|| format!("cannot read {}; check the path", path.display()))?;
    let headers = reader.headers().with_context(|| format!("{}: the header line is not valid CSV", path.display()))?;
    let column = |wanted: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(wanted));
    let (Some(name), Some(email)) = (column("author_name"), column("author_email")) else {
        bail!("{}: the header needs the columns author_name and author_email", path.display());
    };
    let authored_at = column("authored_at");
    let committer = column("committer_name").zip(column("committer_email"));
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut aliases = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or_else(|| "a line".to_string(), |p| format!("line {}", p.line()));
            anyhow::anyhow!("{}: {line} is not valid CSV ({e})", path.display())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let (Some(n), Some(e)) = (record.get(name), record.get(email)) else {
            bail!("{}: line {line} has fewer fields than the header", path.display());
        };
        let at = *index.entry((n.to_string(), e.to_string())).or_insert_with(|| {
            aliases.push(Alias { name: n.to_string(), email: e.to_string() });
            seen.push(Seen::default());
            aliases.len() - 1
        });
        if let Some(date) = authored_at.and_then(|c| record.get(c)).filter(|d| !d.trim().is_empty()) {
            let Some(offset) = utc_offset_minutes(date) else {
                bail!("{}: line {line}: authored_at `{date}` is not an RFC 3339 date with a time zone", path.display());
            };
            if !seen[at].utc_offsets.contains(&offset) {
                seen[at].utc_offsets.push(offset);
            }
            // The day as the author's clock showed it: a day either way is no matter for
            // "active within months of each other".
            if let Some(day) = date.trim().get(..10).and_then(devid_core::time::parse_date) {
                let day = i32::try_from(day / 86_400_000_000).unwrap_or(i32::MAX);
                let (first, last) = seen[at].active_days.unwrap_or((day, day));
                seen[at].active_days = Some((first.min(day), last.max(day)));
            }
        }
        if let Some((cn, ce)) = committer.and_then(|(n, e)| Some((record.get(n)?, record.get(e)?)))
            && !ce.trim().is_empty()
            && !ce.trim().eq_ignore_ascii_case(e.trim())
            && !seen[at].committers.iter().any(|c| c.name == cn && c.email == ce)
        {
            seen[at].committers.push(Alias { name: cn.to_string(), email: ce.to_string() });
        }
    }
    if aliases.is_empty() {
        bail!("{}: no authors to match", path.display());
    }
    Ok((aliases, seen))
}

/// The offset of an RFC 3339 date (`…Z`, `…+05:30`, `…-0700`), in minutes east of UTC.
fn utc_offset_minutes(date: &str) -> Option<i16> {
    let date = date.trim();
    if date.ends_with('Z') || date.ends_with('z') {
        return Some(0);
    }
    let sign_at = date.rfind(['+', '-'])?;
    // The date's own dashes come before the `T`; an offset comes after it.
    if !date[..sign_at].contains(['T', 't', ' ']) {
        return None;
    }
    let sign: i16 = if date.as_bytes()[sign_at] == b'+' { 1 } else { -1 };
    let digits: String = date[sign_at + 1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i16 = digits[..2].parse().ok()?;
    let minutes: i16 = digits[2..].parse().ok()?;
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}
