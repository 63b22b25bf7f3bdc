//! Contract checks of the matching family: the engine's input as one snapshot, and
//! decisions that are recorded once, with their cannot-links, per account.

use devid_core::contributor::IngestMode;
use devid_core::resolve::suggest::Party;
use devid_core::types::ApplicationType;

use super::contributors::{Seen, ingest};
use super::{account, dump, integration, ok, rows, upload};
use crate::changes::ChangeQuery;
use crate::matching::{DecisionKind, NewDecision};
use crate::{AuditQuery, Store, StoreError};
use devid_core::plan::{Provenance, plan_upload};

fn contributor(integration: i64, identity: &str) -> Party {
    Party::Contributor { integration_id: integration.to_string(), identity: identity.to_string() }
}

fn decision(id: &str, kind: DecisionKind, cannot_link: Vec<(Party, Party)>) -> NewDecision {
    NewDecision { suggestion_id: id.into(), kind, cannot_link, evidence: vec!["same-email: jane@corp.com".into()] }
}

pub async fn match_input_reads_contributors_developers_and_mappings(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    ingest(
        store,
        &ctx,
        "default",
        IngestMode::Replace,
        &[
            (1, "JDoe", "Jane Doe", "jane@corp.com", "commit", 5),
            (1, "bob", "Bob", "", "pr", 2),
            (2, "acc-1", "Jane Doe", "jane@corp.com", "issue", 3),
        ],
    )
    .await;
    ok(upload(store, &ctx, &[("jane@corp.com", 1, "jdoe")], false).await, "upload");
    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(input.developers.len(), 1);
    let jane = &input.developers[0];
    assert_eq!(jane.email, "jane@corp.com");
    assert_eq!(input.contributors.len(), 3);
    let github = input.contributors.iter().find(|c| c.identity == "JDoe").expect("JDoe is read");
    assert_eq!(github.identity_key, "jdoe", "GitHub logins compare without case");
    assert_eq!(github.developer_id, Some(jane.id), "the uploaded mapping is read with the contributor");
    assert_eq!(github.application_type, ApplicationType::Github);
    assert_eq!(github.name.as_deref(), Some("Jane Doe"));
    assert_eq!(github.activity, 5);
    let jira = input.contributors.iter().find(|c| c.identity == "acc-1").expect("acc-1 is read");
    assert_eq!(jira.developer_id, None);
    assert_eq!(jira.email.as_deref(), Some("jane@corp.com"));
    assert!(input.cannot_link.is_empty() && input.decided.is_empty());
}

/// The UTC offsets and names each source saw are kept per source: gathered over every
/// source and every row, replaced with the source's report, added to in `add` mode; and
/// each contributor's first and last seen, over every source, come with them.
pub async fn match_input_gathers_each_contributors_zones_and_names_over_its_sources(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 3, ApplicationType::Git).await;
    let jane: Seen = (3, "jane@corp.com", "Jane Doe", "", "commit", 2);
    let bob: Seen = (3, "bob@corp.com", "Bob Stone", "", "commit", 1);
    let jane_as_handle: Seen = (3, "jane@corp.com", "jdoe", "", "commit", 1);
    let zones = |input: &crate::matching::MatchInput, identity: &str| -> Vec<i16> {
        let c = input.contributors.iter().find(|c| c.identity == identity).expect("the contributor is read");
        c.utc_offsets.minutes().collect()
    };
    send_zoned(store, &ctx, "git:a", IngestMode::Replace, &[jane, jane, bob], &["+01:00", "+0200", ""]).await;
    send_zoned(store, &ctx, "git:b", IngestMode::Replace, &[jane_as_handle], &["-05:00"]).await;
    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(zones(&input, "jane@corp.com"), [-300, 60, 120], "every row of every source");
    let names = |input: &crate::matching::MatchInput, identity: &str| -> Vec<String> {
        input.contributors.iter().find(|c| c.identity == identity).map(|c| c.names.clone()).unwrap_or_default()
    };
    assert_eq!(names(&input, "jane@corp.com"), ["Jane Doe", "jdoe"], "every name of every source, most seen first");
    assert!(zones(&input, "bob@corp.com").is_empty(), "no offset sent, none known");
    // When each was active, over every source (the rows are dated 2026-01-01, -02-01, ...
    // in order; one date stands for first and last seen).
    let period = |input: &crate::matching::MatchInput, identity: &str| {
        let c = input.contributors.iter().find(|c| c.identity == identity).expect("the contributor is read");
        (c.first_seen, c.last_seen)
    };
    let day = devid_core::time::parse_date;
    assert_eq!(period(&input, "jane@corp.com"), (day("2026-01-01"), day("2026-02-01")), "first and last seen");
    assert_eq!(period(&input, "bob@corp.com"), (day("2026-03-01"), day("2026-03-01")));

    // Sending a source again replaces what it said; `add` adds to it.
    send_zoned(store, &ctx, "git:a", IngestMode::Replace, &[jane, bob], &["+01:00", "+09:00"]).await;
    send_zoned(store, &ctx, "git:b", IngestMode::Add, &[jane], &["+05:30"]).await;
    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(zones(&input, "jane@corp.com"), [-300, 60, 330]);
    assert_eq!(zones(&input, "bob@corp.com"), [540]);
    send_zoned(store, &ctx, "git:b", IngestMode::Replace, &[bob], &[""]).await;
    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(zones(&input, "jane@corp.com"), [60], "a source that no longer reports Jane takes its zones along");
    assert_eq!(names(&input, "jane@corp.com"), ["Jane Doe"], "and its names");
    assert_eq!(zones(&input, "bob@corp.com"), [540]);
}

