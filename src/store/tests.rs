//! The store conformance suite: every test runs its body against every backend available
//! (SQLite always, PostgreSQL too when `TEST_DATABASE_URL` is set), so both databases are held
//! to the same behaviour in one run. Test names carry the SPEC rule they check, where one
//! applies.

use std::sync::atomic::Ordering;

use super::testing::{all_test_stores, fresh_sqlite_store};
use super::*;
use crate::engine::WriteOp;
use crate::model::{
    AvailableRule, ChallengeKind, EmergencyCode, EmergencyMode, HashAlgorithm, OtpMode, PinState,
    TokenKind,
};

fn new_token(serial: &str, user_id: Option<UserId>) -> NewToken {
    NewToken {
        serial: serial.to_owned(),
        user_id,
        kind: TokenKind::Pin,
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
        mode: OtpMode::Totp { period: 30 },
        seed_enc: vec![0, 1, 2, 255, 254, 0, 7],
        expires_at: None,
        pin_hash: Some("hash".to_owned()),
        pin_state: PinState::Set,
    }
}

fn audit(at: i64, user_name: &str, reason: &str) -> AuditRecord {
    AuditRecord {
        at,
        actor: None,
        user_name: user_name.to_owned(),
        client: Some("vpn1".to_owned()),
        protocol: "radius".to_owned(),
        method: "token".to_owned(),
        result: "accept".to_owned(),
        reason: reason.to_owned(),
    }
}

fn challenge(
    state: &str,
    user_id: UserId,
    token_id: Option<TokenId>,
    expires_at: i64,
) -> Challenge {
    Challenge {
        state: state.to_owned(),
        user_id,
        token_id,
        kind: ChallengeKind::NextTokencode,
        data: "{\"step\":5}".to_owned(),
        created_at: expires_at - 120,
        expires_at,
    }
}

fn advance(token_id: TokenId, step: i64) -> WriteOp {
    WriteOp::AdvanceStep {
        token_id,
        step,
        drift: 0,
    }
}

/// A user with one token, the usual starting point.
async fn user_with_token(store: &Store, name: &str) -> (User, Token) {
    let user = store.create_user(name, "default", None, 100).await.unwrap();
    let token = store
        .create_token(&new_token(&format!("T-{name}"), Some(user.id)), 100)
        .await
        .unwrap();
    (user, token)
}

async fn last_step(store: &Store, serial: &str) -> i64 {
    store
        .token_by_serial(serial)
        .await
        .unwrap()
        .unwrap()
        .last_step
}

#[tokio::test]
async fn open_rejects_unknown_scheme_and_accepts_memory() {
    assert!(matches!(
        Store::open("mysql://localhost/x").await,
        Err(StoreError::UnsupportedUrl { scheme }) if scheme == "mysql"
    ));
    let store = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.ping().await.unwrap();
    let user = store.create_user("mem", "d", None, 1).await.unwrap();
    // The single pooled connection keeps the in-memory database alive between calls.
    assert_eq!(store.user_by_id(user.id).await.unwrap(), Some(user));
    store.close().await;
}

#[tokio::test]
async fn sqlite_connections_are_wal_synchronous_full_with_busy_timeout() {
    let (store, _db) = fresh_sqlite_store().await;
    let mut conn = store.pool.acquire().await.unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    let sync: i64 = sqlx::query("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(sync, 2, "synchronous=FULL");
    let busy: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(busy, 5000);
    // 1 KiB pages: a replay-guard update rewrites a quarter of the bytes in the WAL.
    let page: i64 = sqlx::query("PRAGMA page_size")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(page, 1024, "page_size of a new file");
    let fk: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn placeholders_bind_by_number_even_repeated_or_out_of_order() {
    for (store, _db) in all_test_stores().await {
        let row = sqlx::query("SELECT $1 + $1 AS twice, $3 AS third, $2 AS second")
            .bind(20_i64)
            .bind("two")
            .bind(3_i64)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let twice: i64 = row.get("twice");
        let third: i64 = row.get("third");
        let second: String = row.get("second");
        assert_eq!(
            (twice, third, second.as_str()),
            (40, 3, "two"),
            "{:?}",
            store.backend()
        );
    }
}

#[tokio::test]
async fn users_create_get_list_and_duplicate_conflict() {
    for (store, _db) in all_test_stores().await {
        let bob = store
            .create_user("bob", "eng", Some("vpn-admin"), 1000)
            .await
            .unwrap();
        let alice = store
            .create_user("alice", "default", None, 1001)
            .await
            .unwrap();
        assert_eq!(bob.name, "bob");
        assert_eq!(bob.domain, "eng");
        assert_eq!(bob.profile.as_deref(), Some("vpn-admin"));
        assert_eq!(bob.created_at, 1000);
        assert!(!bob.locked);
        assert_eq!(
            (bob.fail_count, bob.fail_window_start, bob.locked_at),
            (0, 0, None)
        );

        assert_eq!(store.user_by_name("bob").await.unwrap(), Some(bob.clone()));
        assert_eq!(
            store.user_by_id(alice.id).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.user_by_name("carol").await.unwrap(), None);
        assert_eq!(store.user_by_id(alice.id + 1000).await.unwrap(), None);
        assert_eq!(store.list_users().await.unwrap(), vec![alice, bob]);

        let dup = store.create_user("bob", "other", None, 1002).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    }
}

#[tokio::test]
async fn lockout_l1_lock_and_unlock_resets_counters() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "dave").await;
        // The packet path records failures and locks (SPEC L-1).
        let ok = store
            .apply_batch(&[vec![
                WriteOp::SetUserFailures {
                    user_id: user.id,
                    fail_count: 5,
                    fail_window_start: 500,
                    locked: true,
                    locked_at: Some(600),
                },
                WriteOp::SetTokenBadCount {
                    token_id: token.id,
                    bad_count: 3,
                },
            ]])
            .await
            .unwrap();
        assert_eq!(ok, vec![true]);
        let locked = store.user_by_id(user.id).await.unwrap().unwrap();
        assert!(locked.locked);
        assert_eq!(
            (
                locked.fail_count,
                locked.fail_window_start,
                locked.locked_at
            ),
            (5, 500, Some(600))
        );
        assert_eq!(
            store
                .token_by_serial("T-dave")
                .await
                .unwrap()
                .unwrap()
                .bad_count,
            3
        );

        // Admin unlock (SPEC L-3) clears the failure bookkeeping.
        store.set_user_locked(user.id, false, 700).await.unwrap();
        let unlocked = store.user_by_id(user.id).await.unwrap().unwrap();
        assert!(!unlocked.locked);
        assert_eq!(
            (
                unlocked.fail_count,
                unlocked.fail_window_start,
                unlocked.locked_at
            ),
            (0, 0, None)
        );

        // Admin lock.
        store.set_user_locked(user.id, true, 800).await.unwrap();
        let relocked = store.user_by_id(user.id).await.unwrap().unwrap();
        assert!(relocked.locked);
        assert_eq!(relocked.locked_at, Some(800));

        let missing = store.set_user_locked(user.id + 99, true, 900).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
    }
}

#[tokio::test]
async fn tokens_round_trip_every_field() {
    for (store, _db) in all_test_stores().await {
        let user = store
            .create_user("erin", "default", None, 10)
            .await
            .unwrap();
        let seed: Vec<u8> = (0..=255).collect();
        let variants = [
            (
                TokenKind::Pin,
                HashAlgorithm::Sha1,
                6,
                OtpMode::Totp { period: 30 },
                PinState::Set,
            ),
            (
                TokenKind::App,
                HashAlgorithm::Sha256,
                8,
                OtpMode::Totp { period: 60 },
                PinState::Set,
            ),
            (
                TokenKind::Pin,
                HashAlgorithm::Sha512,
                8,
                OtpMode::Hotp,
                PinState::NewPinRequired,
            ),
        ];
        for (i, (kind, algorithm, digits, mode, pin_state)) in variants.into_iter().enumerate() {
            let new = NewToken {
                serial: format!("S{i}"),
                user_id: if i == 1 { None } else { Some(user.id) },
                kind,
                algorithm,
                digits,
                mode,
                seed_enc: seed.clone(),
                expires_at: if i == 2 { Some(2_000_000_000) } else { None },
                pin_hash: if i == 0 {
                    Some("$hmac$salt$hash".to_owned())
                } else {
                    None
                },
                pin_state,
            };
            let created = store.create_token(&new, 20 + i as i64).await.unwrap();
            let expected = Token {
                id: created.id,
                serial: new.serial.clone(),
                user_id: new.user_id,
                kind,
                algorithm,
                digits,
                mode,
                seed_enc: seed.clone(),
                expires_at: new.expires_at,
                pin_hash: new.pin_hash.clone(),
                pin_state,
                drift: 0,
                last_step: -1,
                bad_count: 0,
                enabled: true,
                created_at: 20 + i as i64,
            };
            assert_eq!(created, expected, "{:?}", store.backend());
            assert_eq!(
                store.token_by_serial(&new.serial).await.unwrap(),
                Some(expected)
            );
        }
        assert_eq!(store.token_by_serial("nope").await.unwrap(), None);
        let all = store.list_tokens().await.unwrap();
        assert_eq!(
            all.iter().map(|t| t.serial.as_str()).collect::<Vec<_>>(),
            ["S0", "S1", "S2"]
        );
        let mine = store.tokens_of_user(user.id).await.unwrap();
        assert_eq!(
            mine.iter().map(|t| t.serial.as_str()).collect::<Vec<_>>(),
            ["S0", "S2"]
        );
    }
}

