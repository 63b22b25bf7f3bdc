//! From raw contributor rows to a plan: every row validated against the account's
//! integrations, rows naming the same `(integrationId, identity)` folded into one
//! contributor (counts summed per kind, each name and email counted, first and last
//! seen widened), bots detected. Anything wrong is reported for all rows at once and
//! nothing is applied.

use foldhash::HashMap;

use super::bots::{self, BotRule};
use super::upload::{COUNT, EMAIL, FIRST_SEEN, IDENTITY, KIND, LAST_SEEN, NAME, RawContributor, UTC_OFFSET};
use super::zones::{UtcOffsets, parse_offset};
use super::{ActivityCounts, ActivityKind};
use crate::errors::{ErrorType, Position, Problems};
use crate::normalize::{MAX_EMAIL_LEN, is_hidden_char};
use crate::plan::{IntegrationInfo, IntegrationRef, RawValue, check_identity, check_integration_id};
use crate::time::{Micros, parse_rfc3339};
use crate::types::{ApplicationType, IntegrationId};

/// Largest `count` one row may carry. Real feeds send a few thousand at most; the bound
/// keeps sums far from overflow and refuses a misplaced timestamp or id.
pub const MAX_ROW_COUNT: u64 = 1_000_000_000;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// One contributor as the upload describes it, all its rows folded together.
///
/// Compact on purpose: a million of them are held during an upload. Every text of a
/// contributor (identity, key, names and emails with their weights) lives in one heap
/// block, read through the accessors; times use `i64::MIN` for "not seen".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedContributor {
    pub integration_id: IntegrationId,
    pub application_type: ApplicationType,
    /// The rule that takes this contributor for a bot, if any.
    pub bot_rule: Option<BotRule>,
    pub counts: ActivityCounts,
    first_seen: Micros,
    last_seen: Micros,
    /// The UTC offsets its activity was recorded in, where the source said.
    pub utc_offsets: UtcOffsets,
    texts: Texts,
}

/// No time: the sentinel `first_seen` and `last_seen` hold when a row gave none.
const UNSEEN: Micros = Micros::MIN;

impl PlannedContributor {
    /// As first written in the upload (trimmed): what is shown.
    pub fn identity(&self) -> &str {
        self.texts.identity()
    }

    /// What the contributor is matched on: the identity folded as its integration folds it.
    pub fn key(&self) -> &str {
        self.texts.key()
    }

    pub fn first_seen(&self) -> Option<Micros> {
        (self.first_seen != UNSEEN).then_some(self.first_seen)
    }

    pub fn last_seen(&self) -> Option<Micros> {
        (self.last_seen != UNSEEN).then_some(self.last_seen)
    }

    /// Each display name seen, with how much activity came under it, in first-seen order.
    pub fn names(&self) -> impl Iterator<Item = (&str, u64)> {
        self.texts.seen(Seen::Names)
    }

    /// Each email seen, as written, with how much activity came under it.
    pub fn emails(&self) -> impl Iterator<Item = (&str, u64)> {
        self.texts.seen(Seen::Emails)
    }

    /// The name seen with the most activity (the first seen on a tie).
    pub fn top_name(&self) -> Option<&str> {
        most_seen(self.names())
    }

    pub fn top_email(&self) -> Option<&str> {
        most_seen(self.emails())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Names,
    Emails,
}

/// A contributor's texts in one allocation: a 6-byte header (identity length, key
/// length or 0 when the key is the identity, how many names, how many emails), the
/// identity, the key, then each name and each email as (length u16, weight u64, bytes).
#[derive(Clone, PartialEq, Eq)]
struct Texts(Box<[u8]>);

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texts")
            .field("identity", &self.identity())
            .field("key", &self.key())
            .field("names", &self.seen(Seen::Names).collect::<Vec<_>>())
            .field("emails", &self.seen(Seen::Emails).collect::<Vec<_>>())
            .finish()
    }
}

const HEADER_BYTES: usize = 6;
/// Distinct names (and emails) kept per contributor: their count is one header byte.
const MAX_SEEN_VALUES: usize = 255;

