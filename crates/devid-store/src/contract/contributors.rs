//! Contract checks of the contributor family: what every backend must show for
//! ingest, listings, bot decisions and coverage.

use devid_core::contributor::plan::{ContributorPlan, ContributorPlanner};
use devid_core::contributor::upload::RawContributor;
use devid_core::contributor::{ActivityKind, IngestMode};
use devid_core::errors::{Position, Problems};
use devid_core::plan::RawValue;
use devid_core::types::ApplicationType;

use super::{account, integration, ok, upload};
use crate::contributors::{
    BotFlag, BotStatus, ContributorPaging, ContributorQuery, ContributorRecord, ContributorSort, ContributorStatus,
    CoverageQuery,
};
use crate::{AuditQuery, ChangeContext, Store};

/// One observation: integration, identity, name, email, kind, count.
pub(super) type Seen<'a> = (i64, &'a str, &'a str, &'a str, &'a str, u64);

/// A validated plan of `seen`, as the server would build it.
pub async fn plan(store: &dyn Store, ctx: &ChangeContext, seen: &[Seen<'_>]) -> ContributorPlan {
    plan_with_offsets(store, ctx, seen, &[]).await
}

/// [`plan`], row `i` also giving the UTC offset `offsets[i]` (none when blank or absent).
pub async fn plan_with_offsets(
    store: &dyn Store,
    ctx: &ChangeContext,
    seen: &[Seen<'_>],
    offsets: &[&str],
) -> ContributorPlan {
    let infos = ok(store.integration_infos(ctx.account).await, "integration infos");
    let mut planner = ContributorPlanner::new(&infos);
    for (i, (integration, identity, name, email, kind, count)) in seen.iter().enumerate() {
        let text = |s: &str| if s.is_empty() { RawValue::Absent } else { RawValue::Text(s.to_string()) };
        let raw: RawContributor = [
            RawValue::Number(integration.to_string()),
            RawValue::Text(identity.to_string()),
            text(name),
            text(email),
            text(kind),
            RawValue::Number(count.to_string()),
            RawValue::Text(format!("2026-0{}-01", 1 + i % 9)),
            RawValue::Absent,
            text(offsets.get(i).copied().unwrap_or_default()),
        ];
        planner.push(Position::Index(i as u64), raw);
    }
    match planner.finish(Problems::new()) {
        Ok(plan) => plan,
        Err(p) => panic!("test plan refused: {:?}", p.into_groups()),
    }
}

pub(super) async fn ingest(
    store: &dyn Store,
    ctx: &ChangeContext,
    source: &str,
    mode: IngestMode,
    seen: &[Seen<'_>],
) -> crate::contributors::IngestSummary {
    let plan = plan(store, ctx, seen).await;
    ok(store.ingest_contributors(ctx, source, mode, plan, false).await, "ingest")
}

async fn all(store: &dyn Store, ctx: &ChangeContext, status: Option<ContributorStatus>) -> Vec<ContributorRecord> {
    let q = ContributorQuery {
        status,
        paging: ContributorPaging::Offset { page_index: 0, page_size: 1000 },
        ..Default::default()
    };
    ok(store.list_contributors(ctx.account, q).await, "list contributors").records
}

fn find<'a>(records: &'a [ContributorRecord], identity: &str) -> &'a ContributorRecord {
    records
        .iter()
        .find(|r| r.identity.eq_ignore_ascii_case(identity))
        .unwrap_or_else(|| panic!("{identity} is not listed"))
}

pub async fn contributor_sources_replace_and_add(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    let scan: &[Seen] = &[
        (1, "jane@example.com", "Jane Doe", "jane@example.com", "commit", 5),
        (1, "JANE@example.com", "J. Doe", "JANE@example.com", "commit", 2),
        (1, "bob@example.com", "Bob", "bob@example.com", "commit", 3),
    ];
    let first = ingest(store, &ctx, "git:repo", IngestMode::Replace, scan).await;
    assert_eq!((first.received, first.contributors, first.created), (3, 2, 2));
    let again = ingest(store, &ctx, "git:repo", IngestMode::Replace, scan).await;
    assert_eq!(
        (again.created, again.updated, again.unchanged, again.removed),
        (0, 0, 2, 0),
        "a re-sent scan is a no-op"
    );
    let jane = find(&all(store, &ctx, None).await, "jane@example.com").clone();
    assert_eq!(jane.counts.get(ActivityKind::Commit), 7);
    assert_eq!(jane.names, vec![("Jane Doe".to_string(), 5), ("J. Doe".to_string(), 2)]);
    assert_eq!(jane.sources, vec!["git:repo".to_string()]);

    // Another source adds to the totals, and in add mode adds to itself.
    ingest(store, &ctx, "github", IngestMode::Add, &[(1, "jane@example.com", "", "", "review", 4)]).await;
    ingest(store, &ctx, "github", IngestMode::Add, &[(1, "jane@example.com", "", "", "review", 4)]).await;
    let jane = find(&all(store, &ctx, None).await, "jane@example.com").clone();
    assert_eq!(jane.counts.get(ActivityKind::Review), 8);
    assert_eq!(jane.counts.total(), 15);
    assert_eq!(jane.sources, vec!["git:repo".to_string(), "github".to_string()]);

    // The scan no longer mentions anyone: bob is gone, jane keeps github's share.
    let replaced =
        ingest(store, &ctx, "git:repo", IngestMode::Replace, &[(1, "carol@example.com", "Carol", "", "commit", 1)])
            .await;
    assert_eq!((replaced.created, replaced.removed, replaced.detached), (1, 1, 1));
    let listed = all(store, &ctx, None).await;
    assert!(listed.iter().all(|r| r.identity != "bob@example.com"), "bob was only reported by the scan");
    let jane = find(&listed, "jane@example.com");
    assert_eq!(jane.counts.total(), 8);
    assert_eq!(jane.sources, vec!["github".to_string()]);
    assert!(ok(store.contributors_version(ctx.account).await, "version") > 0);
}

pub async fn contributor_dry_runs_change_nothing(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    let version = ok(store.contributors_version(ctx.account).await, "version");
    let p = plan(store, &ctx, &[(1, "a@example.com", "A", "", "commit", 1)]).await;
    let summary = ok(store.ingest_contributors(&ctx, "s", IngestMode::Replace, p, true).await, "dry run");
    assert_eq!(summary.created, 1);
    assert!(all(store, &ctx, None).await.is_empty());
    assert_eq!(ok(store.contributors_version(ctx.account).await, "version"), version);
}

pub async fn contributors_are_mapped_by_their_integrations_case_rules(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    integration(store, &ctx, 2, ApplicationType::Jira).await;
    ingest(
        store,
        &ctx,
        "s",
        IngestMode::Replace,
        &[
            (1, "Jane@Example.com", "Jane", "", "commit", 3),
            (2, "AbC-1", "Jane", "", "issue", 2),
            (2, "xyz-9", "Zed", "", "issue", 1),
        ],
    )
    .await;
    ok(
        upload(store, &ctx, &[("jane@corp.com", 1, "jane@example.com"), ("jane@corp.com", 2, "abc-1")], false).await,
        "upload",
    );
    let listed = all(store, &ctx, None).await;
    assert_eq!(find(&listed, "jane@example.com").mapped_email.as_deref(), Some("jane@corp.com"));
    let jira: Vec<_> = listed.iter().filter(|r| r.integration_id == 2).collect();
    assert!(jira.iter().all(|r| r.mapped_email.is_none()), "Jira ids compare exactly: abc-1 is not AbC-1");
    let mapped = all(store, &ctx, Some(ContributorStatus::Mapped)).await;
    let unmapped = all(store, &ctx, Some(ContributorStatus::Unmapped)).await;
    assert_eq!(mapped.len(), 1);
    assert_eq!(unmapped.len(), 2);
    assert_eq!(unmapped[0].identity, "AbC-1", "most active first");
}

pub async fn manual_bot_decisions_outlive_every_ingest(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    let scan: &[Seen] = &[
        (1, "49699333+dependabot[bot]@users.noreply.github.com", "dependabot[bot]", "", "commit", 9),
        (1, "ci@example.com", "Release Robot", "", "commit", 4),
        (1, "jane@example.com", "Jane", "", "commit", 2),
    ];
    let summary = ingest(store, &ctx, "s", IngestMode::Replace, scan).await;
    assert_eq!(summary.bots, 1);
    let bots = all(store, &ctx, Some(ContributorStatus::Bot)).await;
    assert_eq!(bots.len(), 1);
    assert!(matches!(bots[0].bot, BotStatus::Rule(_)));

    let flag = |identity: &str, bot: Option<bool>| BotFlag {
        integration_id: 1,
        identity: identity.to_string(),
        identity_key: identity.to_lowercase(),
        bot,
    };
    let set = ok(
        store
            .set_bot_flags(
                &ctx,
                vec![
                    flag("49699333+dependabot[bot]@users.noreply.github.com", Some(false)),
                    flag("ci@example.com", Some(true)),
                    flag("later@example.com", Some(true)),
                ],
            )
            .await,
        "flags",
    );
    assert_eq!((set.flagged, set.unflagged, set.not_seen_yet), (2, 1, 1));
    // Re-ingest: the rules would say otherwise, the decisions hold.
    let mut more = scan.to_vec();
    more.push((1, "later@example.com", "Later", "", "commit", 1));
    ingest(store, &ctx, "s", IngestMode::Replace, &more).await;
    ingest(store, &ctx, "s", IngestMode::Replace, &more).await;
    let listed = all(store, &ctx, None).await;
    assert_eq!(find(&listed, "49699333+dependabot[bot]@users.noreply.github.com").bot, BotStatus::Unflagged);
    assert_eq!(find(&listed, "ci@example.com").bot, BotStatus::Flagged);
    assert_eq!(find(&listed, "later@example.com").bot, BotStatus::Flagged);
    let bots = all(store, &ctx, Some(ContributorStatus::Bot)).await;
    assert_eq!(bots.len(), 2);

    // Withdrawing a decision hands it back to the rules.
    let cleared = ok(
        store.set_bot_flags(&ctx, vec![flag("49699333+dependabot[bot]@users.noreply.github.com", None)]).await,
        "clear",
    );
    assert_eq!(cleared.cleared, 1);
    let listed = all(store, &ctx, None).await;
    assert!(find(&listed, "49699333+dependabot[bot]@users.noreply.github.com").bot.is_bot());
    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit");
    let actions: Vec<&str> =
        audit.events.iter().map(|e| e.action.as_str()).filter(|a| a.starts_with("contributor.")).collect();
    assert_eq!(
        actions,
        vec![
            "contributor.bot_flag_cleared",
            "contributor.bot_flagged",
            "contributor.bot_flagged",
            "contributor.bot_unflagged"
        ]
    );
}

pub async fn contributor_listings_page_by_cursor_and_filter(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    integration(store, &ctx, 2, ApplicationType::Github).await;
    let identities: Vec<String> = (0..23).map(|i| format!("dev{i:02}@example.com")).collect();
    let seen: Vec<Seen> = identities
        .iter()
        .enumerate()
        // Activities repeat, so ties are crossed by the cursor.
        .map(|(i, id)| (1 + (i % 2) as i64, id.as_str(), "Dev", "", "commit", (i % 5) as u64 + 1))
        .collect();
    ingest(store, &ctx, "s", IngestMode::Replace, &seen).await;
    for sort in [ContributorSort::Activity, ContributorSort::LastSeen, ContributorSort::Identity] {
        let mut walked = Vec::new();
        let mut paging = ContributorPaging::Offset { page_index: 0, page_size: 4 };
        loop {
            let q = ContributorQuery { sort, paging: paging.clone(), ..Default::default() };
            let page = ok(store.list_contributors(ctx.account, q).await, "page");
            assert_eq!(page.total_count, 23);
            walked.extend(page.records.iter().map(|r| (r.counts.total(), r.last_seen, r.identity.clone())));
            match page.next_cursor {
                Some(cursor) => paging = ContributorPaging::After { cursor, page_size: 4 },
                None => break,
            }
        }
        let mut names: Vec<&String> = walked.iter().map(|w| &w.2).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 23, "{sort:?}: every contributor exactly once");
        match sort {
            ContributorSort::Activity => assert!(walked.windows(2).all(|w| w[0].0 >= w[1].0)),
            ContributorSort::LastSeen => assert!(walked.windows(2).all(|w| w[0].1 >= w[1].1)),
            ContributorSort::Identity => assert!(walked.windows(2).all(|w| w[0].2 <= w[1].2)),
        }
    }
    let filtered = |q: ContributorQuery| async move { ok(store.list_contributors(ctx.account, q).await, "filter") };
    let by_integration = filtered(ContributorQuery { integration_ids: vec![2], ..Default::default() }).await;
    assert_eq!(by_integration.total_count, 11);
    let search = filtered(ContributorQuery { search: Some("DEV1".into()), ..Default::default() }).await;
    assert_eq!(search.total_count, 10);
    let recent = filtered(ContributorQuery {
        active_after: devid_core::contributor::plan::parse_seen_time("2026-08-15").ok(),
        ..Default::default()
    })
    .await;
    // Rows i with i % 9 == 8 were seen on 2026-09-01.
    assert_eq!(recent.total_count, 2);
}

