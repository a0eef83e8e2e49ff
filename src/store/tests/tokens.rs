//! Tokens: every field's round trip, the refusals, the admin changes of one token, rows that
//! do not decode, and bulk provisioning.

use super::*;

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
