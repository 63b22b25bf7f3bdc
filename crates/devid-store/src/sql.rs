//! SQL for the read paths, built once for both backends: only the placeholder style and
//! the case-insensitive match differ.

use crate::AccountId;
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
    fn new(dialect: Dialect) -> Self {
        Self { text: String::new(), args: Vec::new(), dialect }
    }

    /// Adds an argument and returns its placeholder.
    fn arg(&mut self, a: Arg) -> String {
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
    d.identity, d.created_at, d.updated_at, d.identity_key";

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
            // SQLite's LIKE folds ASCII case only; PostgreSQL's ILIKE folds all of Unicode.
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
    sql.text = format!("SELECT {IDENTITY_COLUMNS} FROM identities d WHERE {filters} ORDER BY {order}{limit_sql}");
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