pub async fn coverage_counts_attributed_activity_without_bots(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    integration(store, &ctx, 2, ApplicationType::Github).await;
    ingest(
        store,
        &ctx,
        "s",
        IngestMode::Replace,
        &[
            (1, "jane@example.com", "Jane", "", "commit", 6),
            (1, "bob@example.com", "Bob", "", "commit", 3),
            (1, "carol@example.com", "Carol", "", "commit", 1),
            (1, "renovate@example.com", "renovate", "", "commit", 50),
            (2, "jdoe", "Jane", "", "review", 4),
        ],
    )
    .await;
    ok(
        upload(
            store,
            &ctx,
            &[("jane@corp.com", 1, "jane@example.com"), ("jane@corp.com", 2, "jdoe"), ("bob@corp.com", 2, "bobby")],
            false,
        )
        .await,
        "upload",
    );
    let q = CoverageQuery { top_unmapped: 10, many_identities_over: 1, missing_in: Some(1), list_limit: 10 };
    let coverage = ok(store.coverage(ctx.account, q).await, "coverage");
    let git = coverage.integrations.iter().find(|c| c.integration_id == 1).expect("git listed");
    assert_eq!((git.contributors, git.mapped, git.unmapped, git.bots), (4, 1, 2, 1));
    assert_eq!(git.activity.get(ActivityKind::Commit), 10, "the bot's 50 commits are left out");
    assert_eq!(git.attributed.get(ActivityKind::Commit), 6);
    let github = coverage.integrations.iter().find(|c| c.integration_id == 2).expect("github listed");
    assert_eq!(github.attributed.get(ActivityKind::Review), 4);
    let top: Vec<&str> = coverage.top_unmapped.iter().map(|r| r.identity.as_str()).collect();
    assert_eq!(top, vec!["bob@example.com", "carol@example.com"]);
    assert_eq!(coverage.many_identities.len(), 1);
    assert_eq!(
        (coverage.many_identities[0].email.as_str(), coverage.many_identities[0].identities),
        ("jane@corp.com", 2)
    );
    assert_eq!(coverage.missing, vec!["bob@corp.com".to_string()]);
    assert_eq!(coverage.missing_total, 1);
}