impl Texts {
    /// Texts are bounded (identities 255 characters, names 255, emails 254), so every
    /// length fits a u16. The first 255 distinct names and emails of a contributor are
    /// kept; more are dropped (no real feed comes near).
    fn new(identity: &str, key: Option<&str>, names: &[(&str, u64)], emails: &[(&str, u64)]) -> Self {
        let key = key.filter(|k| *k != identity).unwrap_or("");
        let names = &names[..names.len().min(MAX_SEEN_VALUES)];
        let emails = &emails[..emails.len().min(MAX_SEEN_VALUES)];
        let values = names.iter().chain(emails);
        let size = HEADER_BYTES + identity.len() + key.len() + values.clone().map(|(v, _)| 10 + v.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&(identity.len() as u16).to_le_bytes());
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.push(names.len() as u8);
        out.push(emails.len() as u8);
        out.extend_from_slice(identity.as_bytes());
        out.extend_from_slice(key.as_bytes());
        for (value, weight) in names.iter().chain(emails) {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            out.extend_from_slice(&weight.to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        Texts(out.into_boxed_slice())
    }

    fn u16_at(&self, at: usize) -> usize {
        u16::from_le_bytes([self.0[at], self.0[at + 1]]) as usize
    }

    /// Every slice below was written from a `&str` at a character boundary.
    fn text(&self, from: usize, len: usize) -> &str {
        std::str::from_utf8(&self.0[from..from + len]).unwrap_or_default()
    }

    fn identity(&self) -> &str {
        self.text(HEADER_BYTES, self.u16_at(0))
    }

    fn key(&self) -> &str {
        match self.u16_at(2) {
            0 => self.identity(),
            len => self.text(HEADER_BYTES + self.u16_at(0), len),
        }
    }

    /// The key's bytes, unchecked: what sorting compares (text orders as its bytes do).
    fn key_bytes(&self) -> &[u8] {
        let (identity, key) = (self.u16_at(0), self.u16_at(2));
        match key {
            0 => &self.0[HEADER_BYTES..HEADER_BYTES + identity],
            len => &self.0[HEADER_BYTES + identity..HEADER_BYTES + identity + len],
        }
    }

    fn seen(&self, which: Seen) -> impl Iterator<Item = (&str, u64)> {
        let (names, emails) = (self.0[4] as usize, self.0[5] as usize);
        let mut at = HEADER_BYTES + self.u16_at(0) + self.u16_at(2);
        let mut index = 0;
        std::iter::from_fn(move || {
            while index < names + emails {
                let len = self.u16_at(at);
                let mut weight = [0u8; 8];
                weight.copy_from_slice(&self.0[at + 2..at + 10]);
                let value = self.text(at + 10, len);
                at += 10 + len;
                index += 1;
                let wanted = if index <= names { which == Seen::Names } else { which == Seen::Emails };
                if wanted {
                    return Some((value, u64::from_le_bytes(weight)));
                }
            }
            None
        })
    }
}

/// The value with the highest count, the earliest on a tie.
pub fn most_seen<'a>(values: impl Iterator<Item = (&'a str, u64)>) -> Option<&'a str> {
    let mut best: Option<(&str, u64)> = None;
    for v in values {
        if best.is_none_or(|b| v.1 > b.1) {
            best = Some(v);
        }
    }
    best.map(|(v, _)| v)
}

/// A validated contributor upload, ready for one store call.
#[derive(Debug, Default)]
pub struct ContributorPlan {
    /// One entry per distinct contributor, in (integration, identity key) order.
    pub rows: Vec<PlannedContributor>,
    /// Rows the upload carried.
    pub received: u64,
}

/// Validates rows as they are read; [`ContributorPlanner::finish`] folds them into a
/// plan or gives every problem found. Rows are kept as read and folded at the end by
/// sorting, not through a map from key to contributor: a million-row upload then holds
/// each identity once, not once more as a map key.
pub struct ContributorPlanner {
    known: HashMap<IntegrationId, ApplicationType>,
    rows: Vec<PlannedContributor>,
    problems: Problems,
    received: u64,
}

