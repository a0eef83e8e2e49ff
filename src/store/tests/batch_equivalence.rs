//! The batch's executors agree: the writer's own SQLite connection and PostgreSQL's single
//! statement answer and write exactly what the general sqlx path does.

use super::*;

/// the writer's own SQLite connection (`store::batch::sqlite`) must give exactly the answers
/// and leave exactly the rows that `Store::apply_batch` (sqlx) does, for every op it takes: the
/// batched replay guard (won, replayed, two advances of one token in one batch), plain updates,
/// a guard after a write (savepoint rolled back) and audit rows only for the groups that
/// committed.
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
            assert!(crate::store::batch::FastWriter::supports(&batch));
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

/// The packet path's usual batches, with rows written twice, failing guards and missing rows
/// mixed in: `apply_batch` (on PostgreSQL mostly the single statement of `batch::postgres`) must
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
            if crate::store::batch::postgres::plan(&groups).is_some() {
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
