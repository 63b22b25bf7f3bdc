//! From parsed rows to an upload plan: every row validated against the account's
//! integrations, repeated rows folded, conflicts found. The store applies a plan in one
//! transaction; anything wrong is reported before that, for all rows at once.

// foldhash, not std's SipHash: every uploaded row is hashed here (its email, its
// integration), which SipHash made a visible share of a million-row upload; foldhash
// is seeded per process, so crafted keys cannot force collisions either.
use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use crate::errors::{ErrorType, Position, Problems};
use crate::normalize::{EmailProblem, IdentityProblem, identity_key, normalize_email, normalize_identity};
use crate::types::{ApplicationType, IntegrationId};

/// How rows name their integration: the current API by id, the previous one by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    IntegrationId,
    ApplicationType,
}

impl Addressing {
    pub fn integration_field(self) -> &'static str {
        match self {
            Addressing::IntegrationId => "integrationId",
            Addressing::ApplicationType => "applicationType",
        }
    }

    pub fn identity_field(self) -> &'static str {
        match self {
            Addressing::IntegrationId => "identity",
            Addressing::ApplicationType => "cloudId",
        }
    }
}

/// A value as it arrived, before any interpretation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RawValue {
    /// The JSON key was not there.
    #[default]
    Absent,
    Null,
    Text(String),
    /// A JSON number, kept as written.
    Number(String),
    /// A JSON value of the wrong kind: "a boolean", "an object", "an array".
    WrongKind(&'static str),
}

impl RawValue {
    /// How the value is shown in an error sample.
    pub fn display(&self) -> String {
        match self {
            RawValue::Absent => String::new(),
            RawValue::Null => "null".into(),
            RawValue::Text(s) | RawValue::Number(s) => s.clone(),
            RawValue::WrongKind(kind) => format!("<{kind}>"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub position: Position,
    pub email: RawValue,
    /// `integrationId` or `applicationType`, per the upload's [`Addressing`].
    pub integration: RawValue,
    /// `identity` or `cloudId`.
    pub identity: RawValue,
}

#[derive(Debug)]
pub struct ParsedUpload {
    pub addressing: Addressing,
    pub rows: Vec<RawRow>,
    /// Row-level problems found while parsing (an unknown field, a repeated key); they
    /// are reported together with the validation problems.
    pub problems: Problems,
}

impl ParsedUpload {
    pub fn new(addressing: Addressing, rows: Vec<RawRow>) -> Self {
        Self { addressing, rows, problems: Problems::new() }
    }
}

/// What validation needs to know of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrationInfo {
    pub id: IntegrationId,
    pub application_type: ApplicationType,
}

/// Which integration a planned row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrationRef {
    Existing(IntegrationId),
    /// The previous API names a type that has no integration yet: the store creates
    /// `<TYPE> (default)` in the same transaction.
    New(ApplicationType),
}

/// One validated row. Compact on purpose — a million of them are held during an upload:
/// emails are shared between a developer's rows, texts are exactly sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRow {
    pub email: Arc<str>,
    /// Position of `email` in [`UploadPlan::emails`]: a store keeps per-developer data
    /// in a vector indexed by it instead of hashing the email of every row.
    pub developer: u32,
    pub integration: IntegrationRef,
    pub application_type: ApplicationType,
    /// As uploaded (trimmed): what is shown.
    pub identity: Box<str>,
    /// What uniqueness is decided on; `None` when it equals `identity`.
    pub identity_key: Option<Box<str>>,
}

impl PlannedRow {
    pub fn key(&self) -> &str {
        self.identity_key.as_deref().unwrap_or(&self.identity)
    }
}

#[derive(Debug, Default)]
pub struct UploadPlan {
    /// One row per distinct identity, in (integration, identity key) order: the order a
    /// store walks its unique index in.
    pub rows: Vec<PlannedRow>,
    /// Every email the rows name, once each, in the order first seen.
    pub emails: Vec<Arc<str>>,
    pub received: u64,
    /// Rows that repeated an earlier row exactly and were folded into it.
    pub duplicates: u64,
    pub new_integrations: Vec<ApplicationType>,
    /// How the identities it creates or moves were made, recorded with them.
    pub provenance: Provenance,
    /// Lock the identities it creates or moves (accepted suggestions, a person's choice).
    pub lock: bool,
    /// Move locked identities too (an admin's explicit `force=true`); otherwise an
    /// upload that would move one is refused whole.
    pub force: bool,
}

