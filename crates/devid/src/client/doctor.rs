//! `devid doctor FILE`: the server's checks of an identities file, run offline with the
//! same code (`devid-core`'s parsers and planner), and the file reading that `import`
//! and `sync` share: a file that fails here is never sent.

use std::io::Read;
use std::path::Path;

use anyhow::Result;
use clap::Args;
use devid_core::csv_upload::{CsvReadError, parse_csv_into};
use devid_core::errors::{ErrorType, Position, Problems};
use devid_core::json_upload::{JsonBody, parse_json_upload};
use devid_core::plan::{
    Addressing, IntegrationInfo, ParsedUpload, Planner, RawValue, UploadPlan, parse_integration_id, plan_upload,
};
use devid_core::types::ApplicationType;

use super::{error_table, rejected, usage};

/// Rows `doctor` lets a file hold: the server's default limit. `import` and `sync` set
/// none here and leave it to the server, whose limit may be raised.
pub const MAX_ROWS: u64 = 5_000_000;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The identities file (CSV with either header set, or JSON as the API takes it);
    /// `-` reads standard input.
    pub file: String,
    /// An integration of the account, as ID=TYPE (such as 3=GITHUB); repeat for each.
    /// With them, rows naming any other integration are errors and identities compare
    /// as the server compares them (case-insensitively for GitHub, GitLab, Bitbucket…).
    /// Without them every integration id is taken to exist.
    #[arg(long = "integration", value_parser = parse_integration_arg)]
    pub integrations: Vec<IntegrationInfo>,
}

fn parse_integration_arg(text: &str) -> Result<IntegrationInfo, String> {
    let (id, kind) = text.split_once('=').ok_or_else(|| format!("`{text}` is not ID=TYPE, such as 3=GITHUB"))?;
    let id = parse_integration_id(id.trim())
        .ok_or_else(|| format!("`{id}` is not an integration id (a whole number from 1)"))?;
    let application_type: ApplicationType = kind
        .trim()
        .parse()
        .map_err(|_| format!("unknown type `{kind}`; expected one of {}", ApplicationType::allowed_values()))?;
    Ok(IntegrationInfo { id, application_type })
}

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// `[{"email","integrationId","identity"}]`.
    JsonIdentities,
    /// `{"integrationUsers":[{"email","applicationType","cloudId"}]}`.
    JsonCloudIds,
}

impl Format {
    /// JSON when the first character (after a byte order mark and blanks) opens an
    /// array or an object, CSV otherwise.
    pub fn detect(bytes: &[u8]) -> Format {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => Format::JsonIdentities,
            Some(b'{') => Format::JsonCloudIds,
            _ => Format::Csv,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::JsonIdentities => "JSON",
            Format::JsonCloudIds => "JSON (integrationUsers)",
        }
    }
}

/// A file read and checked: its rows as the server would apply them.
#[derive(Debug)]
pub struct Checked {
    pub format: Format,
    pub addressing: Addressing,
    pub plan: UploadPlan,
}

/// What the offline check knows of the account's integrations.
#[derive(Debug, Clone)]
pub enum Integrations {
    /// These and no others exist.
    Known(Vec<IntegrationInfo>),
    /// Every id named exists, of the type given when one is known (else compared
    /// exactly, as CUSTOM is); the server checks the rest.
    Assumed(Vec<IntegrationInfo>),
}

/// Reads `FILE` or standard input (`-`) whole: `import` sends it twice (dry run, then
/// apply) and must send the same bytes both times.
pub fn read_input(file: &str) -> Result<Vec<u8>> {
    if file == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| usage(format!("Cannot read standard input: {e}.")))?;
        return Ok(bytes);
    }
    std::fs::read(Path::new(file)).map_err(|e| usage(format!("Cannot read {file}: {e}. Check the path.")))
}

/// Parses and validates with the server's rules; `Err` holds every problem found. A
/// CSV is validated row by row as it is parsed, so a large file is never held twice.
pub fn check(bytes: &[u8], integrations: &Integrations) -> Result<Checked, Problems> {
    check_within(bytes, integrations, u64::MAX)
}

/// [`check`], with at most `max_rows` rows.
fn check_within(bytes: &[u8], integrations: &Integrations, max_rows: u64) -> Result<Checked, Problems> {
    let format = Format::detect(bytes);
    let known = match integrations {
        Integrations::Known(known) => known.clone(),
        Integrations::Assumed(typed) => {
            let mut known = typed.clone();
            for id in named_integrations(bytes) {
                if !known.iter().any(|i| i.id == id) {
                    known.push(IntegrationInfo { id, application_type: ApplicationType::Custom });
                }
            }
            known
        }
    };
    let (addressing, plan) = match format {
        Format::Csv => {
            let mut planner = Planner::new(&known);
            let mut addressing = Addressing::IntegrationId;
            let parsed = parse_csv_into(bytes, Addressing::IntegrationId, max_rows, &mut |a, row| {
                addressing = a;
                planner.push(a, row);
            });
            (addressing, planner.finish(csv_problems(parsed)?)?)
        }
        Format::JsonIdentities | Format::JsonCloudIds => {
            let parsed = parse_json(bytes, format, max_rows)?;
            (parsed.addressing, plan_upload(parsed, &known)?)
        }
    };
    Ok(Checked { format, addressing, plan })
}

fn parse_json(bytes: &[u8], format: Format, max_rows: u64) -> Result<ParsedUpload, Problems> {
    let body = if format == Format::JsonCloudIds { JsonBody::CloudIds } else { JsonBody::Identities };
    parse_json_upload(bytes, body, max_rows)
}

