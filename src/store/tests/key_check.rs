//! The master key check (`key_check`): recording the check value once, what a database holds
//! that a key must open, the instance lease against a rotation (PostgreSQL), and `rekey`, the
//! one transaction of `key rotate`.

use super::*;

const CHECK_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const CHECK_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn rotation_audit(at: i64) -> AuditRecord {
    AuditRecord {
        at,
        actor: Some("cli:test".to_owned()),
        user_name: String::new(),
        client: None,
        protocol: "admin".to_owned(),
        method: "key_rotate".to_owned(),
        result: "ok".to_owned(),
        reason: "none".to_owned(),
    }
}

/// A stand-in for re-encryption: the blob with a marker byte in front.
fn marked(sealed: &Sealed) -> Result<Vec<u8>, String> {
    let mut out = vec![0xee];
    out.extend_from_slice(&sealed.blob);
    Ok(out)
}

/// Every blob the database holds, in table and id order.
async fn all_blobs(store: &Store) -> Vec<Vec<u8>> {
    store
        .sealed_sample(1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.blob)
        .collect()
}

#[tokio::test]
async fn the_check_value_is_recorded_once_and_read_back() {
    for (store, _db) in all_test_stores().await {
        let b = store.backend();
        assert_eq!(store.key_check().await.unwrap(), None, "{b:?}");
        assert!(store.record_key_check(CHECK_A, 100).await.unwrap(), "{b:?}");
        // A second instance racing the first loses and reads the winner's value.
        assert!(
            !store.record_key_check(CHECK_B, 200).await.unwrap(),
            "{b:?}"
        );
        let check = store.key_check().await.unwrap().unwrap();
        assert_eq!(
            check,
            KeyCheck {
                check_value: CHECK_A.to_owned(),
                pepper_wrapped: None,
                set_at: 100,
                rotated_at: None,
            },
            "{b:?}"
        );
        // The table holds one row at most, whatever is tried.
        let second =
            sqlx::query("INSERT INTO key_check (id, check_value, set_at) VALUES (2, $1, 1)")
                .bind(CHECK_B)
                .execute(&store.pool)
                .await;
        assert!(second.is_err(), "{b:?}: a second row was accepted");
    }
}