#[tokio::test]
async fn tokens_duplicate_serial_unknown_owner_and_zero_step_are_refused() {
    for (store, _db) in all_test_stores().await {
        store
            .create_token(&new_token("DUP", None), 1)
            .await
            .unwrap();
        let dup = store.create_token(&new_token("DUP", None), 2).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        let orphan = store
            .create_token(&new_token("ORPHAN", Some(424242)), 2)
            .await;
        assert!(
            matches!(orphan, Err(StoreError::NotFound { .. })),
            "{orphan:?}"
        );
        let mut zero = new_token("ZERO", None);
        zero.mode = OtpMode::Totp { period: 0 };
        let zero = store.create_token(&zero, 2).await;
        assert!(matches!(zero, Err(StoreError::Invalid { .. })), "{zero:?}");
        assert_eq!(store.list_tokens().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn tokens_assign_unassign_set_pin_and_sync() {
    for (store, _db) in all_test_stores().await {
        let frank = store.create_user("frank", "d", None, 1).await.unwrap();
        let token = store.create_token(&new_token("A1", None), 1).await.unwrap();
        assert_eq!(token.user_id, None);

        store.assign_token(token.id, Some(frank.id)).await.unwrap();
        assert_eq!(store.tokens_of_user(frank.id).await.unwrap().len(), 1);
        store.assign_token(token.id, None).await.unwrap();
        assert!(store.tokens_of_user(frank.id).await.unwrap().is_empty());
        assert_eq!(
            store.token_by_serial("A1").await.unwrap().unwrap().user_id,
            None
        );

        let bad_user = store.assign_token(token.id, Some(frank.id + 50)).await;
        assert!(
            matches!(bad_user, Err(StoreError::NotFound { .. })),
            "{bad_user:?}"
        );
        let bad_token = store.assign_token(token.id + 50, Some(frank.id)).await;
        assert!(
            matches!(bad_token, Err(StoreError::NotFound { .. })),
            "{bad_token:?}"
        );

        store
            .set_pin(token.id, None, PinState::NewPinRequired)
            .await
            .unwrap();
        let t = store.token_by_serial("A1").await.unwrap().unwrap();
        assert_eq!((t.pin_hash, t.pin_state), (None, PinState::NewPinRequired));
        store
            .set_pin(token.id, Some("h2"), PinState::Set)
            .await
            .unwrap();
        let t = store.token_by_serial("A1").await.unwrap().unwrap();
        assert_eq!(
            (t.pin_hash.as_deref(), t.pin_state),
            (Some("h2"), PinState::Set)
        );

        store
            .apply_batch(&[vec![WriteOp::SetTokenBadCount {
                token_id: token.id,
                bad_count: 4,
            }]])
            .await
            .unwrap();
        store.set_sync(token.id, 12345, -2).await.unwrap();
        let t = store.token_by_serial("A1").await.unwrap().unwrap();
        assert_eq!((t.last_step, t.drift, t.bad_count), (12345, -2, 0));

        let missing = store.set_pin(token.id + 50, None, PinState::Set).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        let missing = store.set_sync(token.id + 50, 1, 0).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
    }
}

#[tokio::test]
async fn load_principal_returns_only_the_users_tokens() {
    for (store, _db) in all_test_stores().await {
        let (gina, gina_token) = user_with_token(&store, "gina").await;
        let (_hank, _) = user_with_token(&store, "hank").await;
        let second = store
            .create_token(&new_token("G2", Some(gina.id)), 5)
            .await
            .unwrap();
        store
            .create_token(&new_token("FREE", None), 5)
            .await
            .unwrap();

        let (user, tokens) = store.load_principal("gina").await.unwrap().unwrap();
        assert_eq!(user, gina);
        assert_eq!(tokens, vec![gina_token, second]);
        assert_eq!(store.load_principal("nobody").await.unwrap(), None);
    }
}

#[tokio::test]
async fn r1_replay_cas_accepts_only_strictly_greater_steps() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "ivan").await;
        let id = token.id;
        assert_eq!(
            store.apply_batch(&[vec![advance(id, 10)]]).await.unwrap(),
            [true]
        );
        assert_eq!(
            store.apply_batch(&[vec![advance(id, 10)]]).await.unwrap(),
            [false]
        );
        assert_eq!(
            store.apply_batch(&[vec![advance(id, 9)]]).await.unwrap(),
            [false]
        );
        assert_eq!(last_step(&store, "T-ivan").await, 10);
        let with_drift = WriteOp::AdvanceStep {
            token_id: id,
            step: 11,
            drift: -1,
        };
        assert_eq!(
            store.apply_batch(&[vec![with_drift]]).await.unwrap(),
            [true]
        );
        let t = store.token_by_serial("T-ivan").await.unwrap().unwrap();
        assert_eq!((t.last_step, t.drift), (11, -1));
        // Within one batch the second group sees the first's write.
        let both = store
            .apply_batch(&[vec![advance(id, 12)], vec![advance(id, 12)]])
            .await
            .unwrap();
        assert_eq!(both, [true, false]);
        // Unknown token: the guard fails, it is not an error.
        assert_eq!(
            store
                .apply_batch(&[vec![advance(id + 99, 1)]])
                .await
                .unwrap(),
            [false]
        );
    }
}

#[tokio::test]
async fn r1_failed_guard_skips_the_rest_of_its_group_only() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "judy").await;
        let id = token.id;
        store.apply_batch(&[vec![advance(id, 10)]]).await.unwrap();
        let results = store
            .apply_batch(&[
                vec![advance(id, 5), WriteOp::Audit(audit(1, "judy", "replayed"))],
                vec![WriteOp::Audit(audit(1, "other", "plain"))],
                vec![advance(id, 20), WriteOp::Audit(audit(1, "judy", "fresh"))],
                // Guard after a write: the savepoint undoes the audit.
                vec![WriteOp::Audit(audit(1, "judy", "undone")), advance(id, 20)],
                vec![],
            ])
            .await
            .unwrap();
        assert_eq!(results, [false, true, true, false, true]);
        let reasons: Vec<String> = store
            .audit_since(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.reason)
            .collect();
        assert_eq!(reasons, ["plain", "fresh"], "{:?}", store.backend());
        assert_eq!(last_step(&store, "T-judy").await, 20);
    }
}

#[tokio::test]
async fn r1_batched_guards_judge_each_token_alone_across_statement_chunks() {
    for (store, _db) in all_test_stores().await {
        // 203 tokens: the multi-row compare-and-set runs in chunks of 64, 64, 64, 8, 2 and 1.
        let mut tokens = Vec::new();
        for i in 0..203 {
            tokens.push(user_with_token(&store, &format!("batch{i}")).await.1);
        }
        let first: Vec<Vec<WriteOp>> = tokens.iter().map(|t| vec![advance(t.id, 10)]).collect();
        assert!(store
            .apply_batch(&first)
            .await
            .unwrap()
            .iter()
            .all(|ok| *ok));
        // Every third group replays step 10, every third presents an older step, the rest
        // advance; each carries an audit row, which only the winners keep.
        let groups: Vec<Vec<WriteOp>> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let step = [10, 9, 11][i % 3];
                vec![
                    WriteOp::AdvanceStep {
                        token_id: t.id,
                        step,
                        drift: -1,
                    },
                    WriteOp::Audit(audit(1, &format!("batch{i}"), &format!("r{i}"))),
                ]
            })
            .collect();
        let results = store.apply_batch(&groups).await.unwrap();
        let expected: Vec<bool> = (0..203).map(|i| i % 3 == 2).collect();
        assert_eq!(results, expected, "{:?}", store.backend());
        for (i, t) in tokens.iter().enumerate() {
            let want = if i % 3 == 2 { 11 } else { 10 };
            assert_eq!(last_step(&store, &t.serial).await, want, "token {i}");
        }
        let drifts: Vec<i64> = store
            .list_tokens()
            .await
            .unwrap()
            .iter()
            .filter(|t| t.last_step == 11)
            .map(|t| t.drift)
            .collect();
        assert_eq!(drifts.len(), 67);
        assert!(drifts.iter().all(|d| *d == -1));
        // Audit rows of the winners only, in group order.
        let reasons: Vec<String> = store
            .audit_since(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.reason)
            .collect();
        let want: Vec<String> = (0..203)
            .filter(|i| i % 3 == 2)
            .map(|i| format!("r{i}"))
            .collect();
        assert_eq!(reasons, want);
    }
}

#[tokio::test]
async fn l4_touch_token_rewrites_nothing_and_max_token_id_tracks_the_table() {
    for (store, _db) in all_test_stores().await {
        assert_eq!(store.max_token_id().await.unwrap(), 0);
        let (_, token) = user_with_token(&store, "decoy").await;
        assert_eq!(store.max_token_id().await.unwrap(), token.id);
        store
            .apply_batch(&[vec![WriteOp::SetTokenBadCount {
                token_id: token.id,
                bad_count: 3,
            }]])
            .await
            .unwrap();
        let before = store.token_by_serial("T-decoy").await.unwrap().unwrap();
        let results = store
            .apply_batch(&[
                vec![
                    WriteOp::TouchToken { token_id: token.id },
                    WriteOp::Audit(audit(1, "nobody", "unknown_user")),
                ],
                // A token that does not exist: nothing to rewrite, not a failure.
                vec![
                    WriteOp::TouchToken {
                        token_id: token.id + 1000,
                    },
                    WriteOp::Audit(audit(1, "nobody2", "unknown_user")),
                ],
            ])
            .await
            .unwrap();
        assert_eq!(results, [true, true]);
        let after = store.token_by_serial("T-decoy").await.unwrap().unwrap();
        assert_eq!(after, before, "{:?}", store.backend());
        assert_eq!(after.bad_count, 3);
        assert_eq!(store.audit_since(0, 10).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn r1_same_token_twice_in_one_batch_still_accepts_only_strictly_greater_steps() {
    for (store, _db) in all_test_stores().await {
        let (_, a) = user_with_token(&store, "twice").await;
        let (_, b) = user_with_token(&store, "once").await;
        let results = store
            .apply_batch(&[
                vec![advance(a.id, 5), WriteOp::Audit(audit(1, "twice", "a5"))],
                vec![advance(b.id, 3), WriteOp::Audit(audit(1, "once", "b3"))],
                vec![
                    advance(a.id, 5),
                    WriteOp::Audit(audit(1, "twice", "a5again")),
                ],
                vec![advance(a.id, 6), WriteOp::Audit(audit(1, "twice", "a6"))],
            ])
            .await
            .unwrap();
        assert_eq!(results, [true, true, false, true], "{:?}", store.backend());
        assert_eq!(last_step(&store, "T-twice").await, 6);
        assert_eq!(last_step(&store, "T-once").await, 3);
        let reasons: Vec<String> = store
            .audit_since(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.reason)
            .collect();
        assert_eq!(reasons, ["a5", "b3", "a6"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_background_checkpoint_copies_the_wal_without_a_commit_doing_it() {
    let (store, db) = fresh_sqlite_store().await;
    store.close().await;
    let path = db.url().trim_start_matches("sqlite://");
    let path = std::path::PathBuf::from(path.split('?').next().unwrap_or_default());
    let options = StoreOptions {
        background_checkpoint: Some(std::time::Duration::from_millis(20)),
        ..StoreOptions::default()
    };
    let store = Store::open_with(db.url(), &options).await.unwrap();
    let threshold: i64 = sqlx::query("PRAGMA wal_autocheckpoint")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        threshold, 10_000,
        "commits no longer checkpoint at 1,000 pages"
    );
    let before = std::fs::metadata(&path).unwrap().len();
    // About 2 MB of audit rows: far below the 10,000-page threshold, so only the background
    // task can copy them from the WAL into the database file.
    let long = "x".repeat(1000);
    for chunk in 0..40 {
        let groups: Vec<Vec<WriteOp>> = (0..50)
            .map(|i| vec![WriteOp::Audit(audit(chunk * 50 + i, &long, "bulk"))])
            .collect();
        store.apply_batch(&groups).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 1_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database file still {now} bytes (was {before}): no background checkpoint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r1_concurrent_submits_through_the_writer_exactly_one_wins() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "kate").await;
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 1024);
        for step in [100, 101, 102] {
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let writer = writer.clone();
                tasks.push(tokio::spawn(async move {
                    writer.submit(vec![advance(token.id, step)]).await
                }));
            }
            let mut wins = 0;
            for t in tasks {
                if t.await.unwrap().unwrap() {
                    wins += 1;
                }
            }
            assert_eq!(wins, 1, "step {step} on {:?}", store.backend());
        }
        drop(writer);
        task.await.unwrap();
        assert_eq!(last_step(&store, "T-kate").await, 102);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r1_two_gateway_instances_race_the_same_cas_exactly_one_wins() {
    for (store, db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "leo").await;
        // A second pool on the same database: another gateway instance.
        let other = Store::open(db.url()).await.unwrap();
        for step in 1..=15 {
            let mut tasks = Vec::new();
            for i in 0..6 {
                let s = if i % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                tasks.push(tokio::spawn(async move {
                    s.apply_batch(&[vec![advance(token.id, step)]]).await
                }));
            }
            let mut wins = 0;
            for t in tasks {
                if t.await.unwrap().unwrap() == [true] {
                    wins += 1;
                }
            }
            assert_eq!(wins, 1, "step {step} on {:?}", store.backend());
        }
        assert_eq!(last_step(&other, "T-leo").await, 15);
        other.close().await;
    }
}

#[tokio::test]
async fn challenges_are_single_use_and_expired_ones_are_purged() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "mia").await;
        let fresh = challenge("STATE-fresh", user.id, Some(token.id), 1_000);
        let old = challenge("STATE-old", user.id, None, 500);
        let inserted = store
            .apply_batch(&[
                vec![WriteOp::InsertChallenge(fresh.clone())],
                vec![WriteOp::InsertChallenge(old.clone())],
            ])
            .await
            .unwrap();
        assert_eq!(inserted, [true, true]);
        assert_eq!(
            store.challenge("STATE-fresh").await.unwrap(),
            Some(fresh.clone())
        );
        // Expired rows are still returned: the engine judges expiry.
        assert_eq!(store.challenge("STATE-old").await.unwrap(), Some(old));

        let again = store
            .apply_batch(&[vec![WriteOp::InsertChallenge(fresh.clone())]])
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict { .. })),
            "{again:?}"
        );

        let consume = || {
            vec![
                WriteOp::ConsumeChallenge {
                    state: "STATE-fresh".to_owned(),
                },
                WriteOp::Audit(audit(2, "mia", "consumed")),
            ]
        };
        assert_eq!(
            store.apply_batch(&[consume(), consume()]).await.unwrap(),
            [true, false]
        );
        assert_eq!(store.apply_batch(&[consume()]).await.unwrap(), [false]);
        assert_eq!(store.challenge("STATE-fresh").await.unwrap(), None);
        assert_eq!(store.audit_since(0, 10).await.unwrap().len(), 1);

        assert_eq!(store.purge_expired_challenges(499).await.unwrap(), 0);
        assert_eq!(store.purge_expired_challenges(500).await.unwrap(), 1);
        assert_eq!(store.challenge("STATE-old").await.unwrap(), None);
    }
}

