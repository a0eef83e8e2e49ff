//! The group-commit writer: concurrent submits, batching, a bad group's own error, flushing on
//! shutdown, durability of what it acknowledged, and a database that is gone.

use std::sync::atomic::Ordering;

use super::*;

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

/// `/readyz`'s inputs: failed write attempts are counted (with the last error) until the next
/// commit, and [`Store::check_writable`] fails exactly while writes do. SQLite's `query_only`
/// on the one connection of an in-memory store stands in for a read-only file.
#[tokio::test]
async fn write_failures_are_counted_until_a_commit_and_the_write_probe_follows_them() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let (_, token) = user_with_token(&store, "wendy").await;
    store.check_writable().await.unwrap();
    let (writer, task) = WriterHandle::spawn(store.clone(), 256, 256);
    let stats = writer.stats();
    assert!(stats.write_failing().is_none());
    store.pool.execute("PRAGMA query_only = ON").await.unwrap();
    for (i, step) in [5, 6].into_iter().enumerate() {
        assert!(writer.submit(vec![advance(token.id, step)]).await.is_err());
        let (n, last) = stats.write_failing().unwrap();
        assert_eq!(n, i as u64 + 1);
        assert!(last.contains("readonly"), "{last}");
    }
    let err = store.check_writable().await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotWritable { .. }) && err.to_string().contains("readonly"),
        "{err}"
    );
    store.pool.execute("PRAGMA query_only = OFF").await.unwrap();
    store.check_writable().await.unwrap();
    assert!(writer.submit(vec![advance(token.id, 7)]).await.unwrap());
    assert!(stats.write_failing().is_none());
    drop(writer);
    task.await.unwrap();
}
