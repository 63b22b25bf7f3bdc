use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use devid_core::types::{ApplicationType, MAX_INTEGRATION_ID, Scope};
use devid_server::{AppState, Limits};
use devid_store::{ChangeContext, NewIntegration, NewKey, PostgresStore, SqliteStore, Store};

/// devid keeps which account IDs (GitHub usernames, Jira account IDs, Bitbucket UUIDs,
/// ...) belong to which developer, and serves them over the Harness SEI developer
/// identity API.
#[derive(Debug, Parser)]
#[command(name = "devid", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct DatabaseArg {
    /// SQLite file path (created if missing) or postgres:// URL.
    #[arg(long, env = "DEVID_DATABASE", default_value = "./devid.db", global = true)]
    database: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server. On an empty database, creates account `default` and prints
    /// its first admin key once.
    Serve(ServeArgs),
    /// Create, list and revoke API keys directly in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Add and list integrations directly in the database.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "DEVID_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    db: DatabaseArg,
    /// Largest JSON body accepted, in bytes (default 64 MiB).
    #[arg(long, env = "DEVID_MAX_JSON_BODY", default_value_t = 64 * 1024 * 1024)]
    max_json_body: usize,
    /// Largest multipart or CSV body accepted, in bytes (default 512 MiB).
    #[arg(long, env = "DEVID_MAX_MULTIPART_BODY", default_value_t = 512 * 1024 * 1024)]
    max_multipart_body: usize,
    /// Most rows one upload may carry.
    #[arg(long, env = "DEVID_MAX_UPLOAD_ROWS", default_value_t = 5_000_000)]
    max_upload_rows: u64,
    /// Seconds a request may take, body included, before it is answered 408.
    #[arg(long, env = "DEVID_REQUEST_TIMEOUT", default_value_t = 600)]
    request_timeout: u64,
    /// Uploads and deletes applied at once; further ones wait, then get 503.
    #[arg(long, env = "DEVID_MAX_CONCURRENT_UPLOADS", default_value_t = 4)]
    max_concurrent_uploads: usize,
    /// Seconds an upload waits for its turn before it is answered 503.
    #[arg(long, env = "DEVID_UPLOAD_QUEUE_WAIT", default_value_t = 10)]
    upload_queue_wait: u64,
    /// Seconds an upload's body may pause, and after which it must average
    /// --min-upload-rate (0: no bound); slower uploads are answered 408.
    #[arg(long, env = "DEVID_UPLOAD_IDLE", default_value_t = 10)]
    upload_idle: u64,
    /// Slowest average an upload's body may arrive at, in bytes a second, once
    /// --upload-idle seconds have passed.
    #[arg(long, env = "DEVID_MIN_UPLOAD_RATE", default_value_t = 16 * 1024)]
    min_upload_rate: u64,
    /// Requests per minute per API key, per process (0: no limit); over it, 429.
    #[arg(long, env = "DEVID_RATE_LIMIT", default_value_t = 1000)]
    rate_limit: u32,
    /// CSV downloads one account may run at once; further ones get 429.
    #[arg(long, env = "DEVID_MAX_EXPORTS_PER_ACCOUNT", default_value_t = 2)]
    max_exports_per_account: usize,
    /// Requests per minute of all keys of one account together, per process (0: no limit).
    #[arg(long, env = "DEVID_ACCOUNT_RATE_LIMIT", default_value_t = 4000)]
    account_rate_limit: u32,
    /// Failed authentications per minute per client address and per key id (0: no
    /// limit); beyond it, requests from that address get 429 before any key is checked.
    #[arg(long, env = "DEVID_AUTH_FAILURES_PER_MINUTE", default_value_t = 30)]
    auth_failures_per_minute: u32,
    /// Seconds a client may take to send a request's headers before its connection is
    /// closed (a client that never finishes them would hold it forever).
    #[arg(long, env = "DEVID_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Connections open at once; further clients wait in the listen backlog.
    #[arg(long, env = "DEVID_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Log format on stderr.
    #[arg(long, env = "DEVID_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once: only its hash is stored).
    Create {
        /// Account the key belongs to; created if it does not exist.
        #[arg(long, default_value = "default")]
        account: String,
        /// Scope to grant; repeat for several: developer_records:read,
        /// developer_records:write, admin (admin implies the others).
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// A note saying what the key is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Lifetime such as 90d, 12h or 30m; no expiry when left out.
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List keys (never their secrets).
    List {
        /// Only this account's keys.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke a key by its id (the third part of pat.<account>.<keyId>.<secret>).
    Revoke {
        id: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
enum IntegrationsCommand {
    /// Add an integration.
    Add {
        /// Its id, a whole number from 1 to 2^53 − 1 unique in the account; left out,
        /// the largest id in the account plus one.
        #[arg(long)]
        id: Option<i64>,
        /// GITHUB, GITHUB_ENTERPRISE, GITLAB_CLOUD, GITLAB_SERVER, BITBUCKET_CLOUD,
        /// BITBUCKET_SERVER, AZURE_DEVOPS, JIRA, HARNESS_CODE or CUSTOM.
        #[arg(long = "type", value_parser = parse_type)]
        application_type: ApplicationType,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "default")]
        account: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List an account's integrations.
    List {
        #[arg(long, default_value = "default")]
        account: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse().map_err(|e: devid_core::types::UnknownScope| e.to_string())
}

fn parse_type(s: &str) -> Result<ApplicationType, String> {
    s.parse().map_err(|_| format!("unknown type `{s}`; expected one of {}", ApplicationType::allowed_values()))
}

fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is not a lifetime such as 90d, 12h or 30m"))?;
    let seconds = match unit {
        "" | "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        _ => return Err(format!("`{s}`: the unit must be d, h or m")),
    };
    if seconds == 0 {
        return Err("a lifetime must be longer than zero".into());
    }
    Ok(Duration::from_secs(seconds))
}

async fn open_store(database: &str) -> Result<Arc<dyn Store>> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        let store = PostgresStore::connect(database)
            .await
            .with_context(|| format!("cannot use the PostgreSQL database at {}", redact_url(database)))?;
        return Ok(Arc::new(store));
    }
    let path = PathBuf::from(database);
    let store = SqliteStore::open(&path).with_context(|| format!("cannot open the database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// The URL without its password, for messages and logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn cli_context(account: devid_store::AccountId) -> ChangeContext {
    ChangeContext { account, key_id: None, request_id: Some("cli".into()) }
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Keys(cmd) => keys(cmd).await,
        Command::Integrations(cmd) => integrations(cmd).await,
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_format);
    let store = open_store(&args.db.database).await?;
    // Bound first, so the hint below names the real port (also with `--listen …:0`).
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| {
        format!("cannot listen on {}; is another process using it? Choose another with --listen", args.listen)
    })?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    if let Some(key) = store.bootstrap().await.context("cannot prepare the empty database")? {
        eprintln!();
        eprintln!(
            "devid: created account `default` and its first admin key. It is shown only this once; store it now:"
        );
        eprintln!();
        eprintln!("    {}", key.key);
        eprintln!();
        eprintln!("Try it:  curl -H \"x-api-key: {}\" http://{local}/v2/integrations", key.key);
        eprintln!();
    }
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
    };
    let connections = devid_server::ConnectionLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout.max(1)),
        max_connections: args.max_connections,
    };
    devid_server::serve_with(listener, AppState::new(store, limits), connections, shutdown_signal())
        .await
        .context("the server failed")?;
    tracing::info!("devid stopped");
    Ok(())
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

