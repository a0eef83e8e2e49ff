//! SQLite's WAL checkpoints: the background checkpointer, and the writer's own connection
//! restarting the WAL between batches when asked.

use super::*;
use crate::store::checkpoint::{checkpoint_once, SQLITE_WAL_RESTART_PAGES};

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
    let deadline = crate::clock::monotonic() + std::time::Duration::from_secs(20);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 1_000_000 {
            break;
        }
        assert!(
            crate::clock::monotonic() < deadline,
            "database file still {now} bytes (was {before}): no background checkpoint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    store.close().await;
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
fn bulk_audits(fast: &mut crate::store::batch::FastWriter, at: &mut i64, n: usize) {
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
