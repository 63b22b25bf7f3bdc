//! What a sync changes: the desired identities (the source, checked and folded by
//! `devid-core`'s planner) against the server's, compared as the server compares them
//! (by integration and identity key). Pure: no I/O, so every rule is tested here.

use std::collections::HashMap;
use std::sync::Arc;

use devid_core::plan::{IntegrationRef, UploadPlan};

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

/// Compares the server's identities, handed over one at a time as they are downloaded,
/// with the desired ones: only the source's plan and an index into it are held, never
/// the server's million rows.
pub struct Differ<'a> {
    desired: &'a UploadPlan,
    /// (integration, identity key) → position in `desired.rows`.
    index: HashMap<(i64, &'a str), u32>,
    /// Per desired row: not seen on the server, seen unchanged or locked, or seen mapped
    /// to another developer (the position in `moved_from` + 2).
    seen: Vec<u32>,
    moved_from: Vec<Box<str>>,
    plan: SyncPlan,
}

const NOT_SEEN: u32 = 0;
const SETTLED: u32 = 1;

impl<'a> Differ<'a> {
    pub fn new(desired: &'a UploadPlan) -> Self {
        let mut index = HashMap::with_capacity(desired.rows.len());
        for (i, row) in desired.rows.iter().enumerate() {
            // The source is checked with ids, never types (see `sync`), so every row
            // names an existing integration.
            if let IntegrationRef::Existing(integration) = row.integration {
                index.insert((integration, row.key()), i as u32);
            }
        }
        Differ {
            desired,
            index,
            seen: vec![NOT_SEEN; desired.rows.len()],
            moved_from: Vec::new(),
            plan: SyncPlan::default(),
        }
    }

    /// One identity the server holds: `key` is its identity as the server compares it.
    pub fn held(&mut self, integration: i64, key: &str, identity: &str, email: &str, locked: bool) {
        self.plan.current_total += 1;
        let Some(&i) = self.index.get(&(integration, key)) else {
            let absent = Absent { integration, identity: identity.into(), email: email.into() };
            if locked {
                self.plan.locked_absent.push(absent);
            } else {
                self.plan.absent.push(absent);
            }
            return;
        };
        let row = &self.desired.rows[i as usize];
        if *row.email == *email {
            self.plan.unchanged += 1;
            self.seen[i as usize] = SETTLED;
        } else if locked {
            self.seen[i as usize] = SETTLED;
            self.plan.locked_moves.push(Upsert {
                integration,
                identity: row.identity.clone(),
                email: Arc::clone(&row.email),
                from: Some(email.into()),
            });
        } else {
            self.seen[i as usize] = self.moved_from.len() as u32 + 2;
            self.moved_from.push(email.into());
        }
    }

    pub fn finish(self) -> SyncPlan {
        let Differ { desired, seen, mut moved_from, mut plan, .. } = self;
        for (row, seen) in desired.rows.iter().zip(seen) {
            let IntegrationRef::Existing(integration) = row.integration else { continue };
            let from = match seen {
                SETTLED => continue,
                NOT_SEEN => {
                    plan.creates += 1;
                    None
                }
                moved => {
                    plan.reassigns += 1;
                    Some(std::mem::take(&mut moved_from[(moved - 2) as usize]))
                }
            };
            plan.upserts.push(Upsert {
                integration,
                identity: row.identity.clone(),
                email: Arc::clone(&row.email),
                from,
            });
        }
        plan
    }
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

    fn diff(desired: &UploadPlan, held: &[(i64, &str, &str, bool)]) -> SyncPlan {
        let mut differ = Differ::new(desired);
        for (integration, identity, email, locked) in held {
            let key = if *integration == 1 { identity.to_lowercase() } else { identity.to_string() };
            differ.held(*integration, &key, identity, email, *locked);
        }
        differ.finish()
    }

    #[test]
    fn creates_reassigns_and_unchanged_are_told_apart_as_the_server_compares() {
        let plan = diff(
            &desired("email,integrationId,identity\nann@x.com,1,Ann\nbob@x.com,1,bob\ncid@x.com,2,C-1\n"),
            &[(1, "ann", "ann@x.com", false), (1, "bob", "old@x.com", false), (2, "c-1", "cid@x.com", false)],
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
            &[(1, "ann", "other@x.com", true), (1, "gone", "gone@x.com", true), (1, "left", "left@x.com", false)],
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