#[tokio::test]
async fn change_feed_records_every_admin_mutation_of_a_user() {
    for (store, _db) in all_test_stores().await {
        assert_eq!(store.latest_change().await.unwrap(), 0);
        assert!(store.changes_since(0).await.unwrap().is_empty());

        let nina = store.create_user("nina", "d", None, 10).await.unwrap();
        let omar = store.create_user("omar", "d", None, 10).await.unwrap();
        let owned = store
            .create_token(&new_token("N1", Some(nina.id)), 11)
            .await
            .unwrap();
        let free = store
            .create_token(&new_token("F1", None), 11)
            .await
            .unwrap();
        store.set_user_locked(omar.id, true, 12).await.unwrap();
        store.assign_token(owned.id, Some(omar.id)).await.unwrap();
        store
            .set_pin(owned.id, Some("p"), PinState::Set)
            .await
            .unwrap();
        store.set_sync(owned.id, 5, 0).await.unwrap();
        // Unowned tokens notify nobody.
        store
            .set_pin(free.id, Some("p"), PinState::Set)
            .await
            .unwrap();
        // Packet-path writes do not touch the feed.
        store
            .apply_batch(&[vec![
                advance(owned.id, 9),
                WriteOp::SetPin {
                    token_id: owned.id,
                    pin_hash: "q".to_owned(),
                    pin_state: PinState::Set,
                },
            ]])
            .await
            .unwrap();

        let t = store.token_by_serial("N1").await.unwrap().unwrap();
        assert_eq!((t.pin_hash.as_deref(), t.last_step), (Some("q"), 9));

        let feed = store.changes_since(0).await.unwrap();
        let users: Vec<UserId> = feed.iter().map(|(_, u)| *u).collect();
        assert_eq!(
            users,
            [nina.id, omar.id, nina.id, omar.id, nina.id, omar.id, omar.id, omar.id],
            "{:?}",
            store.backend()
        );
        assert!(feed.windows(2).all(|w| w[0].0 < w[1].0), "ascending seq");
        let latest = store.latest_change().await.unwrap();
        assert_eq!(latest, feed.last().unwrap().0);
        let tail = store.changes_since(feed[5].0).await.unwrap();
        assert_eq!(tail, feed[6..].to_vec());

        // Purging old entries never lets a seq be reused.
        assert_eq!(store.purge_changes_before(12).await.unwrap(), 3);
        assert_eq!(store.changes_since(0).await.unwrap(), feed[3..].to_vec());
        let purged = store.purge_changes_before(i64::MAX).await.unwrap();
        assert_eq!(purged, 5);
        store.set_user_locked(nina.id, true, 20).await.unwrap();
        let next = store.changes_since(latest).await.unwrap();
        assert_eq!(next.len(), 1);
        assert!(next[0].0 > latest);
    }
}

#[tokio::test]
async fn audit_since_filters_orders_and_limits() {
    for (store, _db) in all_test_stores().await {
        let mut admin = audit(50, "pat", "ok");
        admin.actor = Some("cli:root".to_owned());
        admin.client = None;
        store
            .insert_audit(&audit(10, "pat", "first"))
            .await
            .unwrap();
        store.insert_audit(&admin).await.unwrap();
        store
            .insert_audit(&audit(30, "pat", "third"))
            .await
            .unwrap();
        let since_20 = store.audit_since(20, 10).await.unwrap();
        assert_eq!(since_20, vec![admin.clone(), audit(30, "pat", "third")]);
        assert_eq!(
            store.audit_since(0, 1).await.unwrap(),
            vec![audit(10, "pat", "first")]
        );
    }
}

#[tokio::test]
async fn audit_pages_follow_at_then_id_and_stop_at_until() {
    for (store, _db) in all_test_stores().await {
        // Inserted out of time order; three share at = 20.
        for (at, name) in [
            (20, "b"),
            (10, "a"),
            (20, "c"),
            (40, "e"),
            (20, "d"),
            (5, "z"),
        ] {
            store.insert_audit(&audit(at, name, "ok")).await.unwrap();
        }
        let mut cursor = AuditCursor::start(10);
        let mut seen = Vec::new();
        loop {
            let page = store.audit_page(cursor, 40, 2).await.unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|(_, r)| r.user_name.clone()));
            match page.last() {
                Some((c, _)) if page.len() == 2 => cursor = *c,
                _ => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d"], "{:?}", store.backend());
    }
}

#[tokio::test]
async fn audit_delete_before_is_bounded_and_spares_newer_rows() {
    for (store, _db) in all_test_stores().await {
        for at in [1, 2, 3, 4, 5, 100, 101] {
            store.insert_audit(&audit(at, "old", "ok")).await.unwrap();
        }
        assert_eq!(store.delete_audit_before(100, 3).await.unwrap(), 3);
        assert_eq!(store.delete_audit_before(100, 3).await.unwrap(), 2);
        assert_eq!(store.delete_audit_before(100, 3).await.unwrap(), 0);
        let left: Vec<i64> = store
            .audit_since(0, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.at)
            .collect();
        assert_eq!(left, [100, 101], "{:?}", store.backend());
    }
}