pub async fn contributors_stay_in_their_account_and_integration(store: &dyn Store) {
    let acme = account(store, "acme").await;
    let other = account(store, "other").await;
    integration(store, &acme, 1, ApplicationType::Git).await;
    integration(store, &acme, 2, ApplicationType::Git).await;
    integration(store, &other, 1, ApplicationType::Git).await;
    ingest(
        store,
        &acme,
        "s",
        IngestMode::Replace,
        &[(1, "a@x.com", "A", "", "commit", 1), (2, "b@x.com", "B", "", "commit", 1)],
    )
    .await;
    ingest(store, &other, "s", IngestMode::Replace, &[(1, "z@x.com", "Z", "", "commit", 1)]).await;
    assert_eq!(all(store, &other, None).await.len(), 1);
    assert_eq!(all(store, &acme, None).await.len(), 2);
    let coverage = ok(
        store
            .coverage(
                other.account,
                CoverageQuery { top_unmapped: 10, many_identities_over: 10, missing_in: None, list_limit: 10 },
            )
            .await,
        "coverage",
    );
    assert_eq!(coverage.top_unmapped.len(), 1);
    // Deleting an integration takes its contributors with it, in that account only.
    ok(store.delete_integration(&acme, 2, true).await, "delete integration");
    let left = all(store, &acme, None).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].integration_id, 1);
    assert_eq!(all(store, &other, None).await.len(), 1);
}