/// How an identity's mapping was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provenance {
    /// `PATCH /v2/developers/identities` with a JSON body.
    #[default]
    Upload,
    /// The same endpoint with a CSV file.
    Csv,
    /// The previous API's cloud-id endpoints.
    PreviousApi,
    /// An accepted suggestion.
    Suggestion,
    /// The review UI.
    Ui,
    /// `devid import` on the server's own database.
    Cli,
    /// Made before devid recorded provenance.
    Unrecorded,
}

impl Provenance {
    pub const ALL: [Provenance; 7] = [
        Provenance::Upload,
        Provenance::Csv,
        Provenance::PreviousApi,
        Provenance::Suggestion,
        Provenance::Ui,
        Provenance::Cli,
        Provenance::Unrecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Upload => "upload",
            Provenance::Csv => "csv",
            Provenance::PreviousApi => "previous-api",
            Provenance::Suggestion => "suggestion",
            Provenance::Ui => "ui",
            Provenance::Cli => "cli",
            Provenance::Unrecorded => "unrecorded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// Validates every row and builds the plan, or returns every problem found.
pub fn plan_upload(parsed: ParsedUpload, integrations: &[IntegrationInfo]) -> Result<UploadPlan, Problems> {
    let mut planner = Planner::new(integrations);
    for raw in parsed.rows {
        planner.push(parsed.addressing, raw);
    }
    planner.finish(parsed.problems)
}

/// Validates rows one at a time as a parser produces them, so a large upload is never
/// held twice, raw and validated, in memory.
pub struct Planner<'a> {
    integrations: &'a [IntegrationInfo],
    by_id: HashMap<IntegrationId, ApplicationType>,
    problems: Problems,
    rows: Vec<PlannedRow>,
    positions: Vec<Position>,
    new_integrations: Vec<ApplicationType>,
    received: u64,
    addressing: Addressing,
    developers: HashMap<Arc<str>, u32>,
    emails: Vec<Arc<str>>,
}

impl<'a> Planner<'a> {
    pub fn new(integrations: &'a [IntegrationInfo]) -> Self {
        Self {
            integrations,
            by_id: integrations.iter().map(|i| (i.id, i.application_type)).collect(),
            problems: Problems::new(),
            rows: Vec::new(),
            positions: Vec::new(),
            new_integrations: Vec::new(),
            received: 0,
            addressing: Addressing::IntegrationId,
            developers: HashMap::default(),
            emails: Vec::new(),
        }
    }

    pub fn push(&mut self, addressing: Addressing, raw: RawRow) {
        self.received += 1;
        self.addressing = addressing;
        let problems = &mut self.problems;
        let position = raw.position;
        let email = check_email(&raw.email, position, problems);
        let integration = match addressing {
            Addressing::IntegrationId => check_integration_id(&raw.integration, position, &self.by_id, problems),
            Addressing::ApplicationType => check_application_type(
                &raw.integration,
                position,
                self.integrations,
                &mut self.new_integrations,
                problems,
            ),
        };
        let identity = check_identity(raw.identity, addressing.identity_field(), position, problems);
        // Once a row is wrong nothing will be applied: stop keeping rows, keep checking.
        if let (Some(email), Some((integration, application_type)), Some(identity), true) =
            (email, integration, identity, problems.is_empty())
        {
            let identity_key = identity_key(application_type, &identity).map(String::into_boxed_str);
            // A developer's rows usually come one after another: the previous row's
            // email is checked before hashing this one.
            let (email, developer) = match self.rows.last() {
                Some(previous) if *previous.email == *email => (Arc::clone(&previous.email), previous.developer),
                _ => match self.developers.get_key_value(email.as_str()) {
                    Some((shared, developer)) => (Arc::clone(shared), *developer),
                    None => {
                        let shared: Arc<str> = Arc::from(email);
                        let developer = self.emails.len() as u32;
                        self.developers.insert(Arc::clone(&shared), developer);
                        self.emails.push(Arc::clone(&shared));
                        (shared, developer)
                    }
                },
            };
            let identity = identity.into_boxed_str();
            self.rows.push(PlannedRow { email, developer, integration, application_type, identity, identity_key });
            self.positions.push(position);
        }
    }