impl ContributorPlanner {
    pub fn new(integrations: &[IntegrationInfo]) -> Self {
        Self {
            known: integrations.iter().map(|i| (i.id, i.application_type)).collect(),
            rows: Vec::new(),
            problems: Problems::new(),
            received: 0,
        }
    }

    pub fn push(&mut self, position: Position, raw: RawContributor) {
        self.received += 1;
        let [integration, identity, name, email, kind, count, first_seen, last_seen, utc_offset] = raw;
        let problems = &mut self.problems;
        let integration = check_integration_id(&integration, position, &self.known, problems);
        let identity = check_identity(identity, super::upload::FIELDS[IDENTITY], position, problems);
        let name = check_name(name, position, problems);
        let email = check_seen_email(email, position, problems);
        let kind = check_kind(&kind, position, problems);
        let count = check_count(&count, position, problems);
        let first = check_time(&first_seen, super::upload::FIELDS[FIRST_SEEN], position, problems);
        let last = check_time(&last_seen, super::upload::FIELDS[LAST_SEEN], position, problems);
        let utc_offsets = check_utc_offset(&utc_offset, position, problems);
        if let (Ok(Some(f)), Ok(Some(l))) = (first, last)
            && f > l
        {
            problems.add_with_reason(
                ErrorType::InvalidTimeRange,
                super::upload::FIELDS[FIRST_SEEN],
                position,
                &first_seen.display(),
                Some(format!("firstSeen is later than lastSeen ({})", last_seen.display())),
            );
            return;
        }
        let (
            Some((IntegrationRef::Existing(integration_id), application_type)),
            Some(identity),
            Ok(name),
            Ok(email),
            Ok(kind),
            Ok(count),
            Ok(first),
            Ok(last),
            Ok(utc_offsets),
        ) = (integration, identity, name, email, kind, count, first, last, utc_offsets)
        else {
            return;
        };
        if !self.problems.is_empty() {
            // Nothing will be applied; keeping further rows would only cost memory.
            return;
        }
        let kind = kind.unwrap_or(if application_type == ApplicationType::Git {
            ActivityKind::Commit
        } else {
            ActivityKind::Other
        });
        let count = count.unwrap_or(1);
        let mut counts = ActivityCounts::default();
        counts.add(kind, count);
        // A name seen on a row without activity was still seen once.
        let weight = count.max(1);
        let key = crate::normalize::identity_key(application_type, &identity);
        let names: Vec<(&str, u64)> = name.as_deref().map(|n| (n, weight)).into_iter().collect();
        let emails: Vec<(&str, u64)> = email.as_deref().map(|e| (e, weight)).into_iter().collect();
        // A single time is when the contributor was seen: both ends of the range.
        let (first, last) = (first.or(last), last.or(first));
        self.rows.push(PlannedContributor {
            integration_id,
            application_type,
            bot_rule: None,
            counts,
            first_seen: first.unwrap_or(UNSEEN),
            last_seen: last.unwrap_or(UNSEEN),
            utc_offsets,
            texts: Texts::new(&identity, key.as_deref(), &names, &emails),
        });
    }

    pub fn finish(mut self, parse_problems: Problems) -> Result<ContributorPlan, Problems> {
        self.problems.merge(parse_problems);
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        let mut folded = self.rows;
        // The order is sorted as row numbers (4 bytes each) and applied by swaps, so the
        // rows are never held twice. Stable: rows of one contributor stay in upload
        // order, so the first keeps its spelling of the identity and names are tallied
        // in first-seen order.
        let mut order: Vec<u32> = (0..folded.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&folded[a as usize], &folded[b as usize]);
            (a.integration_id, a.texts.key_bytes()).cmp(&(b.integration_id, b.texts.key_bytes()))
        });
        crate::plan::permute_in_place(&mut folded, &mut order);
        drop(order);
        folded.dedup_by(|later, first| {
            let same =
                later.integration_id == first.integration_id && later.texts.key_bytes() == first.texts.key_bytes();
            if same {
                fold(first, later);
            }
            same
        });
        folded.shrink_to_fit();
        for row in &mut folded {
            row.bot_rule = bots::detect(row.identity(), row.names().map(|(n, _)| n), row.emails().map(|(e, _)| e));
        }
        Ok(ContributorPlan { rows: folded, received: self.received })
    }
}

