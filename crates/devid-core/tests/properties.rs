//! Properties of every parser and normaliser: none panics on any input, and the ones
//! that should round-trip do.

use devid_core::csv_upload::{CsvReadError, parse_csv_upload};
use devid_core::json_upload::{JsonBody, parse_json_upload};
use devid_core::normalize::{guard_formula, identity_key, normalize_email, normalize_identity, strip_formula_guard};
use devid_core::plan::{Addressing, IntegrationInfo, RawValue, plan_upload};
use devid_core::types::ApplicationType;
use proptest::prelude::*;

fn integrations() -> Vec<IntegrationInfo> {
    vec![
        IntegrationInfo { id: 1, application_type: ApplicationType::Github },
        IntegrationInfo { id: 2, application_type: ApplicationType::Jira },
    ]
}

/// Text that looks like CSV: the characters that matter to a CSV parser, often.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(b','),
            Just(b'"'),
            Just(b'\n'),
            Just(b'\r'),
            Just(b'\''),
            Just(b'='),
            Just(0u8),
            Just(0xEF),
            Just(0xFF),
            b'a'..=b'z',
            b'0'..=b'9',
            Just(b'@'),
            Just(b'.'),
        ],
        0..400,
    )
    .prop_map(|body| [b"email,integrationId,identity\n".as_slice(), &body].concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn csv_parsing_and_planning_never_panic(bytes in prop_oneof![csvish(), proptest::collection::vec(any::<u8>(), 0..600)]) {
        match parse_csv_upload(&bytes[..], Addressing::IntegrationId, 1000) {
            Ok(parsed) => {
                let _ = plan_upload(parsed, &integrations());
            }
            Err(CsvReadError::Invalid(p)) => prop_assert!(!p.is_empty()),
            Err(CsvReadError::Io(e)) => prop_assert!(false, "in-memory reads do not fail: {e}"),
        }
    }

    #[test]
    fn json_parsing_and_planning_never_panic(text in prop_oneof![
        "\\PC{0,300}",
        "\\[(\\{(\"(email|integrationId|identity|x)\":(\"[^\"]{0,12}\"|[0-9.e-]{1,6}|true|null|\\[\\]|\\{\\}),?){0,4}\\},?){0,4}\\]",
    ]) {
        for kind in [JsonBody::Identities, JsonBody::CloudIds, JsonBody::Delete] {
            if let Ok(parsed) = parse_json_upload(text.as_bytes(), kind, 1000) {
                let _ = plan_upload(parsed, &integrations());
            }
        }
    }

    #[test]
    fn email_normalisation_is_idempotent(raw in "\\PC{0,40}|[A-Za-z0-9._+-]{1,12}@[A-Za-z0-9-]{1,8}\\.[A-Za-z]{2,4}") {
        if let Ok(once) = normalize_email(&raw) {
            prop_assert_eq!(normalize_email(&once), Ok(once.clone()));
            prop_assert_eq!(once.matches('@').count(), 1);
            prop_assert!(once.chars().count() <= 254);
        }
    }

    #[test]
    fn identity_normalisation_and_keys_are_stable(raw in "\\PC{0,300}") {
        if let Ok(identity) = normalize_identity(&raw) {
            prop_assert_eq!(normalize_identity(identity), Ok(identity));
            for t in ApplicationType::ALL {
                let key = identity_key(t, identity).unwrap_or_else(|| identity.to_string());
                prop_assert_eq!(identity_key(t, &key).unwrap_or_else(|| key.clone()), key);
            }
        }
    }

    #[test]
    fn the_formula_guard_round_trips(cell in "['=+@\\t\\r-]{0,3}\\PC{0,20}") {
        let guarded = guard_formula(&cell);
        let stripped = strip_formula_guard(&guarded);
        prop_assert_eq!(stripped.as_ref(), cell.as_str());
        prop_assert!(!devid_core::normalize::looks_like_formula(&guarded));
    }

    /// Split the way a `;`- or tab-separating spreadsheet splits it, no part of a guarded
    /// cell is a formula, and the guard still comes off exactly.
    #[test]
    fn no_part_of_a_guarded_cell_is_a_formula(cell in "(['=+@\t;x-]{0,3}[a-z0-9 ]{0,3}){0,5}") {
        let guarded = guard_formula(&cell);
        let stripped = strip_formula_guard(&guarded);
        prop_assert_eq!(stripped.as_ref(), cell.as_str());
        for part in guarded.split([';', '\t']) {
            prop_assert!(!devid_core::normalize::looks_like_formula(part), "{:?} in {:?}", part, guarded);
        }
    }

    /// Whatever an identity is, written as CSV with the guard and read back, it is the
    /// same identity.
    #[test]
    fn csv_write_then_read_returns_the_identity(identity in "['=+@ -]{0,2}[^\\x00-\\x1f\\x7f]{1,30}") {
        let identity = identity.trim().to_string();
        prop_assume!(!identity.is_empty());
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["email", "integrationId", "identity"]).expect("header");
        writer.write_record(["a@b.com", "2", guard_formula(&identity).as_ref()]).expect("row");
        let bytes = writer.into_inner().expect("bytes");
        let parsed = parse_csv_upload(&bytes[..], Addressing::IntegrationId, 10).map_err(|e| format!("{e:?}")).expect("parses");
        prop_assert_eq!(&parsed.rows[0].identity, &RawValue::Text(identity.clone()));
    }
}
