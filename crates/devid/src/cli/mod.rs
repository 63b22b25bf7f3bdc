//! The command line: `serve`, the admin commands that work on the database directly
//! (`keys`, `integrations`) and `backup`. Only `serve` and the commands that exist to
//! create something (`keys create`, `integrations add`) may create a database; every
//! other command refuses a database that does not exist, so a mistyped path is an
//! error rather than a new empty file. The client commands (`discover`, `import`,
//! `export`, `sync`, `doctor`) live in `crate::client` and never open a database.

mod admin;
mod backup;
mod docs;
mod matching;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use devid_core::types::{ApplicationType, Scope};
use devid_store::{ChangeContext, PostgresStore, SqliteStore, Store};

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
    /// SQLite file path or postgres:// URL. Only `serve`, `keys create` and
    /// `integrations add` create a missing SQLite file.
    #[arg(long, env = "DEVID_DATABASE", default_value = "./devid.db", global = true)]
    database: String,
}

impl DatabaseArg {
    fn is_postgres(&self) -> bool {
        is_postgres_url(&self.database)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server. On an empty database, creates account `default` and its
    /// first admin key, shown once (on a terminal) or written to a file (otherwise).
    Serve(ServeArgs),
    /// Create, list and revoke API keys directly in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Add and list integrations directly in the database.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
    /// Copy a SQLite database to a new file: a consistent snapshot, safe while
    /// `devid serve` runs. (For PostgreSQL use pg_dump.)
    Backup(BackupArgs),
    /// Find the contributors in a git repository's history and upload them to a
    /// running devid server.
    ///
    /// Reads every commit reachable from HEAD (merges included) with a built-in git
    /// reader (no `git` program needed), or the same facts from a CSV of commits. Each
    /// commit's author and each `Co-authored-by: Name <email>` trailer in its message
    /// count as kind `commit`; its committer, when the committer's email differs from
    /// the author's, as kind `other`. People are tallied per kind, email (ignoring case)
    /// and name, with the number of commits and the first and last time seen.
    ///
    /// The result is sent to POST /v2/contributors?source=LABEL&mode=replace as NDJSON:
    /// it replaces what was uploaded earlier with the same source label. Names and
    /// emails that are not UTF-8 are sent with U+FFFD replacements, and entries without
    /// an email are skipped; the summary counts both. With --out nothing is sent.
    ///
    /// Example: devid discover --git ~/src/numpy --integration 3 --api-key "$KEY"
    Discover(crate::client::discover::DiscoverArgs),
    /// Match authors offline: group the (name, email) pairs of a CSV into people with
    /// devid's matching rules and write each pair's person, to measure accuracy or
    /// preview what devid would link.
    Match(matching::MatchArgs),
    /// Upload an identities file (CSV or JSON) to a running server: checked offline
    /// first, then a dry run whose summary is printed, then applied on --yes or a yes
    /// at the prompt. With --mailmap, a git .mailmap becomes GIT identities.
    ///
    /// Exit codes: 0 applied (or previewed), 1 the file or the server refused the
    /// input (nothing applied), 2 usage (flags, key, URL, a missing file), 3 the server
    /// is unreachable, failing or busy.
    ///
    /// Example: devid import people.csv --yes
    Import(crate::client::import::ImportArgs),
    /// Download identities (CSV, or JSON records) matching the listing's filters.
    ///
    /// Example: devid export --integration-ids 3 -o github.csv
    Export(crate::client::export::ExportArgs),
    /// Make the server hold what a source file says, sending only the difference (one
    /// upload; with --prune, one delete, guarded by --max-deletes). Locked identities
    /// are reported and left alone. Same exit codes as `import`; a source whose
    /// deletions exceed the guard prints the plan, sends nothing and exits 1.
    ///
    /// Example: devid sync --source hr-export.csv --prune --every 1h
    Sync(crate::client::sync::SyncArgs),
    /// Check an identities file offline with the server's own rules: the same grouped
    /// errors with line numbers, no server needed. Exit 0 when valid, 1 when not.
    Doctor(crate::client::doctor::DoctorArgs),
    /// Print a shell completion script: `devid completions bash > /etc/bash_completion.d/devid`.
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff): `devid man > devid.1 && man ./devid.1`.
    Man,
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
    /// Minutes a review UI session (/ui) lasts unused before it must sign in again.
    #[arg(long, env = "DEVID_UI_SESSION_IDLE", default_value_t = 30, value_name = "MINUTES")]
    ui_session_idle: u64,
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
    /// Where the first admin key is written (mode 0600) when it is not shown on a
    /// terminal. Default: the SQLite file's path plus `.first-admin-key`, or
    /// `./devid-first-admin-key` for PostgreSQL.
    #[arg(long, env = "DEVID_FIRST_KEY_FILE")]
    first_key_file: Option<PathBuf>,
    /// Let webhooks reach this host, private networks and link-local addresses (for a
    /// receiver beside the server). Off by default: an admin key would otherwise make
    /// the server send requests to what it can reach and the key holder cannot.
    #[arg(long, env = "DEVID_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it (once: only its hash is stored). Creates the account,
    /// and a missing SQLite database.
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
    /// Revoke a key. Requests with it are refused (401) from then on.
    Revoke {
        /// The key's id: the third part of pat.<account>.<keyId>.<secret>, or the ID
        /// column of `devid keys list`.
        id: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
enum IntegrationsCommand {
    /// Add an integration. Creates the account, and a missing SQLite database.
    Add {
        /// Its id, a whole number from 1 to 2^53 − 1 unique in the account; left out,
        /// the largest id in the account plus one.
        #[arg(long)]
        id: Option<i64>,
        /// GITHUB, GITHUB_ENTERPRISE, GITLAB_CLOUD, GITLAB_SERVER, BITBUCKET_CLOUD,
        /// BITBUCKET_SERVER, AZURE_DEVOPS, JIRA, HARNESS_CODE, CUSTOM or GIT (commit
        /// authors by email, for `devid discover`).
        #[arg(long = "type", value_parser = parse_type)]
        application_type: ApplicationType,
        /// A name people recognise, such as "GitHub Cloud".
        #[arg(long)]
        name: String,
        /// Account the integration belongs to; created if it does not exist.
        #[arg(long, default_value = "default")]
        account: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List an account's integrations.
    List {
        /// Whose integrations to list.
        #[arg(long, default_value = "default")]
        account: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The new file to write; it must not exist yet.
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    db: DatabaseArg,
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

/// Whether a command may create the database it is pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    CreateIfMissing,
    MustExist,
}

fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

async fn open_store(database: &str, open: Open) -> Result<Arc<dyn Store>> {
    if is_postgres_url(database) {
        // PostgreSQL databases are made with `createdb`, never by devid; a missing one
        // fails to connect, with PostgreSQL's own message.
        let store = PostgresStore::connect(database)
            .await
            .with_context(|| format!("cannot use the PostgreSQL database at {}", redact_url(database)))?;
        return Ok(Arc::new(store));
    }
    let path = PathBuf::from(database);
    if open == Open::MustExist && !path.exists() {
        bail!(
            "There is no database at {}. Check --database (or DEVID_DATABASE); this command only reads an existing database, while `devid serve`, `devid keys create` and `devid integrations add` create one.",
            path.display()
        );
    }
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
        Command::Serve(args) => serve::serve(args).await,
        Command::Keys(cmd) => admin::keys(cmd).await,
        Command::Integrations(cmd) => admin::integrations(cmd).await,
        Command::Backup(args) => backup::backup(args),
        Command::Discover(args) => crate::client::discover::discover(args).await,
        Command::Match(args) => matching::run(args),
        Command::Import(args) => crate::client::import::import(args).await,
        Command::Export(args) => crate::client::export::export(args).await,
        Command::Sync(args) => crate::client::sync::sync(args).await,
        Command::Doctor(args) => crate::client::doctor::doctor(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man => docs::man(),
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