/// Adds a later row of the same contributor to the first; the later one is dropped.
/// Rare (one contributor over several rows), so the texts are simply written anew.
fn fold(into: &mut PlannedContributor, row: &PlannedContributor) {
    into.counts.add_all(&row.counts);
    into.first_seen = min_some(into.first_seen(), row.first_seen()).unwrap_or(UNSEEN);
    into.last_seen = max_some(into.last_seen(), row.last_seen()).unwrap_or(UNSEEN);
    into.utc_offsets = into.utc_offsets.union(&row.utc_offsets);
    let mut names: Vec<(&str, u64)> = into.names().collect();
    let mut emails: Vec<(&str, u64)> = into.emails().collect();
    for (name, n) in row.names() {
        tally(&mut names, name, n);
    }
    for (email, n) in row.emails() {
        tally(&mut emails, email, n);
    }
    let key = (into.key() != into.identity()).then(|| into.key());
    let texts = Texts::new(into.identity(), key, &names, &emails);
    into.texts = texts;
}

fn tally<'a>(values: &mut Vec<(&'a str, u64)>, value: &'a str, weight: u64) {
    match values.iter_mut().find(|(v, _)| *v == value) {
        Some((_, n)) => *n = n.saturating_add(weight),
        None => values.push((value, weight)),
    }
}

fn min_some(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_some(a: Option<Micros>, b: Option<Micros>) -> Option<Micros> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// An optional text field: absent, null and blank mean "not given". A JSON number is
/// refused: a name, an email or a kind is never one, so a number there is a mistake.
fn optional_text<'a>(
    raw: &'a RawValue,
    field: &str,
    wrong: ErrorType,
    position: Position,
    problems: &mut Problems,
) -> Result<Option<&'a str>, ()> {
    match raw {
        RawValue::Absent | RawValue::Null => Ok(None),
        RawValue::Text(t) if t.trim().is_empty() => Ok(None),
        RawValue::Text(t) => Ok(Some(t.trim())),
        RawValue::Number(n) => {
            problems.add_with_reason(wrong, field, position, n, Some("expected a string, got a number".into()));
            Err(())
        }
        RawValue::WrongKind(kind) => {
            problems.add_with_reason(
                wrong,
                field,
                position,
                &raw.display(),
                Some(format!("expected a string, got {kind}")),
            );
            Err(())
        }
    }
}

fn check_name(raw: RawValue, position: Position, problems: &mut Problems) -> Result<Option<String>, ()> {
    seen_text(raw, super::upload::FIELDS[NAME], ErrorType::InvalidName, MAX_NAME_CHARS, position, problems)
}

/// An email as the source recorded it: kept as written (git allows `me@(none)`), only
/// bounded and cleaned of characters that would disguise it.
fn check_seen_email(raw: RawValue, position: Position, problems: &mut Problems) -> Result<Option<String>, ()> {
    seen_text(raw, super::upload::FIELDS[EMAIL], ErrorType::InvalidEmail, MAX_EMAIL_LEN, position, problems)
}

/// A name or email as seen: at most `max` characters counted as sent, no control or
/// invisible characters anywhere (surrounding spaces are trimmed, tabs are refused);
/// blank means not given.
fn seen_text(
    raw: RawValue,
    field: &str,
    error_type: ErrorType,
    max: usize,
    position: Position,
    problems: &mut Problems,
) -> Result<Option<String>, ()> {
    let text = match &raw {
        RawValue::Text(t) => t,
        _ => return optional_text(&raw, field, error_type, position, problems).map(|t| t.map(str::to_string)),
    };
    let reason = if text.chars().count() > max {
        format!("it is longer than {max} characters")
    } else if text.chars().any(|c| c.is_control() || is_hidden_char(c)) {
        "it contains control (tab, newline, ...), text-direction or invisible characters".into()
    } else if text.trim().is_empty() {
        return Ok(None);
    } else {
        return Ok(Some(text.trim().to_string()));
    };
    problems.add_with_reason(error_type, field, position, text, Some(reason));
    Err(())
}

