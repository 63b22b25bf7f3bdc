//! SQL for the read paths, built once for both backends: only the placeholder style and
//! the case-insensitive match differ.

use crate::AccountId;
use crate::contributors::{ContributorPaging, ContributorQuery, ContributorSort, ContributorStatus};
use crate::query::{AuditQuery, CursorKey, IdentityQuery, Paging, SortKey, SortOrder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
    dialect: Dialect,
}

impl Sql {
    pub(crate) fn new(dialect: Dialect) -> Self {
        Self { text: String::new(), args: Vec::new(), dialect }
    }

    /// Adds an argument and returns its placeholder.
    pub(crate) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        match self.dialect {
            Dialect::Sqlite => "?".into(),
            Dialect::Postgres => format!("${}", self.args.len()),
        }
    }

    fn list(&mut self, args: impl IntoIterator<Item = Arg>) -> String {
        args.into_iter().map(|a| self.arg(a)).collect::<Vec<_>>().join(",")
    }
}

/// The identity page query, and the count query when the total is wanted. The page asks
/// for one row more than its size, to know whether there is a next page.
pub struct IdentitySql {
    pub count: Option<Sql>,
    pub page: Sql,
    pub limit: Option<u64>,
}

/// The application type comes from a correlated lookup rather than a join, so the
/// planner only ever chooses among the identities indexes (a join let SQLite start
/// from the few integrations and sort every identity in memory).
pub const IDENTITY_COLUMNS: &str = "d.email, d.integration_id,
    (SELECT i.application_type FROM integrations i WHERE i.account_id = d.account_id AND i.id = d.integration_id),
    d.identity, d.created_at, d.updated_at, d.identity_key, d.source, d.locked";
/// [`IDENTITY_COLUMNS`] with constants for `source` and `locked`: every column it
/// reads is in `identities_by_email`, so a walk in email order never visits the table.
pub const IDENTITY_COLUMNS_WITHOUT_PROVENANCE: &str = "d.email, d.integration_id,
    (SELECT i.application_type FROM integrations i WHERE i.account_id = d.account_id AND i.id = d.integration_id),
    d.identity, d.created_at, d.updated_at, d.identity_key, '' AS source, 0 AS locked";

fn identity_filters(sql: &mut Sql, account: AccountId, q: &IdentityQuery) -> String {
    let mut filters = vec![format!("d.account_id = {}", sql.arg(Arg::Int(account.0)))];
    if !q.emails.is_empty() {
        let list = sql.list(q.emails.iter().map(|e| Arg::Text(e.clone())));
        filters.push(format!("d.email IN ({list})"));
    }
    if !q.integration_ids.is_empty() {
        let list = sql.list(q.integration_ids.iter().map(|i| Arg::Int(*i)));
        filters.push(format!("d.integration_id IN ({list})"));
    }
    if !q.application_types.is_empty() {
        let account_arg = sql.arg(Arg::Int(account.0));
        let list = sql.list(q.application_types.iter().map(|t| Arg::Text(t.as_str().to_string())));
        filters.push(format!(
            "d.integration_id IN (SELECT id FROM integrations WHERE account_id = {account_arg} AND application_type IN ({list}))"
        ));
    }
    if let Some(search) = &q.search {
        let pattern = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let (a, b) = (sql.arg(Arg::Text(pattern.clone())), sql.arg(Arg::Text(pattern)));
        let like = match sql.dialect {
            // Both fold ASCII case only: SQLite's LIKE by design, PostgreSQL's ILIKE because
            // the searched columns are COLLATE "C".
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        // identity_key is the identity folded as its system folds it, so matching it
        // case-insensitively equals matching the displayed identity, and it sits in the
        // email index beside the email: the search reads one index, not the table.
        filters.push(format!("(d.email {like} {a} ESCAPE '\\' OR d.identity_key {like} {b} ESCAPE '\\')"));
    }
    if let Some(after) = q.updated_after {
        filters.push(format!("d.updated_at > {}", sql.arg(Arg::Int(after))));
    }
    filters.join(" AND ")
}

/// The columns a listing is ordered by: the sort key, then enough of
/// (integration_id, identity_key) — unique in an account — to make the order total.
/// Each tuple is exactly the tail of one index, so no sort ever runs in memory.
fn sort_columns(key: SortKey) -> Vec<&'static str> {
    match key {
        SortKey::Email => vec!["d.email", "d.integration_id", "d.identity_key"],
        SortKey::IntegrationId => vec!["d.integration_id", "d.identity_key"],
        SortKey::Identity => vec!["d.identity_key", "d.integration_id"],
        SortKey::UpdatedAt => vec!["d.updated_at", "d.integration_id", "d.identity_key"],
    }
}

