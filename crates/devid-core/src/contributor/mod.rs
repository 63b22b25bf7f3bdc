//! Contributors: accounts as seen in a source's activity, mapped to a developer or not.
//! An upload of contributors goes rows → plan → one store call, like identities:
//! [`upload`] reads the three body formats, [`plan`] validates and aggregates every row,
//! [`bots`] names the rule that marks an account as automation.

pub mod bots;
pub mod plan;
pub mod upload;
pub mod zones;

use std::fmt;

/// What a piece of activity was. Counts are kept per kind so coverage can say which
/// share of commits, reviews or tickets is attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityKind {
    Commit,
    Pr,
    Review,
    Issue,
    Other,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 5] =
        [ActivityKind::Commit, ActivityKind::Pr, ActivityKind::Review, ActivityKind::Issue, ActivityKind::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Commit => "commit",
            ActivityKind::Pr => "pr",
            ActivityKind::Review => "review",
            ActivityKind::Issue => "issue",
            ActivityKind::Other => "other",
        }
    }

    /// Position in [`ActivityCounts`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Any case, surrounding spaces ignored.
    pub fn parse(text: &str) -> Option<ActivityKind> {
        let wanted = text.trim();
        Self::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(wanted))
    }

    pub fn allowed_values() -> String {
        Self::ALL.map(|k| k.as_str()).join(", ")
    }
}

impl fmt::Display for ActivityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Activity counts, one per [`ActivityKind`], in the order of [`ActivityKind::ALL`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ActivityCounts(pub [u64; 5]);

impl ActivityCounts {
    pub fn get(&self, kind: ActivityKind) -> u64 {
        self.0[kind.index()]
    }

    /// Adds without overflow: counts are bounded per row, but a feed in `add` mode may
    /// sum many of them.
    pub fn add(&mut self, kind: ActivityKind, count: u64) {
        let slot = &mut self.0[kind.index()];
        *slot = slot.saturating_add(count);
    }

    pub fn add_all(&mut self, other: &ActivityCounts) {
        for kind in ActivityKind::ALL {
            self.add(kind, other.get(kind));
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |sum, c| sum.saturating_add(*c))
    }
}

/// How an upload combines with what its source sent before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngestMode {
    /// The upload is the source's whole report: what it sent before is replaced, and
    /// contributors it no longer mentions lose that source. Re-running a scan is a no-op.
    #[default]
    Replace,
    /// The upload adds to the source's counts (an incremental feed).
    Add,
}

impl IngestMode {
    pub fn parse(text: &str) -> Option<IngestMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "replace" => Some(IngestMode::Replace),
            "add" => Some(IngestMode::Add),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IngestMode::Replace => "replace",
            IngestMode::Add => "add",
        }
    }
}

/// Longest source label, in characters.
pub const MAX_SOURCE_LABEL_CHARS: usize = 100;

/// The label used when an upload names none.
pub const DEFAULT_SOURCE_LABEL: &str = "default";

/// Checks a source label (`git:numpy`, `github-export-2026-11`): 1 to 100 printable
/// characters, no spaces at either end.
pub fn check_source_label(label: &str) -> Result<&str, String> {
    if label.is_empty() {
        return Err("a source label cannot be empty; name where the activity came from, such as git:numpy.".into());
    }
    if label.chars().count() > MAX_SOURCE_LABEL_CHARS {
        return Err(format!("a source label is at most {MAX_SOURCE_LABEL_CHARS} characters."));
    }
    if label.trim() != label {
        return Err("a source label cannot start or end with spaces.".into());
    }
    if label.chars().any(|c| c.is_control() || crate::normalize::is_hidden_char(c)) {
        return Err("a source label cannot contain control or invisible characters.".into());
    }
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_in_any_case_and_nothing_else() {
        for kind in ActivityKind::ALL {
            assert_eq!(ActivityKind::parse(kind.as_str()), Some(kind));
            assert_eq!(ActivityKind::parse(&kind.as_str().to_uppercase()), Some(kind));
        }
        assert_eq!(ActivityKind::parse("commits"), None);
        assert_eq!(ActivityKind::parse(""), None);
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut counts = ActivityCounts::default();
        counts.add(ActivityKind::Commit, u64::MAX);
        counts.add(ActivityKind::Commit, 5);
        counts.add(ActivityKind::Review, 3);
        assert_eq!(counts.get(ActivityKind::Commit), u64::MAX);
        assert_eq!(counts.total(), u64::MAX);
    }

    #[test]
    fn source_labels_are_short_printable_and_trimmed() {
        assert!(check_source_label("git:numpy").is_ok());
        assert!(check_source_label("").is_err());
        assert!(check_source_label(" git").is_err());
        assert!(check_source_label("a\u{202E}b").is_err());
        assert!(check_source_label(&"x".repeat(101)).is_err());
    }
}
