//! The matching family on PostgreSQL: the engine's input in one snapshot, decisions and
//! cannot-links in one transaction under the account's lock.

use crate::postgres::changes::close_change_set;
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use devid_core::change::ChangeKind;
use devid_core::contributor::zones::UtcOffsets;

use super::{Audit, PgError, PgResult, PostgresStore, insert_audit, lock_account, parse_type};
use crate::matching::{
    DecisionKind, MatchContributor, MatchDeveloper, MatchInput, MatchStore, NewDecision, names_over_sources,
    pairing_texts, party_from_text,
};
use crate::{AccountId, ChangeContext, StoreError, StoreResult, UploadSummary, now_micros};
use devid_core::plan::UploadPlan;

#[async_trait]
impl MatchStore for PostgresStore {
    async fn match_input(&self, account: AccountId) -> StoreResult<MatchInput> {
        async {
            let mut client = self.client().await?;
            // One snapshot: a decision recorded between two reads must not be half seen.
            let tx = client
                .build_transaction()
                .read_only(true)
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .start()
                .await?;
            let input = match_input_in(&tx, account).await?;
            tx.commit().await?;
            Ok(input)
        }
        .await
        .map_err(PgError::into_store)
    }

    async fn record_decisions(&self, ctx: &ChangeContext, decisions: Vec<NewDecision>) -> StoreResult<u64> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let recorded = record_decisions_in(&tx, ctx, &decisions).await?;
            close_change_set(&tx, ctx, ChangeKind::Suggestion).await?;
            tx.commit().await?;
            Ok(recorded)
        })
        .await
    }

    async fn accept_suggestions(
        &self,
        ctx: &ChangeContext,
        plan: UploadPlan,
        decisions: Vec<NewDecision>,
    ) -> StoreResult<UploadSummary> {
        self.retrying(|| async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let summary = super::apply_upload_rows(&tx, ctx, &plan).await?;
            record_decisions_in(&tx, ctx, &decisions).await?;
            close_change_set(&tx, ctx, ChangeKind::Suggestion).await?;
            tx.commit().await?;
            Ok(summary)
        })
        .await
    }

    async fn decisions_version(&self, account: AccountId) -> StoreResult<i64> {
        async {
            let client = self.client().await?;
            let statement = client.prepare_cached("SELECT decisions_version FROM accounts WHERE id = $1").await?;
            Ok(match client.query_opt(&statement, &[&account.0]).await? {
                Some(row) => row.try_get(0)?,
                None => 0,
            })
        }
        .await
        .map_err(PgError::into_store)
    }
}

async fn match_input_in(tx: &impl GenericClient, account: AccountId) -> PgResult<MatchInput> {
    let mut input = MatchInput::default();
    let rows = tx
        .query(
            "SELECT c.integration_id, i.application_type, c.identity, c.identity_key, c.name, c.email, c.is_bot,
                    c.activity, m.developer_id,
                    (SELECT string_agg(s.utc_offsets, ' ') FROM contributor_sources s WHERE s.contributor_id = c.id),
                    (SELECT string_agg(s.names, chr(30)) FROM contributor_sources s WHERE s.contributor_id = c.id),
                    c.first_seen, c.last_seen
             FROM contributors c
             JOIN integrations i ON i.account_id = c.account_id AND i.id = c.integration_id
             LEFT JOIN identities m
               ON m.account_id = c.account_id AND m.integration_id = c.integration_id AND m.identity_key = c.identity_key
             WHERE c.account_id = $1
             ORDER BY c.integration_id, c.identity_key",
            &[&account.0],
        )
        .await?;
    for row in rows {
        let kind: String = row.try_get(1)?;
        let activity: i64 = row.try_get(7)?;
        input.contributors.push(MatchContributor {
            integration_id: row.try_get(0)?,
            application_type: parse_type(&kind)?,
            identity: row.try_get(2)?,
            identity_key: row.try_get(3)?,
            name: row.try_get(4)?,
            email: row.try_get(5)?,
            is_bot: row.try_get::<_, i32>(6)? != 0,
            activity: activity.max(0) as u64,
            developer_id: row.try_get(8)?,
            utc_offsets: UtcOffsets::decode(row.try_get::<_, Option<&str>>(9)?.unwrap_or_default()),
            names: names_over_sources(row.try_get::<_, Option<&str>>(10)?.unwrap_or_default()),
            first_seen: row.try_get(11)?,
            // Stored as 0 when unknown (see the contributors table).
            last_seen: Some(row.try_get::<_, i64>(12)?).filter(|&t| t != 0),
        });
    }
    let rows =
        tx.query("SELECT id, email, name FROM developers WHERE account_id = $1 ORDER BY id", &[&account.0]).await?;
    for row in rows {
        input.developers.push(MatchDeveloper { id: row.try_get(0)?, email: row.try_get(1)?, name: row.try_get(2)? });
    }
    let rows = tx
        .query(
            "SELECT party_a, party_b FROM match_cannot_links WHERE account_id = $1 ORDER BY party_a, party_b",
            &[&account.0],
        )
        .await?;
    for row in rows {
        let (a, b): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if let (Some(a), Some(b)) = (party_from_text(&a), party_from_text(&b)) {
            input.cannot_link.push((a, b));
        }
    }
    let rows = tx
        .query(
            "SELECT suggestion_id, decision FROM match_decisions WHERE account_id = $1 ORDER BY suggestion_id",
            &[&account.0],
        )
        .await?;
    for row in rows {
        let (id, decision): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(kind) = DecisionKind::parse(&decision) {
            input.decided.push((id, kind));
        }
    }
    Ok(input)
}

async fn record_decisions_in(
    tx: &deadpool_postgres::Transaction<'_>,
    ctx: &ChangeContext,
    decisions: &[NewDecision],
) -> PgResult<u64> {
    let account = ctx.account;
    lock_account(tx, account).await?;
    let now = now_micros();
    for decision in decisions {
        let taken = tx
            .query_opt(
                "SELECT decision FROM match_decisions WHERE account_id = $1 AND suggestion_id = $2",
                &[&account.0, &decision.suggestion_id],
            )
            .await?;
        if let Some(row) = taken {
            let taken: String = row.try_get(0)?;
            return Err(StoreError::Conflict(format!(
                "Suggestion {} was already decided ({taken}); nothing was recorded.",
                decision.suggestion_id
            ))
            .into());
        }
        tx.execute(
            "INSERT INTO match_decisions (account_id, suggestion_id, decision, key_id, decided_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&account.0, &decision.suggestion_id, &decision.kind.as_str(), &ctx.key_id, &now],
        )
        .await?;
        for (a, b) in &decision.cannot_link {
            let (a, b) = pairing_texts(a, b);
            tx.execute(
                "INSERT INTO match_cannot_links (account_id, party_a, party_b, suggestion_id, key_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&account.0, &a, &b, &decision.suggestion_id, &ctx.key_id, &now],
            )
            .await?;
        }
        let (action, detail) = decision.audit();
        insert_audit(tx, ctx, now, Audit { action: action.as_str(), detail: Some(&detail), ..Default::default() })
            .await?;
    }
    tx.execute("UPDATE accounts SET decisions_version = decisions_version + 1 WHERE id = $1", &[&account.0]).await?;
    Ok(decisions.len() as u64)
}