/// Resolves on SIGINT or SIGTERM; the server then stops accepting and drains.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

async fn keys(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create { account, scopes, label, expires_in, db } => {
            let store = open_store(&db.database).await?;
            let account =
                store.ensure_account(&account).await.with_context(|| format!("cannot use account `{account}`"))?;
            let expires_at = expires_in.map(|d| devid_store::now_micros() + d.as_micros() as i64);
            let created = store.create_key(&cli_context(account.id), NewKey { scopes, label, expires_at }).await?;
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
            let store = open_store(&db.database).await?;
            let account_id = match account {
                Some(name) => Some(
                    store.account_by_name(&name).await?.with_context(|| format!("there is no account `{name}`"))?.id,
                ),
                None => None,
            };
            let keys = store.list_keys(account_id).await?;
            println!(
                "{:<18} {:<12} {:<48} {:<8} {:<27} {:<27} LABEL",
                "ID", "ACCOUNT", "SCOPES", "STATE", "CREATED", "LAST USED"
            );
            for k in keys {
                let state = if k.revoked {
                    "revoked"
                } else if k.expires_at.is_some() {
                    "expiring"
                } else {
                    "active"
                };
                println!(
                    "{:<18} {:<12} {:<48} {:<8} {:<27} {:<27} {}",
                    k.id,
                    k.account,
                    devid_core::types::scopes_to_string(&k.scopes),
                    state,
                    k.created_at,
                    k.last_used_at.as_deref().unwrap_or("never"),
                    k.label
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id, db } => {
            let store = open_store(&db.database).await?;
            let ctx = cli_context(devid_store::AccountId(0));
            let info = store.revoke_key(&ctx, &id, true).await.with_context(|| format!("cannot revoke key `{id}`"))?;
            eprintln!("Revoked key {} of account `{}`.", info.id, info.account);
            Ok(())
        }
    }
}

async fn integrations(cmd: IntegrationsCommand) -> Result<()> {
    match cmd {
        IntegrationsCommand::Add { id, application_type, name, account, db } => {
            if id.is_some_and(|id| !(1..=MAX_INTEGRATION_ID).contains(&id)) {
                bail!("--id must be a whole number from 1 to {MAX_INTEGRATION_ID}; leave it out to have one assigned");
            }
            let store = open_store(&db.database).await?;
            let account = store.ensure_account(&account).await?;
            let created = store
                .create_integration(&cli_context(account.id), NewIntegration { id, application_type, name })
                .await
                .context("cannot add the integration")?;
            eprintln!(
                "Added integration {} ({}) `{}` to account `{}`.",
                created.id, created.application_type, created.name, account.name
            );
            Ok(())
        }
        IntegrationsCommand::List { account, db } => {
            let store = open_store(&db.database).await?;
            let account =
                store.account_by_name(&account).await?.with_context(|| format!("there is no account `{account}`"))?;
            println!("{:<6} {:<18} {:>10}  NAME", "ID", "TYPE", "IDENTITIES");
            for i in store.list_integrations(account.id).await? {
                println!("{:<6} {:<18} {:>10}  {}", i.id, i.application_type, i.identity_count, i.name);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_lifetime("30"), Ok(Duration::from_secs(30 * 86_400)));
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("5y").is_err());
        assert!(parse_lifetime("d").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://devid:s3cret@db:5432/devid"), "postgres://devid:***@db:5432/devid");
        assert_eq!(redact_url("postgres://devid@db/devid"), "postgres://devid@db/devid");
        assert_eq!(redact_url("./devid.db"), "./devid.db");
    }

    #[test]
    fn cli_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