#[tokio::test]
async fn undecodable_rows_are_corrupt_errors_not_panics() {
    for (store, _db) in all_test_stores().await {
        store
            .create_token(&new_token("BAD", None), 1)
            .await
            .unwrap();
        sqlx::query("UPDATE tokens SET algorithm = 'md4', kind = 'pin' WHERE serial = 'BAD'")
            .execute(&store.pool)
            .await
            .unwrap();
        let got = store.token_by_serial("BAD").await;
        assert!(
            matches!(&got, Err(StoreError::Corrupt { what }) if what.contains("algorithm")),
            "{got:?}"
        );
        sqlx::query("UPDATE tokens SET algorithm = 'sha1', digits = 300 WHERE serial = 'BAD'")
            .execute(&store.pool)
            .await
            .unwrap();
        let got = store.list_tokens().await;
        assert!(
            matches!(&got, Err(StoreError::Corrupt { what }) if what.contains("digits")),
            "{got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_commits_1000_concurrent_groups_in_batches() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "quinn").await;
        store
            .apply_batch(&[vec![advance(token.id, 1)]])
            .await
            .unwrap();
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 2048);
        let mut tasks = Vec::new();
        for i in 0..1000_i64 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                // Every 100th group replays an old step: its guard fails and its audit is skipped.
                let group = if i % 100 == 0 {
                    vec![
                        advance(token.id, 0),
                        WriteOp::Audit(audit(i, "quinn", "replay")),
                    ]
                } else {
                    vec![WriteOp::Audit(audit(i, "quinn", "ok"))]
                };
                (i, writer.submit(group).await)
            }));
        }
        for t in tasks {
            let (i, result) = t.await.unwrap();
            let expected = i % 100 != 0;
            assert_eq!(result.unwrap(), expected, "group {i}");
        }
        let stats = writer.stats();
        let batches = stats.batches.load(Ordering::Relaxed);
        assert_eq!(stats.groups.load(Ordering::Relaxed), 1000);
        assert!(batches < 1000, "no batching happened: {batches} batches");
        assert!(stats.max_batch_size.load(Ordering::Relaxed) > 1);
        assert_eq!(stats.queue_depth.load(Ordering::Relaxed), 0);
        drop(writer);
        task.await.unwrap();
        let audits = store.audit_since(0, 10_000).await.unwrap();
        assert_eq!(audits.len(), 990, "{:?}", store.backend());
        assert!(audits.iter().all(|a| a.reason == "ok"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_gives_a_bad_group_its_own_error_and_commits_the_others() {
    for (store, _db) in all_test_stores().await {
        let (user, _) = user_with_token(&store, "rita").await;
        store
            .apply_batch(&[vec![WriteOp::InsertChallenge(challenge(
                "TAKEN", user.id, None, 9,
            ))]])
            .await
            .unwrap();
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 256);
        let mut tasks = Vec::new();
        for i in 0..40_i64 {
            let writer = writer.clone();
            let group = if i == 20 {
                vec![WriteOp::InsertChallenge(challenge(
                    "TAKEN", user.id, None, 9,
                ))]
            } else {
                vec![WriteOp::Audit(audit(i, "rita", "ok"))]
            };
            tasks.push(tokio::spawn(async move { (i, writer.submit(group).await) }));
        }
        for t in tasks {
            let (i, result) = t.await.unwrap();
            if i == 20 {
                assert!(
                    matches!(result, Err(StoreError::Conflict { .. })),
                    "{result:?}"
                );
            } else {
                assert!(result.unwrap(), "group {i}");
            }
        }
        drop(writer);
        task.await.unwrap();
        assert_eq!(store.audit_since(0, 100).await.unwrap().len(), 39);
    }
}

/// A NUL in an audit text (a NAS's user name, a TACACS+ accounting attribute) is stored as
/// U+FFFD on both databases, through every write path (the writer's batches, PostgreSQL's single
/// statement, a lone insert). PostgreSQL cannot hold a NUL in text: the statement used to fail,
/// and with it every other group of its batch until the writer retried them one by one.
/// Lookups by a name or a State with a NUL find nothing instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_text_with_a_nul_is_stored_with_a_replacement_on_every_backend() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "nul").await;
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 256);
        let mut tasks = Vec::new();
        for i in 0..40_i64 {
            let writer = writer.clone();
            let group = match i {
                20 => vec![WriteOp::Audit(audit(i, "bad\u{0}name", "why\u{0}"))],
                10 => vec![
                    advance(token.id, 10),
                    WriteOp::SetUserFailures {
                        user_id: user.id,
                        fail_count: 0,
                        fail_window_start: 0,
                        locked: false,
                        locked_at: None,
                    },
                    WriteOp::Audit(audit(i, "nul", "ok")),
                ],
                _ => vec![WriteOp::Audit(audit(i, "other", "ok"))],
            };
            assert!(super::pgbatch::plan(std::slice::from_ref(&group)).is_some());
            tasks.push(tokio::spawn(async move { (i, writer.submit(group).await) }));
        }
        for t in tasks {
            let (i, result) = t.await.unwrap();
            assert!(result.unwrap(), "group {i}");
        }
        drop(writer);
        task.await.unwrap();
        // The general path (a challenge forces it) and a lone insert.
        store
            .apply_batch(&[
                vec![WriteOp::InsertChallenge(challenge("S1", user.id, None, 9))],
                vec![WriteOp::Audit(audit(41, "general\u{0}", "ok"))],
            ])
            .await
            .unwrap();
        store
            .insert_audit(&audit(42, "lone\u{0}", "ok"))
            .await
            .unwrap();
        let rows = store.audit_since(0, 100).await.unwrap();
        assert_eq!(rows.len(), 42, "{:?}", store.backend());
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r.user_name.as_str())
            .filter(|n| n.contains('\u{FFFD}'))
            .collect();
        assert_eq!(
            names,
            ["bad\u{FFFD}name", "general\u{FFFD}", "lone\u{FFFD}"],
            "{:?}",
            store.backend()
        );
        assert!(rows.iter().any(|r| r.reason == "why\u{FFFD}"));
        assert_eq!(
            last_step(&store, "T-nul").await,
            10,
            "{:?}",
            store.backend()
        );
        assert_eq!(store.user_by_name("n\u{0}ul").await.unwrap(), None);
        assert_eq!(store.load_principal_record("n\u{0}ul").await.unwrap(), None);
        assert_eq!(store.challenge("S\u{0}1").await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_flushes_queued_groups_when_all_handles_are_dropped() {
    for (store, _db) in all_test_stores().await {
        // One group per transaction and a long queue, so most groups are still queued when the
        // last handle goes.
        let (writer, task) = WriterHandle::spawn(store.clone(), 1, 512);
        let mut submits = Vec::new();
        for i in 0..200_i64 {
            let writer = writer.clone();
            submits.push(tokio::spawn(async move {
                writer
                    .submit(vec![WriteOp::Audit(audit(i, "sam", "ok"))])
                    .await
            }));
        }
        drop(writer);
        task.await.unwrap();
        for s in submits {
            assert!(s.await.unwrap().unwrap());
        }
        assert_eq!(store.audit_since(0, 1000).await.unwrap().len(), 200);
    }
}

#[tokio::test]
async fn durability_an_acknowledged_write_is_seen_by_a_new_store_on_the_same_file() {
    let (store, db) = fresh_sqlite_store().await;
    let (_, token) = user_with_token(&store, "tess").await;
    let (writer, task) = WriterHandle::spawn(store.clone(), 256, 64);
    let ok = writer
        .submit(vec![
            advance(token.id, 77),
            WriteOp::Audit(audit(5, "tess", "ok")),
        ])
        .await
        .unwrap();
    assert!(ok);
    // Opened while the first store is still running, as another process would after a crash.
    let reopened = Store::open(db.url()).await.unwrap();
    assert_eq!(last_step(&reopened, "T-tess").await, 77);
    assert_eq!(reopened.audit_since(0, 10).await.unwrap().len(), 1);
    reopened.close().await;
    drop(writer);
    task.await.unwrap();
    store.close().await;
    // And after an orderly close too.
    let again = Store::open(db.url()).await.unwrap();
    assert_eq!(last_step(&again, "T-tess").await, 77);
    again.close().await;
}

#[tokio::test]
async fn open_creates_a_missing_file_from_a_plain_sqlite_path_url() {
    let (_store, db) = fresh_sqlite_store().await;
    // `sqlite:<path>` without `//` and without `mode=rwc`: the store adds the mode.
    let path = db
        .url()
        .trim_start_matches("sqlite://")
        .replace("?mode=rwc", "");
    let path = path.replace("tokengate.db", "second.db");
    let store = Store::open(&format!("sqlite:{path}")).await.unwrap();
    store.create_user("uma", "d", None, 1).await.unwrap();
    store.close().await;
    assert!(std::path::Path::new(&path).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_fails_every_group_when_the_database_is_gone() {
    for (store, _db) in all_test_stores().await {
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 64);
        store.close().await;
        let mut tasks = Vec::new();
        for i in 0..10_i64 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                writer
                    .submit(vec![WriteOp::Audit(audit(i, "vic", "ok"))])
                    .await
            }));
        }
        for t in tasks {
            let result = t.await.unwrap();
            assert!(
                matches!(result, Err(StoreError::Database(_) | StoreError::Batch(_))),
                "{result:?}"
            );
        }
        drop(writer);
        task.await.unwrap();
    }
}

// ----- emergency access, offline codes, fixed passcodes (SPEC §6–§8) ---------------------

fn code(hash: &str) -> EmergencyCode {
    EmergencyCode {
        id: 0,
        code_hash: hash.to_owned(),
        used_at: None,
    }
}

/// An OTT set of `n` codes `H0, H1, …` (prefixed) for a token.
fn ott(token_id: TokenId, prefix: &str, n: usize) -> EmergencyAccess {
    EmergencyAccess {
        token_id,
        mode: EmergencyMode::Unavailable,
        kind: EmergencyKind::Ott,
        rule: AvailableRule::Deny,
        expires_at: 10_000,
        issued_at: 1_000,
        codes: (0..n).map(|i| code(&format!("{prefix}{i}"))).collect(),
    }
}

fn tft(token_id: TokenId, hash: &str) -> EmergencyAccess {
    EmergencyAccess {
        token_id,
        mode: EmergencyMode::Lost,
        kind: EmergencyKind::Tft,
        rule: AvailableRule::AllowAndDisable,
        expires_at: 20_000,
        issued_at: 2_000,
        codes: vec![code(hash)],
    }
}

fn consume(code_id: i64, used_at: i64) -> WriteOp {
    WriteOp::ConsumeEmergencyCode { code_id, used_at }
}

fn offline_of_token(token_id: TokenId, byte: u8) -> OfflineCode {
    OfflineCode {
        token_id: Some(token_id),
        user_id: None,
        code_enc: vec![byte, 0, 255, byte],
        expires_at: 50_000,
        reset: false,
        online: false,
        created_at: 3_000,
    }
}

fn offline_of_user(user_id: UserId, byte: u8) -> OfflineCode {
    OfflineCode {
        token_id: None,
        user_id: Some(user_id),
        code_enc: vec![byte; 5],
        expires_at: 60_000,
        reset: true,
        online: false,
        created_at: 4_000,
    }
}

fn fixed(user_id: UserId, hash: Option<&str>) -> FixedPasscode {
    FixedPasscode {
        user_id,
        allowed: true,
        code_hash: hash.map(str::to_owned),
        expires_at: Some(70_000),
        set_at: 5_000,
    }
}

/// The code ids of a token's current emergency access.
async fn code_ids(store: &Store, token_id: TokenId) -> Vec<i64> {
    store
        .emergency_of(token_id)
        .await
        .unwrap()
        .map(|a| a.codes.iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// Rows in `emergency_codes` for a token, whatever the access table says.
async fn code_rows(store: &Store, token_id: TokenId) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM emergency_codes WHERE token_id = $1")
        .bind(token_id)
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get("n")
}

#[tokio::test]
async fn emergency_e1_round_trips_every_mode_kind_rule_and_field() {
    let modes = [EmergencyMode::Unavailable, EmergencyMode::Lost];
    let kinds = [EmergencyKind::Tft, EmergencyKind::Ott];
    let rules = [
        AvailableRule::Deny,
        AvailableRule::AllowAndDisable,
        AvailableRule::AllowAfterExpiry,
    ];
    for (store, _db) in all_test_stores().await {
        let user = store.create_user("ella", "d", None, 1).await.unwrap();
        let mut i = 0_i64;
        let mut all_ids = Vec::new();
        for mode in modes {
            for kind in kinds {
                for rule in rules {
                    i += 1;
                    let token = store
                        .create_token(&new_token(&format!("E{i}"), Some(user.id)), 1)
                        .await
                        .unwrap();
                    let codes = match kind {
                        EmergencyKind::Tft => vec![code("$hmac$s$tft")],
                        EmergencyKind::Ott => vec![
                            code("$hmac$s$a"),
                            // A code already used when issued is stored as given.
                            EmergencyCode {
                                used_at: Some(1_700_000_000_000 + i),
                                ..code("$hmac$s$b")
                            },
                            code("$hmac$s$c"),
                        ],
                    };
                    let access = EmergencyAccess {
                        token_id: token.id,
                        mode,
                        kind,
                        rule,
                        expires_at: 4_000_000_000_000 + i,
                        issued_at: 1_600_000_000 + i,
                        codes,
                    };
                    let stored = store.issue_emergency(&access, 10).await.unwrap();
                    let ids: Vec<i64> = stored.codes.iter().map(|c| c.id).collect();
                    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in order given");
                    let mut expected = access.clone();
                    for (c, id) in expected.codes.iter_mut().zip(&ids) {
                        c.id = *id;
                    }
                    assert_eq!(stored, expected, "{:?}", store.backend());
                    assert_eq!(store.emergency_of(token.id).await.unwrap(), Some(expected));
                    all_ids.extend(ids);
                }
            }
        }
        let n = all_ids.len();
        all_ids.sort_unstable();
        all_ids.dedup();
        assert_eq!(all_ids.len(), n, "code ids are unique");
        assert_eq!(store.emergency_of(424_242).await.unwrap(), None);
    }
}

#[tokio::test]
async fn emergency_e1_refuses_no_codes_a_multi_code_tft_and_an_unknown_token() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "fred").await;
        let empty = store.issue_emergency(&ott(token.id, "X", 0), 1).await;
        assert!(
            matches!(empty, Err(StoreError::Invalid { .. })),
            "{empty:?}"
        );
        let mut two = tft(token.id, "T");
        two.codes.push(code("T2"));
        let two = store.issue_emergency(&two, 1).await;
        assert!(matches!(two, Err(StoreError::Invalid { .. })), "{two:?}");
        let orphan = store.issue_emergency(&ott(token.id + 99, "X", 2), 1).await;
        assert!(
            matches!(orphan, Err(StoreError::NotFound { .. })),
            "{orphan:?}"
        );
        assert_eq!(store.emergency_of(token.id).await.unwrap(), None);
        assert_eq!(code_rows(&store, token.id + 99).await, 0);
        assert_eq!(store.latest_change().await.unwrap(), 2, "user + token only");
    }
}

