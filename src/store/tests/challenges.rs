//! Challenge sessions: single use, and purging the expired ones.

use super::*;

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
