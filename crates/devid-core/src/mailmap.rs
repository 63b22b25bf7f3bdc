//! A git `.mailmap` (gitmailmap(5)) read as identities of a `GIT` integration: each
//! identity is a commit email, owned by the developer whose email is the line's
//! canonical email.
//!
//! Lines are read the way git reads them, so a file that works for `git shortlog`
//! imports the same mapping: the first `<...>` is the canonical email when a second one
//! follows, otherwise the commit email; text after the last entry is ignored. Where the
//! two differ on purpose:
//! - devid keys an identity by email alone, so the commit name of a
//!   `Proper Name <proper@email> Commit Name <commit@email>` line does not narrow the
//!   mapping; two such lines sending one address to two people are a conflict.
//! - a developer's email (the canonical one, or the only one of a one-entry line) must
//!   pass [`normalize_email`]; a commit email that git recorded as `<me@localhost>` or
//!   `<=>` is still an identity of the developer the line names, since those broken
//!   addresses are what a mailmap exists to map.
//! - a line whose first non-blank character is `#` is a comment even when indented,
//!   and so is text after an entry that starts with `#` (git would read a `<...>` in
//!   it as an entry).
//!
//! Every line that is neither blank nor a comment is either used (perhaps only
//! repeating what an earlier line gave a row for) or reported in a [`MailmapNote`]
//! with its reason.

use std::collections::{BTreeMap, BTreeSet};

use crate::normalize::{EmailProblem, IdentityProblem, is_hidden_char, normalize_email, normalize_identity};

/// One identity to import: commits made with `identity` belong to the developer `email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailmapRow {
    /// The 1-based line the mapping was first read from.
    pub line: u64,
    /// The commit email, trimmed, in the case it was written (a `GIT` identity compares
    /// case-insensitively, so the case is kept only for display).
    pub identity: String,
    /// The developer's email, normalised as devid normalises emails.
    pub email: String,
    /// The proper name the line gives, if any.
    pub name: Option<String>,
}

/// A line that was left out, or used with part of it ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailmapNote {
    /// The 1-based line number.
    pub line: u64,
    /// The line as written.
    pub text: String,
    /// Why, in a sentence a person can act on.
    pub reason: String,
    /// True when nothing from the line was imported; false for a warning on a line
    /// that was still used.
    pub skipped: bool,
}

/// What a mailmap imports as, with what had to be left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailmapIdentities {
    /// One row per identity, ordered by line.
    pub rows: Vec<MailmapRow>,
    /// Skipped lines and warnings, ordered by line.
    pub notes: Vec<MailmapNote>,
    /// How many lines the file has, blank lines and comments included.
    pub lines: u64,
}

/// Reads a mailmap into the identities it implies. See the module documentation for how
/// lines are read.
///
/// Each line maps its commit email to the developer of its canonical email (the commit
/// email itself when the line has only one). The canonical email is also an identity of
/// its own developer. Only a two-entry line states whose its commit email is; an address
/// that is merely canonical, or named by a one-entry line, goes to the developer a
/// two-entry line maps it to, as git would show its commits. An email that two-entry
/// lines map to several developers is left out along with those lines, since devid gives
/// an identity one developer.
pub fn mailmap_identities(text: &str) -> MailmapIdentities {
    // Editors on Windows save a BOM, which would otherwise hide a `#` on line 1.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut out = MailmapIdentities::default();
    let mut candidates = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index as u64 + 1;
        out.lines = line;
        match read_line(raw) {
            Read::Nothing => {}
            Read::Unusable(reason) => out.notes.push(note(line, raw, reason, true)),
            Read::Entries(entries) => add_line(line, raw, &entries, &mut candidates, &mut out.notes),
        }
    }
    resolve(&candidates, &mut out);
    out.notes.sort_by_key(|note| note.line);
    out
}

fn note(line: u64, text: &str, reason: String, skipped: bool) -> MailmapNote {
    MailmapNote { line, text: text.to_string(), reason, skipped }
}

