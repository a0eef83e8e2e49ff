-- The master key check (issue 17, SPEC §13), SQLite flavour. Keep in step with
-- migrations/postgres/0003_key_check.sql. Same conventions as 0001: integers, Unix-second times,
-- STRICT tables.
--
-- The master key itself is never in the database. This one-row table records which key the seeds,
-- offline codes and keyed hashes are under: check_value is HMAC-SHA-256(HKDF-SHA-256(master key,
-- "tokengate/v1/key-check"), "tokengate master key check") as 64 lower-case hex digits. It is
-- recorded at the first start (or, for a database from before this migration, once the key has
-- decrypted its existing seeds); an instance whose key file gives another value, or that has no
-- key file while this row exists, refuses to start. `tokengate key rotate` replaces the value in
-- the transaction that re-encrypts the seeds and offline codes.
--
-- pepper_wrapped: NULL until the first rotation. Keyed hashes (PINs, fixed passcodes, emergency
-- codes) cannot be recomputed without their plaintexts, so a rotation keeps their HMAC key (the
-- pepper) and stores it here sealed with AES-256-GCM under the new master key.
CREATE TABLE key_check (
    id             INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    check_value    TEXT    NOT NULL,
    pepper_wrapped BLOB    NULL,
    set_at         INTEGER NOT NULL, -- when the current key was recorded (first start or rotation)
    rotated_at     INTEGER NULL      -- the last rotation, if any
) STRICT;