pub fn identity_sql(dialect: Dialect, account: AccountId, q: &IdentityQuery) -> Result<IdentitySql, String> {
    let count = q.count_total.then(|| {
        let mut sql = Sql::new(dialect);
        let filters = identity_filters(&mut sql, account, q);
        sql.text = format!("SELECT COUNT(*) FROM identities d WHERE {filters}");
        sql
    });

    let mut sql = Sql::new(dialect);
    let mut filters = identity_filters(&mut sql, account, q);
    let dir = match q.order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    let columns = sort_columns(q.sort);
    let order = columns.iter().map(|c| format!("{c} {dir}")).collect::<Vec<_>>().join(", ");
    let (limit, offset) = match &q.paging {
        Paging::Offset { page_index, page_size } => (Some(*page_size), page_index.saturating_mul(*page_size)),
        Paging::After { cursor, page_size } => {
            filters.push_str(&keyset_filter(&mut sql, q, &columns, cursor)?);
            (Some(*page_size), 0)
        }
        Paging::Window { after, skip, page_size } => {
            if let Some(cursor) = after {
                filters.push_str(&keyset_filter(&mut sql, q, &columns, cursor)?);
            }
            (Some(*page_size), *skip)
        }
        Paging::All => (None, 0),
    };
    let limit_sql = match limit {
        Some(size) => format!(" LIMIT {} OFFSET {offset}", size + 1),
        None => String::new(),
    };
    let columns = if q.provenance { IDENTITY_COLUMNS } else { IDENTITY_COLUMNS_WITHOUT_PROVENANCE };
    sql.text = format!("SELECT {columns} FROM identities d WHERE {filters} ORDER BY {order}{limit_sql}");
    Ok(IdentitySql { count, page: sql, limit })
}

/// ` AND (sort columns) > (the cursor's values)` (`<` descending): the rows after it.
fn keyset_filter(sql: &mut Sql, q: &IdentityQuery, columns: &[&str], cursor: &CursorKey) -> Result<String, String> {
    let cmp = if q.order == SortOrder::Asc { ">" } else { "<" };
    let mut position = Vec::with_capacity(3);
    for column in columns {
        position.push(match *column {
            "d.integration_id" => sql.arg(Arg::Int(cursor.integration_id)),
            "d.identity_key" if q.sort != SortKey::Identity => sql.arg(Arg::Text(cursor.identity_key.clone())),
            _ => {
                let raw = cursor.value.as_ref().ok_or("the cursor does not match the sort key")?;
                sql.arg(if q.sort == SortKey::UpdatedAt {
                    Arg::Int(raw.parse().map_err(|_| "the cursor is not valid".to_string())?)
                } else {
                    Arg::Text(raw.clone())
                })
            }
        });
    }
    Ok(format!(" AND ({}) {cmp} ({})", columns.join(", "), position.join(", ")))
}

pub const AUDIT_COLUMNS: &str =
    "id, at, action, key_id, request_id, integration_id, identity, old_email, new_email, detail";

fn audit_filters(sql: &mut Sql, account: AccountId, q: &AuditQuery) -> String {
    let mut filters = vec![format!("account_id = {}", sql.arg(Arg::Int(account.0)))];
    if let Some(from) = q.from {
        filters.push(format!("at >= {}", sql.arg(Arg::Int(from))));
    }
    if let Some(to) = q.to {
        filters.push(format!("at < {}", sql.arg(Arg::Int(to))));
    }
    if let Some(id) = q.integration_id {
        filters.push(format!("integration_id = {}", sql.arg(Arg::Int(id))));
    }
    if let Some(identity) = &q.identity {
        filters.push(format!("identity = {}", sql.arg(Arg::Text(identity.clone()))));
    }
    if let Some(email) = &q.email {
        let (a, b) = (sql.arg(Arg::Text(email.clone())), sql.arg(Arg::Text(email.clone())));
        filters.push(format!("(old_email = {a} OR new_email = {b})"));
    }
    filters.join(" AND ")
}