#[tokio::test]
async fn emergency_e1_issuing_replaces_the_previous_set() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "gus").await;
        let (_, other) = user_with_token(&store, "hal").await;
        let first = store
            .issue_emergency(&ott(token.id, "A", 3), 10)
            .await
            .unwrap();
        let neighbour = store
            .issue_emergency(&ott(other.id, "N", 2), 10)
            .await
            .unwrap();
        let old_ids: Vec<i64> = first.codes.iter().map(|c| c.id).collect();

        let second = store
            .issue_emergency(&tft(token.id, "TFT"), 11)
            .await
            .unwrap();
        assert_eq!(
            store.emergency_of(token.id).await.unwrap(),
            Some(second.clone())
        );
        assert_eq!(code_rows(&store, token.id).await, 1, "old codes deleted");
        let new_id = second.codes[0].id;
        assert!(old_ids.iter().all(|old| *old < new_id), "ids never reused");
        // An old id (say, from a stale cache) no longer consumes anything.
        for old in &old_ids {
            assert_eq!(
                store.apply_batch(&[vec![consume(*old, 12)]]).await.unwrap(),
                [false]
            );
        }
        // Another token's set is untouched.
        assert_eq!(store.emergency_of(other.id).await.unwrap(), Some(neighbour));

        let third = store
            .issue_emergency(&ott(token.id, "C", 2), 13)
            .await
            .unwrap();
        assert_eq!(code_rows(&store, token.id).await, 2);
        assert_eq!(store.emergency_of(token.id).await.unwrap(), Some(third));
    }
}

#[tokio::test]
async fn emergency_e1_ott_code_works_once_even_after_a_restart() {
    for (store, db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "ida").await;
        let set = store
            .issue_emergency(&ott(token.id, "O", 3), 10)
            .await
            .unwrap();
        let (a, b) = (set.codes[0].id, set.codes[1].id);
        assert_eq!(
            store.apply_batch(&[vec![consume(a, 500)]]).await.unwrap(),
            [true]
        );
        assert_eq!(
            store.apply_batch(&[vec![consume(a, 501)]]).await.unwrap(),
            [false]
        );
        // Two groups for the same code in one batch: the second sees the first's write.
        assert_eq!(
            store
                .apply_batch(&[vec![consume(b, 502)], vec![consume(b, 503)]])
                .await
                .unwrap(),
            [true, false]
        );
        // Unknown code: the guard fails, it is not an error.
        assert_eq!(
            store
                .apply_batch(&[vec![consume(a + 1000, 1)]])
                .await
                .unwrap(),
            [false]
        );
        store.close().await;

        let reopened = Store::open(db.url()).await.unwrap();
        assert_eq!(
            reopened
                .apply_batch(&[vec![consume(a, 600)]])
                .await
                .unwrap(),
            [false]
        );
        let used: Vec<Option<i64>> = reopened
            .emergency_of(token.id)
            .await
            .unwrap()
            .unwrap()
            .codes
            .iter()
            .map(|c| c.used_at)
            .collect();
        assert_eq!(
            used,
            [Some(500), Some(502), None],
            "{:?}",
            reopened.backend()
        );
        reopened.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emergency_e1_concurrent_submits_through_the_writer_exactly_one_wins() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "jan").await;
        let set = store
            .issue_emergency(&ott(token.id, "W", 3), 10)
            .await
            .unwrap();
        let (writer, task) = WriterHandle::spawn(store.clone(), 256, 1024);
        for c in &set.codes {
            let mut tasks = Vec::new();
            for i in 0..20 {
                let writer = writer.clone();
                let id = c.id;
                tasks.push(tokio::spawn(async move {
                    writer.submit(vec![consume(id, 700 + i)]).await
                }));
            }
            let mut wins = 0;
            for t in tasks {
                if t.await.unwrap().unwrap() {
                    wins += 1;
                }
            }
            assert_eq!(wins, 1, "code {} on {:?}", c.id, store.backend());
        }
        drop(writer);
        task.await.unwrap();
        let access = store.emergency_of(token.id).await.unwrap().unwrap();
        assert!(access.codes.iter().all(|c| c.used_at.is_some()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emergency_e1_two_gateway_instances_race_the_same_code_exactly_one_wins() {
    for (store, db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "kim").await;
        let set = store
            .issue_emergency(&ott(token.id, "R", 10), 10)
            .await
            .unwrap();
        let other = Store::open(db.url()).await.unwrap();
        for c in &set.codes {
            let mut tasks = Vec::new();
            for i in 0..6 {
                let s = if i % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                let id = c.id;
                tasks.push(tokio::spawn(async move {
                    s.apply_batch(&[vec![consume(id, 800)]]).await
                }));
            }
            let mut wins = 0;
            for t in tasks {
                if t.await.unwrap().unwrap() == [true] {
                    wins += 1;
                }
            }
            assert_eq!(wins, 1, "code {} on {:?}", c.id, store.backend());
        }
        other.close().await;
    }
}

#[tokio::test]
async fn emergency_e1_failed_consume_skips_the_rest_of_its_group_only() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "lou").await;
        let set = store
            .issue_emergency(&ott(token.id, "G", 2), 10)
            .await
            .unwrap();
        let (used, fresh) = (set.codes[0].id, set.codes[1].id);
        store.apply_batch(&[vec![consume(used, 1)]]).await.unwrap();
        let failures = WriteOp::SetUserFailures {
            user_id: user.id,
            fail_count: 0,
            fail_window_start: 0,
            locked: false,
            locked_at: None,
        };
        let results = store
            .apply_batch(&[
                vec![
                    consume(used, 2),
                    WriteOp::Audit(audit(1, "lou", "replayed")),
                    WriteOp::SetTokenBadCount {
                        token_id: token.id,
                        bad_count: 9,
                    },
                ],
                // Guard after a write: the savepoint undoes the audit.
                vec![WriteOp::Audit(audit(1, "lou", "undone")), consume(used, 2)],
                vec![
                    consume(fresh, 3),
                    advance(token.id, 50),
                    failures,
                    WriteOp::Audit(audit(1, "lou", "ott")),
                ],
            ])
            .await
            .unwrap();
        assert_eq!(results, [false, false, true]);
        let reasons: Vec<String> = store
            .audit_since(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.reason)
            .collect();
        assert_eq!(reasons, ["ott"], "{:?}", store.backend());
        let t = store.token_by_serial("T-lou").await.unwrap().unwrap();
        assert_eq!((t.bad_count, t.last_step), (0, 50));
        let used_at: Vec<Option<i64>> = store
            .emergency_of(token.id)
            .await
            .unwrap()
            .unwrap()
            .codes
            .iter()
            .map(|c| c.used_at)
            .collect();
        assert_eq!(used_at, [Some(1), Some(3)]);
    }
}

#[tokio::test]
async fn emergency_e4_clear_emergency_op_deletes_the_access_and_its_codes() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "max").await;
        let (_, other) = user_with_token(&store, "ned").await;
        let set = store
            .issue_emergency(&ott(token.id, "D", 3), 10)
            .await
            .unwrap();
        let kept = store
            .issue_emergency(&tft(other.id, "K"), 10)
            .await
            .unwrap();
        let feed_before = store.latest_change().await.unwrap();
        // allow_and_disable: the real token's step advances and the emergency codes go.
        let ok = store
            .apply_batch(&[vec![
                advance(token.id, 7),
                WriteOp::ClearEmergency { token_id: token.id },
            ]])
            .await
            .unwrap();
        assert_eq!(ok, [true]);
        assert_eq!(store.emergency_of(token.id).await.unwrap(), None);
        assert_eq!(code_rows(&store, token.id).await, 0);
        assert_eq!(
            store
                .apply_batch(&[vec![consume(set.codes[0].id, 11)]])
                .await
                .unwrap(),
            [false]
        );
        // Not a guard: clearing nothing does not fail the group.
        let again = store
            .apply_batch(&[vec![
                WriteOp::ClearEmergency { token_id: token.id },
                WriteOp::Audit(audit(1, "max", "ok")),
            ]])
            .await
            .unwrap();
        assert_eq!(again, [true]);
        assert_eq!(store.audit_since(0, 10).await.unwrap().len(), 1);
        assert_eq!(store.emergency_of(other.id).await.unwrap(), Some(kept));
        // Packet-path writes do not touch the change feed.
        assert_eq!(store.latest_change().await.unwrap(), feed_before);
        assert!(!WriteOp::ClearEmergency { token_id: 1 }.is_guard());
        assert!(consume(1, 1).is_guard());
    }
}

#[tokio::test]
async fn emergency_e1_confirm_guard_holds_only_for_a_live_unexpired_tft() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "tia").await;
        let confirm = |code_id, now| WriteOp::ConfirmEmergencyCode { code_id, now };
        let a = store
            .issue_emergency(&tft(token.id, "T"), 10)
            .await
            .unwrap();
        let id = a.codes[0].id;
        assert!(confirm(id, 11).is_guard());
        // Reusable: confirming twice succeeds and changes nothing.
        assert_eq!(
            store.apply_batch(&[vec![confirm(id, 11)]]).await.unwrap(),
            [true]
        );
        assert_eq!(
            store.apply_batch(&[vec![confirm(id, 12)]]).await.unwrap(),
            [true]
        );
        assert_eq!(
            store.emergency_of(token.id).await.unwrap().unwrap().codes[0].used_at,
            None
        );
        // At the expiry instant (20_000) it fails.
        assert_eq!(
            store
                .apply_batch(&[vec![confirm(id, 19_999)]])
                .await
                .unwrap(),
            [true]
        );
        assert_eq!(
            store
                .apply_batch(&[vec![confirm(id, 20_000)]])
                .await
                .unwrap(),
            [false]
        );
        // Replaced by a new issue (another instance), or cleared: it fails.
        let b = store
            .issue_emergency(&tft(token.id, "U"), 13)
            .await
            .unwrap();
        assert_eq!(
            store.apply_batch(&[vec![confirm(id, 14)]]).await.unwrap(),
            [false]
        );
        let id_b = b.codes[0].id;
        assert_eq!(
            store.apply_batch(&[vec![confirm(id_b, 14)]]).await.unwrap(),
            [true]
        );
        store.clear_emergency(token.id, 15).await.unwrap();
        assert_eq!(
            store.apply_batch(&[vec![confirm(id_b, 16)]]).await.unwrap(),
            [false]
        );
    }
}

