//! Emergency access (SPEC §6–§8): online emergency access and its codes, offline emergency
//! codes and fixed passcodes, as the admin sets them and as the packet path spends them.

use super::*;

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
