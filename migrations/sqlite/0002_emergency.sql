-- Emergency access, offline emergency codes and fixed passcodes (SPEC §6, §7, §8), SQLite flavour.
-- Keep in step with migrations/postgres/0002_emergency.sql. Same conventions as 0001: integers,
-- 0/1 booleans, Unix-second times, STRICT tables. Enum columns hold the model's `as_str` spellings;
-- they carry no CHECK so that a new spelling needs no migration, and the store reports an unknown
-- one as a corrupt row instead.
--
-- Secrets at rest (SPEC §1): online emergency codes and fixed passcodes are keyed hashes only;
-- offline emergency codes are AEAD-encrypted under the master key (the admin reads them back and
-- agents download them), never plain text.

-- A token's online emergency access (SPEC E-1..E-4): at most one per token. Its codes live in
-- `emergency_codes`; issuing again replaces both in one transaction.
CREATE TABLE emergency_access (
    token_id   INTEGER PRIMARY KEY NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    mode       TEXT    NOT NULL, -- EmergencyMode: unavailable | lost
    kind       TEXT    NOT NULL, -- EmergencyKind: tft | ott
    rule       TEXT    NOT NULL, -- AvailableRule: deny | allow_and_disable | allow_after_expiry
    expires_at INTEGER NOT NULL,
    issued_at  INTEGER NOT NULL
) STRICT;

-- One TFT, or the codes of an OTT set. AUTOINCREMENT matters here: the single-use guard consumes
-- a code by id, so an id must never come back for a later code after its set was replaced.
-- Codes belong to their access row as well as to the token: deleting the access deletes its codes
-- in the same statement, so no interleaving of "clear" and "issue" can leave an access without
-- codes or codes without an access.
CREATE TABLE emergency_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id  INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    code_hash TEXT    NOT NULL,
    used_at   INTEGER NULL, -- set once by the OTT guard (SPEC E-1); always NULL for a TFT
    FOREIGN KEY (token_id) REFERENCES emergency_access(token_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX emergency_codes_token_id ON emergency_codes (token_id);

-- Offline emergency codes (SPEC O-2..O-4): the emergency tokencode of a token, or the emergency
-- passcode of a user; exactly one of the two owners is set, and each owner has at most one code.
CREATE TABLE offline_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id   INTEGER NULL UNIQUE REFERENCES tokens(id) ON DELETE CASCADE,
    user_id    INTEGER NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    code_enc   BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    reset      INTEGER NOT NULL DEFAULT 0 CHECK (reset IN (0, 1)),
    online     INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
    created_at INTEGER NOT NULL,
    CHECK ((token_id IS NULL) <> (user_id IS NULL))
) STRICT;

-- A user's fixed passcode settings (SPEC FP-1).
CREATE TABLE fixed_passcodes (
    user_id    INTEGER PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    allowed    INTEGER NOT NULL CHECK (allowed IN (0, 1)),
    code_hash  TEXT    NULL,
    expires_at INTEGER NULL,
    set_at     INTEGER NOT NULL
) STRICT;
