//! Versioned, forward-only schema migrations. A migration, once released, is never
//! edited: a change is a new entry at the end.

use rusqlite::{Connection, TransactionBehavior};

pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE integrations (
    account_id        INTEGER NOT NULL REFERENCES accounts(id),
    id                INTEGER NOT NULL,
    application_type  TEXT NOT NULL,
    name              TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;

CREATE TABLE developers (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    email       TEXT NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (account_id, email)
);

-- `email` repeats the developer's email so that sorting and filtering by it is one
-- index range, not a join; a developer's email never changes, reassignment rewrites
-- both columns together.
CREATE TABLE identities (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    integration_id  INTEGER NOT NULL,
    identity_key    TEXT NOT NULL,
    identity        TEXT NOT NULL,
    developer_id    INTEGER NOT NULL REFERENCES developers(id),
    email           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    FOREIGN KEY (account_id, integration_id) REFERENCES integrations(account_id, id)
);
CREATE UNIQUE INDEX identities_by_key ON identities(account_id, integration_id, identity_key);
CREATE INDEX identities_by_email ON identities(account_id, email, integration_id, identity_key);
CREATE INDEX identities_by_identity ON identities(account_id, identity_key, integration_id);
CREATE INDEX identities_by_updated ON identities(account_id, updated_at, integration_id, identity_key);
CREATE INDEX identities_by_developer ON identities(developer_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    secret_hash   BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    label         TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_by_account ON api_keys(account_id);

CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    action          TEXT NOT NULL,
    key_id          TEXT,
    request_id      TEXT,
    integration_id  INTEGER,
    identity        TEXT,
    old_email       TEXT,
    new_email       TEXT,
    detail          TEXT
);
CREATE INDEX audit_by_account ON audit_events(account_id, id);
CREATE INDEX audit_by_time ON audit_events(account_id, at);
"#,
    ),
    (
        2,
        r#"
-- Bumped by every transaction that changes an account's identities, so readers can
-- cache what they derive (listing totals) until it moves.
ALTER TABLE accounts ADD COLUMN identities_version INTEGER NOT NULL DEFAULT 0;
-- Nothing looks identities up by developer; the index only slowed every insert.
DROP INDEX identities_by_developer;
"#,
    ),
    (
        3,
        r#"
-- The email index carries every listed column, so listings and exports in the default
-- order read the index alone instead of fetching each row from wherever it was written.
DROP INDEX identities_by_email;
CREATE INDEX identities_by_email ON identities(account_id, email, integration_id, identity_key, identity, created_at, updated_at);
"#,
    ),
    (
        4,
        r#"
-- Indexes a bulk load dropped (it writes faster without them) and that are still to be
-- built again. Filled in the load's own transaction and emptied by the rebuild's, so a
-- stop in between leaves the list for the next start.
CREATE TABLE pending_indexes (
    name  TEXT PRIMARY KEY,
    sql   TEXT NOT NULL
);
"#,
    ),
    (
        5,
        r#"
-- Secrets of the database itself (the key that signs listing cursors), so that every
-- process opening it signs and checks alike. Both backends have this table.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    secret      BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
"#,
    ),
    (
        6,
        r#"
-- Contributors: accounts seen in activity (both backends have these tables). Totals
-- are kept on the contributor so listings sort by an index; each source's own report is
-- a row of contributor_sources, so re-sending a source replaces exactly its share.
-- last_seen is 0 when unknown: a NULL would drop out of keyset comparisons.
CREATE TABLE contributors (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    integration_id  INTEGER NOT NULL,
    identity_key    TEXT NOT NULL,
    identity        TEXT NOT NULL,
    name            TEXT,
    email           TEXT,
    commits         INTEGER NOT NULL,
    prs             INTEGER NOT NULL,
    reviews         INTEGER NOT NULL,
    issues          INTEGER NOT NULL,
    others          INTEGER NOT NULL,
    activity        INTEGER NOT NULL,
    first_seen      INTEGER,
    last_seen       INTEGER NOT NULL,
    bot_rule        TEXT,
    is_bot          INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX contributors_by_key ON contributors(account_id, integration_id, identity_key);
CREATE INDEX contributors_by_activity ON contributors(account_id, activity, integration_id, identity_key);
CREATE INDEX contributors_by_last_seen ON contributors(account_id, last_seen, integration_id, identity_key);
-- is_bot rides along so that counting a status reads this index alone.
CREATE INDEX contributors_by_identity ON contributors(account_id, identity_key, integration_id, is_bot);
CREATE INDEX contributor_bots_by_activity ON contributors(account_id, activity, integration_id, identity_key) WHERE is_bot = 1;

-- One source's report of one contributor. names and emails are JSON arrays of
-- [value, count] pairs in first-seen order: read whole, never queried inside.
CREATE TABLE contributor_sources (
    contributor_id  INTEGER NOT NULL,
    source          TEXT NOT NULL,
    account_id      INTEGER NOT NULL,
    commits         INTEGER NOT NULL,
    prs             INTEGER NOT NULL,
    reviews         INTEGER NOT NULL,
    issues          INTEGER NOT NULL,
    others          INTEGER NOT NULL,
    first_seen      INTEGER,
    last_seen       INTEGER,
    names           TEXT NOT NULL,
    emails          TEXT NOT NULL,
    PRIMARY KEY (contributor_id, source)
) WITHOUT ROWID;
CREATE INDEX contributor_sources_by_source ON contributor_sources(account_id, source, contributor_id);

-- A person's bot decisions, keyed like identities so they hold before a contributor
-- appears and after it is removed: no ingest or rule change ever overrides them.
CREATE TABLE contributor_bot_flags (
    account_id      INTEGER NOT NULL,
    integration_id  INTEGER NOT NULL,
    identity_key    TEXT NOT NULL,
    identity        TEXT NOT NULL,
    is_bot          INTEGER NOT NULL,
    key_id          TEXT,
    set_at          INTEGER NOT NULL,
    PRIMARY KEY (account_id, integration_id, identity_key)
) WITHOUT ROWID;

-- Bumped by every transaction that changes contributors or bot decisions.
ALTER TABLE accounts ADD COLUMN contributors_version INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        7,
        r#"
-- Matching decisions (issue 14). Suggestions are computed, never stored; what a person
-- decided is. A rejection's pairings become cannot-links the engine must obey. Parties
-- are `contributor<US>integration<US>identity key` or `developer<US>email`, smaller
-- first, so one pairing is one row.
CREATE TABLE match_decisions (
    account_id      INTEGER NOT NULL,
    suggestion_id   TEXT NOT NULL,
    decision        TEXT NOT NULL,
    key_id          TEXT,
    decided_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, suggestion_id)
) WITHOUT ROWID;
CREATE TABLE match_cannot_links (
    account_id      INTEGER NOT NULL,
    party_a         TEXT NOT NULL,
    party_b         TEXT NOT NULL,
    suggestion_id   TEXT NOT NULL,
    key_id          TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, party_a, party_b)
) WITHOUT ROWID;
ALTER TABLE accounts ADD COLUMN decisions_version INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        8,
        r#"
