//! The packet-path batch's guard rule (SPEC R-1): the replay compare-and-set, a failed guard
//! skipping the rest of its group only, the multi-row guards across statement chunks, and two
//! gateway instances racing the same step.

use super::*;

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
