//! What a sync changes: the desired identities (the source, checked and folded by
//! `devid-core`'s planner) against the server's, compared as the server compares them
//! (by integration and identity key). Pure: no I/O, so every rule is tested here.

use std::collections::HashMap;
use std::sync::Arc;

use devid_core::plan::{IntegrationRef, UploadPlan};

/// An identity the server holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The identity as last uploaded: what a delete names and a plan shows.
    pub identity: Box<str>,
    pub email: Box<str>,
    pub locked: bool,
}

/// The server's identities: integration → identity key → identity.
pub type CurrentState = HashMap<i64, HashMap<Box<str>, Current>>;

/// An identity to create or to move to another developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    pub integration: i64,
    pub identity: Box<str>,
    pub email: Arc<str>,
    /// The developer it is mapped to now, when it exists.
    pub from: Option<Box<str>>,
}

/// An identity absent from the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absent {
    pub integration: i64,
    pub identity: Box<str>,
    pub email: Box<str>,
}

#[derive(Debug, Default)]
pub struct SyncPlan {
    /// Created and reassigned identities, in the source's (integration, identity) order.
    pub upserts: Vec<Upsert>,
    pub creates: u64,
    pub reassigns: u64,
    pub unchanged: u64,
    /// Absent from the source and unlocked: deleted with `--prune`.
    pub absent: Vec<Absent>,
    /// Locked identities the source would move: reported, left alone.
    pub locked_moves: Vec<Upsert>,
    /// Locked identities absent from the source: reported, never pruned.
    pub locked_absent: Vec<Absent>,
    /// Identities the server holds in the integrations compared.
    pub current_total: u64,
}

/// Compares; `current` is consumed (what is left in it is absent from the source).
pub fn diff(desired: &UploadPlan, mut current: CurrentState) -> SyncPlan {
    let mut plan = SyncPlan { current_total: current.values().map(|m| m.len() as u64).sum(), ..SyncPlan::default() };
    for row in &desired.rows {
        // The source is checked with ids, never types (see `sync`), so every row names
        // an existing integration; a type would have been refused before this.
        let IntegrationRef::Existing(integration) = row.integration else { continue };
        let held = current.get_mut(&integration).and_then(|m| m.remove(row.key()));
        let upsert = |from| Upsert { integration, identity: row.identity.clone(), email: Arc::clone(&row.email), from };
        match held {
            None => {
                plan.creates += 1;
                plan.upserts.push(upsert(None));
            }
            Some(held) if *held.email == *row.email => plan.unchanged += 1,
            Some(held) if held.locked => plan.locked_moves.push(upsert(Some(held.email))),
            Some(held) => {
                plan.reassigns += 1;
                plan.upserts.push(upsert(Some(held.email)));
            }
        }
    }
    let mut left: Vec<(i64, HashMap<Box<str>, Current>)> = current.into_iter().collect();
    left.sort_by_key(|(integration, _)| *integration);
    for (integration, identities) in left {
        let mut identities: Vec<(Box<str>, Current)> = identities.into_iter().collect();
        identities.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, held) in identities {
            let absent = Absent { integration, identity: held.identity, email: held.email };
            if held.locked {
                plan.locked_absent.push(absent);
            } else {
                plan.absent.push(absent);
            }
        }
    }
    plan
}

/// `--max-deletes`: a number of identities, or a share of those the server holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDeletes {
    Count(u64),
    Percent(f64),
}

impl MaxDeletes {
    /// The most deletions allowed when the server holds `current` identities.
    pub fn limit(self, current: u64) -> u64 {
        match self {
            MaxDeletes::Count(n) => n,
            MaxDeletes::Percent(p) => (current as f64 * p / 100.0).floor() as u64,
        }
    }

    pub fn describe(self) -> String {
        match self {
            MaxDeletes::Count(n) => n.to_string(),
            MaxDeletes::Percent(p) => format!("{p}%"),
        }
    }
}

impl std::str::FromStr for MaxDeletes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let wrong = || format!("`{text}` is not a number of identities (such as 500) or a share (such as 5%)");
        match text.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| wrong())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(format!("`{text}`: a share is from 0% to 100%"));
                }
                Ok(MaxDeletes::Percent(p))
            }
            None => text.parse().map(MaxDeletes::Count).map_err(|_| wrong()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devid_core::plan::{IntegrationInfo, ParsedUpload, plan_upload};
    use devid_core::types::ApplicationType;

    fn desired(csv: &str) -> UploadPlan {
        let parsed: ParsedUpload =
            devid_core::csv_upload::parse_csv_upload(csv.as_bytes(), devid_core::plan::Addressing::IntegrationId, 100)
                .expect("csv");
        let integrations = [
            IntegrationInfo { id: 1, application_type: ApplicationType::Github },
            IntegrationInfo { id: 2, application_type: ApplicationType::Jira },
        ];
        plan_upload(parsed, &integrations).expect("valid")
    }

    fn held(rows: &[(i64, &str, &str, bool)]) -> CurrentState {
        let mut state = CurrentState::new();
        for (integration, identity, email, locked) in rows {
            let key = if *integration == 1 { identity.to_lowercase() } else { identity.to_string() };
            state
                .entry(*integration)
                .or_default()
                .insert(key.into(), Current { identity: (*identity).into(), email: (*email).into(), locked: *locked });
        }
        state
    }

    #[test]
    fn creates_reassigns_and_unchanged_are_told_apart_as_the_server_compares() {
        let plan = diff(
            &desired("email,integrationId,identity\nann@x.com,1,Ann\nbob@x.com,1,bob\ncid@x.com,2,C-1\n"),
            held(&[(1, "ann", "ann@x.com", false), (1, "bob", "old@x.com", false), (2, "c-1", "cid@x.com", false)]),
        );
        assert_eq!((plan.creates, plan.reassigns, plan.unchanged), (1, 1, 1), "{plan:?}");
        assert_eq!(plan.upserts[0].identity.as_ref(), "bob");
        assert_eq!(plan.upserts[0].from.as_deref(), Some("old@x.com"));
        assert_eq!(plan.upserts[1].identity.as_ref(), "C-1", "Jira ids compare exactly: C-1 is not c-1");
        assert_eq!(plan.absent.len(), 1, "Jira's c-1 is absent from the source");
        assert_eq!(plan.current_total, 3);
    }

    #[test]
    fn locked_identities_are_reported_never_moved_or_pruned() {
        let plan = diff(
            &desired("email,integrationId,identity\nann@x.com,1,ann\n"),
            held(&[(1, "ann", "other@x.com", true), (1, "gone", "gone@x.com", true), (1, "left", "left@x.com", false)]),
        );
        assert!(plan.upserts.is_empty());
        assert_eq!(plan.locked_moves.len(), 1);
        assert_eq!(plan.locked_absent.len(), 1);
        assert_eq!(plan.absent.iter().map(|a| a.identity.as_ref()).collect::<Vec<_>>(), ["left"]);
    }

    #[test]
    fn the_deletion_guard_takes_a_count_or_a_share() {
        assert_eq!("500".parse(), Ok(MaxDeletes::Count(500)));
        assert_eq!("5%".parse::<MaxDeletes>().map(|m| m.limit(10_000)), Ok(500));
        assert_eq!("0.5 %".parse::<MaxDeletes>().map(|m| m.limit(1_000)), Ok(5));
        assert!("150%".parse::<MaxDeletes>().is_err());
        assert!("lots".parse::<MaxDeletes>().is_err());
    }
}
