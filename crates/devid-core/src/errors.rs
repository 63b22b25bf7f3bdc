//! Upload problems, grouped the way the API reports them: one entry per error type and
//! field, with the full count and the first few rows at fault.

use std::collections::BTreeMap;

use serde::Serialize;

/// At most this many sample rows are reported per error type; the count is always full.
pub const MAX_SAMPLES: usize = 20;
/// Sample values are cut to this many characters so a 10 MB field cannot echo back.
pub const MAX_SAMPLE_VALUE_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    InvalidJson,
    InvalidCsv,
    EmptyPayload,
    EmptyCsv,
    BlankCsvColumnName,
    RequiredFieldMissing,
    RequiredValueMissing,
    UnknownField,
    InvalidEmail,
    InvalidIntegrationId,
    UnknownIntegration,
    UnknownApplicationType,
    AmbiguousApplicationType,
    InvalidIdentity,
    ConflictingRows,
    TooManyRows,
    /// A query or path parameter outside uploads (`pageSize`, `sortKey`, ...).
    InvalidParameter,
    /// A listing cursor that is malformed, tampered with, or from another query.
    InvalidCursor,
    /// A contributor's `kind` is not one of the activity kinds.
    InvalidActivityKind,
    /// A contributor's `count` is not a whole number in range.
    InvalidCount,
    /// A `firstSeen` or `lastSeen` that is not a date or an RFC 3339 timestamp.
    InvalidTimestamp,
    /// `firstSeen` after `lastSeen` in one row.
    InvalidTimeRange,
    /// A display name that is too long or holds control or invisible characters.
    InvalidName,
    /// A contributor's `utcOffset` that is not a UTC offset in use.
    InvalidUtcOffset,
    /// An upload would move a locked identity to another developer.
    LockedIdentity,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidJson => "INVALID_JSON",
            ErrorType::InvalidCsv => "INVALID_CSV",
            ErrorType::EmptyPayload => "EMPTY_PAYLOAD",
            ErrorType::EmptyCsv => "EMPTY_CSV",
            ErrorType::BlankCsvColumnName => "BLANK_CSV_COLUMN_NAME",
            ErrorType::RequiredFieldMissing => "REQUIRED_FIELD_MISSING",
            ErrorType::RequiredValueMissing => "REQUIRED_VALUE_MISSING",
            ErrorType::UnknownField => "UNKNOWN_FIELD",
            ErrorType::InvalidEmail => "INVALID_EMAIL",
            ErrorType::InvalidIntegrationId => "INVALID_INTEGRATION_ID",
            ErrorType::UnknownIntegration => "UNKNOWN_INTEGRATION",
            ErrorType::UnknownApplicationType => "UNKNOWN_APPLICATION_TYPE",
            ErrorType::AmbiguousApplicationType => "AMBIGUOUS_APPLICATION_TYPE",
            ErrorType::InvalidIdentity => "INVALID_IDENTITY",
            ErrorType::ConflictingRows => "CONFLICTING_ROWS",
            ErrorType::TooManyRows => "TOO_MANY_ROWS",
            ErrorType::InvalidParameter => "INVALID_PARAMETER",
            ErrorType::InvalidCursor => "INVALID_CURSOR",
            ErrorType::InvalidActivityKind => "INVALID_ACTIVITY_KIND",
            ErrorType::InvalidCount => "INVALID_COUNT",
            ErrorType::InvalidTimestamp => "INVALID_TIMESTAMP",
            ErrorType::InvalidTimeRange => "INVALID_TIME_RANGE",
            ErrorType::InvalidName => "INVALID_NAME",
            ErrorType::InvalidUtcOffset => "INVALID_UTC_OFFSET",
            ErrorType::LockedIdentity => "LOCKED_IDENTITY",
        }
    }

    /// A sentence fragment describing what went wrong, completed with a count.
    fn describe(self) -> &'static str {
        match self {
            ErrorType::InvalidJson => "the body is not valid JSON of the expected shape",
            ErrorType::InvalidCsv => "the file is not valid CSV",
            ErrorType::EmptyPayload => "the upload contains no rows",
            ErrorType::EmptyCsv => "the CSV file contains no data rows",
            ErrorType::BlankCsvColumnName => "a CSV column has a blank name",
            ErrorType::RequiredFieldMissing => "a required field or column is absent",
            ErrorType::RequiredValueMissing => "a required value is empty",
            ErrorType::UnknownField => "a field is not one this endpoint accepts",
            ErrorType::InvalidEmail => "an email address is not valid",
            ErrorType::InvalidIntegrationId => "an integrationId is not a positive whole number",
            ErrorType::UnknownIntegration => "an integrationId names no integration of this account",
            ErrorType::UnknownApplicationType => "an applicationType is not one devid knows",
            ErrorType::AmbiguousApplicationType => {
                "an applicationType matches several integrations; use the current endpoint with integrationId"
            }
            ErrorType::InvalidIdentity => "an identity is too long or contains control characters",
            ErrorType::ConflictingRows => "the same identity is given to different emails in one upload",
            ErrorType::TooManyRows => "the upload has more rows than the server accepts",
            ErrorType::InvalidParameter => "a request parameter is not valid",
            ErrorType::InvalidCursor => "the cursor is not one this query issued",
            ErrorType::InvalidActivityKind => "a kind is not one of commit, pr, review, issue, other",
            ErrorType::InvalidCount => "a count is not a whole number from 0 to 1000000000",
            ErrorType::InvalidTimestamp => "a time is not a date (2026-01-31) or an RFC 3339 timestamp",
            ErrorType::InvalidTimeRange => "firstSeen is later than lastSeen",
            ErrorType::InvalidName => "a name is too long or contains control or invisible characters",
            ErrorType::InvalidUtcOffset => "a utcOffset is not a UTC offset in use, written like +01:00, -0530 or Z",
            ErrorType::LockedIdentity => {
                "an identity is locked to its developer; unlock it first, or send force=true with an admin key"
            }
        }
    }
}

