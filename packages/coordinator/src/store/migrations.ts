/**
 * Schema history, applied in order and recorded in `PRAGMA user_version`. Only ever append: a
 * database written by an older coordinator is brought forward on open; a newer one is refused.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: identities, observed state, the audit log and power intents.
  `
  CREATE TABLE agents (
    identity   TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('pi', 'fileserver')),
    public_key TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
  ) STRICT;
  CREATE INDEX agents_revoked ON agents (revoked_ms) WHERE revoked_ms IS NOT NULL;

  CREATE TABLE tokens (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('watcher', 'operator')),
    hash       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
  ) STRICT;
  CREATE INDEX tokens_revoked ON tokens (revoked_ms) WHERE revoked_ms IS NOT NULL;

  CREATE TABLE pi_state (
    pi           TEXT PRIMARY KEY,
    state        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    health       TEXT NOT NULL,
    since_ms     INTEGER NOT NULL,
    last_seen_ms INTEGER,
    last_report  BLOB,
    attempts     INTEGER NOT NULL DEFAULT 0,
    held         INTEGER NOT NULL DEFAULT 0
  ) STRICT;

  CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    actor   TEXT NOT NULL,
    fields  TEXT NOT NULL
  ) STRICT;
  CREATE INDEX events_subject ON events (subject, id);
  CREATE INDEX events_kind ON events (kind, id);
  -- The audit log is append-only: nothing, not even the coordinator, rewrites history.
  CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
  CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

  CREATE TABLE power_intents (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    pi         TEXT NOT NULL,
    port       INTEGER NOT NULL,
    action     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('open', 'done', 'undone', 'failed')),
    note       TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX power_intents_open ON power_intents (status) WHERE status = 'open';
  `,
  // 2: when an intent's port went off (a restart finishes the dwell), and the audit log's
  // retention: an event may leave only through a recorded export, and exports are permanent.
  `
  ALTER TABLE power_intents ADD COLUMN off_ms INTEGER;

  CREATE TABLE event_exports (
    id       INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id  INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    file     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    time_ms  INTEGER NOT NULL,
    CHECK (first_id <= last_id)
  ) STRICT;
  CREATE INDEX event_exports_range ON event_exports (last_id, first_id);
  CREATE TRIGGER event_exports_no_update BEFORE UPDATE ON event_exports BEGIN SELECT RAISE(ABORT, 'event exports are append-only'); END;
  CREATE TRIGGER event_exports_no_delete BEFORE DELETE ON event_exports BEGIN SELECT RAISE(ABORT, 'event exports are append-only'); END;

  DROP TRIGGER events_no_delete;
  CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    WHEN NOT EXISTS (SELECT 1 FROM event_exports WHERE last_id >= OLD.id AND first_id <= OLD.id)
    BEGIN SELECT RAISE(ABORT, 'events are append-only: only events an event_exports row covers may be removed'); END;
  `,
];
