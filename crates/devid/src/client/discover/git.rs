//! Reading a git repository for `devid discover`, with gix: no `git` program is needed.
//!
//! Guarantees: a repository's history is never a reason to panic. Names and emails that
//! are not UTF-8 are read with U+FFFD replacements and counted; a commit whose author or
//! committer line cannot be parsed is skipped and counted; a path that is not a
//! repository, or one without commits, is an error naming it. Only the repository's own
//! configuration is read, so the user's git settings never change what is found.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;

use super::ReadStats;
use super::tally::{Kind, Sighting, Tally, offset_in_use, text};

/// The name and email of every `Co-authored-by: Name <email>` line of a commit message,
/// the token in any case. Every line counts, not only the final trailer block, because
/// a squash of several commits keeps each one's trailers where they were. A line
/// without a `<…>` at its end, or with nothing between the brackets, is ignored.
fn co_authors(message: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
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
pub(super) fn read_git(path: &Path, tally: &mut Tally, bar: &ProgressBar) -> Result<ReadStats> {
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
        let zone = |signature: &gix::actor::SignatureRef<'_>| {
            signature.time().ok().and_then(|time| offset_in_use(i64::from(time.offset)))
        };
        let mut sightings = vec![Sighting {
            kind: Kind::Commit,
            name: &author_name,
            email: &author_email,
            at,
            utc_offset: zone(&author),
        }];
        // A co-author's own clock is not recorded: the commit's offset is the author's.
        sightings.extend(trailers.iter().map(|(name, email)| Sighting {
            kind: Kind::Commit,
            name,
            email,
            at,
            utc_offset: None,
        }));
        if !committer_email.trim().eq_ignore_ascii_case(author_email.trim()) {
            sightings.push(Sighting {
                kind: Kind::Other,
                name: &committer_name,
                email: &committer_email,
                at: committer.seconds(),
                utc_offset: zone(&committer),
            });
        }
        tally.commit(&sightings);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