pub async fn bot_decisions_apply_in_the_order_sent(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    ingest(store, &ctx, "s", IngestMode::Replace, &[(1, "Jane@example.com", "Jane", "", "commit", 2)]).await;
    let flag = |identity: &str, bot: Option<bool>| BotFlag {
        integration_id: 1,
        identity: identity.to_string(),
        identity_key: identity.to_lowercase(),
        bot,
    };
    let set = ok(
        store
            .set_bot_flags(
                &ctx,
                vec![
                    flag("Jane@example.com", Some(true)),
                    flag("Jane@example.com", Some(true)),
                    flag("jane@example.com", Some(false)),
                    flag("later@example.com", None),
                    flag("later@example.com", Some(true)),
                    flag("later@example.com", None),
                ],
            )
            .await,
        "flags",
    );
    // Each decision sees the ones before it: a repeat is unchanged, withdrawing nothing
    // is unchanged, and only the changes count as not seen yet.
    assert_eq!(
        (set.received, set.flagged, set.unflagged, set.cleared, set.unchanged, set.not_seen_yet),
        (6, 2, 1, 1, 2, 2)
    );
    assert_eq!(find(&all(store, &ctx, None).await, "jane@example.com").bot, BotStatus::Unflagged);
    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit");
    let changes: Vec<(&str, Option<&str>)> = audit
        .events
        .iter()
        .filter(|e| e.action.starts_with("contributor."))
        .map(|e| (e.action.as_str(), e.identity.as_deref()))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("contributor.bot_flag_cleared", Some("later@example.com")),
            ("contributor.bot_flagged", Some("later@example.com")),
            ("contributor.bot_unflagged", Some("jane@example.com")),
            ("contributor.bot_flagged", Some("Jane@example.com")),
        ]
    );
    // The decision about `later` was withdrawn: when it appears, the rules decide.
    ingest(store, &ctx, "s", IngestMode::Add, &[(1, "later@example.com", "Later", "", "commit", 1)]).await;
    assert_eq!(find(&all(store, &ctx, None).await, "later@example.com").bot, BotStatus::Person);
}

