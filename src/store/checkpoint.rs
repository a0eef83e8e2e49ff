//! SQLite's WAL checkpoints kept off the commit path: the background checkpointer of a SQLite
//! file store ([`StoreOptions::background_checkpoint`](super::StoreOptions::background_checkpoint))
//! and [`WalRestart`], through which it asks the writer's own connection to start the WAL over.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyPool, Row};

/// SQLite's automatic checkpoint threshold (WAL pages) while a background checkpointer runs: a
/// safety net far above what the checkpointer lets the WAL reach, so commits almost never run
/// a checkpoint themselves, yet the WAL stays bounded (about 40 MiB) if the checkpointer
/// cannot keep up.
pub(super) const SQLITE_AUTOCHECKPOINT_WITH_BACKGROUND: u32 = 10_000;

/// How the background checkpointer gets the WAL restarted without stalling the writer.
///
/// A `RESTART` checkpoint takes the write lock for the whole copy and database fsync (measured:
/// 1.3 to 2.2 s under load, with every Accept waiting behind it). When the writer's own
/// connection runs ([`FastWriter`]), the checkpointer instead asks it, through this flag, to
/// run one `PASSIVE` checkpoint between two of its batches: with no writer running
/// concurrently it catches up completely (copying only what was committed since the
/// checkpointer's own pass), and the writer's next transaction starts the WAL over.
///
/// [`FastWriter`]: super::batch::FastWriter
#[derive(Debug, Default)]
pub(crate) struct WalRestart {
    /// Own writer connections open now.
    pub(crate) writers: std::sync::atomic::AtomicUsize,
    /// Set by the checkpointer, taken by the writer.
    pub(crate) wanted: std::sync::atomic::AtomicBool,
}

/// The background WAL checkpointer of a SQLite file store
/// ([`StoreOptions::background_checkpoint`]), until the pool closes.
///
/// Why: with SQLite's default, the connection whose commit grows the WAL past 1,000 pages runs
/// the checkpoint inside that commit: copying the pages into the database file and an fsync
/// (`synchronous=FULL`), while every request of the batch waits for its Accept and the next
/// batches queue behind it. Here a `PASSIVE` checkpoint runs on another pooled connection,
/// concurrently with the writer (it never takes the write lock and never waits for one), so the
/// WAL is copied back in small pieces and SQLite can restart it from the beginning once a
/// checkpoint has caught up. Durability is unchanged: commits still fsync the WAL.
///
/// [`StoreOptions::background_checkpoint`]: super::StoreOptions::background_checkpoint
pub(super) async fn checkpoint_loop(pool: AnyPool, every: Duration, wal: Arc<WalRestart>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = pool.close_event() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = checkpoint_once(&pool, &wal).await {
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    }
}

/// WAL pages after which the background checkpointer restarts the WAL (about 16 MiB).
pub(super) const SQLITE_WAL_RESTART_PAGES: i64 = 4_096;

/// One round of the background checkpointer: a `PASSIVE` checkpoint copies what it can without
/// blocking anyone. Under steady writes it never catches up exactly when a new transaction
/// starts, so SQLite would never start the WAL over and it would grow to the automatic
/// threshold. Once the WAL holds [`SQLITE_WAL_RESTART_PAGES`]: when the writer has its own
/// connection, it is asked to finish the job between two batches ([`WalRestart`]); otherwise a
/// `RESTART` checkpoint copies the pages written since the passive one (holding writers back
/// for that) and makes the next writer start the WAL from the beginning.
pub(super) async fn checkpoint_once(pool: &AnyPool, wal: &WalRestart) -> Result<(), sqlx::Error> {
    use std::sync::atomic::Ordering::Relaxed;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    let log: i64 = row.try_get(1)?;
    if log >= SQLITE_WAL_RESTART_PAGES {
        if wal.writers.load(Relaxed) > 0 {
            wal.wanted.store(true, Relaxed);
        } else {
            sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}