/// The problems a CSV parse found, or the one that stopped it.
fn csv_problems(parsed: Result<Problems, CsvReadError>) -> Result<Problems, Problems> {
    match parsed {
        Ok(problems) => Ok(problems),
        Err(CsvReadError::Invalid(problems)) => Err(problems),
        // Reading from memory cannot fail; say so rather than panic if it did.
        Err(CsvReadError::Io(e)) => {
            let mut problems = Problems::new();
            problems.add_with_reason(ErrorType::InvalidCsv, "body", Position::Whole, "", Some(e.to_string()));
            Err(problems)
        }
    }
}

/// Every integration id the rows of a file name (by id; none for the previous API's
/// header set), in the order first seen; rows that cannot be read are passed over.
pub fn named_integrations(bytes: &[u8]) -> Vec<i64> {
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    let mut note = |value: &RawValue| {
        if let RawValue::Text(t) | RawValue::Number(t) = value
            && let Some(id) = parse_integration_id(t.trim())
            && seen.insert(id)
        {
            ids.push(id);
        }
    };
    match Format::detect(bytes) {
        Format::Csv => {
            let _ = parse_csv_into(bytes, Addressing::IntegrationId, u64::MAX, &mut |addressing, row| {
                if addressing == Addressing::IntegrationId {
                    note(&row.integration);
                }
            });
        }
        format => {
            if let Ok(parsed) = parse_json(bytes, format, u64::MAX)
                && parsed.addressing == Addressing::IntegrationId
            {
                parsed.rows.iter().for_each(|row| note(&row.integration));
            }
        }
    }
    ids
}

/// The problems as the server's error groups would show them.
pub fn problems_table(problems: Problems) -> String {
    let groups = serde_json::to_value(problems.into_groups()).unwrap_or_default();
    error_table(&groups, &|line| format!("line {line}"))
}

/// A sentence and the table for a file that failed the checks.
pub fn refusal(file: &str, problems: Problems) -> anyhow::Error {
    let count = problems.total();
    let plural = if count == 1 { "problem" } else { "problems" };
    rejected(format!(
        "{file} cannot be uploaded ({count} {plural}; nothing was sent). Fix the lines below and run again.\n{}",
        problems_table(problems).trim_end()
    ))
}

pub fn doctor(args: DoctorArgs) -> Result<()> {
    let bytes = read_input(&args.file)?;
    let integrations = if args.integrations.is_empty() {
        Integrations::Assumed(Vec::new())
    } else {
        Integrations::Known(args.integrations.clone())
    };
    let checked = check_within(&bytes, &integrations, MAX_ROWS).map_err(|problems| refusal(&args.file, problems))?;
    let plan = &checked.plan;
    println!("{} is a valid {} identities file.", args.file, checked.format.describe());
    println!("rows: {}", plan.received);
    println!("identities: {}", plan.rows.len());
    println!("developers: {}", plan.emails.len());
    println!("repeated rows (folded): {}", plan.duplicates);
    if !plan.new_integrations.is_empty() {
        let types: Vec<&str> = plan.new_integrations.iter().map(|t| t.as_str()).collect();
        println!("integrations the server would create: {}", types.join(", "));
    }
    if args.integrations.is_empty() && checked.addressing == Addressing::IntegrationId {
        println!(
            "Integration ids were not checked, and identities were compared exactly: pass --integration ID=TYPE for each of the account's integrations to check them as the server does."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_told_by_the_first_character() {
        assert_eq!(Format::detect(b"email,integrationId,identity\n"), Format::Csv);
        assert_eq!(Format::detect(b"\xEF\xBB\xBF  \n[{}]"), Format::JsonIdentities);
        assert_eq!(Format::detect(b"{\"integrationUsers\":[]}"), Format::JsonCloudIds);
    }

    #[test]
    fn the_server_rules_find_every_bad_row_with_its_line() {
        let csv = b"email,integrationId,identity\nann@x.com,1,ann\nbob@,1,bob\ncid@x.com,9,cid\n";
        let known = Integrations::Known(vec![IntegrationInfo { id: 1, application_type: ApplicationType::Github }]);
        let problems = check(csv, &known).expect_err("two bad rows");
        let table = problems_table(problems);
        assert!(table.contains("line 3") && table.contains("INVALID_EMAIL"), "{table}");
        assert!(table.contains("line 4") && table.contains("UNKNOWN_INTEGRATION"), "{table}");
        let checked = check(csv, &Integrations::Assumed(Vec::new()));
        assert!(checked.is_err(), "the bad email is an error whatever the integrations");
    }

    #[test]
    fn known_types_decide_how_identities_compare() {
        let csv = b"email,integrationId,identity\nann@x.com,1,Ann\nbob@x.com,1,ann\n";
        let github = IntegrationInfo { id: 1, application_type: ApplicationType::Github };
        let problems = check(csv, &Integrations::Known(vec![github])).expect_err("ann and Ann are one GitHub user");
        assert!(problems_table(problems).contains("CONFLICTING_ROWS"));
        let checked = check(csv, &Integrations::Assumed(Vec::new())).expect("an unknown type compares exactly");
        assert_eq!(checked.plan.rows.len(), 2);
    }

    #[test]
    fn integration_arguments_parse() {
        assert_eq!(
            parse_integration_arg("3=github"),
            Ok(IntegrationInfo { id: 3, application_type: ApplicationType::Github })
        );
        assert!(parse_integration_arg("3").is_err());
        assert!(parse_integration_arg("x=GITHUB").is_err());
        assert!(parse_integration_arg("3=NOPE").is_err());
    }
}