pub async fn deleting_an_integration_forgets_its_contributors_and_decisions(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 2, ApplicationType::Git).await;
    let scan: &[Seen] = &[(2, "ci@example.com", "CI", "", "commit", 3)];
    ingest(store, &ctx, "s", IngestMode::Replace, scan).await;
    let flag = BotFlag {
        integration_id: 2,
        identity: "ci@example.com".into(),
        identity_key: "ci@example.com".into(),
        bot: Some(true),
    };
    ok(store.set_bot_flags(&ctx, vec![flag]).await, "flag");
    let version = ok(store.contributors_version(ctx.account).await, "version");
    ok(store.delete_integration(&ctx, 2, false).await, "delete integration");
    assert!(ok(store.contributors_version(ctx.account).await, "version") > version);
    assert!(all(store, &ctx, None).await.is_empty());
    // An integration made again with the same id starts with no contributor and no decision.
    integration(store, &ctx, 2, ApplicationType::Git).await;
    let again = ingest(store, &ctx, "s", IngestMode::Replace, scan).await;
    assert_eq!((again.created, again.bots), (1, 0));
    assert_eq!(find(&all(store, &ctx, None).await, "ci@example.com").bot, BotStatus::Person);
}

pub async fn every_ingest_is_audited_once_and_dry_runs_never(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Git).await;
    let scan: &[Seen] = &[(1, "a@example.com", "A", "", "commit", 1), (1, "b@example.com", "B", "", "commit", 2)];
    ingest(store, &ctx, "git:repo", IngestMode::Replace, scan).await;
    let version = ok(store.contributors_version(ctx.account).await, "version");
    ingest(store, &ctx, "git:repo", IngestMode::Replace, scan).await;
    assert_eq!(ok(store.contributors_version(ctx.account).await, "version"), version, "a no-op moves nothing");
    let p = plan(store, &ctx, &scan[..1]).await;
    let dry = ok(store.ingest_contributors(&ctx, "git:repo", IngestMode::Replace, p, true).await, "dry run");
    assert_eq!((dry.unchanged, dry.removed), (1, 1));
    assert_eq!(all(store, &ctx, None).await.len(), 2, "the dry run removed nobody");
    let audit = ok(store.list_audit(ctx.account, AuditQuery { page_size: 100, ..Default::default() }).await, "audit");
    let ingests: Vec<serde_json::Value> = audit
        .events
        .iter()
        .filter(|e| e.action == "contributors.ingested")
        .map(|e| serde_json::from_str(e.detail.as_deref().unwrap_or("{}")).expect("the detail is JSON"))
        .collect();
    assert_eq!(ingests.len(), 2, "one event per ingest, none for the dry run");
    assert_eq!(
        ingests[0],
        serde_json::json!({
            "source": "git:repo", "mode": "replace", "received": 2, "created": 0, "updated": 0,
            "unchanged": 2, "removed": 0, "detached": 0,
        })
    );
}

pub async fn contributor_search_reads_names_and_emails_literally(store: &dyn Store) {
    let ctx = account(store, "acme").await;
    integration(store, &ctx, 1, ApplicationType::Github).await;
    ingest(
        store,
        &ctx,
        "s",
        IngestMode::Replace,
        &[
            (1, "jdoe", "Jane Doe", "jane@example.com", "review", 3),
            (1, "bob", "Bob 100%", "bob_b@example.com", "review", 1),
            (1, "carol", "Carol", "carol@example.com", "review", 1),
        ],
    )
    .await;
    let search = |text: &str| {
        let q = ContributorQuery { search: Some(text.to_string()), ..Default::default() };
        async move {
            let page = ok(store.list_contributors(ctx.account, q).await, "search");
            page.records.into_iter().map(|r| r.identity).collect::<Vec<_>>()
        }
    };
    assert_eq!(search("JANE DOE").await, vec!["jdoe"], "names match whatever their case");
    assert_eq!(search("JANE@EXAMPLE").await, vec!["jdoe"], "emails too");
    assert_eq!(search("%").await, vec!["bob"], "% is a character, not a wildcard");
    assert_eq!(search("b_b").await, vec!["bob"], "and so is _");
    assert!(search("b_c").await.is_empty());
}
