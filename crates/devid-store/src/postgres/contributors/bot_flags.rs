//! Manual bot decisions on PostgreSQL. The stored decisions of every key named are read
//! at once; the decisions are then taken one by one in Rust, as SQLite takes them, and
//! each key's last change is written in a few set-based statements.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use devid_core::change::AuditAction;
use devid_core::time::Micros;
use devid_core::types::IntegrationId;

use super::{bump_contributors_version, integration_ids_in};
use crate::contributors::{BotFlag, BotFlagSummary};
use crate::postgres::{PgResult, lock_account};
use crate::{AccountId, ChangeContext, StoreError, now_micros};

/// One change a bot decision makes, in the order the decisions came.
struct FlagChange<'a> {
    flag: &'a BotFlag,
    action: AuditAction,
}

pub(super) async fn set_bot_flags_in(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    flags: &[BotFlag],
) -> PgResult<BotFlagSummary> {
    let account = ctx.account;
    lock_account(tx, account).await?;
    let known = integration_ids_in(tx, account).await?;
    if let Some(flag) = flags.iter().find(|f| !known.contains(&f.integration_id)) {
        return Err(StoreError::Invalid(format!(
            "Integration {} does not exist; list them with GET /v2/integrations.",
            flag.integration_id
        ))
        .into());
    }
    let now = now_micros();
    let mut summary = BotFlagSummary { received: flags.len() as u64, ..Default::default() };
    // Each key's decision and whether a contributor carries it, as stored. Decisions are
    // then taken one by one against `decided`, so a key named twice behaves as on SQLite,
    // where the second sees the first.
    let (mut decided, carried) = flags_in(tx, account, flags).await?;
    let mut changes = Vec::new();
    for flag in flags {
        let key = (flag.integration_id, flag.identity_key.as_str());
        let current = decided.get(&key).copied().flatten();
        if current == flag.bot {
            summary.unchanged += 1;
            continue;
        }
        decided.insert(key, flag.bot);
        let action = match flag.bot {
            Some(true) => {
                summary.flagged += 1;
                AuditAction::ContributorBotFlagged
            }
            Some(false) => {
                summary.unflagged += 1;
                AuditAction::ContributorBotUnflagged
            }
            None => {
                summary.cleared += 1;
                AuditAction::ContributorBotFlagCleared
            }
        };
        if !carried.contains(&key) {
            summary.not_seen_yet += 1;
        }
        changes.push(FlagChange { flag, action });
    }
    if changes.is_empty() {
        return Ok(summary);
    }
    // The last change of each key is the decision that stays.
    let mut last: HashMap<FlagKey<'_>, &BotFlag> = HashMap::new();
    for change in &changes {
        last.insert((change.flag.integration_id, change.flag.identity_key.as_str()), change.flag);
    }
    let mut last: Vec<&BotFlag> = last.into_values().collect();
    last.sort_unstable_by(|a, b| (a.integration_id, &a.identity_key).cmp(&(b.integration_id, &b.identity_key)));
    apply_flags_in(tx, ctx, &last, now).await?;
    audit_flags_in(tx, ctx, &changes, now).await?;
    bump_contributors_version(tx, account).await?;
    Ok(summary)
}

type FlagKey<'a> = (IntegrationId, &'a str);

/// The stored decision of every key `flags` name, and the keys a contributor carries.
async fn flags_in<'a>(
    tx: &Transaction<'_>,
    account: AccountId,
    flags: &'a [BotFlag],
) -> PgResult<(HashMap<FlagKey<'a>, Option<bool>>, HashSet<FlagKey<'a>>)> {
    let ids: Vec<i64> = flags.iter().map(|f| f.integration_id).collect();
    let keys: Vec<&str> = flags.iter().map(|f| f.identity_key.as_str()).collect();
    let statement = tx
        .prepare_cached(
            "SELECT r.ord, f.is_bot, EXISTS (SELECT 1 FROM contributors c
                 WHERE c.account_id = $1 AND c.integration_id = r.integration_id AND c.identity_key = r.identity_key)
             FROM UNNEST($2::BIGINT[], $3::TEXT[]) WITH ORDINALITY AS r(integration_id, identity_key, ord)
             LEFT JOIN contributor_bot_flags f
               ON f.account_id = $1 AND f.integration_id = r.integration_id AND f.identity_key = r.identity_key",
        )
        .await?;
    let (mut decided, mut carried) = (HashMap::new(), HashSet::new());
    for r in tx.query(&statement, &[&account.0, &ids, &keys]).await? {
        let ord: i64 = r.try_get(0)?;
        let flag = usize::try_from(ord - 1).ok().and_then(|i| flags.get(i)).ok_or_else(|| {
            StoreError::Internal(format!("PostgreSQL answered for bot decision {ord}, which was not sent."))
        })?;
        let key = (flag.integration_id, flag.identity_key.as_str());
        decided.insert(key, r.try_get::<_, Option<i32>>(1)?.map(|b| b != 0));
        if r.try_get::<_, bool>(2)? {
            carried.insert(key);
        }
    }
    Ok((decided, carried))
}