#[tokio::test]
async fn emergency_codes_cannot_exist_without_their_access() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "abe").await;
        let raw = sqlx::query("INSERT INTO emergency_codes (token_id, code_hash) VALUES ($1, 'h')")
            .bind(token.id)
            .execute(&store.pool)
            .await;
        assert!(raw.is_err(), "{:?}", store.backend());
        store
            .issue_emergency(&ott(token.id, "A", 2), 1)
            .await
            .unwrap();
        // Deleting the access row alone takes its codes with it.
        sqlx::query("DELETE FROM emergency_access WHERE token_id = $1")
            .bind(token.id)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(code_rows(&store, token.id).await, 0);
    }
}

#[tokio::test]
async fn emergency_clear_emergency_reports_whether_anything_was_deleted() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "ola").await;
        store
            .issue_emergency(&ott(token.id, "Z", 4), 10)
            .await
            .unwrap();
        assert!(store.clear_emergency(token.id, 11).await.unwrap());
        assert_eq!(store.emergency_of(token.id).await.unwrap(), None);
        assert_eq!(code_rows(&store, token.id).await, 0);
        assert!(!store.clear_emergency(token.id, 12).await.unwrap());
        assert!(!store.clear_emergency(token.id + 99, 12).await.unwrap());
    }
}

#[tokio::test]
async fn offline_o2_codes_upsert_by_token_and_by_user() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "pia").await;
        assert_eq!(store.offline_code_of_token(token.id).await.unwrap(), None);
        assert_eq!(store.offline_code_of_user(user.id).await.unwrap(), None);

        let by_token = offline_of_token(token.id, 1);
        store.set_offline_code(&by_token, 10).await.unwrap();
        let by_user = offline_of_user(user.id, 2);
        store.set_offline_code(&by_user, 10).await.unwrap();
        assert_eq!(
            store.offline_code_of_token(token.id).await.unwrap(),
            Some(by_token)
        );
        assert_eq!(
            store.offline_code_of_user(user.id).await.unwrap(),
            Some(by_user.clone())
        );

        // O-3 reset: a new code replaces every field of the old one.
        let replaced = OfflineCode {
            code_enc: (0..=255).collect(),
            expires_at: 90_000,
            reset: true,
            online: true,
            created_at: 8_000,
            ..offline_of_token(token.id, 0)
        };
        store.set_offline_code(&replaced, 11).await.unwrap();
        assert_eq!(
            store.offline_code_of_token(token.id).await.unwrap(),
            Some(replaced.clone())
        );
        let user_again = OfflineCode {
            reset: false,
            ..offline_of_user(user.id, 3)
        };
        store.set_offline_code(&user_again, 11).await.unwrap();
        assert_eq!(
            store.offline_code_of_user(user.id).await.unwrap(),
            Some(user_again)
        );
        let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM offline_codes")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .get("n");
        assert_eq!(rows, 2, "upserts, not inserts");

        // O-4: use the offline tokencode online.
        store.set_offline_online(token.id, false, 12).await.unwrap();
        let off = store
            .offline_code_of_token(token.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            off,
            OfflineCode {
                online: false,
                ..replaced.clone()
            }
        );
        store.set_offline_online(token.id, true, 13).await.unwrap();
        assert_eq!(
            store.offline_code_of_token(token.id).await.unwrap(),
            Some(replaced)
        );
    }
}

#[tokio::test]
async fn offline_o2_exactly_one_owner_and_existing_owners_only() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "quin").await;
        let both = OfflineCode {
            user_id: Some(user.id),
            ..offline_of_token(token.id, 1)
        };
        let neither = OfflineCode {
            token_id: None,
            ..offline_of_token(token.id, 1)
        };
        for bad in [both, neither] {
            let got = store.set_offline_code(&bad, 10).await;
            assert!(matches!(got, Err(StoreError::Invalid { .. })), "{got:?}");
        }
        let got = store
            .set_offline_code(&offline_of_token(token.id + 99, 1), 10)
            .await;
        assert!(matches!(got, Err(StoreError::NotFound { .. })), "{got:?}");
        let got = store
            .set_offline_code(&offline_of_user(user.id + 99, 1), 10)
            .await;
        assert!(matches!(got, Err(StoreError::NotFound { .. })), "{got:?}");

        // The schema enforces the rule too, for writes that bypass the store.
        for (t, u) in [(None, None), (Some(token.id), Some(user.id))] {
            let raw = sqlx::query(
                "INSERT INTO offline_codes (token_id, user_id, code_enc, expires_at, created_at) \
                 VALUES ($1, $2, $3, 1, 1)",
            )
            .bind(t)
            .bind(u)
            .bind(vec![1_u8])
            .execute(&store.pool)
            .await;
            assert!(raw.is_err(), "{t:?}/{u:?} on {:?}", store.backend());
        }

        // O-4 on a token without an offline code (the user has one: it does not count).
        store
            .set_offline_code(&offline_of_user(user.id, 1), 10)
            .await
            .unwrap();
        let got = store.set_offline_online(token.id, true, 11).await;
        assert!(matches!(got, Err(StoreError::NotFound { .. })), "{got:?}");
        let got = store.set_offline_online(token.id + 99, true, 11).await;
        assert!(matches!(got, Err(StoreError::NotFound { .. })), "{got:?}");
        assert_eq!(store.offline_code_of_token(token.id).await.unwrap(), None);
        // user + token + the one successful set_offline_code.
        assert_eq!(store.changes_since(0).await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn fixed_passcode_fp1_upsert_get_and_clear() {
    for (store, _db) in all_test_stores().await {
        let user = store.create_user("rex", "d", None, 1).await.unwrap();
        assert_eq!(store.fixed_passcode(user.id).await.unwrap(), None);
        let fp = fixed(user.id, Some("$hmac$salt$fp"));
        store.set_fixed_passcode(&fp, 10).await.unwrap();
        assert_eq!(store.fixed_passcode(user.id).await.unwrap(), Some(fp));
        // Off again, no passcode, no expiry: every field is replaced.
        let off = FixedPasscode {
            user_id: user.id,
            allowed: false,
            code_hash: None,
            expires_at: None,
            set_at: 6_000,
        };
        store.set_fixed_passcode(&off, 11).await.unwrap();
        assert_eq!(store.fixed_passcode(user.id).await.unwrap(), Some(off));

        assert!(store.clear_fixed_passcode(user.id, 12).await.unwrap());
        assert_eq!(store.fixed_passcode(user.id).await.unwrap(), None);
        assert!(!store.clear_fixed_passcode(user.id, 13).await.unwrap());

        let got = store
            .set_fixed_passcode(&fixed(user.id + 99, Some("h")), 14)
            .await;
        assert!(matches!(got, Err(StoreError::NotFound { .. })), "{got:?}");
    }
}

#[tokio::test]
async fn load_principal_record_returns_only_this_users_rows() {
    for (store, _db) in all_test_stores().await {
        let (sue, sue_t1) = user_with_token(&store, "sue").await;
        let sue_t2 = store
            .create_token(&new_token("S2", Some(sue.id)), 5)
            .await
            .unwrap();
        let sue_t3 = store
            .create_token(&new_token("S3", Some(sue.id)), 5)
            .await
            .unwrap();
        let (tom, tom_t) = user_with_token(&store, "tom").await;
        let free = store
            .create_token(&new_token("FREE", None), 5)
            .await
            .unwrap();

        // Issued out of token order, to check the ordering by token id.
        let e2 = store
            .issue_emergency(&tft(sue_t2.id, "S2T"), 10)
            .await
            .unwrap();
        let e1 = store
            .issue_emergency(&ott(sue_t1.id, "S1-", 3), 10)
            .await
            .unwrap();
        store
            .issue_emergency(&ott(tom_t.id, "TOM", 2), 10)
            .await
            .unwrap();
        store
            .issue_emergency(&ott(free.id, "FREE", 2), 10)
            .await
            .unwrap();
        store
            .apply_batch(&[vec![consume(e1.codes[1].id, 77)]])
            .await
            .unwrap();
        let mut e1 = e1;
        e1.codes[1].used_at = Some(77);

        let sue_code = offline_of_user(sue.id, 1);
        let sue_t3_code = offline_of_token(sue_t3.id, 2);
        let sue_t1_code = offline_of_token(sue_t1.id, 3);
        for c in [
            &sue_t3_code,
            &offline_of_user(tom.id, 4),
            &offline_of_token(tom_t.id, 5),
            &offline_of_token(free.id, 6),
            &sue_code,
            &sue_t1_code,
        ] {
            store.set_offline_code(c, 10).await.unwrap();
        }
        let sue_fp = fixed(sue.id, Some("fp"));
        store.set_fixed_passcode(&sue_fp, 10).await.unwrap();
        store
            .set_fixed_passcode(&fixed(tom.id, Some("other")), 10)
            .await
            .unwrap();

        let record = store.load_principal_record("sue").await.unwrap().unwrap();
        let expected = PrincipalRecord {
            user: sue.clone(),
            tokens: vec![sue_t1.clone(), sue_t2, sue_t3],
            emergency: vec![e1, e2],
            offline: vec![sue_t3_code, sue_code, sue_t1_code],
            fixed_passcode: Some(sue_fp),
        };
        assert_eq!(record, expected, "{:?}", store.backend());
        // The existing loader still agrees on user and tokens.
        let (user, tokens) = store.load_principal("sue").await.unwrap().unwrap();
        assert_eq!((user, tokens), (expected.user, expected.tokens));

        assert_eq!(store.load_principal_record("nobody").await.unwrap(), None);
        let vic = store.create_user("vic", "d", None, 1).await.unwrap();
        assert_eq!(
            store.load_principal_record("vic").await.unwrap(),
            Some(PrincipalRecord {
                user: vic,
                tokens: vec![],
                emergency: vec![],
                offline: vec![],
                fixed_passcode: None,
            })
        );

        // Today's behaviour: a token moved to another user keeps its emergency and offline rows
        // (`assign_token` does not clear them), so they follow the token to its new owner.
        // Whether reassignment should clear them is the admin layer's call.
        store.assign_token(sue_t1.id, Some(tom.id)).await.unwrap();
        let record = store.load_principal_record("sue").await.unwrap().unwrap();
        assert!(record.emergency.iter().all(|a| a.token_id != sue_t1.id));
        assert!(record.offline.iter().all(|o| o.token_id != Some(sue_t1.id)));
        let tom_record = store.load_principal_record("tom").await.unwrap().unwrap();
        assert_eq!(
            tom_record
                .emergency
                .iter()
                .map(|a| a.token_id)
                .collect::<Vec<_>>(),
            [sue_t1.id, tom_t.id]
        );
    }
}

/// SPEC E-1, O-4, FP-1 at a first login: the loader reads emergency access, offline codes and
/// fixed passcodes only for users its first read says have them, so a user with exactly one of
/// them (each kind alone, an offline code held by the user or by one of their tokens) must
/// still get it.
#[tokio::test]
async fn e1_o4_fp1_load_principal_record_finds_each_kind_of_emergency_row_alone() {
    for (store, _db) in all_test_stores().await {
        let (_, em_t) = user_with_token(&store, "only_emergency").await;
        let access = store
            .issue_emergency(&tft(em_t.id, "OE"), 10)
            .await
            .unwrap();
        let (off_u, _) = user_with_token(&store, "only_user_offline").await;
        let user_code = offline_of_user(off_u.id, 1);
        store.set_offline_code(&user_code, 10).await.unwrap();
        let (_, off_t) = user_with_token(&store, "only_token_offline").await;
        let token_code = offline_of_token(off_t.id, 2);
        store.set_offline_code(&token_code, 10).await.unwrap();
        let (fp_u, _) = user_with_token(&store, "only_fixed").await;
        let fp = fixed(fp_u.id, Some("fp"));
        store.set_fixed_passcode(&fp, 10).await.unwrap();
        let (_, _) = user_with_token(&store, "plain").await;

        let load = |name: &'static str| {
            let store = store.clone();
            async move { store.load_principal_record(name).await.unwrap().unwrap() }
        };
        let r = load("only_emergency").await;
        assert_eq!(r.emergency, vec![access], "{:?}", store.backend());
        assert!(r.offline.is_empty() && r.fixed_passcode.is_none());
        let r = load("only_user_offline").await;
        assert_eq!(r.offline, vec![user_code], "{:?}", store.backend());
        assert!(r.emergency.is_empty() && r.fixed_passcode.is_none());
        let r = load("only_token_offline").await;
        assert_eq!(r.offline, vec![token_code], "{:?}", store.backend());
        assert!(r.emergency.is_empty() && r.fixed_passcode.is_none());
        let r = load("only_fixed").await;
        assert_eq!(r.fixed_passcode, Some(fp), "{:?}", store.backend());
        assert!(r.emergency.is_empty() && r.offline.is_empty());
        let r = load("plain").await;
        assert_eq!(r.tokens.len(), 1);
        assert!(r.emergency.is_empty() && r.offline.is_empty() && r.fixed_passcode.is_none());
    }
}