#[tokio::test]
async fn users_tokens_fixed_hashes_and_sealed_blobs_are_seen() {
    for (store, _db) in all_test_stores().await {
        let b = store.backend();
        assert!(!store.holds_users_or_tokens().await.unwrap(), "{b:?}");
        assert!(store.sealed_sample(16).await.unwrap().is_empty(), "{b:?}");
        let spare = store
            .create_token(&new_token("T-SPARE", None), 100)
            .await
            .unwrap();
        assert!(
            store.holds_users_or_tokens().await.unwrap(),
            "{b:?}: an unassigned token"
        );
        let (user, token) = user_with_token(&store, "alice").await;
        assert!(!store.holds_fixed_passcode_hashes().await.unwrap(), "{b:?}");
        store
            .set_fixed_passcode(&fixed(user.id, None), 100)
            .await
            .unwrap();
        assert!(
            !store.holds_fixed_passcode_hashes().await.unwrap(),
            "{b:?}: no hash yet"
        );
        store
            .set_fixed_passcode(&fixed(user.id, Some("h1$x$y")), 100)
            .await
            .unwrap();
        assert!(store.holds_fixed_passcode_hashes().await.unwrap(), "{b:?}");
        store
            .set_offline_code(&offline_of_token(token.id, 3), 100)
            .await
            .unwrap();
        store
            .set_offline_code(&offline_of_user(user.id, 4), 100)
            .await
            .unwrap();

        let sample = store.sealed_sample(16).await.unwrap();
        let owners: Vec<SealedOwner> = sample.iter().map(|s| s.owner.clone()).collect();
        assert_eq!(
            owners,
            [
                SealedOwner::TokenSeed {
                    serial: spare.serial.clone()
                },
                SealedOwner::TokenSeed {
                    serial: token.serial.clone()
                },
                SealedOwner::OfflineCode {
                    token_id: Some(token.id),
                    user_id: None
                },
                SealedOwner::OfflineCode {
                    token_id: None,
                    user_id: Some(user.id)
                },
            ],
            "{b:?}"
        );
        assert_eq!(sample[0].blob, spare.seed_enc, "{b:?}");
        assert_eq!(
            sample[2].blob,
            offline_of_token(token.id, 3).code_enc,
            "{b:?}"
        );
        // The limit counts seeds first.
        assert_eq!(store.sealed_sample(1).await.unwrap().len(), 1, "{b:?}");
        assert_eq!(store.sealed_sample(3).await.unwrap().len(), 3, "{b:?}");
        // A Debug of a blob or a check never prints the bytes.
        let shown = format!("{:?}", sample[0]);
        assert!(
            shown.contains("blob_len") && !shown.contains("255"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn rekey_replaces_every_blob_and_the_check_in_one_audited_transaction() {
    for (store, _db) in all_test_stores().await {
        let b = store.backend();
        // More tokens than one page (1,000) and than one statement (100) hold.
        let batch: Vec<NewUserWithToken> = (0..1_050)
            .map(|i| NewUserWithToken {
                name: format!("u{i:04}"),
                domain: "default".to_owned(),
                profile: None,
                token: NewToken {
                    seed_enc: vec![1, 2, u8::try_from(i % 251).unwrap()],
                    ..new_token(&format!("T-{i:04}"), None)
                },
            })
            .collect();
        let users = store.create_users_with_tokens(&batch, 100).await.unwrap();
        let token = store.token_by_serial("T-0007").await.unwrap().unwrap();
        store
            .set_offline_code(&offline_of_token(token.id, 3), 100)
            .await
            .unwrap();
        store
            .set_offline_code(&offline_of_user(users[9].id, 4), 100)
            .await
            .unwrap();
        store.record_key_check(CHECK_A, 100).await.unwrap();
        let before = all_blobs(&store).await;
        assert_eq!(before.len(), 1_052, "{b:?}");

        let audit = rotation_audit(500);
        let mut seen = Vec::new();
        let done = store
            .rekey(
                &Rekey {
                    expected_check: CHECK_A,
                    new_check: CHECK_B,
                    pepper_wrapped: &[9, 9, 9],
                    audit: &audit,
                },
                |s| {
                    seen.push(s.owner.clone());
                    marked(s)
                },
            )
            .await
            .unwrap();
        assert_eq!(
            done,
            Rekeyed {
                seeds: 1_050,
                offline_codes: 2
            },
            "{b:?}"
        );
        assert_eq!(seen.len(), 1_052, "{b:?}: every blob once");
        let after = all_blobs(&store).await;
        let expected: Vec<Vec<u8>> = before
            .iter()
            .map(|blob| [&[0xee_u8][..], blob].concat())
            .collect();
        assert_eq!(after, expected, "{b:?}");
        assert_eq!(
            store.key_check().await.unwrap().unwrap(),
            KeyCheck {
                check_value: CHECK_B.to_owned(),
                pepper_wrapped: Some(vec![9, 9, 9]),
                set_at: 500,
                rotated_at: Some(500),
            },
            "{b:?}"
        );
        let audits = store.audit_since(0, 100).await.unwrap();
        assert_eq!(audits, std::slice::from_ref(&audit), "{b:?}");
        // Everything else about the rows stayed as it was.
        let t = store.token_by_serial("T-0007").await.unwrap().unwrap();
        assert_eq!(
            Token {
                seed_enc: token.seed_enc.clone(),
                ..t.clone()
            },
            token,
            "{b:?}"
        );
        // A second rotation needs the new value; the old one no longer applies.
        let stale = store
            .rekey(
                &Rekey {
                    expected_check: CHECK_A,
                    new_check: CHECK_A,
                    pepper_wrapped: &[1],
                    audit: &audit,
                },
                marked,
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::Invalid { .. })),
            "{b:?}: {stale:?}"
        );
        assert_eq!(all_blobs(&store).await, expected, "{b:?}");
    }
}

#[tokio::test]
async fn a_refused_blob_or_a_changed_check_leaves_everything_as_it_was() {
    for (store, _db) in all_test_stores().await {
        let b = store.backend();
        for i in 0..3 {
            user_with_token(&store, &format!("user{i}")).await;
        }
        store.record_key_check(CHECK_A, 100).await.unwrap();
        let before = all_blobs(&store).await;
        let audit = rotation_audit(500);
        let plan = Rekey {
            expected_check: CHECK_A,
            new_check: CHECK_B,
            pepper_wrapped: &[9],
            audit: &audit,
        };
        // The last blob does not decrypt: the two before it were already rewritten in the
        // transaction, which must roll back.
        let refused = store
            .rekey(&plan, |s| match &s.owner {
                SealedOwner::TokenSeed { serial } if serial == "T-user2" => {
                    Err("the seed of token \"T-user2\" does not decrypt".to_owned())
                }
                _ => marked(s),
            })
            .await;
        match refused {
            Err(StoreError::Invalid { what }) => assert!(what.contains("T-user2"), "{what}"),
            other => panic!("{b:?}: {other:?}"),
        }
        assert_eq!(all_blobs(&store).await, before, "{b:?}");
        assert_eq!(
            store.key_check().await.unwrap().unwrap().check_value,
            CHECK_A
        );
        assert!(store.audit_since(0, 100).await.unwrap().is_empty(), "{b:?}");

        // Without a recorded check value there is nothing to rotate from.
        let (empty, _db2) = match b {
            Backend::Sqlite => fresh_sqlite_store().await,
            Backend::Postgres => crate::store::testing::fresh_store().await,
        };
        let none = empty.rekey(&plan, marked).await;
        assert!(
            matches!(none, Err(StoreError::Invalid { .. })),
            "{b:?}: {none:?}"
        );
        empty.close().await;
    }
}

#[tokio::test]
async fn a_gateway_lease_keeps_a_rotation_out_on_postgres() {
    for (store, _db) in all_test_stores().await {
        let audit = rotation_audit(500);
        store.record_key_check(CHECK_A, 100).await.unwrap();
        let plan = Rekey {
            expected_check: CHECK_A,
            new_check: CHECK_B,
            pepper_wrapped: &[9],
            audit: &audit,
        };
        let lease = store.instance_lease().await.unwrap();
        if store.backend() == Backend::Sqlite {
            // SQLite gateways are seen through their key file's lock instead (`keys`).
            assert!(lease.is_none());
            continue;
        }
        let second = store.instance_lease().await.unwrap();
        assert!(second.is_some(), "two gateways share the database");
        let refused = store.rekey(&plan, marked).await;
        match refused {
            Err(StoreError::InUse { what }) => {
                assert!(what.contains("stop every gateway"), "{what}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store.key_check().await.unwrap().unwrap().check_value,
            CHECK_A
        );
        for l in [lease, second].into_iter().flatten() {
            l.release().await;
        }
        // While a rotation holds the lock, a gateway cannot take its lease.
        let mut tx = store.pool.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock(8390042714202661236)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let blocked = store.instance_lease().await;
        assert!(
            matches!(&blocked, Err(StoreError::InUse { what }) if what.contains("key rotate")),
            "{blocked:?}"
        );
        tx.rollback().await.unwrap();
        store
            .instance_lease()
            .await
            .unwrap()
            .unwrap()
            .release()
            .await;
        store.rekey(&plan, marked).await.unwrap();
        assert_eq!(
            store.key_check().await.unwrap().unwrap().check_value,
            CHECK_B
        );
    }
}
