//! `devid keys …` and `devid integrations …`: administration straight on the database,
//! for bootstrap and scripts. Listings are aligned tables on stdout; what a person
//! should read about a change goes to stderr, so `KEY=$(devid keys create …)` captures
//! only the key.

use anyhow::{Context, Result, bail};
use devid_core::types::MAX_INTEGRATION_ID;
use devid_store::{ApiKeyInfo, NewIntegration, NewKey, StoreError};

use super::{IntegrationsCommand, KeysCommand, Open, cli_context, open_store};

pub(super) async fn keys(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create { account, scopes, label, expires_in, db } => {
            let store = open_store(&db.database, Open::CreateIfMissing).await?;
            let account =
                store.ensure_account(&account).await.with_context(|| format!("cannot use account `{account}`"))?;
            let expires_at = expires_in.map(|d| devid_store::now_micros() + d.as_micros() as i64);
            let created = store.create_key(&cli_context(account.id), NewKey { scopes, label, expires_at }).await?;
            store.close().await;
            eprintln!(
                "Created key {} for account `{}` with scopes {}{}. It is shown only this once:",
                created.info.id,
                created.info.account,
                devid_core::types::scopes_to_string(&created.info.scopes),
                created.info.expires_at.as_deref().map(|e| format!(", expiring {e}")).unwrap_or_default()
            );
            println!("{}", created.key);
            Ok(())
        }
        KeysCommand::List { account, db } => {
            let store = open_store(&db.database, Open::MustExist).await?;
            let account_id = match account {
                Some(name) => Some(
                    store
                        .account_by_name(&name)
                        .await?
                        .with_context(|| {
                            format!("There is no account `{name}`; list every key with `devid keys list`.")
                        })?
                        .id,
                ),
                None => None,
            };
            let keys = store.list_keys(account_id).await?;
            let now = devid_store::now_micros();
            let rows = keys.iter().map(|k| key_row(k, now)).collect();
            print!(
                "{}",
                table(&["ID", "ACCOUNT", "SCOPES", "STATE", "EXPIRES", "CREATED", "LAST USED", "LABEL"], rows)
            );
            Ok(())
        }
        KeysCommand::Revoke { id, db } => {
            let store = open_store(&db.database, Open::MustExist).await?;
            let known = store.list_keys(None).await?.into_iter().find(|k| k.id == id);
            let Some(before) = known else {
                bail!(
                    "There is no API key `{id}` in this database. List the keys and their ids with `devid keys list`."
                );
            };
            if before.revoked {
                eprintln!("Key {} of account `{}` was already revoked; nothing changed.", before.id, before.account);
                return Ok(());
            }
            let ctx = cli_context(devid_store::AccountId(0));
            let info = store.revoke_key(&ctx, &id, true).await.map_err(|e| match e {
                StoreError::NotFound(_) => anyhow::anyhow!(
                    "There is no API key `{id}` in this database. List the keys and their ids with `devid keys list`."
                ),
                e => anyhow::Error::new(e).context(format!("cannot revoke key `{id}`")),
            })?;
            store.close().await;
            eprintln!(
                "Revoked key {} of account `{}`. Requests with it are refused from now on.",
                info.id, info.account
            );
            Ok(())
        }
    }
}

/// One `keys list` line. STATE says whether the key works now; EXPIRES gives the date.
fn key_row(k: &ApiKeyInfo, now: devid_core::time::Micros) -> Vec<String> {
    let expired =
        k.expires_at.as_deref().is_some_and(|at| devid_core::time::parse_rfc3339(at).is_ok_and(|at| at <= now));
    let state = if k.revoked {
        "revoked"
    } else if expired {
        "expired"
    } else {
        "active"
    };
    vec![
        k.id.clone(),
        k.account.clone(),
        devid_core::types::scopes_to_string(&k.scopes),
        state.to_string(),
        k.expires_at.clone().unwrap_or_else(|| "never".into()),
        k.created_at.clone(),
        k.last_used_at.clone().unwrap_or_else(|| "never".into()),
        k.label.clone(),
    ]
}

pub(super) async fn integrations(cmd: IntegrationsCommand) -> Result<()> {
    match cmd {
        IntegrationsCommand::Add { id, application_type, name, account, db } => {
            if id.is_some_and(|id| !(1..=MAX_INTEGRATION_ID).contains(&id)) {
                bail!("--id must be a whole number from 1 to {MAX_INTEGRATION_ID}; leave it out to have one assigned.");
            }
            let store = open_store(&db.database, Open::CreateIfMissing).await?;
            let account = store.ensure_account(&account).await?;
            let created = store
                .create_integration(&cli_context(account.id), NewIntegration { id, application_type, name })
                .await
                .context("cannot add the integration")?;
            store.close().await;
            eprintln!(
                "Added integration {} ({}) `{}` to account `{}`.",
                created.id, created.application_type, created.name, account.name
            );
            Ok(())
        }
        IntegrationsCommand::List { account, db } => {
            let store = open_store(&db.database, Open::MustExist).await?;
            let account = store.account_by_name(&account).await?.with_context(|| {
                format!("There is no account `{account}`; name an existing one with --account (see `devid keys list`).")
            })?;
            let rows = store
                .list_integrations(account.id)
                .await?
                .into_iter()
                .map(|i| vec![i.id.to_string(), i.application_type.to_string(), i.identity_count.to_string(), i.name])
                .collect();
            print!("{}", table(&["ID", "TYPE", "IDENTITIES", "NAME"], rows));
            Ok(())
        }
    }
}

/// Columns padded to their widest cell (counted in characters, so names with
/// accents line up too), two spaces apart; the last column is not padded.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len().saturating_sub(1);
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_whatever_the_cell_lengths() {
        let out = table(
            &["ID", "TYPE", "NAME"],
            vec![
                vec!["1".into(), "GITHUB".into(), "GitHub Cloud".into()],
                vec!["1234567".into(), "BITBUCKET_SERVER".into(), "Bitbucket".into()],
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        let starts = |l: &str, word: &str| l.find(word).expect("word in line");
        assert_eq!(starts(lines[0], "TYPE"), starts(lines[1], "GITHUB"));
        assert_eq!(starts(lines[1], "GITHUB"), starts(lines[2], "BITBUCKET_SERVER"));
        assert_eq!(starts(lines[0], "NAME"), starts(lines[2], "Bitbucket"));
    }
}