/// Stores each key's final decision (or withdraws it) and applies it to the contributor
/// carrying the key, if any.
async fn apply_flags_in(tx: &Transaction<'_>, ctx: &ChangeContext, last: &[&BotFlag], now: Micros) -> PgResult<()> {
    let account = ctx.account;
    let ids: Vec<i64> = last.iter().map(|f| f.integration_id).collect();
    let keys: Vec<&str> = last.iter().map(|f| f.identity_key.as_str()).collect();
    let identities: Vec<&str> = last.iter().map(|f| f.identity.as_str()).collect();
    let bots: Vec<Option<i32>> = last.iter().map(|f| f.bot.map(i32::from)).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO contributor_bot_flags (account_id, integration_id, identity_key, identity, is_bot, key_id, set_at)
             SELECT $1::BIGINT, r.integration_id, r.identity_key, r.identity, r.is_bot, $2::TEXT, $3::BIGINT
             FROM UNNEST($4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::INTEGER[]) AS r(integration_id, identity_key, identity, is_bot)
             WHERE r.is_bot IS NOT NULL
             ON CONFLICT (account_id, integration_id, identity_key) DO UPDATE SET
                 identity = EXCLUDED.identity, is_bot = EXCLUDED.is_bot, key_id = EXCLUDED.key_id, set_at = EXCLUDED.set_at",
        )
        .await?;
    tx.execute(&statement, &[&account.0, &ctx.key_id, &now, &ids, &keys, &identities, &bots]).await?;
    let statement = tx
        .prepare_cached(
            "DELETE FROM contributor_bot_flags f
             USING UNNEST($2::BIGINT[], $3::TEXT[], $4::INTEGER[]) AS r(integration_id, identity_key, is_bot)
             WHERE r.is_bot IS NULL
               AND f.account_id = $1 AND f.integration_id = r.integration_id AND f.identity_key = r.identity_key",
        )
        .await?;
    tx.execute(&statement, &[&account.0, &ids, &keys, &bots]).await?;
    let statement = tx
        .prepare_cached(
            "UPDATE contributors c SET is_bot = COALESCE(r.is_bot, (c.bot_rule IS NOT NULL)::INTEGER), updated_at = $2
             FROM UNNEST($3::BIGINT[], $4::TEXT[], $5::INTEGER[]) AS r(integration_id, identity_key, is_bot)
             WHERE c.account_id = $1 AND c.integration_id = r.integration_id AND c.identity_key = r.identity_key",
        )
        .await?;
    tx.execute(&statement, &[&account.0, &now, &ids, &keys, &bots]).await?;
    Ok(())
}

/// One audit event per change, in the order the decisions came.
async fn audit_flags_in(
    tx: &Transaction<'_>,
    ctx: &ChangeContext,
    changes: &[FlagChange<'_>],
    now: Micros,
) -> PgResult<()> {
    let actions: Vec<&str> = changes.iter().map(|c| c.action.as_str()).collect();
    let ids: Vec<i64> = changes.iter().map(|c| c.flag.integration_id).collect();
    let identities: Vec<&str> = changes.iter().map(|c| c.flag.identity.as_str()).collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO audit_events (account_id, at, action, key_id, request_id, integration_id, identity)
             SELECT $1::BIGINT, $2::BIGINT, r.action, $3::TEXT, $4::TEXT, r.integration_id, r.identity
             FROM UNNEST($5::TEXT[], $6::BIGINT[], $7::TEXT[]) WITH ORDINALITY AS r(action, integration_id, identity, ord)
             ORDER BY r.ord",
        )
        .await?;
    tx.execute(&statement, &[&ctx.account.0, &now, &ctx.key_id, &ctx.request_id, &actions, &ids, &identities]).await?;
    Ok(())
}