/// Where a sample sits in the upload: CSV rows by 1-based file line (the header is line
/// 1), JSON rows by 0-based array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Position {
    Line(u64),
    Index(u64),
    /// The payload as a whole (a missing column, an empty file).
    Whole,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Sample {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub value: String,
    /// Why this value was refused, where the error type alone does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    pub error_type: ErrorType,
    pub field_name: String,
    pub error_count: u64,
    pub message: String,
    pub samples: Vec<Sample>,
}

/// Collects every problem of an upload; nothing is applied unless it stays empty.
#[derive(Debug, Default)]
pub struct Problems {
    groups: BTreeMap<(ErrorType, String), (u64, Vec<Sample>)>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn has(&self, error_type: ErrorType) -> bool {
        self.groups.keys().any(|(t, _)| *t == error_type)
    }

    /// Total rows at fault, across types (a row with two faults counts twice).
    pub fn total(&self) -> u64 {
        self.groups.values().map(|(count, _)| *count).sum()
    }

    pub fn add(&mut self, error_type: ErrorType, field: &str, position: Position, value: &str) {
        self.add_with_reason(error_type, field, position, value, None);
    }

    pub fn add_with_reason(
        &mut self,
        error_type: ErrorType,
        field: &str,
        position: Position,
        value: &str,
        reason: Option<String>,
    ) {
        let (count, samples) = self.groups.entry((error_type, field.to_string())).or_insert_with(|| (0, Vec::new()));
        *count += 1;
        if samples.len() < MAX_SAMPLES {
            let (line, index) = match position {
                Position::Line(l) => (Some(l), None),
                Position::Index(i) => (None, Some(i)),
                Position::Whole => (None, None),
            };
            samples.push(Sample { line, index, value: shorten(value), reason });
        }
    }

    /// Counts `more` occurrences beyond the samples given (a store that lists only the
    /// first rows at fault, and how many there were).
    pub fn add_unsampled(&mut self, error_type: ErrorType, field: &str, more: u64) {
        if more > 0 {
            self.groups.entry((error_type, field.to_string())).or_insert_with(|| (0, Vec::new())).0 += more;
        }
    }

    pub fn merge(&mut self, other: Problems) {
        for ((t, field), (count, samples)) in other.groups {
            let entry = self.groups.entry((t, field)).or_insert_with(|| (0, Vec::new()));
            entry.0 += count;
            for s in samples {
                if entry.1.len() < MAX_SAMPLES {
                    entry.1.push(s);
                }
            }
        }
    }

    /// Groups ordered by error type, then field.
    pub fn into_groups(self) -> Vec<ErrorGroup> {
        self.groups
            .into_iter()
            .map(|((error_type, field_name), (error_count, samples))| ErrorGroup {
                message: format!(
                    "{}: {} ({} occurrence{}).",
                    error_type.as_str(),
                    error_type.describe(),
                    error_count,
                    if error_count == 1 { "" } else { "s" }
                ),
                error_type,
                field_name,
                error_count,
                samples,
            })
            .collect()
    }

    /// One sentence summarising everything, for the top-level `message`.
    pub fn summary_sentence(&self) -> String {
        let types: Vec<&str> = {
            let mut t: Vec<&str> = self.groups.keys().map(|(t, _)| t.as_str()).collect();
            t.dedup();
            t
        };
        if let Some(((only, _), (_, samples))) = self.groups.iter().next()
            && self.groups.len() == 1
            && matches!(
                only,
                ErrorType::InvalidJson
                    | ErrorType::InvalidCsv
                    | ErrorType::TooManyRows
                    | ErrorType::EmptyCsv
                    | ErrorType::EmptyPayload
            )
            && let Some(reason) = samples.first().and_then(|s| s.reason.clone())
        {
            return format!("The upload was rejected and nothing was applied: {reason}");
        }
        format!(
            "The upload was rejected and nothing was applied: {} problem{} found ({}). Fix the rows listed under `errors` and send the whole upload again.",
            self.total(),
            if self.total() == 1 { "" } else { "s" },
            types.join(", ")
        )
    }
}

fn shorten(value: &str) -> String {
    if value.chars().count() <= MAX_SAMPLE_VALUE_CHARS {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX_SAMPLE_VALUE_CHARS).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_everything_but_keep_twenty_samples() {
        let mut p = Problems::new();
        for i in 0..25 {
            p.add(ErrorType::InvalidEmail, "email", Position::Line(i + 2), "bob@");
        }
        p.add(ErrorType::InvalidIdentity, "identity", Position::Index(3), &"x".repeat(1000));
        let groups = p.into_groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].error_count, 25);
        assert_eq!(groups[0].samples.len(), MAX_SAMPLES);
        assert_eq!(groups[0].samples[0].line, Some(2));
        assert_eq!(groups[1].samples[0].index, Some(3));
        assert!(groups[1].samples[0].value.chars().count() <= MAX_SAMPLE_VALUE_CHARS + 1);
    }

    #[test]
    fn error_types_serialize_as_documented() {
        assert_eq!(serde_json::to_string(&ErrorType::InvalidEmail).ok(), Some("\"INVALID_EMAIL\"".into()));
        for t in [ErrorType::BlankCsvColumnName, ErrorType::AmbiguousApplicationType, ErrorType::TooManyRows] {
            assert_eq!(serde_json::to_value(t).ok(), Some(serde_json::Value::String(t.as_str().into())));
        }
    }
}