async fn send_zoned(
    store: &dyn Store,
    ctx: &crate::ChangeContext,
    source: &str,
    mode: IngestMode,
    rows: &[Seen<'_>],
    offsets: &[&str],
) {
    let plan = super::contributors::plan_with_offsets(store, ctx, rows, offsets).await;
    ok(store.ingest_contributors(ctx, source, mode, plan, false).await, "ingest");
}

pub async fn decisions_are_recorded_once_with_their_cannot_links(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    let before = ok(store.decisions_version(ctx.account).await, "version");
    let jane = Party::Developer { email: "jane@corp.com".into() };
    let pairing = (contributor(2, "acc-1"), jane.clone());
    let recorded = store
        .record_decisions(
            &ctx,
            vec![
                decision("s1", DecisionKind::Reject, vec![pairing.clone()]),
                decision("s2", DecisionKind::Skip, vec![]),
            ],
        )
        .await;
    assert_eq!(ok(recorded, "record"), 2);
    let after = ok(store.decisions_version(ctx.account).await, "version");
    assert!(after > before, "recording decisions changes the decisions version");

    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(input.cannot_link.len(), 1);
    let (a, b) = &input.cannot_link[0];
    assert!((a, b) == (&pairing.0, &pairing.1) || (b, a) == (&pairing.0, &pairing.1), "the pairing reads back");
    let mut decided = input.decided.clone();
    decided.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(decided, vec![("s1".to_string(), DecisionKind::Reject), ("s2".to_string(), DecisionKind::Skip)]);

    // A batch naming one decided id records nothing at all.
    let again = store
        .record_decisions(
            &ctx,
            vec![decision("s3", DecisionKind::Accept, vec![]), decision("s1", DecisionKind::Reject, vec![])],
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a decided id is a conflict: {again:?}");
    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(input.decided.len(), 2, "the refused batch left nothing behind");
    assert_eq!(ok(store.decisions_version(ctx.account).await, "version"), after);

    // The same pairing rejected twice (in either order) is one cannot-link.
    let reversed = (pairing.1.clone(), pairing.0.clone());
    ok(store.record_decisions(&ctx, vec![decision("s4", DecisionKind::Reject, vec![reversed])]).await, "record");
    assert_eq!(ok(store.match_input(ctx.account).await, "match input").cannot_link.len(), 1);

    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit");
    let actions: Vec<&str> = audit.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "suggestion.rejected").count(), 2, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "suggestion.skipped").count(), 1, "{actions:?}");
    assert!(!actions.contains(&"suggestion.accepted"), "the refused accept was not audited: {actions:?}");
}

pub async fn accepting_suggestions_is_one_transaction_and_one_change_set(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    let infos = ok(store.integration_infos(ctx.account).await, "integrations");
    let plan = |data: &[(&str, i64, &str)]| {
        let mut plan = ok(plan_upload(rows(data), &infos).map_err(|p| p.into_groups()), "plan");
        plan.provenance = Provenance::Suggestion;
        plan.lock = true;
        plan
    };
    let accepted = store
        .accept_suggestions(
            &ctx,
            plan(&[("jane@corp.com", 1, "jdoe"), ("jane@corp.com", 2, "acc-1")]),
            vec![decision("s1", DecisionKind::Accept, vec![])],
        )
        .await;
    assert_eq!(ok(accepted, "accept").created, 2);
    let held = dump(store, &ctx).await;
    assert!(held.iter().all(|r| r.locked && r.source == "suggestion"), "{held:?}");
    let changes = ok(store.list_changes(ctx.account, ChangeQuery { limit: 100, ..Default::default() }).await, "feed");
    let last = changes.changes.last().expect("a change set");
    assert_eq!(last.kind, "suggestion");
    assert_eq!(last.counts.get("identity.created"), Some(&2), "{last:?}");
    assert_eq!(last.counts.get("suggestion.accepted"), Some(&1), "the decision is in the same change set: {last:?}");
    let suggestion_sets = changes.changes.iter().filter(|c| c.kind == "suggestion").count();
    assert_eq!(suggestion_sets, 1, "one change set for the identities and the decision");

    // A batch with an id decided already applies none of its identities either.
    let again = store
        .accept_suggestions(
            &ctx,
            plan(&[("bob@corp.com", 1, "bob")]),
            vec![decision("s2", DecisionKind::Accept, vec![]), decision("s1", DecisionKind::Accept, vec![])],
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(dump(store, &ctx).await.len(), 2, "bob was not mapped");
    let input = ok(store.match_input(ctx.account).await, "match input");
    assert_eq!(input.decided, vec![("s1".to_string(), DecisionKind::Accept)], "s2 was not recorded");
}

pub async fn matching_state_stays_in_its_account(store: &dyn Store) {
    let acme = account(store, "acme").await;
    let other = account(store, "other").await;
    let pairing = (contributor(1, "jdoe"), contributor(1, "jd"));
    ok(store.record_decisions(&acme, vec![decision("s1", DecisionKind::Reject, vec![pairing])]).await, "record");
    let input = ok(store.match_input(other.account).await, "match input");
    assert!(input.cannot_link.is_empty() && input.decided.is_empty(), "another account's decisions stay its own");
    ok(
        store.record_decisions(&other, vec![decision("s1", DecisionKind::Skip, vec![])]).await,
        "the same id decided in another account",
    );
    assert_eq!(ok(store.decisions_version(other.account).await, "version"), 1);
}