/// The audit count and page queries (newest first).
pub fn audit_sql(dialect: Dialect, account: AccountId, q: &AuditQuery) -> (Sql, Sql) {
    let mut count = Sql::new(dialect);
    let filters = audit_filters(&mut count, account, q);
    count.text = format!("SELECT COUNT(*) FROM audit_events WHERE {filters}");
    let mut page = Sql::new(dialect);
    let filters = audit_filters(&mut page, account, q);
    page.text = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE {filters} ORDER BY id DESC LIMIT {} OFFSET {}",
        q.page_size + 1,
        q.page_index.saturating_mul(q.page_size)
    );
    (count, page)
}

/// The keyset position after `last`, for the sort in use.
pub fn next_cursor(
    sort: SortKey,
    email: &str,
    integration_id: i64,
    identity_key: &str,
    updated_at: i64,
) -> crate::query::CursorKey {
    crate::query::CursorKey {
        value: match sort {
            SortKey::Email => Some(email.to_string()),
            SortKey::Identity => Some(identity_key.to_string()),
            SortKey::UpdatedAt => Some(updated_at.to_string()),
            SortKey::IntegrationId => None,
        },
        integration_id,
        identity_key: identity_key.to_string(),
    }
}

/// Columns of a contributor listing, read by `contributor_from_row` in each backend in
/// this order. The type, a manual bot decision and the mapped email are correlated
/// lookups on unique keys, so the planner walks only the contributors index it sorts by.
pub const CONTRIBUTOR_COLUMNS: &str = "c.id, c.integration_id,
    (SELECT i.application_type FROM integrations i WHERE i.account_id = c.account_id AND i.id = c.integration_id),
    c.identity, c.name, c.email, c.commits, c.prs, c.reviews, c.issues, c.others, c.first_seen, c.last_seen,
    c.bot_rule, c.is_bot,
    (SELECT f.is_bot FROM contributor_bot_flags f
      WHERE f.account_id = c.account_id AND f.integration_id = c.integration_id AND f.identity_key = c.identity_key),
    (SELECT d.email FROM identities d
      WHERE d.account_id = c.account_id AND d.integration_id = c.integration_id AND d.identity_key = c.identity_key),
    c.identity_key, c.activity";

/// An identity with the contributor's key exists: the contributor is mapped.
const MAPPED: &str = "EXISTS (SELECT 1 FROM identities d
    WHERE d.account_id = c.account_id AND d.integration_id = c.integration_id AND d.identity_key = c.identity_key)";

fn contributor_filters(sql: &mut Sql, account: AccountId, q: &ContributorQuery) -> String {
    let mut filters = vec![format!("c.account_id = {}", sql.arg(Arg::Int(account.0)))];
    match q.status {
        None => {}
        Some(ContributorStatus::Bot) => filters.push("c.is_bot = 1".into()),
        Some(ContributorStatus::Mapped) => filters.push(format!("c.is_bot = 0 AND {MAPPED}")),
        Some(ContributorStatus::Unmapped) => filters.push(format!("c.is_bot = 0 AND NOT {MAPPED}")),
    }
    if !q.integration_ids.is_empty() {
        let list = sql.list(q.integration_ids.iter().map(|i| Arg::Int(*i)));
        filters.push(format!("c.integration_id IN ({list})"));
    }
    if let Some(search) = &q.search {
        let pattern = format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let like = match sql.dialect {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        let args: Vec<String> = (0..3).map(|_| sql.arg(Arg::Text(pattern.clone()))).collect();
        filters.push(format!(
            "(c.identity_key {like} {} ESCAPE '\\' OR c.name {like} {} ESCAPE '\\' OR c.email {like} {} ESCAPE '\\')",
            args[0], args[1], args[2]
        ));
    }
    if let Some(email) = &q.developer {
        // From the developer's identities (few, by the email index) to their contributors
        // (by the unique key), never a walk of every contributor.
        let (account_arg, email_arg) = (sql.arg(Arg::Int(account.0)), sql.arg(Arg::Text(email.clone())));
        filters.push(format!(
            "(c.integration_id, c.identity_key) IN (SELECT d.integration_id, d.identity_key FROM identities d
              WHERE d.account_id = {account_arg} AND d.email = {email_arg})"
        ));
    }
    if let Some(after) = q.active_after {
        filters.push(format!("c.last_seen > {}", sql.arg(Arg::Int(after))));
    }
    filters.join(" AND ")
}

