//! Reverting a change set: its exact inverse, worked out once from its audit events for
//! both backends, which then apply it in one transaction as a new change set of kind
//! `revert` (itself revertible: it records the same events any write does).
//!
//! Created identities are deleted; moved ones go back to their old email with the
//! provenance, lock and spelling they had; deleted ones come back with their original
//! `createdAt`; lock changes are undone. Events from before devid recorded an identity's
//! state (2026-12) lack what they replaced: such rows come back with provenance
//! `revert`, unlocked, created now.

use std::collections::HashMap;

use devid_core::normalize::identity_key;
use devid_core::plan::IntegrationInfo;
use devid_core::time::Micros;
use serde::Serialize;

use crate::AuditEvent;
use crate::changes::ChangeSet;

/// How to revert.
#[derive(Debug, Clone, Copy, Default)]
pub struct RevertOptions {
    /// Revert the rows no later change touched, and report the others as skipped.
    pub force: bool,
    /// Work everything out, change nothing.
    pub dry_run: bool,
}

/// What a revert did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevertSummary {
    /// Identities the change created, deleted again.
    pub deleted: u64,
    /// Identities the change deleted, restored.
    pub restored: u64,
    /// Identities the change moved, moved back.
    pub moved_back: u64,
    /// Identities the change spelled anew, spelled as before.
    pub respelled: u64,
    /// Identities whose lock the change set, set back.
    pub relocked: u64,
    /// Identities left alone: a later change touched them (with `force`), or they are no
    /// longer as the change left them.
    pub skipped: u64,
}

/// An identity the revert cannot put back without undoing later changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevertConflict {
    pub integration_id: i64,
    pub identity: String,
    /// The later change sets that touched it, oldest first.
    pub later_changes: Vec<i64>,
}

#[derive(Debug, Clone)]
pub enum RevertOutcome {
    NotFound,
    /// A change of this kind has no inverse here (a key, an integration, a decision…).
    NotRevertible(String),
    /// Later changes touched these identities and `force` was not given: nothing applied.
    Conflicts {
        total: u64,
        rows: Vec<RevertConflict>,
    },
    Reverted {
        /// The new change set; `None` in a dry run, or when nothing was left to revert.
        change: Option<ChangeSet>,
        summary: RevertSummary,
        /// With `force`: what was skipped and why (the first ones).
        skipped: Vec<RevertConflict>,
    },
}

impl RevertOutcome {
    /// The summary of an applied revert, or what else happened, as an error.
    pub fn into_reverted(self) -> Result<RevertSummary, String> {
        match self {
            RevertOutcome::Reverted { summary, .. } => Ok(summary),
            other => Err(format!("not reverted: {other:?}")),
        }
    }
}

/// An identity's state before the change, as its event recorded it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Before {
    pub created_at: Option<Micros>,
    pub source: Option<String>,
    pub source_key_id: Option<String>,
    pub locked: Option<bool>,
    pub identity: Option<String>,
}

impl Before {
    fn read(detail: Option<&str>) -> Before {
        let Some(value) = detail.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) else {
            return Before::default();
        };
        let before = &value["before"];
        Before {
            created_at: before["createdAt"].as_i64(),
            source: before["source"].as_str().map(str::to_string),
            source_key_id: before["sourceKeyId"].as_str().map(str::to_string),
            locked: before["locked"].as_i64().map(|l| l != 0).or_else(|| before["locked"].as_bool()),
            identity: before["identity"].as_str().map(str::to_string),
        }
    }

    /// The provenance to put back: what the row had, or `revert` when unrecorded.
    pub fn source(&self) -> &str {
        self.source.as_deref().unwrap_or("revert")
    }
}

/// One identity's inverse.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// The change created it: delete it.
    Delete,
    /// The change moved it from `email`: move it back.
    MoveBack { email: String, before: Before },
    /// The change spelled it anew: spell it as `spelling` again.
    Respell { spelling: String },
    /// The change deleted it from `email`: restore it.
    Restore { email: String, before: Before },
    /// The change locked (`false` here) or unlocked (`true`) it: set it back.
    SetLock { locked: bool },
}

/// An identity of the change set and its inverse.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub integration_id: i64,
    /// As the change left it spelled (for a delete: as it was).
    pub identity: String,
    /// How the store indexes it.
    pub key: String,
    pub step: Step,
}

/// How the store keys `identity` of `integration_id`: lower-cased where the source
/// ignores case. An integration deleted since keeps the identity as written.
pub(crate) fn key_of(types: &HashMap<i64, IntegrationInfo>, integration_id: i64, identity: &str) -> String {
    types
        .get(&integration_id)
        .and_then(|info| identity_key(info.application_type, identity))
        .unwrap_or_else(|| identity.to_string())
}

/// The inverse of a change set's events, one step per identity, or why there is none.
pub(crate) fn plan_revert(
    change: &ChangeSet,
    events: &[AuditEvent],
    integrations: &[IntegrationInfo],
) -> Result<Vec<Target>, String> {
    let types: HashMap<i64, IntegrationInfo> = integrations.iter().map(|i| (i.id, *i)).collect();
    let mut targets = Vec::with_capacity(events.len());
    for event in events {
        let action = event.action.as_str();
        if action == "integration.created" && change.kind != "integration" {
            // An upload that named an application type with no integration made one;
            // undoing the upload leaves it, empty, as deleting it could take later
            // identities with it.
            continue;
        }
        if action.starts_with("suggestion.") && change.kind == "suggestion" {
            // An accept's decision record travels with its identities; undoing the
            // identities leaves the record, as history of what was decided.
            continue;
        }
        if !action.starts_with("identity.") {
            return Err(format!(
                "Change set {} ({}) holds `{action}` events, which have no inverse here: only changes to identities (uploads, deletes, accepted suggestions, locks, reverts) can be reverted.",
                change.id, change.kind
            ));
        }
        let (Some(integration_id), Some(identity)) = (event.integration_id, event.identity.clone()) else {
            return Err(format!(
                "Event {} of change set {} names no identity, so it cannot be reverted.",
                event.id, change.id
            ));
        };
        let old_email = event.old_email.clone().unwrap_or_default();
        let step = match action {
            "identity.created" => Step::Delete,
            "identity.reassigned" => Step::MoveBack { email: old_email, before: Before::read(event.detail.as_deref()) },
            "identity.updated" => {
                // A respelling records the spelling it replaced as `{"before": "…"}`.
                let before = event
                    .detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|v| v["before"].as_str().map(str::to_string));
                match before {
                    Some(spelling) => Step::Respell { spelling },
                    None => continue,
                }
            }
            "identity.deleted" => Step::Restore { email: old_email, before: Before::read(event.detail.as_deref()) },
            "identity.locked" => Step::SetLock { locked: false },
            "identity.unlocked" => Step::SetLock { locked: true },
            other => {
                return Err(format!("Change set {} holds `{other}` events, which devid cannot revert.", change.id));
            }
        };
        let key = key_of(&types, integration_id, &identity);
        targets.push(Target { integration_id, identity, key, step });
    }
    // Undo in the reverse order of doing.
    targets.reverse();
    Ok(targets)
}
