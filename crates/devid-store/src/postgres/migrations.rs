//! Versioned, forward-only migrations for PostgreSQL. Replicas starting together take a
//! session advisory lock so exactly one applies what is missing.

use tokio_postgres::Client;

/// Advisory lock keys: devid's class id, then 0 for migrations or an account id.
pub const LOCK_CLASS: i32 = 0x6465_7669; // "devi"
pub const MIGRATION_LOCK: i32 = 0;

pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE accounts (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE integrations (
    account_id        BIGINT NOT NULL REFERENCES accounts(id),
    id                BIGINT NOT NULL,
    application_type  TEXT NOT NULL,
    name              TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

-- Text compared and sorted byte-wise ("C"), as SQLite does, so both backends order
-- listings identically and keyset cursors mean the same thing on each.
CREATE TABLE developers (
    id          BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    email       TEXT COLLATE "C" NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (account_id, email)
);

CREATE TABLE identities (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    integration_id  BIGINT NOT NULL,
    identity_key    TEXT COLLATE "C" NOT NULL,
    identity        TEXT NOT NULL,
    developer_id    BIGINT NOT NULL REFERENCES developers(id),
    email           TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    FOREIGN KEY (account_id, integration_id) REFERENCES integrations(account_id, id)
);
CREATE UNIQUE INDEX identities_by_key ON identities(account_id, integration_id, identity_key);
CREATE INDEX identities_by_email ON identities(account_id, email, integration_id, identity_key);
CREATE INDEX identities_by_identity ON identities(account_id, identity_key, integration_id);
CREATE INDEX identities_by_updated ON identities(account_id, updated_at, integration_id, identity_key);
CREATE INDEX identities_by_developer ON identities(developer_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    account_id    BIGINT NOT NULL REFERENCES accounts(id),
    secret_hash   BYTEA NOT NULL,
    scopes        TEXT NOT NULL,
    label         TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    expires_at    BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_by_account ON api_keys(account_id);

CREATE TABLE audit_events (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    action          TEXT NOT NULL,
    key_id          TEXT,
    request_id      TEXT,
    integration_id  BIGINT,
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
ALTER TABLE accounts ADD COLUMN identities_version BIGINT NOT NULL DEFAULT 0;
DROP INDEX identities_by_developer;
"#,
    ),
    (
        3,
        r#"
DROP INDEX identities_by_email;
CREATE INDEX identities_by_email ON identities(account_id, email, integration_id, identity_key)
    INCLUDE (identity, created_at, updated_at);
"#,
    ),
    (
        4,
        r#"
-- Secrets of the database itself (the key that signs listing cursors), shared by every
-- replica. Both backends have this table.
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    secret      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
"#,
    ),
    (
        5,
        r#"
-- Contributors, as SQLite migration 6 adds them: accounts seen in activity, each source's
-- report apart, and manual bot decisions that outlive every ingest. Counts and times are
-- BIGINT; is_bot is INTEGER 0/1, not BOOLEAN, so the listing SQL shared with SQLite
-- (`is_bot = 1`, `is_bot = 0`) runs unchanged. Keys and source labels compare byte-wise
-- ("C"), as on SQLite, so both backends list in one order and keyset cursors agree; name
-- and email are "C" too, so ILIKE folds ASCII case only, as SQLite's LIKE does, and a
-- search finds the same contributors on both. last_seen is 0 when unknown: a NULL would
-- drop out of keyset comparisons.
CREATE TABLE contributors (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    integration_id  BIGINT NOT NULL,
    identity_key    TEXT COLLATE "C" NOT NULL,
    identity        TEXT NOT NULL,
    name            TEXT COLLATE "C",
    email           TEXT COLLATE "C",
    commits         BIGINT NOT NULL,
    prs             BIGINT NOT NULL,
    reviews         BIGINT NOT NULL,
    issues          BIGINT NOT NULL,
    others          BIGINT NOT NULL,
    activity        BIGINT NOT NULL,
    first_seen      BIGINT,
    last_seen       BIGINT NOT NULL,
    bot_rule        TEXT,
    is_bot          INTEGER NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX contributors_by_key ON contributors(account_id, integration_id, identity_key);
CREATE INDEX contributors_by_activity ON contributors(account_id, activity, integration_id, identity_key);
CREATE INDEX contributors_by_last_seen ON contributors(account_id, last_seen, integration_id, identity_key);
-- is_bot rides along so that counting a status reads this index alone.
CREATE INDEX contributors_by_identity ON contributors(account_id, identity_key, integration_id, is_bot);
CREATE INDEX contributor_bots_by_activity ON contributors(account_id, activity, integration_id, identity_key)
    WHERE is_bot = 1;

-- One source's report of one contributor. names and emails are JSON arrays of
-- [value, count] pairs: read whole, never queried inside.
CREATE TABLE contributor_sources (
    contributor_id  BIGINT NOT NULL,
    source          TEXT COLLATE "C" NOT NULL,
    account_id      BIGINT NOT NULL,
    commits         BIGINT NOT NULL,
    prs             BIGINT NOT NULL,
    reviews         BIGINT NOT NULL,
    issues          BIGINT NOT NULL,
    others          BIGINT NOT NULL,
    first_seen      BIGINT,
    last_seen       BIGINT,
    names           TEXT NOT NULL,
    emails          TEXT NOT NULL,
    PRIMARY KEY (contributor_id, source)
);
CREATE INDEX contributor_sources_by_source ON contributor_sources(account_id, source, contributor_id);

-- A person's bot decisions, keyed like identities so they hold before a contributor
-- appears and after it is removed.
CREATE TABLE contributor_bot_flags (
    account_id      BIGINT NOT NULL,
    integration_id  BIGINT NOT NULL,
    identity_key    TEXT COLLATE "C" NOT NULL,
    identity        TEXT NOT NULL,
    is_bot          INTEGER NOT NULL,
    key_id          TEXT,
    set_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, integration_id, identity_key)
);

-- Bumped by every transaction that changes contributors or bot decisions.
ALTER TABLE accounts ADD COLUMN contributors_version BIGINT NOT NULL DEFAULT 0;
"#,
    ),
    (
        6,
        r#"
-- Matching decisions (issue 14); see the SQLite migration 7 for the reasoning.
CREATE TABLE match_decisions (
    account_id      BIGINT NOT NULL,
    suggestion_id   TEXT NOT NULL,
    decision        TEXT NOT NULL,
    key_id          TEXT,
    decided_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, suggestion_id)
);
CREATE TABLE match_cannot_links (
    account_id      BIGINT NOT NULL,
    party_a         TEXT NOT NULL,
    party_b         TEXT NOT NULL,
    suggestion_id   TEXT NOT NULL,
    key_id          TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, party_a, party_b)
);
ALTER TABLE accounts ADD COLUMN decisions_version BIGINT NOT NULL DEFAULT 0;
"#,
    ),
    (
        7,
        r#"
-- Provenance and locks (issue 14); see the SQLite migration 8. locked is INTEGER 0/1 as is_bot is.
ALTER TABLE identities ADD COLUMN source TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE identities ADD COLUMN source_key_id TEXT;
ALTER TABLE identities ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        8,
        r#"
-- Change sets (issue 15); see the SQLite migration 9. Ids come from one sequence, but a
-- change set's events are read with its account: other accounts' writes interleave.
CREATE TABLE change_sets (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    key_id          TEXT,
    request_id      TEXT,
    after_event     BIGINT NOT NULL,
    last_event      BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    counts          TEXT NOT NULL,
    reverts         BIGINT
);
CREATE INDEX change_sets_by_account ON change_sets(account_id, id);
INSERT INTO change_sets (account_id, at, kind, key_id, request_id, after_event, last_event, events, counts)
WITH marked AS (
    SELECT id, account_id, at, action, key_id, request_id,
        CASE WHEN LAG(at) OVER w IS NOT DISTINCT FROM at AND LAG(request_id) OVER w IS NOT DISTINCT FROM request_id
            THEN 0 ELSE 1 END AS starts
    FROM audit_events WINDOW w AS (PARTITION BY account_id ORDER BY id)
), grouped AS (
    SELECT *, SUM(starts) OVER (PARTITION BY account_id ORDER BY id) AS run FROM marked
), per_action AS (
    SELECT account_id, run, action, COUNT(*) AS n, MIN(id) AS first_id, MAX(id) AS last_id, MIN(at) AS at,
        MAX(key_id) AS key_id, MAX(request_id) AS request_id
    FROM grouped GROUP BY account_id, run, action
)
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
    MAX(key_id), MAX(request_id), MIN(first_id) - 1, MAX(last_id), SUM(n), json_object_agg(action, n)::text
FROM per_action GROUP BY account_id, run ORDER BY MIN(first_id);
"#,
    ),
    (
        9,
        r#"
-- Webhooks (issue 15); see the SQLite migration 10.
CREATE TABLE webhooks (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    url             TEXT NOT NULL,
    kinds           TEXT NOT NULL,
    secret          TEXT NOT NULL,
    key_id          TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhooks_by_account ON webhooks(account_id, id);
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    account_id      BIGINT NOT NULL,
    webhook_id      BIGINT NOT NULL,
    change_set_id   BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT,
    expires_at      BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    BIGINT
);
CREATE INDEX deliveries_by_webhook ON webhook_deliveries(webhook_id, id);
CREATE INDEX deliveries_by_status ON webhook_deliveries(status, webhook_id, id);
"#,
    ),
    (
        10,
        r#"
-- Review UI sign-ins (issue 16); see the SQLite migration 11.
CREATE TABLE ui_sessions (
    token_hash      TEXT PRIMARY KEY,
    key_id          TEXT NOT NULL,
    csrf_token      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX ui_sessions_by_key ON ui_sessions(key_id);
CREATE INDEX ui_sessions_by_last_seen ON ui_sessions(last_seen_at);
"#,
    ),
    (
        11,
        r#"
-- The change feed's email filter; see the SQLite migration 12.
CREATE INDEX audit_by_new_email ON audit_events(account_id, new_email, id) WHERE new_email IS NOT NULL;
CREATE INDEX audit_by_old_email ON audit_events(account_id, old_email, id) WHERE old_email IS NOT NULL;
"#,
    ),
    (
        12,
        r#"
-- A source's UTC offsets of a contributor; see the SQLite migration 14.
ALTER TABLE contributor_sources ADD COLUMN utc_offsets TEXT NOT NULL DEFAULT '';
"#,
    ),
];

pub async fn run(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    client.execute("SELECT pg_advisory_lock($1, $2)", &[&LOCK_CLASS, &MIGRATION_LOCK]).await?;
    let result = apply_missing(client).await;
    let unlock = client.execute("SELECT pg_advisory_unlock($1, $2)", &[&LOCK_CLASS, &MIGRATION_LOCK]).await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply_missing(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
    let current: i64 =
        client.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[]).await?.try_get(0)?;
    let mut applied = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &crate::now_micros()],
        )
        .await?;
        tx.commit().await?;
        applied += 1;
    }
    Ok(applied)
}