fn check_kind(raw: &RawValue, position: Position, problems: &mut Problems) -> Result<Option<ActivityKind>, ()> {
    let field = super::upload::FIELDS[KIND];
    let Some(text) = optional_text(raw, field, ErrorType::InvalidActivityKind, position, problems)? else {
        return Ok(None);
    };
    match ActivityKind::parse(text) {
        Some(kind) => Ok(Some(kind)),
        None => {
            problems.add_with_reason(
                ErrorType::InvalidActivityKind,
                field,
                position,
                text,
                Some(format!("expected one of {}", ActivityKind::allowed_values())),
            );
            Err(())
        }
    }
}

fn check_count(raw: &RawValue, position: Position, problems: &mut Problems) -> Result<Option<u64>, ()> {
    let field = super::upload::FIELDS[COUNT];
    let text = match raw {
        RawValue::Number(n) => n.as_str(),
        _ => match optional_text(raw, field, ErrorType::InvalidCount, position, problems)? {
            Some(text) => text,
            None => return Ok(None),
        },
    };
    // `5.0` is how some JSON writers send 5.
    let digits = text.strip_suffix(".0").unwrap_or(text);
    match digits.parse::<u64>() {
        Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) && n <= MAX_ROW_COUNT => Ok(Some(n)),
        _ => {
            problems.add_with_reason(
                ErrorType::InvalidCount,
                field,
                position,
                text,
                Some(format!("expected a whole number from 0 to {MAX_ROW_COUNT}")),
            );
            Err(())
        }
    }
}

/// RFC 3339 (`2026-01-31T12:00:00Z`, any offset) or a date (`2026-01-31`, midnight UTC).
pub fn parse_seen_time(text: &str) -> Result<Micros, String> {
    let text = text.trim();
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        return crate::time::parse_date(text).ok_or_else(|| format!("`{text}` is not a date such as 2026-01-31"));
    }
    parse_rfc3339(text)
}

fn check_time(raw: &RawValue, field: &str, position: Position, problems: &mut Problems) -> Result<Option<Micros>, ()> {
    let text = match raw {
        RawValue::Number(n) => {
            problems.add_with_reason(
                ErrorType::InvalidTimestamp,
                field,
                position,
                n,
                Some("send a date or timestamp as a string, such as \"2026-01-31T12:00:00Z\"".into()),
            );
            return Err(());
        }
        _ => optional_text(raw, field, ErrorType::InvalidTimestamp, position, problems)?,
    };
    let Some(text) = text else { return Ok(None) };
    if let RawValue::Text(sent) = raw
        && sent.trim() != sent
    {
        problems.add_with_reason(
            ErrorType::InvalidTimestamp,
            field,
            position,
            sent,
            Some("a time has no spaces around it".into()),
        );
        return Err(());
    }
    match parse_seen_time(text) {
        Ok(t) => Ok(Some(t)),
        Err(reason) => {
            problems.add_with_reason(ErrorType::InvalidTimestamp, field, position, text, Some(reason));
            Err(())
        }
    }
}