#[tokio::test]
async fn change_feed_records_every_emergency_offline_and_fixed_passcode_mutation() {
    for (store, _db) in all_test_stores().await {
        let (uma, token) = user_with_token(&store, "uma").await;
        let wes = store.create_user("wes", "d", None, 1).await.unwrap();
        let free = store
            .create_token(&new_token("FREE", None), 1)
            .await
            .unwrap();
        let start = store.latest_change().await.unwrap();

        store
            .issue_emergency(&ott(token.id, "C", 2), 20)
            .await
            .unwrap();
        store.clear_emergency(token.id, 21).await.unwrap();
        // Nothing deleted: no entry.
        store.clear_emergency(token.id, 22).await.unwrap();
        store
            .set_offline_code(&offline_of_token(token.id, 1), 23)
            .await
            .unwrap();
        store.set_offline_online(token.id, true, 24).await.unwrap();
        store
            .set_offline_code(&offline_of_user(wes.id, 1), 25)
            .await
            .unwrap();
        store
            .set_fixed_passcode(&fixed(wes.id, Some("h")), 26)
            .await
            .unwrap();
        store.clear_fixed_passcode(wes.id, 27).await.unwrap();
        // Nothing deleted: no entry.
        store.clear_fixed_passcode(wes.id, 28).await.unwrap();
        // An unassigned token notifies nobody.
        store.issue_emergency(&tft(free.id, "F"), 29).await.unwrap();
        store
            .set_offline_code(&offline_of_token(free.id, 1), 29)
            .await
            .unwrap();
        store.set_offline_online(free.id, true, 29).await.unwrap();
        store.clear_emergency(free.id, 29).await.unwrap();

        let feed = store.changes_since(start).await.unwrap();
        let entries: Vec<UserId> = feed.iter().map(|(_, u)| *u).collect();
        assert_eq!(
            entries,
            [uma.id, uma.id, uma.id, uma.id, wes.id, wes.id, wes.id],
            "{:?}",
            store.backend()
        );
        let at: Vec<i64> = sqlx::query("SELECT at FROM changes WHERE seq > $1 ORDER BY seq")
            .bind(start)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("at"))
            .collect();
        assert_eq!(
            at,
            [20, 21, 23, 24, 25, 26, 27],
            "the `now` given is recorded"
        );
    }
}

#[tokio::test]
async fn emergency_and_offline_rows_cascade_with_their_token_and_user() {
    for (store, _db) in all_test_stores().await {
        let (user, token) = user_with_token(&store, "xia").await;
        let (_, other) = user_with_token(&store, "yan").await;
        store
            .issue_emergency(&ott(token.id, "Q", 2), 1)
            .await
            .unwrap();
        store
            .issue_emergency(&ott(other.id, "Q", 2), 1)
            .await
            .unwrap();
        store
            .set_offline_code(&offline_of_token(token.id, 1), 1)
            .await
            .unwrap();
        store
            .set_offline_code(&offline_of_user(user.id, 1), 1)
            .await
            .unwrap();
        store
            .set_fixed_passcode(&fixed(user.id, None), 1)
            .await
            .unwrap();
        // There is no delete API yet: delete the rows directly.
        sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(token.id)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(store.emergency_of(token.id).await.unwrap(), None);
        assert_eq!(code_rows(&store, token.id).await, 0);
        assert_eq!(store.offline_code_of_token(token.id).await.unwrap(), None);
        assert_eq!(
            code_ids(&store, other.id).await.len(),
            2,
            "others untouched"
        );
        assert!(store.offline_code_of_user(user.id).await.unwrap().is_some());
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.id)
            .execute(&store.pool)
            .await
            .unwrap();
        assert_eq!(store.offline_code_of_user(user.id).await.unwrap(), None);
        assert_eq!(store.fixed_passcode(user.id).await.unwrap(), None);
    }
}

#[tokio::test]
async fn emergency_undecodable_enum_values_are_corrupt_errors_not_panics() {
    for (store, _db) in all_test_stores().await {
        let (_, token) = user_with_token(&store, "zoe").await;
        let access = store
            .issue_emergency(&ott(token.id, "B", 1), 1)
            .await
            .unwrap();
        for (col, good) in [("mode", "unavailable"), ("kind", "ott"), ("rule", "deny")] {
            sqlx::query(&format!(
                "UPDATE emergency_access SET {col} = 'bogus' WHERE token_id = $1"
            ))
            .bind(token.id)
            .execute(&store.pool)
            .await
            .unwrap();
            let got = store.emergency_of(token.id).await;
            assert!(
                matches!(&got, Err(StoreError::Corrupt { what })
                    if what.contains(col) && what.contains("bogus")),
                "{got:?}"
            );
            let got = store.load_principal_record("zoe").await;
            assert!(
                matches!(&got, Err(StoreError::Corrupt { what }) if what.contains(col)),
                "{got:?}"
            );
            sqlx::query(&format!(
                "UPDATE emergency_access SET {col} = '{good}' WHERE token_id = $1"
            ))
            .bind(token.id)
            .execute(&store.pool)
            .await
            .unwrap();
        }
        assert_eq!(store.emergency_of(token.id).await.unwrap(), Some(access));
    }
}

fn bulk_entry(i: usize) -> NewUserWithToken {
    let mut token = new_token(&format!("BULK-{i:05}"), None);
    token.seed_enc = vec![u8::try_from(i % 251).unwrap(); 20];
    NewUserWithToken {
        name: format!("bulk{i:05}"),
        domain: "default".to_owned(),
        profile: (i % 2 == 0).then(|| "vpn".to_owned()),
        token,
    }
}

#[tokio::test]
async fn bulk_create_users_with_tokens_spans_statements_and_feeds_changes() {
    for (store, _db) in all_test_stores().await {
        let before = store.latest_change().await.unwrap();
        // More than one multi-row statement (100 rows each) in one transaction.
        let batch: Vec<NewUserWithToken> = (0..2_345).map(bulk_entry).collect();
        let users = store.create_users_with_tokens(&batch, 777).await.unwrap();
        assert_eq!(users.len(), batch.len());
        for (u, b) in users.iter().zip(&batch) {
            assert_eq!(u.name, b.name, "users come back in the order given");
        }
        for i in [0usize, 999, 1_000, 2_344] {
            let (user, tokens) = store
                .load_principal(&format!("bulk{i:05}"))
                .await
                .unwrap()
                .expect("user created");
            assert_eq!(user.id, users[i].id);
            assert_eq!(user.created_at, 777);
            assert_eq!(user.profile.is_some(), i % 2 == 0);
            assert_eq!(tokens.len(), 1);
            let t = &tokens[0];
            assert_eq!(t.serial, format!("BULK-{i:05}"));
            assert_eq!(t.user_id, Some(user.id));
            assert_eq!(t.seed_enc, batch[i].token.seed_enc);
            assert_eq!(t.pin_hash.as_deref(), Some("hash"));
            assert_eq!(t.pin_state, PinState::Set);
            assert_eq!(t.mode, OtpMode::Totp { period: 30 });
            assert_eq!(t.last_step, -1);
        }
        let feed = store.changes_since(before).await.unwrap();
        assert_eq!(
            feed.len(),
            batch.len(),
            "one change-feed entry per new user"
        );
        assert_eq!(
            store.create_users_with_tokens(&[], 1).await.unwrap(),
            vec![]
        );
        store.close().await;
    }
}

#[tokio::test]
async fn bulk_create_is_all_or_nothing_on_a_taken_name_or_serial() {
    for (store, _db) in all_test_stores().await {
        store
            .create_user("bulk00003", "default", None, 1)
            .await
            .unwrap();
        let batch: Vec<NewUserWithToken> = (0..10).map(bulk_entry).collect();
        let err = store.create_users_with_tokens(&batch, 2).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert!(store.user_by_name("bulk00000").await.unwrap().is_none());

        // A serial taken twice inside the batch fails the whole batch too.
        let mut dup: Vec<NewUserWithToken> = (10..13).map(bulk_entry).collect();
        dup[2].token.serial = dup[0].token.serial.clone();
        let err = store.create_users_with_tokens(&dup, 2).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert!(store.user_by_name("bulk00010").await.unwrap().is_none());
        assert_eq!(store.list_tokens().await.unwrap().len(), 0);

        let mut zero = vec![bulk_entry(20)];
        zero[0].token.mode = OtpMode::Totp { period: 0 };
        let err = store.create_users_with_tokens(&zero, 2).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
        store.close().await;
    }
}