/// A `Name <email>` entry as git delimits it.
struct Entry<'a> {
    name: &'a str,
    email: &'a str,
}

impl Entry<'_> {
    fn shown(&self) -> String {
        if self.name.is_empty() { format!("<{}>", self.email) } else { format!("{} <{}>", self.name, self.email) }
    }
}

struct Entries<'a> {
    first: Entry<'a>,
    second: Option<Entry<'a>>,
    /// Text git ignores on a line it still uses.
    ignored: Option<String>,
}

enum Read<'a> {
    /// Blank or a comment.
    Nothing,
    Unusable(String),
    Entries(Entries<'a>),
}

enum Found<'a> {
    Entry(Entry<'a>, &'a str),
    NoEntry,
    Unclosed,
}

/// The first `<...>` in `text`, with what precedes it as the name (git's
/// `parse_name_and_email`), and the text after it.
fn next_entry(text: &str) -> Found<'_> {
    let Some(open) = text.find('<') else {
        return Found::NoEntry;
    };
    let Some(len) = text[open + 1..].find('>') else {
        return Found::Unclosed;
    };
    let close = open + 1 + len;
    Found::Entry(Entry { name: text[..open].trim(), email: &text[open + 1..close] }, &text[close + 1..])
}

fn is_comment_or_blank(text: &str) -> bool {
    let text = text.trim_start();
    text.is_empty() || text.starts_with('#')
}

fn read_line(raw: &str) -> Read<'_> {
    if is_comment_or_blank(raw) {
        return Read::Nothing;
    }
    let (first, rest) = match next_entry(raw) {
        Found::Entry(entry, rest) => (entry, rest),
        Found::NoEntry => {
            return Read::Unusable(
                "There is no `<email>` on this line; a mailmap line reads `Proper Name <commit@email>` or `Proper Name <proper@email> Commit Name <commit@email>`.".to_string(),
            );
        }
        Found::Unclosed => {
            return Read::Unusable(
                "The `<` is never closed with `>`, so the email cannot be read (git ignores this line too)."
                    .to_string(),
            );
        }
    };
    if is_comment_or_blank(rest) {
        return Read::Entries(Entries { first, second: None, ignored: None });
    }
    match next_entry(rest) {
        Found::Entry(second, after) => {
            let ignored = (!is_comment_or_blank(after)).then(|| {
                format!(
                    "The text `{}` after the second `<email>` is not part of an entry and was ignored (as git ignores it).",
                    after.trim()
                )
            });
            Read::Entries(Entries { first, second: Some(second), ignored })
        }
        Found::NoEntry => {
            let ignored = format!(
                "The text `{}` after `>` is not part of an entry and was ignored (as git ignores it); the line was read as `{}`.",
                rest.trim(),
                first.shown()
            );
            Read::Entries(Entries { first, second: None, ignored: Some(ignored) })
        }
        Found::Unclosed => {
            let ignored = format!(
                "The second `<` is never closed with `>`, so `{}` was ignored (as git ignores it); the line was read as `{}`.",
                rest.trim(),
                first.shown()
            );
            Read::Entries(Entries { first, second: None, ignored: Some(ignored) })
        }
    }
}

/// One line's claim that commits made with `key` belong to `developer`.
struct Candidate<'a> {
    line: u64,
    text: &'a str,
    /// The identity as devid compares it.
    key: String,
    identity: String,
    developer: String,
    name: Option<String>,
    claim: Claim,
}

/// How firmly a line says whose an address is, which decides who wins when lines
/// disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// The commit email of a two-entry line: git replaces the address, so the line
    /// states whose it is.
    Stated,
    /// The canonical email of a two-entry line: its own developer's, unless a line
    /// states otherwise.
    Canonical,
    /// The email of a one-entry line: git only renames its commits, so another line
    /// mapping the address still applies.
    NameOnly,
}

