//! `devid serve`: logging, the first admin key, the server, and a clean stop.
//!
//! The first admin key is a secret, and a log stream goes to collectors that
//! `docs/security.md` keeps secrets out of. So it is printed only where a person is
//! watching (text logs on a terminal); otherwise it is written to a file only this user
//! can read and the log names the file. When the database has accounts but no usable
//! admin key, `serve` says so and names the command that makes one.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use devid_core::types::Scope;
use devid_server::{AppState, Limits};
use devid_store::{CreatedKey, Store};

use super::{Open, ServeArgs, open_store, redact_url};

pub(super) async fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_format);
    let store = open_store(&args.db.database, Open::CreateIfMissing).await?;
    // Bound first, so the hint below names the real port (also with `--listen …:0`).
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| {
        format!("cannot listen on {}; is another process using it? Choose another with --listen", args.listen)
    })?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    match store.bootstrap().await.context("cannot prepare the empty database")? {
        Some(key) => announce_first_key(&args, &key, local),
        None => {
            warn_without_admin_key(&*store, &args.db.database).await;
            warn_if_key_file_remains(&args);
        }
    }
    let shutdown = shutdown_signal()?;
    tracing::info!(address = %local, backend = store.backend(), database = %redact_url(&args.db.database), "devid listening");
    let limits = Limits {
        max_json_body: args.max_json_body,
        max_multipart_body: args.max_multipart_body,
        max_upload_rows: args.max_upload_rows,
        request_timeout: Duration::from_secs(args.request_timeout),
        max_concurrent_uploads: args.max_concurrent_uploads,
        upload_queue_wait: Duration::from_secs(args.upload_queue_wait),
        upload_idle: Duration::from_secs(args.upload_idle),
        min_upload_bytes_per_second: args.min_upload_rate,
        rate_limit_per_minute: args.rate_limit,
        max_exports_per_account: args.max_exports_per_account,
        account_rate_limit_per_minute: args.account_rate_limit,
        auth_failures_per_minute: args.auth_failures_per_minute,
        ui_session_idle: Duration::from_secs(args.ui_session_idle.max(1).saturating_mul(60)),
    };
    let connections = devid_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout.max(1)),
        max_connections: args.max_connections,
    };
    let policy = devid_server::webhooks::WebhookPolicy { allow_private: args.allow_private_webhooks };
    let state = AppState::new(Arc::clone(&store), limits).with_webhook_policy(policy);
    devid_server::serve_with(listener, state, connections, shutdown).await.context("the server failed")?;
    // After the last request: on SQLite the database file alone then holds every write.
    store.close().await;
    tracing::info!("devid stopped");
    Ok(())
}

/// The first admin key goes to the terminal only when a person is reading text logs
/// there; anywhere else (JSON logs, journald, a container's log driver, a file) it
/// goes to a 0600 file, and the log carries only the file's path.
fn announce_first_key(args: &ServeArgs, key: &CreatedKey, local: std::net::SocketAddr) {
    if args.log_format == "text" && std::io::stderr().is_terminal() {
        eprintln!();
        eprintln!(
            "devid: created account `default` and its first admin key. It is shown only this once; store it now:"
        );
        eprintln!();
        eprintln!("    {}", key.key);
        eprintln!();
        eprintln!("Try it:  curl -H \"x-api-key: {}\" http://{local}/v2/integrations", key.key);
        eprintln!("Or open http://{local}/ui/ in a browser and sign in with it.");
        eprintln!();
        return;
    }
    let path = first_key_path(args);
    match write_secret_file(&path, &key.key) {
        Ok(()) => {
            let shown = std::path::absolute(&path).unwrap_or(path);
            tracing::warn!(
                file = %shown.display(),
                key_id = %key.info.id,
                "Created account `default` and its first admin key. The key is not logged: it is in {}, readable only by this user. Store it somewhere safe, then delete the file.",
                shown.display()
            );
        }
        Err(e) => tracing::error!(
            file = %path.display(),
            key_id = %key.info.id,
            error = %e,
            "Created account `default` and its first admin key, but could not write it to {}. The key is not logged. Make a new one with `devid keys create --account default --scope admin` and revoke this one with `devid keys revoke {}`.",
            path.display(),
            key.info.id
        ),
    }
}

/// A first-key file left behind holds a working admin key in plain text; say so on
/// every start until it is gone.
fn warn_if_key_file_remains(args: &ServeArgs) {
    let path = first_key_path(args);
    if path.exists() {
        let shown = std::path::absolute(&path).unwrap_or(path);
        tracing::warn!(
            file = %shown.display(),
            "The first admin key is still in {}. Store it somewhere safe and delete the file; anyone who can read it can administer devid.",
            shown.display()
        );
    }
}

fn first_key_path(args: &ServeArgs) -> PathBuf {
    match &args.first_key_file {
        Some(path) => path.clone(),
        None if args.db.is_postgres() => PathBuf::from("devid-first-admin-key"),
        None => PathBuf::from(format!("{}.first-admin-key", args.db.database)),
    }
}

/// Creates `path` with mode 0600 and writes `secret` into it. A file already there
/// is from an earlier database (this one was empty until now) and is replaced; it is
/// removed first and the new one created exclusively, so a symbolic link planted at
/// `path` is never followed.
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}

/// Says so when no key can administer the database (none was ever made because an
/// admin command created the account first, or every admin key is revoked or expired),
/// with the one command that makes one. It never makes a key itself: a key appearing
/// after someone revoked them all would undo that revocation.
async fn warn_without_admin_key(store: &dyn Store, database: &str) {
    let keys = match store.list_keys(None).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check for a usable admin key");
            return;
        }
    };
    let now = devid_store::now_micros();
    let usable = keys.iter().any(|k| {
        !k.revoked
            && k.scopes.contains(&Scope::Admin)
            && k.expires_at.as_deref().is_none_or(|at| devid_core::time::parse_rfc3339(at).is_ok_and(|at| at > now))
    });
    if !usable {
        let account = keys.first().map_or("default", |k| k.account.as_str());
        let mut command = format!("devid keys create --account {account} --scope admin");
        if database != "./devid.db" {
            command.push_str(&format!(" --database {}", redact_url(database)));
        }
        tracing::warn!(
            "No usable admin key exists in this database: none was made, or every admin key is revoked or expired. Make one with `{command}`; it prints the new key once."
        );
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

/// Resolves on SIGINT or SIGTERM; the server then stops accepting and drains. The
/// handlers are installed when this is called, not when the future is first polled:
/// a signal sent right after the "listening" line must stop devid cleanly, not kill it.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