-- Provenance and locks (issue 14): how each identity was made (upload, csv,
-- previous-api, suggestion, ui, cli; `unrecorded` before this), by which key, and
-- whether an upload may move it. Written by the statements that create or move a row.
ALTER TABLE identities ADD COLUMN source TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE identities ADD COLUMN source_key_id TEXT;
ALTER TABLE identities ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        9,
        r#"
-- Change sets (issue 15). Every write that changed something is one change set: the
-- account's audit events with ids in (after_event, last_event]. Writes to one account
-- are serialised (one writer here, an advisory lock on PostgreSQL), so a write's events
-- are exactly the account's events after the previous change set's; no event row
-- carries its change set, and none is rewritten. counts is a JSON object, action to
-- number of events.
CREATE TABLE change_sets (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    key_id          TEXT,
    request_id      TEXT,
    after_event     INTEGER NOT NULL,
    last_event      INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    counts          TEXT NOT NULL,
    reverts         INTEGER
);
CREATE INDEX change_sets_by_account ON change_sets(account_id, id);
-- History before change sets: one per write, found as a run of the account's events
-- with one request id and one time (a write stamps all its events with both).
WITH marked AS (
    SELECT id, account_id, at, action, key_id, request_id,
        CASE WHEN LAG(at) OVER w IS at AND LAG(request_id) OVER w IS request_id THEN 0 ELSE 1 END AS starts
    FROM audit_events WINDOW w AS (PARTITION BY account_id ORDER BY id)
), grouped AS (
    SELECT *, SUM(starts) OVER (PARTITION BY account_id ORDER BY id) AS run FROM marked
), per_action AS (
    SELECT account_id, run, action, COUNT(*) AS n, MIN(id) AS first_id, MAX(id) AS last_id, MIN(at) AS at,
        MAX(key_id) AS key_id, MAX(request_id) AS request_id
    FROM grouped GROUP BY account_id, run, action
)
INSERT INTO change_sets (account_id, at, kind, key_id, request_id, after_event, last_event, events, counts)
SELECT account_id, MIN(at),
    CASE
        WHEN SUM(CASE WHEN action LIKE 'suggestion.%' THEN n ELSE 0 END) > 0 THEN 'suggestion'
        WHEN SUM(CASE WHEN action LIKE 'integration.%' THEN n ELSE 0 END) > 0 THEN 'integration'
        WHEN SUM(CASE WHEN action LIKE 'key.%' THEN n ELSE 0 END) > 0 THEN 'key'
        WHEN SUM(CASE WHEN action IN ('identity.locked', 'identity.unlocked') THEN n ELSE 0 END) > 0 THEN 'lock'
        WHEN SUM(CASE WHEN action LIKE 'contributors.%' THEN n ELSE 0 END) > 0 THEN 'contributors'
        WHEN SUM(CASE WHEN action LIKE 'contributor.%' THEN n ELSE 0 END) > 0 THEN 'bot-flag'
        WHEN SUM(CASE WHEN action = 'identity.deleted' THEN n ELSE 0 END) = SUM(n) THEN 'delete'
        ELSE 'upload'
    END,
    MAX(key_id), MAX(request_id), MIN(first_id) - 1, MAX(last_id), SUM(n), json_group_object(action, n)