fn identity_problem(email: &str, problem: IdentityProblem) -> String {
    match problem {
        IdentityProblem::Missing => "the commit email is empty".to_string(),
        IdentityProblem::Invalid(why) => format!("the commit email `{}` cannot be an identity ({why})", email.trim()),
    }
}

fn email_problem(role: &str, email: &str, problem: EmailProblem) -> String {
    match problem {
        EmailProblem::Missing => format!("the {role} email is empty"),
        EmailProblem::Invalid(why) => format!("the {role} email `{}` is not an email address ({why})", email.trim()),
    }
}

fn add_line<'a>(
    line: u64,
    raw: &'a str,
    entries: &Entries,
    candidates: &mut Vec<Candidate<'a>>,
    notes: &mut Vec<MailmapNote>,
) {
    let (proper, commit) = match &entries.second {
        Some(second) => (Some(&entries.first), second),
        None => (None, &entries.first),
    };
    let proper_email = proper.map(|p| normalize_email(p.email).map_err(|e| email_problem("canonical", p.email, e)));
    // The commit email is what git recorded, kept as the identity even when it is no
    // valid address (`me@localhost`, `?@?`): those are the aliases a mailmap exists to
    // fix. It must be a valid email only where it is also the developer's (a one-entry
    // line), and storable as an identity everywhere.
    let commit_email = match proper {
        Some(_) => {
            normalize_identity(commit.email).map(str::to_lowercase).map_err(|e| identity_problem(commit.email, e))
        }
        None => normalize_email(commit.email).map_err(|e| email_problem("commit", commit.email, e)),
    };
    let (proper_email, commit_email) = match (proper_email.transpose(), commit_email) {
        (Ok(proper_email), Ok(commit_email)) => (proper_email, commit_email),
        (proper_email, commit_email) => {
            let problems: Vec<String> = [proper_email.err(), commit_email.err()].into_iter().flatten().collect();
            let mut reason = problems.join(" and ");
            reason.push_str(", so the line is left out.");
            notes.push(note(line, raw, capitalise(&reason), true));
            return;
        }
    };
    if let Some(ignored) = &entries.ignored {
        notes.push(note(line, raw, ignored.clone(), false));
    }
    // The commit name is git's, used only to narrow its match; the row carries the
    // name the developer should be shown by.
    let name = entries.first.name;
    let name = if name.chars().any(|c| c.is_control() || is_hidden_char(c)) {
        notes.push(note(
            line,
            raw,
            format!(
                "The name `{}` contains control or invisible characters, so the identity is imported without a name.",
                name.escape_debug()
            ),
            false,
        ));
        None
    } else {
        Some(name).filter(|n| !n.is_empty()).map(str::to_string)
    };
    let developer = proper_email.clone().unwrap_or_else(|| commit_email.clone());
    candidates.push(Candidate {
        line,
        text: raw,
        key: commit_email,
        identity: commit.email.trim().to_string(),
        developer: developer.clone(),
        name: name.clone(),
        claim: if proper.is_some() { Claim::Stated } else { Claim::NameOnly },
    });
    if let (Some(proper), Some(proper_email)) = (proper, proper_email) {
        candidates.push(Candidate {
            line,
            text: raw,
            key: proper_email,
            identity: proper.email.trim().to_string(),
            developer,
            name,
            claim: Claim::Canonical,
        });
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Turns the candidates into one row per identity. Conflicts between stated mappings
/// are found first, since their lines are skipped whole: the canonical email of such a
/// line is dropped with it.
fn resolve(candidates: &[Candidate], out: &mut MailmapIdentities) {
    // Candidates are in line order, and within a line the stated mapping comes before
    // the canonical one; their index orders the rows.
    let mut by_key: BTreeMap<&str, Vec<(usize, &Candidate)>> = BTreeMap::new();
    for (index, candidate) in candidates.iter().enumerate() {
        by_key.entry(&candidate.key).or_default().push((index, candidate));
    }
    let mut skipped_lines = BTreeSet::new();
    let mut conflicts: BTreeMap<&str, String> = BTreeMap::new();
    for (key, group) in &by_key {
        // Developers in the order they first appear, each with the lines naming them.
        let mut developers: Vec<(&str, Vec<&Candidate>)> = Vec::new();
        for (_, c) in group.iter().filter(|(_, c)| c.claim == Claim::Stated) {
            match developers.iter_mut().find(|(d, _)| *d == c.developer) {
                Some((_, at)) => at.push(c),
                None => developers.push((&c.developer, vec![c])),
            }
        }
        if developers.len() < 2 {
            continue;
        }
        let listed: Vec<String> =
            developers.iter().map(|(developer, at)| format!("{developer} on {}", line_list(at))).collect();
        let shown = developers.first().and_then(|(_, at)| at.first()).map_or(*key, |c| c.identity.as_str());
        let reason = format!(
            "`{shown}` is mapped to several developers ({}); devid maps an email to one developer, so it is left out.",
            listed.join(", ")
        );
        for c in developers.iter().flat_map(|(_, at)| at) {
            skipped_lines.insert(c.line);
            out.notes.push(note(c.line, c.text, reason.clone(), true));
        }
        conflicts.insert(key, reason);
    }
    let mut chosen = Vec::new();
    let mut used_lines = BTreeSet::new();
    let mut lost: Vec<(&Candidate, String)> = Vec::new();
    for (key, group) in &by_key {
        let group: Vec<(usize, &Candidate)> =
            group.iter().copied().filter(|(_, c)| !skipped_lines.contains(&c.line)).collect();
        if let Some(reason) = conflicts.get(key) {
            lost.extend(group.into_iter().map(|(_, c)| (c, reason.clone())));
            continue;
        }
        let stated = group.iter().map(|(_, c)| *c).find(|c| c.claim == Claim::Stated);
        let mut row = None;
        for (index, c) in group {
            match stated {
                Some(s) if s.developer != c.developer => lost.push((c, overridden(c, s))),
                _ => {
                    used_lines.insert(c.line);
                    row = row.or(Some((index, c)));
                }
            }
        }
        chosen.extend(row);
    }
    // A line is skipped when every address it gave went elsewhere; otherwise what it
    // lost is a warning.
    for (c, reason) in lost {
        out.notes.push(note(c.line, c.text, reason, !used_lines.contains(&c.line)));
    }
    chosen.sort_by_key(|(index, _)| *index);
    out.rows.extend(chosen.into_iter().map(|(_, c)| MailmapRow {
        line: c.line,
        identity: c.identity.clone(),
        email: c.developer.clone(),
        name: c.name.clone(),
    }));
}

/// Why `lost`, which only implies whose its address is, gives way to `stated`.
fn overridden(lost: &Candidate, stated: &Candidate) -> String {
    let (identity, developer, line) = (&lost.identity, &stated.developer, stated.line);
    match lost.claim {
        Claim::NameOnly => format!(
            "`{identity}` is mapped to {developer} on line {line}; this line only gives it a name, so nothing is imported from it."
        ),
        Claim::Canonical | Claim::Stated => format!(
            "`{identity}`, this line's canonical email, is mapped to {developer} on line {line}, so it is imported as that developer's identity instead."
        ),
    }
}

fn line_list(candidates: &[&Candidate]) -> String {
    let numbers: Vec<String> = candidates.iter().map(|c| c.line.to_string()).collect();
    match numbers.as_slice() {
        [one] => format!("line {one}"),
        [init @ .., last] => format!("lines {} and {last}", init.join(", ")),
        [] => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(line: u64, identity: &str, email: &str, name: Option<&str>) -> MailmapRow {
        MailmapRow { line, identity: identity.into(), email: email.into(), name: name.map(Into::into) }
    }

    fn skipped(m: &MailmapIdentities) -> Vec<u64> {
        m.notes.iter().filter(|n| n.skipped).map(|n| n.line).collect()
    }

    #[test]
    fn each_line_form_maps_the_commit_email_to_the_canonical_one() {
        let m = mailmap_identities(
            "Jane Doe <jane@example.com>\n\
             <joe@example.com> <Joe.Old@Example.com>\n\
             Ann Lee <ann@example.com> <ann@old.example.com>\n\
             Bo Ek <Bo@Example.com> bo <bo@laptop.example.com>\n",
        );
        assert_eq!(
            m.rows,
            vec![
                row(1, "jane@example.com", "jane@example.com", Some("Jane Doe")),
                row(2, "Joe.Old@Example.com", "joe@example.com", None),
                row(2, "joe@example.com", "joe@example.com", None),
                row(3, "ann@old.example.com", "ann@example.com", Some("Ann Lee")),
                row(3, "ann@example.com", "ann@example.com", Some("Ann Lee")),
                row(4, "bo@laptop.example.com", "bo@example.com", Some("Bo Ek")),
                row(4, "Bo@Example.com", "bo@example.com", Some("Bo Ek")),
            ]
        );
        assert_eq!(m.notes, vec![]);
        assert_eq!(m.lines, 4);
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let m = mailmap_identities(
            "# The syntax is:\n\
             # Name <proper> Bad name <bad email>\n\
             \n   \n  # indented\n\
             C# Fan <fan@example.com> # a name may hold a #\n\
             Ann <ann@example.com> <a@example.com>   # old laptop <x@example.com>\n",
        );
        assert_eq!(
            m.rows,
            vec![
                row(6, "fan@example.com", "fan@example.com", Some("C# Fan")),
                row(7, "a@example.com", "ann@example.com", Some("Ann")),
                row(7, "ann@example.com", "ann@example.com", Some("Ann")),
            ]
        );
        assert_eq!(m.notes, vec![]);
        assert_eq!(m.lines, 7);
    }

    #[test]
    fn the_unusual_lines_of_numpys_mailmap() {
        let m = mailmap_identities(concat!(
            "Élie Goudout <eliegoudout@hotmail.com> \n",
            "Malik Idrees Hasan Khan <77000356+MalikIdreesHasanKhan@users.noreply.github.com>C\n",
            "Sam Radhakrishnan <sk09idm@gmail.com> = <=> # committed without an email address\n",
            "SUMIT SRIMANI <2301109104@ptuniv.edu.in\n",
            "Daniel Müllner <Daniel Müllner muellner@math.stanford.edu> Daniel <muellner@localhost.localdomain>\n",
            "Aaron Baecker <abaecker@localhost>\n",
        ));
        assert_eq!(
            m.rows,
            vec![
                row(1, "eliegoudout@hotmail.com", "eliegoudout@hotmail.com", Some("Élie Goudout")),
                row(
                    2,
                    "77000356+MalikIdreesHasanKhan@users.noreply.github.com",
                    "77000356+malikidreeshasankhan@users.noreply.github.com",
                    Some("Malik Idrees Hasan Khan")
                ),
                // Git recorded `=` as the address: still this person's commits.
                row(3, "=", "sk09idm@gmail.com", Some("Sam Radhakrishnan")),
                row(3, "sk09idm@gmail.com", "sk09idm@gmail.com", Some("Sam Radhakrishnan")),
            ]
        );
        let reasons: Vec<(u64, bool, &str)> = m.notes.iter().map(|n| (n.line, n.skipped, n.reason.as_str())).collect();
        assert_eq!(
            reasons,
            vec![
                (
                    2,
                    false,
                    "The text `C` after `>` is not part of an entry and was ignored (as git ignores it); the line was read as `Malik Idrees Hasan Khan <77000356+MalikIdreesHasanKhan@users.noreply.github.com>`."
                ),
                (4, true, "The `<` is never closed with `>`, so the email cannot be read (git ignores this line too)."),
                (
                    5,
                    true,
                    "The canonical email `Daniel Müllner muellner@math.stanford.edu` is not an email address (it contains whitespace or control characters), so the line is left out."
                ),
                (
                    6,
                    true,
                    "The commit email `abaecker@localhost` is not an email address (the domain must look like example.com), so the line is left out."
                ),
            ]
        );
        assert_eq!(m.notes[1].text, "SUMIT SRIMANI <2301109104@ptuniv.edu.in");
        // A broken commit address with a canonical email is an identity of that person.
        let aliased = mailmap_identities("David Huard <david.huard@gmail.com> dhuard <dhuard@localhost>\n");
        assert_eq!(
            aliased.rows,
            vec![
                row(1, "dhuard@localhost", "david.huard@gmail.com", Some("David Huard")),
                row(1, "david.huard@gmail.com", "david.huard@gmail.com", Some("David Huard")),
            ]
        );
    }

    #[test]
    fn lines_without_a_usable_email_say_why() {
        let m = mailmap_identities("Just A Name\n<>\nA <a@example.com> <>\n<x@> <bad>\n");
        assert_eq!(m.rows, vec![]);
        let reasons: Vec<&str> = m.notes.iter().map(|n| n.reason.as_str()).collect();
        assert!(reasons[0].starts_with("There is no `<email>` on this line"), "{reasons:?}");
        assert_eq!(reasons[1], "The commit email is empty, so the line is left out.");
        assert_eq!(reasons[2], "The commit email is empty, so the line is left out.");
        assert_eq!(
            reasons[3],
            "The canonical email `x@` is not an email address (the domain must look like example.com), so the line is left out."
        );
        assert_eq!(skipped(&m), vec![1, 2, 3, 4]);
    }

    #[test]
    fn text_git_ignores_is_reported_but_the_line_is_used() {
        let m = mailmap_identities(
            "A <a@example.com> <old@example.com> junk\n\
             B <b@example.com> Bee <bee@example.com\n\
             C <c@example.com> <c1@example.com> <c2@example.com>\n",
        );
        assert_eq!(
            m.rows.iter().map(|r| (r.line, r.identity.as_str())).collect::<Vec<_>>(),
            vec![
                (1, "old@example.com"),
                (1, "a@example.com"),
                (2, "b@example.com"),
                (3, "c1@example.com"),
                (3, "c@example.com")
            ]
        );
        let notes: Vec<(u64, bool, &str)> = m.notes.iter().map(|n| (n.line, n.skipped, n.reason.as_str())).collect();
        assert_eq!(
            notes,
            vec![
                (
                    1,
                    false,
                    "The text `junk` after the second `<email>` is not part of an entry and was ignored (as git ignores it)."
                ),
                (
                    2,
                    false,
                    "The second `<` is never closed with `>`, so `Bee <bee@example.com` was ignored (as git ignores it); the line was read as `B <b@example.com>`."
                ),
                (
                    3,
                    false,
                    "The text `<c2@example.com>` after the second `<email>` is not part of an entry and was ignored (as git ignores it)."
                ),
            ]
        );
    }

    #[test]
    fn an_email_mapped_to_two_developers_is_left_out_with_its_lines() {
        let m = mailmap_identities(
            "Ann <ann@example.com>\n\
             Ann <ann@example.com> ann <devnull@example.org>\n\
             Bob <bob@example.com>\n\
             Bob <bob@example.com> bob <DevNull@example.org>\n\
             Ann <ann@example.com> <ann@old.example.com>\n\
             Ann <ann@example.com> ann <devnull@example.org>\n",
        );
        assert_eq!(
            m.rows,
            vec![
                row(1, "ann@example.com", "ann@example.com", Some("Ann")),
                row(3, "bob@example.com", "bob@example.com", Some("Bob")),
                row(5, "ann@old.example.com", "ann@example.com", Some("Ann")),
            ]
        );
        let reason = "`devnull@example.org` is mapped to several developers (ann@example.com on lines 2 and 6, bob@example.com on line 4); devid maps an email to one developer, so it is left out.";
        let notes: Vec<(u64, bool, &str)> = m.notes.iter().map(|n| (n.line, n.skipped, n.reason.as_str())).collect();
        assert_eq!(notes, vec![(2, true, reason), (4, true, reason), (6, true, reason)]);
        assert_eq!(m.notes[1].text, "Bob <bob@example.com> bob <DevNull@example.org>");
    }

    #[test]
    fn a_skipped_conflict_line_gives_no_implied_identity_either() {
        let m = mailmap_identities("<ann@example.com> <shared@example.com>\n<bob@example.com> <shared@example.com>\n");
        assert_eq!(m.rows, vec![]);
        assert_eq!(skipped(&m), vec![1, 2]);
    }

    #[test]
    fn the_same_mapping_twice_is_one_row_whatever_the_case() {
        let m = mailmap_identities(
            "Ann <ann@example.com> <Ann.Old@Example.com>\n\
             Ann Lee <ANN@example.com> <ann.old@example.com>\n\
             <ann@example.com> <ANN@EXAMPLE.COM>\n",
        );
        assert_eq!(
            m.rows,
            vec![
                row(1, "Ann.Old@Example.com", "ann@example.com", Some("Ann")),
                row(1, "ann@example.com", "ann@example.com", Some("Ann")),
            ]
        );
        assert_eq!(m.notes, vec![]);
    }

    #[test]
    fn an_explicit_mapping_wins_over_the_implied_one() {
        // ann@work is Ann's canonical address on line 1, but line 2 says commits made
        // with it are Bob's (git would show them as Bob's).
        let m = mailmap_identities(
            "Ann <ann@work.example.com> <ann@home.example.com>\n\
             Bob <bob@example.com> <ann@work.example.com>\n",
        );
        assert_eq!(
            m.rows,
            vec![
                row(1, "ann@home.example.com", "ann@work.example.com", Some("Ann")),
                row(2, "ann@work.example.com", "bob@example.com", Some("Bob")),
                row(2, "bob@example.com", "bob@example.com", Some("Bob")),
            ]
        );
        let notes: Vec<(u64, bool, &str)> = m.notes.iter().map(|n| (n.line, n.skipped, n.reason.as_str())).collect();
        assert_eq!(
            notes,
            vec![(
                1,
                false,
                "`ann@work.example.com`, this line's canonical email, is mapped to bob@example.com on line 2, so it is imported as that developer's identity instead."
            )]
        );
    }

    #[test]
    fn a_name_only_line_gives_way_to_a_line_that_maps_its_address() {
        // git reads the first line as "commits by Arun Kota with that address are the
        // gmail address's" and the second as a name for the others: no disagreement.
        let m = mailmap_identities(
            "Arun Kota <arunkumarkota@gmail.com> Arun Kota <arunkota@Aruns-iMac.local>\n\
             Arun Kota <arunkota@Aruns-iMac.local>\n",
        );
        assert_eq!(
            m.rows,
            vec![
                row(1, "arunkota@Aruns-iMac.local", "arunkumarkota@gmail.com", Some("Arun Kota")),
                row(1, "arunkumarkota@gmail.com", "arunkumarkota@gmail.com", Some("Arun Kota")),
            ]
        );
        let notes: Vec<(u64, bool, &str)> = m.notes.iter().map(|n| (n.line, n.skipped, n.reason.as_str())).collect();
        assert_eq!(
            notes,
            vec![(
                2,
                true,
                "`arunkota@Aruns-iMac.local` is mapped to arunkumarkota@gmail.com on line 1; this line only gives it a name, so nothing is imported from it."
            )]
        );
    }

    #[test]
    fn a_name_only_line_for_a_conflicting_address_is_skipped_too() {
        let m = mailmap_identities(
            "Shared <shared@example.com>\n\
             <ann@example.com> <shared@example.com>\n\
             <bob@example.com> <shared@example.com>\n\
             Ann <ann@example.com>\n",
        );
        assert_eq!(m.rows, vec![row(4, "ann@example.com", "ann@example.com", Some("Ann"))]);
        assert_eq!(skipped(&m), vec![1, 2, 3]);
        assert!(m.notes.iter().all(|n| n.reason.starts_with("`shared@example.com` is mapped to several developers (ann@example.com on line 2, bob@example.com on line 3)")));
    }

    #[test]
    fn an_implied_identity_agreeing_with_an_explicit_one_keeps_the_first_line() {
        let m = mailmap_identities("Ann <ann@example.com> <a@example.com>\nAnn <Ann@example.com>\n");
        assert_eq!(
            m.rows,
            vec![
                row(1, "a@example.com", "ann@example.com", Some("Ann")),
                row(1, "ann@example.com", "ann@example.com", Some("Ann")),
            ]
        );
    }

    #[test]
    fn names_with_hidden_characters_are_dropped_with_a_warning() {
        let m = mailmap_identities("Ad\u{202e}min <a@example.com>\n");
        assert_eq!(m.rows, vec![row(1, "a@example.com", "a@example.com", None)]);
        assert_eq!(m.notes.len(), 1);
        assert!(!m.notes[0].skipped);
        assert!(m.notes[0].reason.contains("Ad\\u{202e}min"), "{}", m.notes[0].reason);
    }

    #[test]
    fn crlf_and_a_byte_order_mark_are_read_as_git_reads_them() {
        let m = mailmap_identities("\u{feff}# comment\r\nAnn <ann@example.com>\r\n");
        assert_eq!(m.rows, vec![row(2, "ann@example.com", "ann@example.com", Some("Ann"))]);
        assert_eq!(m.notes, vec![]);
        assert_eq!(m.lines, 2);
        assert_eq!(mailmap_identities(""), MailmapIdentities::default());
    }

    proptest! {
        #[test]
        fn every_line_is_used_or_reported_and_each_identity_has_one_row(
            lines in proptest::collection::vec(
                prop_oneof![
                    "[A-Za-z #]{0,6}<[a-cA-C]{1,2}@[ab]\\.(com|org)>",
                    "[A-Za-z ]{0,6}<[a-c]{1,2}@[ab]\\.com> ?[A-Za-z ]{0,4}<[a-cA-C]{1,2}@[ab]\\.(com|org)>",
                    "[<>@a-z=#. ]{0,20}",
                ],
                0..30,
            )
        ) {
            let text = lines.join("\n");
            let m = mailmap_identities(&text);
            prop_assert!(m.rows.windows(2).all(|w| w[0].line <= w[1].line));
            prop_assert!(m.notes.windows(2).all(|w| w[0].line <= w[1].line));
            let mut keys: Vec<String> = m.rows.iter().map(|r| r.identity.to_lowercase()).collect();
            keys.sort();
            let before = keys.len();
            keys.dedup();
            prop_assert_eq!(before, keys.len(), "{:?}", m.rows);
            for r in &m.rows {
                prop_assert_eq!(normalize_email(&r.email), Ok(r.email.clone()));
                prop_assert!(normalize_email(&r.identity).is_ok());
                prop_assert!(!skipped(&m).contains(&r.line));
            }
            // A line that is neither blank nor a comment yields a candidate or a skipped note;
            // candidates only vanish into a row of an earlier line or a conflict.
            for (index, line) in text.lines().enumerate() {
                let number = index as u64 + 1;
                let reported = m.notes.iter().any(|n| n.line == number && n.skipped);
                let read = matches!(read_line(line), Read::Entries(_));
                prop_assert!(is_comment_or_blank(line) || reported || read, "line {number} {line:?} unaccounted");
            }
        }
    }
}
