-- tokengate initial schema, SQLite flavour. Keep in step with migrations/postgres/0001_initial.sql:
-- the same tables, columns, defaults and indexes, so one set of queries serves both databases.
-- Shipped migrations are checksummed by sqlx: never edit this file once released; add a new one.
--
-- Conventions: integers are INTEGER (64-bit in SQLite), booleans are 0/1 integers, times are Unix
-- seconds. AUTOINCREMENT keeps ids (and the change feed's seq) strictly increasing even after rows
-- are deleted, so a cursor held by a running gateway never sees a number reused. STRICT tables make
-- SQLite reject a value of the wrong type instead of storing it silently.

CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL UNIQUE,
    domain            TEXT    NOT NULL,
    locked            INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    locked_at         INTEGER NULL,
    fail_count        INTEGER NOT NULL DEFAULT 0,
    fail_window_start INTEGER NOT NULL DEFAULT 0,
    profile           TEXT    NULL,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    serial     TEXT    NOT NULL UNIQUE,
    user_id    INTEGER NULL REFERENCES users(id) ON DELETE SET NULL,
    kind       TEXT    NOT NULL,
    algorithm  TEXT    NOT NULL,
    digits     INTEGER NOT NULL,
    period     INTEGER NOT NULL, -- TOTP step in seconds; 0 = HOTP
    seed_enc   BLOB    NOT NULL,
    expires_at INTEGER NULL,
    pin_hash   TEXT    NULL,
    pin_state  TEXT    NOT NULL,
    drift      INTEGER NOT NULL DEFAULT 0,
    last_step  INTEGER NOT NULL DEFAULT -1,
    bad_count  INTEGER NOT NULL DEFAULT 0,
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE challenges (
    state      TEXT    PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_id   INTEGER NULL,
    kind       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX challenges_expires_at ON challenges (expires_at);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NULL,
    user_name TEXT    NOT NULL,
    client    TEXT    NULL,
    protocol  TEXT    NOT NULL,
    method    TEXT    NOT NULL,
    result    TEXT    NOT NULL,
    reason    TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_at ON audit (at);

CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

CREATE INDEX changes_at ON changes (at);