FROM per_action GROUP BY account_id, run ORDER BY MIN(first_id);
"#,
    ),
    (
        10,
        r#"
-- Webhooks (issue 15): where to announce change sets (kinds: comma-separated, empty for
-- all; the secret signs each delivery, so it is kept as given), and the outbox. A
-- change's transaction writes its deliveries as it records its change set; the
-- dispatcher sends each webhook's oldest pending delivery when it is due.
CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    url             TEXT NOT NULL,
    kinds           TEXT NOT NULL,
    secret          TEXT NOT NULL,
    key_id          TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX webhooks_by_account ON webhooks(account_id, id);
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL,
    webhook_id      INTEGER NOT NULL,
    change_set_id   INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER,
    expires_at      INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX deliveries_by_webhook ON webhook_deliveries(webhook_id, id);
CREATE INDEX deliveries_by_status ON webhook_deliveries(status, webhook_id, id);
"#,
    ),
    (
        11,
        r#"
-- Review UI sign-ins (issue 16): a session lives on the API key it was opened with,
-- found by the SHA-256 of its token (the cookie's value is never stored).
CREATE TABLE ui_sessions (
    token_hash      TEXT PRIMARY KEY,
    key_id          TEXT NOT NULL,
    csrf_token      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL
);
CREATE INDEX ui_sessions_by_key ON ui_sessions(key_id);
CREATE INDEX ui_sessions_by_last_seen ON ui_sessions(last_seen_at);
"#,
    ),
    (
        12,
        r#"
-- The change feed's `email` filter (a developer's history in the review UI) finds the
-- events naming an address from these, instead of reading every event of each change
-- set it passes (a million-row upload is one change set of a million events).
CREATE INDEX audit_by_new_email ON audit_events(account_id, new_email, id) WHERE new_email IS NOT NULL;
CREATE INDEX audit_by_old_email ON audit_events(account_id, old_email, id) WHERE old_email IS NOT NULL;
"#,
    ),
    (
        13,
        r#"
-- The addresses each change set names, for the change feed's `email` filter, in place
-- of migration 12's two indexes: those wrote two index entries for every event on the
-- small-upload path (SQLite's one writer; 15-30 % of S6), where a ten-row move between
-- two developers names two addresses. A change set of up to a few thousand events is
-- listed in its own transaction; a larger one after its write is answered, and until
-- then (emails_indexed = 0) the filter reads its events (docs/changes.md).
-- (A bulk load that stopped before rebuilding may have dropped them already.)
DROP INDEX IF EXISTS audit_by_new_email;
DROP INDEX IF EXISTS audit_by_old_email;
DELETE FROM pending_indexes WHERE name IN ('audit_by_new_email', 'audit_by_old_email');
CREATE TABLE change_set_emails (
    account_id      INTEGER NOT NULL,
    email           TEXT NOT NULL,
    change_set_id   INTEGER NOT NULL,
    PRIMARY KEY (account_id, email, change_set_id)
) WITHOUT ROWID;
ALTER TABLE change_sets ADD COLUMN emails_indexed INTEGER NOT NULL DEFAULT 0;
CREATE INDEX change_sets_emails_pending ON change_sets(account_id, id) WHERE emails_indexed = 0;
"#,
    ),
    (
        14,
        r#"
-- The UTC offsets a source saw a contributor's activity in, as `+01:00 +02:00` (empty
-- when it did not say): the matcher's time-zone evidence. Read whole, never queried inside.
ALTER TABLE contributor_sources ADD COLUMN utc_offsets TEXT NOT NULL DEFAULT '';
"#,
    ),
];

/// Applies what is missing, inside one immediate transaction so that two processes
/// starting on the same file cannot both migrate. Returns how many were applied.
pub fn run(conn: &mut Connection) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (version, crate::now_micros()),
        )?;
        applied += 1;
    }
    tx.commit()?;
    Ok(applied)
}