/// the writer's own SQLite connection (`store::fast`) must give exactly the answers and leave
/// exactly the rows that `Store::apply_batch` (sqlx) does, for every op it takes: the batched
/// replay guard (won, replayed, two advances of one token in one batch), plain updates, a guard
/// after a write (savepoint rolled back) and audit rows only for the groups that committed.
#[tokio::test]
async fn r1_fast_writer_and_sqlx_apply_the_same_batch_identically() {
    let (a, _da) = fresh_sqlite_store().await;
    let (b, _db) = fresh_sqlite_store().await;
    let mut fast = a.fast_writer().expect("a SQLite file store").unwrap();
    let mut outcomes = Vec::new();
    for (store, use_fast) in [(&a, true), (&b, false)] {
        let (u1, t1) = user_with_token(store, "ann").await;
        let (_u2, t2) = user_with_token(store, "bob").await;
        store
            .apply_batch(&[vec![advance(t2.id, 50)]])
            .await
            .unwrap();
        let batch = vec![
            vec![advance(t1.id, 10), WriteOp::Audit(audit(1, "ann", "ok"))],
            vec![
                advance(t2.id, 40),
                WriteOp::Audit(audit(2, "bob", "replay")),
            ],
            vec![WriteOp::Audit(audit(3, "nobody", "unknown_user"))],
            vec![
                WriteOp::TouchToken { token_id: t2.id },
                WriteOp::SetTokenBadCount {
                    token_id: t2.id,
                    bad_count: 3,
                },
                WriteOp::Audit(audit(4, "bob", "bad_passcode")),
            ],
            vec![
                WriteOp::SetUserFailures {
                    user_id: u1.id,
                    fail_count: 2,
                    fail_window_start: 7,
                    locked: true,
                    locked_at: Some(8),
                },
                WriteOp::ConsumeChallenge {
                    state: "no-such-state".into(),
                },
                WriteOp::Audit(audit(5, "ann", "rolled_back")),
            ],
            vec![advance(t2.id, 60), WriteOp::Audit(audit(6, "bob", "ok"))],
            vec![
                advance(t2.id, 60),
                WriteOp::Audit(audit(7, "bob", "same step")),
            ],
        ];
        let results = if use_fast {
            assert!(crate::store::fast::FastWriter::supports(&batch));
            fast.apply_batch(&batch).unwrap()
        } else {
            store.apply_batch(&batch).await.unwrap()
        };
        let ann = store.user_by_name("ann").await.unwrap().unwrap();
        let t2 = store.token_by_serial("T-bob").await.unwrap().unwrap();
        let audits: Vec<(i64, String)> = store
            .audit_since(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.at, r.reason))
            .collect();
        outcomes.push((
            results,
            last_step(store, "T-ann").await,
            t2.last_step,
            t2.bad_count,
            (ann.fail_count, ann.locked),
            audits,
        ));
    }
    assert_eq!(
        outcomes[0].0,
        [true, false, true, true, false, true, false],
        "fast writer results"
    );
    assert_eq!(
        outcomes[0], outcomes[1],
        "fast writer (left) vs sqlx (right)"
    );
    // The rolled-back group left nothing: ann is not locked.
    assert_eq!(outcomes[0].4, (0, false));
}

/// Frames in the WAL of `store` now (a `PASSIVE` checkpoint's second column), from a pooled
/// connection.
async fn wal_frames(store: &Store) -> i64 {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(1)
}

/// `n` audit rows with long reasons through the writer's own connection, numbered from `*at`.
fn bulk_audits(fast: &mut super::fast::FastWriter, at: &mut i64, n: usize) {
    let long = "x".repeat(900);
    let groups: Vec<Vec<WriteOp>> = (0..n)
        .map(|_| {
            *at += 1;
            vec![WriteOp::Audit(audit(*at, &long, "bulk"))]
        })
        .collect();
    fast.apply_batch(&groups).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpointer_has_the_own_writer_restart_the_wal_between_batches() {
    use std::sync::atomic::Ordering::Relaxed;
    let (store, db) = fresh_sqlite_store().await;
    store.close().await;
    // The background task's first tick runs at once; after that it stays out of the way and
    // this test runs `checkpoint_once` itself.
    let options = StoreOptions {
        background_checkpoint: Some(std::time::Duration::from_secs(3600)),
        ..StoreOptions::default()
    };
    let store = Store::open_with(db.url(), &options).await.unwrap();
    let mut fast = store.fast_writer().expect("a SQLite file store").unwrap();
    assert_eq!(store.wal.writers.load(Relaxed), 1);
    let mut at = 0;
    bulk_audits(&mut fast, &mut at, 100);
    // A reader's snapshot stands for commits that land while the checkpointer copies: a
    // PASSIVE checkpoint cannot copy past it, so the WAL grows past the restart threshold.
    let mut reader = store.pool.acquire().await.unwrap();
    reader.execute("BEGIN").await.unwrap();
    let seen: i64 = sqlx::query("SELECT COUNT(*) FROM audit")
        .fetch_one(&mut *reader)
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, at);
    let mut grown = 0;
    while grown < SQLITE_WAL_RESTART_PAGES + 500 {
        bulk_audits(&mut fast, &mut at, 100);
        assert!(at < 50_000, "the WAL does not grow");
        grown = wal_frames(&store).await;
    }
    // With the writer's own connection open, the checkpointer asks it instead of running a
    // RESTART checkpoint (which would hold every commit back for the whole copy).
    checkpoint_once(&store.pool, &store.wal).await.unwrap();
    assert!(store.wal.wanted.load(Relaxed), "the writer was not asked");
    reader.execute("COMMIT").await.unwrap();
    drop(reader);
    // The next batch takes the request: one PASSIVE checkpoint with no commit running copies
    // the rest, and the batch's transaction starts the WAL over, so it holds only its frames.
    // (Without the request, nothing has copied the frames written after the snapshot and the
    // batch would append behind them.)
    fast.apply_batch(&[vec![WriteOp::Audit(audit(at + 1, "ann", "ok"))]])
        .unwrap();
    at += 1;
    assert!(!store.wal.wanted.load(Relaxed), "the request was not taken");
    let after = wal_frames(&store).await;
    assert!(
        after < 50,
        "WAL still {after} frames after the writer's checkpoint (was {grown})"
    );
    let rows: i64 = sqlx::query("SELECT COUNT(*) FROM audit")
        .fetch_one(&store.pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, at, "rows lost on the way");
    // Once the writer's connection is gone, nobody would take a request: the checkpointer
    // restarts the WAL itself.
    drop(fast);
    assert_eq!(store.wal.writers.load(Relaxed), 0);
    store.close().await;
}

/// The packet path's usual batches, with rows written twice, failing guards and missing rows
/// mixed in: `apply_batch` (on PostgreSQL mostly the single statement of `pgbatch`) must
/// answer and write exactly what the general path writes, group results, rows and audit order.
#[tokio::test]
async fn r1_single_statement_batches_write_what_the_general_path_writes() {
    let pairs: Vec<_> = all_test_stores()
        .await
        .into_iter()
        .zip(all_test_stores().await)
        .collect();
    for ((fast, _fast_db), (general, _general_db)) in pairs {
        let backend = fast.backend();
        let mut ids = Vec::new();
        for store in [&fast, &general] {
            ids.clear();
            for i in 0..12 {
                let (u, t) = user_with_token(store, &format!("eq{i}")).await;
                ids.push((u.id, t.id));
            }
        }
        // A fixed pseudo-random walk (xorshift), so a failure repeats.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut planned = 0;
        for round in 0..40i64 {
            let groups: Vec<Vec<WriteOp>> = (0..1 + next(10))
                .map(|k| {
                    let (user_id, token_id) = ids[usize::try_from(next(12)).unwrap()];
                    let name = format!("r{round}g{k}");
                    let audit = WriteOp::Audit(audit(round, &name, &name));
                    let failures = |n: u32| WriteOp::SetUserFailures {
                        user_id,
                        fail_count: n,
                        fail_window_start: round,
                        locked: n >= 3,
                        locked_at: (n >= 3).then_some(round),
                    };
                    match next(5) {
                        // An accept that resets its counts; some steps replay an older one.
                        0 | 1 => vec![
                            WriteOp::AdvanceStep {
                                token_id,
                                step: round - i64::try_from(next(3)).unwrap() * 5,
                                drift: i64::try_from(next(3)).unwrap() - 1,
                            },
                            WriteOp::SetTokenBadCount {
                                token_id,
                                bad_count: 0,
                            },
                            failures(0),
                            audit,
                        ],
                        // A wrong passcode.
                        2 | 3 => {
                            let n = u32::try_from(next(4)).unwrap();
                            vec![
                                WriteOp::SetTokenBadCount {
                                    token_id,
                                    bad_count: n,
                                },
                                failures(n),
                                audit,
                            ]
                        }
                        // An unknown user's decoy touch, sometimes of a token that is not there.
                        _ => vec![
                            WriteOp::TouchToken {
                                token_id: token_id + 1000 * i64::try_from(next(2)).unwrap(),
                            },
                            audit,
                        ],
                    }
                })
                .collect();
            if super::pgbatch::plan(&groups).is_some() {
                planned += 1;
            }
            let a = fast.apply_batch(&groups).await.unwrap();
            let mut conn = general.pool.acquire().await.unwrap();
            let b = general
                .apply_batch_in_transaction(&mut conn, &groups)
                .await
                .unwrap();
            assert_eq!(a, b, "{backend:?} round {round}: {groups:?}");
        }
        assert!(planned >= 10, "only {planned} of 40 batches were planned");
        // What the packet path writes: tokens' replay and failure columns, users' lockout ones.
        type Written = (
            Vec<(TokenId, i64, i64, u32)>,
            Vec<(UserId, u32, i64, bool, Option<i64>)>,
        );
        async fn written(s: &Store) -> Written {
            let tokens = s.list_tokens().await.unwrap().into_iter();
            let users = s.list_users().await.unwrap().into_iter();
            (
                tokens
                    .map(|t| (t.id, t.last_step, t.drift, t.bad_count))
                    .collect(),
                users
                    .map(|u| {
                        (
                            u.id,
                            u.fail_count,
                            u.fail_window_start,
                            u.locked,
                            u.locked_at,
                        )
                    })
                    .collect(),
            )
        }
        assert_eq!(written(&fast).await, written(&general).await, "{backend:?}");
        let audit_rows = fast.audit_since(0, 10_000).await.unwrap();
        assert!(audit_rows.len() > 100, "{}", audit_rows.len());
        assert_eq!(
            audit_rows,
            general.audit_since(0, 10_000).await.unwrap(),
            "{backend:?}"
        );
    }
}