/// The sort columns and direction: each tuple is the tail of one contributors index.
fn contributor_order(sort: ContributorSort) -> (&'static [&'static str], &'static str) {
    match sort {
        ContributorSort::Activity => (&["c.activity", "c.integration_id", "c.identity_key"], "DESC"),
        ContributorSort::LastSeen => (&["c.last_seen", "c.integration_id", "c.identity_key"], "DESC"),
        ContributorSort::Identity => (&["c.identity_key", "c.integration_id"], "ASC"),
    }
}

pub struct ContributorSql {
    pub count: Option<Sql>,
    pub page: Sql,
    pub limit: Option<u64>,
}

pub fn contributor_sql(dialect: Dialect, account: AccountId, q: &ContributorQuery) -> Result<ContributorSql, String> {
    let count = q.count_total.then(|| {
        let mut sql = Sql::new(dialect);
        let filters = contributor_filters(&mut sql, account, q);
        sql.text = format!("SELECT COUNT(*) FROM contributors c WHERE {filters}");
        sql
    });
    let mut sql = Sql::new(dialect);
    let mut filters = contributor_filters(&mut sql, account, q);
    let (columns, dir) = contributor_order(q.sort);
    let (limit, offset) = match &q.paging {
        ContributorPaging::Offset { page_index, page_size } => {
            (Some(*page_size), page_index.saturating_mul(*page_size))
        }
        ContributorPaging::After { cursor, page_size } => {
            let value = cursor.value.as_ref().ok_or("the cursor does not match the sort")?;
            let value = match q.sort {
                ContributorSort::Identity => None,
                _ => Some(sql.arg(Arg::Int(value.parse().map_err(|_| "the cursor is not valid".to_string())?))),
            };
            let mut position = Vec::new();
            if let Some(v) = value {
                position.push(v);
                position.push(sql.arg(Arg::Int(cursor.integration_id)));
                position.push(sql.arg(Arg::Text(cursor.identity_key.clone())));
            } else {
                position.push(sql.arg(Arg::Text(cursor.identity_key.clone())));
                position.push(sql.arg(Arg::Int(cursor.integration_id)));
            }
            let cmp = if dir == "ASC" { ">" } else { "<" };
            filters.push_str(&format!(" AND ({}) {cmp} ({})", columns.join(", "), position.join(", ")));
            (Some(*page_size), 0)
        }
        ContributorPaging::All => (None, 0),
    };
    // A developer's few contributors are found from their identities; SQLite would
    // rather walk the whole sort index to skip sorting them, so the sort is made one no
    // index can give (unary `+`), and it sorts the handful found.
    let unindexed = if q.developer.is_some() && dialect == Dialect::Sqlite { "+" } else { "" };
    let order = columns.iter().map(|c| format!("{unindexed}{c} {dir}")).collect::<Vec<_>>().join(", ");
    let limit_sql = match limit {
        Some(size) => format!(" LIMIT {} OFFSET {offset}", size + 1),
        None => String::new(),
    };
    sql.text = format!("SELECT {CONTRIBUTOR_COLUMNS} FROM contributors c WHERE {filters} ORDER BY {order}{limit_sql}");
    Ok(ContributorSql { count, page: sql, limit })
}

/// The keyset position after a contributor, for the sort in use.
pub fn contributor_cursor(
    sort: ContributorSort,
    activity: i64,
    last_seen: i64,
    integration_id: i64,
    identity_key: &str,
) -> CursorKey {
    CursorKey {
        value: Some(match sort {
            ContributorSort::Activity => activity.to_string(),
            ContributorSort::LastSeen => last_seen.to_string(),
            ContributorSort::Identity => identity_key.to_string(),
        }),
        integration_id,
        identity_key: identity_key.to_string(),
    }
}