/// An optional UTC offset as text (`+01:00`, `-0530`, `Z`); absent, null or blank means
/// the source did not say.
fn check_utc_offset(raw: &RawValue, position: Position, problems: &mut Problems) -> Result<UtcOffsets, ()> {
    let field = super::upload::FIELDS[UTC_OFFSET];
    let Some(text) = optional_text(raw, field, ErrorType::InvalidUtcOffset, position, problems)? else {
        return Ok(UtcOffsets::default());
    };
    match parse_offset(text) {
        // parse_offset accepts only offsets a set holds.
        Ok(minutes) => Ok(UtcOffsets::of(minutes).unwrap_or_default()),
        Err(reason) => {
            problems.add_with_reason(ErrorType::InvalidUtcOffset, field, position, text, Some(reason));
            Err(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contributor::upload::FIELDS;

    fn infos() -> Vec<IntegrationInfo> {
        vec![
            IntegrationInfo { id: 1, application_type: ApplicationType::Git },
            IntegrationInfo { id: 2, application_type: ApplicationType::Jira },
        ]
    }

    fn row(values: &[(&str, RawValue)]) -> RawContributor {
        let mut raw: RawContributor = Default::default();
        for (field, value) in values {
            let i = FIELDS.iter().position(|f| f == field).expect("known field");
            raw[i] = value.clone();
        }
        raw
    }

    fn text(s: &str) -> RawValue {
        RawValue::Text(s.into())
    }

    fn num(s: &str) -> RawValue {
        RawValue::Number(s.into())
    }

    #[test]
    fn rows_of_one_contributor_fold_together_case_insensitively_for_git() {
        let mut planner = ContributorPlanner::new(&infos());
        planner.push(
            Position::Index(0),
            row(&[
                ("integrationId", num("1")),
                ("identity", text("Jane@Example.com")),
                ("name", text("Jane Doe")),
                ("count", num("3")),
                ("firstSeen", text("2026-01-05")),
            ]),
        );
        planner.push(
            Position::Index(1),
            row(&[
                ("integrationId", num("1")),
                ("identity", text("jane@example.com")),
                ("name", text("J. Doe")),
                ("kind", text("review")),
                ("count", num("2")),
                ("lastSeen", text("2026-03-01T10:00:00+01:00")),
            ]),
        );
        let plan = planner.finish(Problems::new()).expect("valid");
        assert_eq!(plan.received, 2);
        assert_eq!(plan.rows.len(), 1);
        let c = &plan.rows[0];
        assert_eq!(c.identity(), "Jane@Example.com");
        assert_eq!(c.key(), "jane@example.com");
        assert_eq!(c.counts.get(ActivityKind::Commit), 3);
        assert_eq!(c.counts.get(ActivityKind::Review), 2);
        assert_eq!(c.top_name(), Some("Jane Doe"));
        assert_eq!(c.first_seen(), parse_seen_time("2026-01-05").ok());
        assert_eq!(c.last_seen(), parse_seen_time("2026-03-01T09:00:00Z").ok());
        assert_eq!(c.names().collect::<Vec<_>>(), vec![("Jane Doe", 3), ("J. Doe", 2)]);
        assert_eq!(c.emails().count(), 0);
    }

    #[test]
    fn the_utc_offsets_of_one_contributor_are_gathered_from_all_its_rows() {
        let mut planner = ContributorPlanner::new(&infos());
        let offsets = [text("+01:00"), text("+02:00"), text("+0100"), RawValue::Null, text(" ")];
        for (i, offset) in offsets.into_iter().enumerate() {
            planner.push(
                Position::Index(i as u64),
                row(&[("integrationId", num("1")), ("identity", text("jane@example.com")), ("utcOffset", offset)]),
            );
        }
        planner.push(Position::Index(9), row(&[("integrationId", num("1")), ("identity", text("bob@example.com"))]));
        let plan = planner.finish(Problems::new()).expect("valid");
        assert_eq!(plan.rows[1].utc_offsets.minutes().collect::<Vec<_>>(), vec![60, 120]);
        assert!(plan.rows[0].utc_offsets.is_empty(), "no offset sent, none known");
    }

    #[test]
    fn texts_read_back_as_written() {
        let texts = Texts::new("JDoe", Some("jdoe"), &[("Jane", 3), ("Ĵane Ðoe", 1)], &[("j@x.com", 4)]);
        assert_eq!(texts.identity(), "JDoe");
        assert_eq!(texts.key(), "jdoe");
        assert_eq!(texts.seen(Seen::Names).collect::<Vec<_>>(), vec![("Jane", 3), ("Ĵane Ðoe", 1)]);
        assert_eq!(texts.seen(Seen::Emails).collect::<Vec<_>>(), vec![("j@x.com", 4)]);
        let same = Texts::new("jdoe", Some("jdoe"), &[], &[]);
        assert_eq!((same.identity(), same.key()), ("jdoe", "jdoe"));
        assert_eq!(same.seen(Seen::Names).count() + same.seen(Seen::Emails).count(), 0);
        let many: Vec<String> = (0..300).map(|i| format!("n{i}")).collect();
        let refs: Vec<(&str, u64)> = many.iter().map(|n| (n.as_str(), 1)).collect();
        let capped = Texts::new("x", None, &refs, &[("e@x", 1)]);
        assert_eq!(capped.seen(Seen::Names).count(), MAX_SEEN_VALUES);
        assert_eq!(capped.seen(Seen::Emails).collect::<Vec<_>>(), vec![("e@x", 1)]);
    }

    #[test]
    fn jira_identities_stay_case_sensitive_and_default_to_other() {
        let mut planner = ContributorPlanner::new(&infos());
        planner.push(Position::Index(0), row(&[("integrationId", num("2")), ("identity", text("AbC"))]));
        planner.push(Position::Index(1), row(&[("integrationId", num("2")), ("identity", text("abc"))]));
        let plan = planner.finish(Problems::new()).expect("valid");
        assert_eq!(plan.rows.len(), 2);
        assert!(plan.rows.iter().all(|r| r.counts.get(ActivityKind::Other) == 1));
    }

    #[test]
    fn every_bad_value_is_reported_with_its_row() {
        let mut planner = ContributorPlanner::new(&infos());
        let cases = [
            row(&[("integrationId", num("9")), ("identity", text("a"))]),
            row(&[("integrationId", num("1")), ("identity", text("a")), ("kind", text("commits"))]),
            row(&[("integrationId", num("1")), ("identity", text("a")), ("count", num("-1"))]),
            row(&[("integrationId", num("1")), ("identity", text("a")), ("count", num("1.5"))]),
            row(&[("integrationId", num("1")), ("identity", text("a")), ("firstSeen", text("yesterday"))]),
            row(&[
                ("integrationId", num("1")),
                ("identity", text("a")),
                ("firstSeen", text("2026-02-01")),
                ("lastSeen", text("2026-01-01")),
            ]),
            row(&[("integrationId", num("1")), ("identity", text("a")), ("name", text("x\u{202E}y"))]),
            row(&[("integrationId", num("1"))]),
            row(&[("integrationId", num("1")), ("identity", text("a")), ("utcOffset", text("+25:00"))]),
        ];
        for (i, raw) in cases.into_iter().enumerate() {
            planner.push(Position::Index(i as u64), raw);
        }
        let problems = planner.finish(Problems::new()).expect_err("all refused");
        for t in [
            ErrorType::UnknownIntegration,
            ErrorType::InvalidActivityKind,
            ErrorType::InvalidCount,
            ErrorType::InvalidTimestamp,
            ErrorType::InvalidTimeRange,
            ErrorType::InvalidName,
            ErrorType::RequiredFieldMissing,
            ErrorType::InvalidUtcOffset,
        ] {
            assert!(problems.has(t), "{t:?} not reported");
        }
        assert_eq!(problems.total(), 9);
    }

    #[test]
    fn a_number_where_text_belongs_is_refused() {
        let mut planner = ContributorPlanner::new(&infos());
        planner
            .push(Position::Index(0), row(&[("integrationId", num("1")), ("identity", text("a")), ("name", num("0"))]));
        planner
            .push(Position::Index(1), row(&[("integrationId", num("1")), ("identity", text("b")), ("kind", num("1"))]));
        planner.push(
            Position::Index(2),
            row(&[("integrationId", num("1")), ("identity", text("c")), ("count", text("7"))]),
        );
        let problems = planner.finish(Problems::new()).expect_err("numbers refused");
        assert!(problems.has(ErrorType::InvalidName) && problems.has(ErrorType::InvalidActivityKind));
        assert_eq!(problems.total(), 2, "a count written as text is still a count");
    }

    #[test]
    fn bots_are_flagged_when_the_plan_is_finished() {
        let mut planner = ContributorPlanner::new(&infos());
        planner.push(
            Position::Index(0),
            row(&[
                ("integrationId", num("1")),
                ("identity", text("49699333+dependabot[bot]@users.noreply.github.com")),
                ("name", text("dependabot[bot]")),
            ]),
        );
        planner.push(Position::Index(1), row(&[("integrationId", num("1")), ("identity", text("jane@example.com"))]));
        let plan = planner.finish(Problems::new()).expect("valid");
        assert_eq!(plan.rows[0].bot_rule, Some(BotRule::BotSuffix));
        assert_eq!(plan.rows[1].bot_rule, None);
    }
}
