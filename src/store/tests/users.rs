//! Users: create, look up, list, and the lock and unlock (SPEC L-1).

use super::*;

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
        // ... and its tokens' bad-passcode counts (N-1), or the next correct passcode would be
        // asked for the next tokencode.
        assert_eq!(
            store
                .token_by_serial("T-dave")
                .await
                .unwrap()
                .unwrap()
                .bad_count,
            0
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
