//! The matching family on SQLite: the engine's input in one read, decisions and
//! cannot-links in one write, accepted suggestions' identities with them.

use super::changes::close_change_set;
use async_trait::async_trait;
use devid_core::change::ChangeKind;
use devid_core::contributor::zones::UtcOffsets;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Audit, SqliteStore, insert_audit, map_err, parse_type};
use crate::matching::{
    DecisionKind, MatchContributor, MatchDeveloper, MatchInput, MatchStore, NewDecision, names_over_sources,
    pairing_texts, party_from_text,
};
use crate::{AccountId, ChangeContext, StoreError, StoreResult, UploadSummary, now_micros};
use devid_core::plan::UploadPlan;

#[async_trait]
impl MatchStore for SqliteStore {
    async fn match_input(&self, account: AccountId) -> StoreResult<MatchInput> {
        self.read(move |conn| match_input_in(conn, account)).await
    }

    async fn record_decisions(&self, ctx: &ChangeContext, decisions: Vec<NewDecision>) -> StoreResult<u64> {
        let ctx = ctx.clone();
        self.write(move |conn, _| record_decisions_in(conn, &ctx, &decisions)).await
    }

    async fn accept_suggestions(
        &self,
        ctx: &ChangeContext,
        plan: UploadPlan,
        decisions: Vec<NewDecision>,
    ) -> StoreResult<UploadSummary> {
        let ctx = ctx.clone();
        self.write(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
            let summary = super::apply_upload_rows(&tx, &ctx, plan, 0)?;
            record_decision_rows(&tx, &ctx, &decisions)?;
            close_change_set(&tx, &ctx, ChangeKind::Suggestion).map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(summary)
        })
        .await
    }

    async fn decisions_version(&self, account: AccountId) -> StoreResult<i64> {
        self.read(move |conn| {
            conn.query_row("SELECT decisions_version FROM accounts WHERE id = ?1", [account.0], |r| r.get(0))
                .optional()
                .map_err(map_err)
                .map(|v| v.unwrap_or(0))
        })
        .await
    }
}

fn match_input_in(conn: &Connection, account: AccountId) -> StoreResult<MatchInput> {
    let mut input = MatchInput::default();
    let mut stmt = conn
        .prepare(
            "SELECT c.integration_id, i.application_type, c.identity, c.identity_key, c.name, c.email, c.is_bot,
                    c.activity, m.developer_id,
                    (SELECT group_concat(s.utc_offsets, ' ') FROM contributor_sources s WHERE s.contributor_id = c.id),
                    (SELECT group_concat(s.names, char(30)) FROM contributor_sources s WHERE s.contributor_id = c.id),
                    c.first_seen, c.last_seen
             FROM contributors c
             JOIN integrations i ON i.account_id = c.account_id AND i.id = c.integration_id
             LEFT JOIN identities m
               ON m.account_id = c.account_id AND m.integration_id = c.integration_id AND m.identity_key = c.identity_key
             WHERE c.account_id = ?1
             ORDER BY c.integration_id, c.identity_key",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([account.0], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, bool>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<i64>>(11)?,
                r.get::<_, Option<i64>>(12)?,
            ))
        })
        .map_err(map_err)?;
    for row in rows {
        let (
            integration_id,
            kind,
            identity,
            identity_key,
            name,
            email,
            is_bot,
            activity,
            developer_id,
            offsets,
            names,
            first_seen,
            last_seen,
        ) = row.map_err(map_err)?;
        input.contributors.push(MatchContributor {
            integration_id,
            application_type: parse_type(&kind)?,
            identity,
            identity_key,
            name,
            email,
            is_bot,
            activity: activity.max(0) as u64,
            developer_id,
            utc_offsets: UtcOffsets::decode(offsets.as_deref().unwrap_or_default()),
            names: names_over_sources(names.as_deref().unwrap_or_default()),
            first_seen,
            // Stored as 0 when unknown (see the contributors table).
            last_seen: last_seen.filter(|&t| t != 0),
        });
    }
    let mut stmt =
        conn.prepare("SELECT id, email, name FROM developers WHERE account_id = ?1 ORDER BY id").map_err(map_err)?;
    let rows = stmt
        .query_map([account.0], |r| Ok(MatchDeveloper { id: r.get(0)?, email: r.get(1)?, name: r.get(2)? }))
        .map_err(map_err)?;
    for row in rows {
        input.developers.push(row.map_err(map_err)?);
    }
    let mut stmt = conn
        .prepare("SELECT party_a, party_b FROM match_cannot_links WHERE account_id = ?1 ORDER BY party_a, party_b")
        .map_err(map_err)?;
    let rows =
        stmt.query_map([account.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(map_err)?;
    for row in rows {
        let (a, b) = row.map_err(map_err)?;
        if let (Some(a), Some(b)) = (party_from_text(&a), party_from_text(&b)) {
            input.cannot_link.push((a, b));
        }
    }
    let mut stmt = conn
        .prepare("SELECT suggestion_id, decision FROM match_decisions WHERE account_id = ?1 ORDER BY suggestion_id")
        .map_err(map_err)?;
    let rows =
        stmt.query_map([account.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(map_err)?;
    for row in rows {
        let (id, decision) = row.map_err(map_err)?;
        if let Some(kind) = DecisionKind::parse(&decision) {
            input.decided.push((id, kind));
        }
    }
    Ok(input)
}

fn record_decisions_in(conn: &mut Connection, ctx: &ChangeContext, decisions: &[NewDecision]) -> StoreResult<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(map_err)?;
    record_decision_rows(&tx, ctx, decisions)?;
    close_change_set(&tx, ctx, ChangeKind::Suggestion).map_err(map_err)?;
    tx.commit().map_err(map_err)?;
    Ok(decisions.len() as u64)
}

/// The decisions, their cannot-links and audit events, and the decisions version, in
/// the caller's transaction.
fn record_decision_rows(
    tx: &rusqlite::Transaction<'_>,
    ctx: &ChangeContext,
    decisions: &[NewDecision],
) -> StoreResult<()> {
    let account = ctx.account;
    let now = now_micros();
    for decision in decisions {
        let taken: Option<String> = tx
            .query_row(
                "SELECT decision FROM match_decisions WHERE account_id = ?1 AND suggestion_id = ?2",
                params![account.0, decision.suggestion_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(map_err)?;
        if let Some(taken) = taken {
            return Err(StoreError::Conflict(format!(
                "Suggestion {} was already decided ({taken}); nothing was recorded.",
                decision.suggestion_id
            )));
        }
        tx.execute(
            "INSERT INTO match_decisions (account_id, suggestion_id, decision, key_id, decided_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![account.0, decision.suggestion_id, decision.kind.as_str(), ctx.key_id, now],
        )
        .map_err(map_err)?;
        for (a, b) in &decision.cannot_link {
            let (a, b) = pairing_texts(a, b);
            tx.execute(
                "INSERT OR IGNORE INTO match_cannot_links (account_id, party_a, party_b, suggestion_id, key_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![account.0, a, b, decision.suggestion_id, ctx.key_id, now],
            )
            .map_err(map_err)?;
        }
        let (action, detail) = decision.audit();
        insert_audit(tx, ctx, now, Audit { action: action.as_str(), detail: Some(&detail), ..Default::default() })
            .map_err(map_err)?;
    }
    tx.execute("UPDATE accounts SET decisions_version = decisions_version + 1 WHERE id = ?1", [account.0])
        .map_err(map_err)?;
    Ok(())
}