    /// The plan, or every problem: those the parser found and those of the rows.
    pub fn finish(self, mut parse_problems: Problems) -> Result<UploadPlan, Problems> {
        parse_problems.merge(self.problems);
        let mut problems = parse_problems;
        // With every row refused for its own reasons, "no rows" would only add noise.
        if self.received == 0 && problems.is_empty() {
            problems.add_with_reason(
                ErrorType::EmptyPayload,
                "body",
                Position::Whole,
                "",
                Some("the upload contains no rows.".into()),
            );
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let (rows, duplicates) = fold_repeats(self.rows, &self.positions, self.addressing, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(UploadPlan {
            rows,
            emails: self.emails,
            received: self.received,
            duplicates,
            new_integrations: self.new_integrations,
            ..Default::default()
        })
    }
}

/// Folds identical rows into one (the last spelling wins for display) and reports the
/// same identity given to different emails. Finds repeats by sorting row numbers
/// rather than hashing every row: a few bytes a row instead of tens. The rows come
/// back in that sorted order, rearranged in place, so a store need not sort them again.
fn fold_repeats(
    mut rows: Vec<PlannedRow>,
    positions: &[Position],
    addressing: Addressing,
    problems: &mut Problems,
) -> (Vec<PlannedRow>, u64) {
    let sorted = sorted_order(&rows);
    // Indexed by sorted position from here on.
    let mut keep = vec![true; rows.len()];
    let mut display_from: Vec<(usize, usize)> = Vec::new();
    let mut duplicates = 0;
    let mut group_start = 0;
    for i in 1..=sorted.len() {
        // Neighbours that differ in integration or key prefix (nearly all) are told
        // apart without reading the rows, which sit all over memory in this order.
        let same = i < sorted.len() && sorted[i].ties(&sorted[group_start]) && {
            let (a, b) = (&rows[sorted[group_start].row as usize], &rows[sorted[i].row as usize]);
            a.integration == b.integration && a.key() == b.key()
        };
        if same {
            continue;
        }
        let first = sorted[group_start].row as usize;
        for (position, entry) in sorted.iter().enumerate().take(i).skip(group_start + 1) {
            let later = entry.row as usize;
            keep[position] = false;
            if rows[first].email == rows[later].email {
                duplicates += 1;
            } else {
                problems.add_with_reason(
                    ErrorType::ConflictingRows,
                    addressing.identity_field(),
                    positions[later],
                    &rows[later].identity,
                    Some(format!(
                        "given to {} here but to {} at {}",
                        rows[later].email,
                        rows[first].email,
                        describe_position(positions[first])
                    )),
                );
            }
        }
        // The group is in upload order: its last row's spelling is the one to show.
        let last = sorted[i - 1].row as usize;
        if last != first && rows[first].identity != rows[last].identity {
            display_from.push((group_start, i - 1));
        }
        group_start = i;
    }
    let mut order: Vec<u32> = sorted.into_iter().map(|e| e.row).collect();
    permute_in_place(&mut rows, &mut order);
    for (first, later) in display_from {
        rows[first].identity = std::mem::take(&mut rows[later].identity);
    }
    let mut index = 0;
    rows.retain(|_| {
        index += 1;
        keep[index - 1]
    });
    (rows, duplicates)
}

/// A row's place in (integration, key) order, as the sort sees it.
#[derive(Clone, Copy)]
struct SortEntry {
    prefix: u128,
    integration_rank: u32,
    row: u32,
}

impl SortEntry {
    /// Same integration and same first sixteen key bytes: the rows may be one identity.
    fn ties(&self, other: &SortEntry) -> bool {
        self.integration_rank == other.integration_rank && self.prefix == other.prefix
    }
}

/// Rows in (integration, key) order; rows with the same identity stay in upload order.
/// Comparing through the rows chases two pointers per comparison, a cache miss each on
/// a million rows; so the sort compares the integration's rank and the key's first
/// sixteen bytes, kept beside the row number (most identities are shorter than that,
/// and eight bytes left `janedoe-…`-style usernames tied). Runs tied on those are then
/// put in key order by a second, small sort.
fn sorted_order(rows: &[PlannedRow]) -> Vec<SortEntry> {
    let mut integrations: Vec<IntegrationRef> =
        rows.iter().map(|r| r.integration).collect::<HashSet<_>>().into_iter().collect();
    integrations.sort_unstable();
    let rank: HashMap<IntegrationRef, u32> = integrations.iter().enumerate().map(|(i, r)| (*r, i as u32)).collect();
    let mut entries: Vec<SortEntry> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| SortEntry {
            prefix: key_prefix(r.key()),
            integration_rank: rank.get(&r.integration).copied().unwrap_or(u32::MAX),
            row: i as u32,
        })
        .collect();
    entries.sort_unstable_by_key(|e| (e.integration_rank, e.prefix, e.row));
    let mut start = 0;
    while start < entries.len() {
        let mut end = start + 1;
        while end < entries.len() && entries[end].ties(&entries[start]) {
            end += 1;
        }
        if end - start > 1 {
            entries[start..end]
                .sort_by(|a, b| rows[a.row as usize].key().cmp(rows[b.row as usize].key()).then(a.row.cmp(&b.row)));
        }
        start = end;
    }
    entries
}

/// The first sixteen bytes of a key, zero-padded, as a number that orders like the key
/// (keys equal in it are compared in full).
fn key_prefix(key: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = key.len().min(16);
    bytes[..n].copy_from_slice(&key.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

/// Rearranges `items` so that position k holds what was at `order[k]`, by following
/// the permutation's cycles with swaps: no second copy of the rows. Uses up `order`.
pub(crate) fn permute_in_place<T>(items: &mut [T], order: &mut [u32]) {
    const DONE: u32 = u32::MAX;
    for start in 0..order.len() {
        if order[start] == DONE {
            continue;
        }
        let mut at = start;
        loop {
            let from = order[at] as usize;
            order[at] = DONE;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

pub fn describe_position(p: Position) -> String {
    match p {
        Position::Line(l) => format!("line {l}"),
        Position::Index(i) => format!("index {i}"),
        Position::Whole => "the payload".into(),
    }
}

fn check_email(raw: &RawValue, position: Position, problems: &mut Problems) -> Option<String> {
    let text = text_of(raw, "email", position, ErrorType::InvalidEmail, problems)?;
    match normalize_email(text) {
        Ok(email) => Some(email),
        Err(EmailProblem::Missing) => {
            problems.add(ErrorType::RequiredValueMissing, "email", position, text);
            None
        }
        Err(EmailProblem::Invalid(reason)) => {
            problems.add_with_reason(ErrorType::InvalidEmail, "email", position, text, Some(reason.into()));
            None
        }
    }
}

/// Largest number accepted unquoted as an identity: beyond 2^53 - 1 a JSON number is
/// not exact, and a fraction or exponent is not an id.
const MAX_NUMERIC_IDENTITY: u64 = (1 << 53) - 1;

pub(crate) fn check_identity(
    raw: RawValue,
    field: &str,
    position: Position,
    problems: &mut Problems,
) -> Option<String> {
    if let RawValue::Number(n) = &raw
        && !(n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u64>().is_ok_and(|v| v <= MAX_NUMERIC_IDENTITY))
    {
        problems.add_with_reason(
            ErrorType::InvalidIdentity,
            field,
            position,
            n,
            Some(format!(
                "an identity sent as a number must be a whole number from 0 to {MAX_NUMERIC_IDENTITY}; send other ids as strings"
            )),
        );
        return None;
    }
    let text = text_of(&raw, field, position, ErrorType::InvalidIdentity, problems)?;
    match normalize_identity(text) {
        Ok(trimmed) if trimmed.len() == text.len() => match raw {
            RawValue::Text(s) => Some(s),
            _ => Some(trimmed.to_string()),
        },
        Ok(trimmed) => Some(trimmed.to_string()),
        Err(IdentityProblem::Missing) => {
            problems.add(ErrorType::RequiredValueMissing, field, position, text);
            None
        }
        Err(IdentityProblem::Invalid(reason)) => {
            problems.add_with_reason(ErrorType::InvalidIdentity, field, position, text, Some(reason.into()));
            None
        }
    }
}

/// The text of a value that must be a string; numbers are accepted as their digits,
/// since a numeric cloud ID sent unquoted is still an ID.
pub(crate) fn text_of<'a>(
    raw: &'a RawValue,
    field: &str,
    position: Position,
    wrong_kind: ErrorType,
    problems: &mut Problems,
) -> Option<&'a str> {
    match raw {
        RawValue::Absent => {
            problems.add_with_reason(
                ErrorType::RequiredFieldMissing,
                field,
                position,
                "",
                Some(format!("the field `{field}` is absent")),
            );
            None
        }
        RawValue::Null => {
            problems.add(ErrorType::RequiredValueMissing, field, position, "null");
            None
        }
        RawValue::Text(s) | RawValue::Number(s) => Some(s),
        RawValue::WrongKind(kind) => {
            problems.add_with_reason(
                wrong_kind,
                field,
                position,
                &raw.display(),
                Some(match wrong_kind {
                    ErrorType::InvalidIntegrationId => {
                        format!("expected a number such as 3 (a numeric string \"3\" is accepted too), got {kind}")
                    }
                    _ => format!("expected a string, got {kind}"),
                }),
            );
            None
        }
    }
}

pub(crate) fn check_integration_id(
    raw: &RawValue,
    position: Position,
    known: &HashMap<IntegrationId, ApplicationType>,
    problems: &mut Problems,
) -> Option<(IntegrationRef, ApplicationType)> {
    let text = text_of(raw, "integrationId", position, ErrorType::InvalidIntegrationId, problems)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        problems.add(ErrorType::RequiredValueMissing, "integrationId", position, text);
        return None;
    }
    let Some(id) = parse_integration_id(trimmed) else {
        problems.add_with_reason(
            ErrorType::InvalidIntegrationId,
            "integrationId",
            position,
            text,
            Some("expected a positive whole number such as 1".into()),
        );
        return None;
    };
    match known.get(&id) {
        Some(t) => Some((IntegrationRef::Existing(id), *t)),
        None => {
            problems.add_with_reason(
                ErrorType::UnknownIntegration,
                "integrationId",
                position,
                text,
                Some("no integration with this id; list them with GET /v2/integrations".into()),
            );
            None
        }
    }
}

/// Positive integers, written plainly (`12`) or as a whole JSON float (`12.0`).
pub fn parse_integration_id(text: &str) -> Option<IntegrationId> {
    let digits = text.strip_suffix(".0").unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Ids are created in 1..=2^53-1 (exact in every JSON number); nothing above exists.
    digits.parse::<IntegrationId>().ok().filter(|id| (1..=crate::types::MAX_INTEGRATION_ID).contains(id))
}

fn check_application_type(
    raw: &RawValue,
    position: Position,
    integrations: &[IntegrationInfo],
    new_integrations: &mut Vec<ApplicationType>,
    problems: &mut Problems,
) -> Option<(IntegrationRef, ApplicationType)> {
    let text = text_of(raw, "applicationType", position, ErrorType::UnknownApplicationType, problems)?;
    if text.trim().is_empty() {
        problems.add(ErrorType::RequiredValueMissing, "applicationType", position, text);
        return None;
    }
    let Ok(application_type) = text.parse::<ApplicationType>() else {
        problems.add_with_reason(
            ErrorType::UnknownApplicationType,
            "applicationType",
            position,
            text,
            Some(format!("expected one of {}", ApplicationType::allowed_values())),
        );
        return None;
    };
    let mut matching = integrations.iter().filter(|i| i.application_type == application_type);
    match (matching.next(), matching.next()) {
        (Some(only), None) => Some((IntegrationRef::Existing(only.id), application_type)),
        (None, _) => {
            if !new_integrations.contains(&application_type) {
                new_integrations.push(application_type);
            }
            Some((IntegrationRef::New(application_type), application_type))
        }
        (Some(_), Some(_)) => {
            problems.add_with_reason(
                ErrorType::AmbiguousApplicationType,
                "applicationType",
                position,
                text,
                Some(format!(
                    "several integrations have type {application_type}; upload to PATCH /v2/developers/identities with their integrationId instead"
                )),
            );
            None
        }
    }
}

/// A validated request to delete identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteRow {
    pub integration_id: IntegrationId,
    pub identity: String,
    pub identity_key: Option<String>,
}

impl DeleteRow {
    pub fn key(&self) -> &str {
        self.identity_key.as_deref().unwrap_or(&self.identity)
    }
}

#[derive(Debug, Default)]
pub struct DeletePlan {
    pub rows: Vec<DeleteRow>,
    pub received: u64,
    pub duplicates: u64,
}

/// Validates a delete request: each row names an existing integration and an identity.
pub fn plan_delete(parsed: ParsedUpload, integrations: &[IntegrationInfo]) -> Result<DeletePlan, Problems> {
    let mut problems = parsed.problems;
    let rows = parsed.rows;
    let received = rows.len() as u64;
    if received == 0 && problems.is_empty() {
        problems.add_with_reason(
            ErrorType::EmptyPayload,
            "body",
            Position::Whole,
            "",
            Some("the request names no identities to delete.".into()),
        );
        return Err(problems);
    }
    let by_id: HashMap<IntegrationId, ApplicationType> =
        integrations.iter().map(|i| (i.id, i.application_type)).collect();
    let mut planned = Vec::with_capacity(rows.len());
    for raw in rows {
        let integration = check_integration_id(&raw.integration, raw.position, &by_id, &mut problems);
        let identity = check_identity(raw.identity, "identity", raw.position, &mut problems);
        if let (Some((IntegrationRef::Existing(integration_id), application_type)), Some(identity)) =
            (integration, identity)
        {
            let identity_key = identity_key(application_type, &identity);
            planned.push(DeleteRow { integration_id, identity, identity_key });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut seen = std::collections::HashSet::with_capacity(planned.len());
    let mut duplicates = 0;
    let mut unique = Vec::with_capacity(planned.len());
    for row in planned {
        if seen.insert((row.integration_id, row.key().to_string())) {
            unique.push(row);
        } else {
            duplicates += 1;
        }
    }
    Ok(DeletePlan { rows: unique, received, duplicates })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawValue {
        RawValue::Text(s.to_string())
    }

    fn row(line: u64, email: &str, integration: &str, identity: &str) -> RawRow {
        RawRow {
            position: Position::Line(line),
            email: text(email),
            integration: text(integration),
            identity: text(identity),
        }
    }

    fn integrations() -> Vec<IntegrationInfo> {
        vec![
            IntegrationInfo { id: 1, application_type: ApplicationType::Github },
            IntegrationInfo { id: 2, application_type: ApplicationType::Jira },
            IntegrationInfo { id: 3, application_type: ApplicationType::Jira },
        ]
    }

    fn current(rows: Vec<RawRow>) -> ParsedUpload {
        ParsedUpload::new(Addressing::IntegrationId, rows)
    }

    #[test]
    fn permuting_in_place_matches_building_a_new_vector() {
        let mut seed = 7u64;
        for n in [0usize, 1, 2, 3, 10, 257] {
            let mut order: Vec<u32> = (0..n as u32).collect();
            // Fisher-Yates with a small LCG: deterministic, every shape of cycle.
            for i in (1..n).rev() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            let items: Vec<String> = (0..n).map(|i| format!("row {i}")).collect();
            let expected: Vec<String> = order.iter().map(|&k| items[k as usize].clone()).collect();
            let mut permuted = items.clone();
            permute_in_place(&mut permuted, &mut order.clone());
            assert_eq!(permuted, expected, "n = {n}");
        }
    }

    #[test]
    fn planned_rows_come_in_integration_and_key_order() {
        let rows = (0..40)
            .map(|i| {
                row(i + 2, &format!("d{}@x.com", i % 7), &format!("{}", 1 + i % 3), &format!("User{}", (i * 17) % 40))
            })
            .chain([row(50, "d1@x.com", "2", "user17")])
            // Longer than the sorted prefix and equal in it: ordered by the rest.
            .chain((0..30).map(|i| {
                row(
                    60 + i,
                    &format!("e{i}@x.com"),
                    &format!("{}", 1 + i % 2),
                    &format!("a-long-shared-prefix-{}", (i * 7) % 30),
                )
            }))
            .collect();
        let plan = plan_upload(current(rows), &integrations()).expect("valid");
        let keys: Vec<_> = plan.rows.iter().map(|r| (r.integration, r.key().to_string())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }

    /// Rows of one email, adjacent or not, in any case, share its text and its entry in
    /// the plan's email list, which lists each email once.
    #[test]
    fn rows_of_one_email_share_one_allocation_and_one_listed_email() {
        let rows = vec![
            row(2, "a@x.com", "1", "a1"),
            row(3, "A@x.com", "2", "a2"),
            row(4, "b@x.com", "1", "b1"),
            row(5, "a@x.com ", "3", "a3"),
        ];
        let plan = plan_upload(current(rows), &integrations()).expect("valid");
        let of = |email: &str| plan.rows.iter().filter(|r| &*r.email == email).collect::<Vec<_>>();
        let a = of("a@x.com");
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|r| Arc::ptr_eq(&r.email, &a[0].email)));
        assert!(!Arc::ptr_eq(&of("b@x.com")[0].email, &a[0].email));
        assert_eq!(plan.emails.iter().map(|e| &**e).collect::<Vec<_>>(), ["a@x.com", "b@x.com"]);
        assert!(plan.rows.iter().all(|r| plan.emails[r.developer as usize] == r.email));
    }

    #[test]
    fn valid_rows_are_normalised() {
        let plan = plan_upload(current(vec![row(2, " Jane@X.com ", "1", " JDoe ")]), &integrations()).expect("valid");
        assert_eq!(plan.rows.len(), 1);
        let r = &plan.rows[0];
        assert_eq!(&*r.email, "jane@x.com");
        assert_eq!(&*r.identity, "JDoe");
        assert_eq!(r.key(), "jdoe");
        assert_eq!(r.integration, IntegrationRef::Existing(1));
    }

    #[test]
    fn repeats_fold_and_case_variants_are_one_identity_on_github_only() {
        let plan = plan_upload(
            current(vec![
                row(2, "a@x.com", "1", "jdoe"),
                row(3, "a@x.com", "1", "JDoe"),
                row(4, "a@x.com", "2", "abc"),
                row(5, "a@x.com", "2", "ABC"),
            ]),
            &integrations(),
        )
        .expect("valid");
        assert_eq!(plan.duplicates, 1);
        assert_eq!(plan.rows.len(), 3);
        assert_eq!(&*plan.rows[0].identity, "JDoe", "the last spelling is kept for display");

        let plan = plan_upload(
            current(vec![
                row(2, "a@x.com", "1", "JDoe"),
                row(3, "a@x.com", "1", "jdoe"),
                row(4, "a@x.com", "1", "JDoe"),
            ]),
            &integrations(),
        )
        .expect("valid");
        assert_eq!((plan.rows.len(), plan.duplicates), (1, 2));
        assert_eq!(&*plan.rows[0].identity, "JDoe", "the very last spelling wins, even when it repeats the first");
    }

    #[test]
    fn same_identity_two_emails_conflicts() {
        let err =
            plan_upload(current(vec![row(2, "a@x.com", "1", "jdoe"), row(3, "b@x.com", "1", "JDOE")]), &integrations())
                .expect_err("conflict");
        let groups = err.into_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].error_type, ErrorType::ConflictingRows);
        assert_eq!(groups[0].samples[0].line, Some(3));
        assert!(groups[0].samples[0].reason.as_deref().unwrap_or("").contains("line 2"));
    }

    #[test]
    fn every_row_problem_is_reported_at_once() {
        let err = plan_upload(
            current(vec![
                row(2, "bob@", "1", "x"),
                row(3, "", "1", "x"),
                row(4, "a@x.com", "abc", "x"),
                row(5, "a@x.com", "99", "x"),
                row(6, "a@x.com", "1", "a\u{0}b"),
                row(7, "a@x.com", "-1", "y"),
                RawRow {
                    position: Position::Line(8),
                    email: RawValue::Absent,
                    integration: text("1"),
                    identity: text("z"),
                },
            ]),
            &integrations(),
        )
        .expect_err("invalid");
        let types: Vec<ErrorType> = err.into_groups().into_iter().map(|g| g.error_type).collect();
        assert_eq!(
            types,
            vec![
                ErrorType::RequiredFieldMissing,
                ErrorType::RequiredValueMissing,
                ErrorType::InvalidEmail,
                ErrorType::InvalidIntegrationId,
                ErrorType::UnknownIntegration,
                ErrorType::InvalidIdentity,
            ]
        );
    }

    #[test]
    fn application_types_resolve_create_or_are_ambiguous() {
        let parsed = ParsedUpload::new(
            Addressing::ApplicationType,
            vec![row(2, "a@x.com", "GITHUB", "a"), row(3, "a@x.com", "CUSTOM", "b"), row(4, "a@x.com", "custom", "c")],
        );
        let plan = plan_upload(parsed, &integrations()).expect("valid");
        assert_eq!(plan.rows[0].integration, IntegrationRef::Existing(1));
        assert_eq!(plan.rows[1].integration, IntegrationRef::New(ApplicationType::Custom));
        assert_eq!(plan.new_integrations, vec![ApplicationType::Custom]);

        let parsed = ParsedUpload::new(
            Addressing::ApplicationType,
            vec![row(2, "a@x.com", "JIRA", "a"), row(3, "a@x.com", "JIRAA", "a")],
        );
        let types: Vec<ErrorType> = plan_upload(parsed, &integrations())
            .expect_err("bad")
            .into_groups()
            .into_iter()
            .map(|g| g.error_type)
            .collect();
        assert_eq!(types, vec![ErrorType::UnknownApplicationType, ErrorType::AmbiguousApplicationType]);
    }

    #[test]
    fn integration_ids_accept_whole_numbers_only() {
        assert_eq!(parse_integration_id("12"), Some(12));
        assert_eq!(parse_integration_id("12.0"), Some(12));
        for bad in ["0", "-3", "1.5", "1e3", "", "x", "99999999999999999999"] {
            assert_eq!(parse_integration_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn empty_upload_is_an_error() {
        let err = plan_upload(current(vec![]), &integrations()).expect_err("empty");
        assert!(err.has(ErrorType::EmptyPayload));
    }

    #[test]
    fn numeric_identities_are_whole_numbers_only() {
        let mut rows = Vec::new();
        for (n, number) in ["42", "1.5", "-3", "1e300", "9007199254740992"].iter().enumerate() {
            let mut r = row(n as u64 + 2, "a@x.com", "1", "x");
            r.identity = RawValue::Number(number.to_string());
            rows.push(r);
        }
        let err = plan_upload(current(rows), &integrations()).expect_err("invalid");
        let groups = err.into_groups();
        assert_eq!(groups[0].error_count, 4, "all but 42");
    }

    #[test]
    fn rows_refused_by_the_parser_are_not_also_an_empty_upload() {
        let mut parsed = current(vec![]);
        parsed.problems.add(ErrorType::InvalidCsv, "file", Position::Line(2), "a@x.com,1");
        let err = plan_upload(parsed, &integrations()).expect_err("invalid");
        let types: Vec<ErrorType> = err.into_groups().iter().map(|g| g.error_type).collect();
        assert_eq!(types, vec![ErrorType::InvalidCsv]);
    }

    #[test]
    fn an_integration_id_of_the_wrong_kind_is_said_to_need_a_number() {
        let mut wrong = row(2, "a@x.com", "1", "a");
        wrong.integration = RawValue::WrongKind("a boolean");
        let err = plan_upload(current(vec![wrong]), &integrations()).expect_err("invalid");
        let groups = err.into_groups();
        let reason = groups[0].samples[0].reason.clone().unwrap_or_default();
        assert!(reason.contains("expected a number"), "{reason}");
    }
}
