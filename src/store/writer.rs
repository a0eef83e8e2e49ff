//! Group commit for the packet path: one task owns the writes, many requests share each
//! transaction (and so each fsync).
//!
//! It owns the queue, the batching loop and the fan-out of results; [`Store::apply_batch`] does
//! the SQL. It must not reorder a group's ops, merge groups, or answer a submitter before the
//! transaction holding its group has committed: a RADIUS Accept may only leave once its replay
//! step is durable (SPEC R-1, §13 "nothing accepted is lost").
//!
//! Errors: a failed batch is retried group by group, so one bad group (say, a duplicate
//! challenge State) gets its own error and cannot fail its neighbours. When the failure is not
//! any group's fault (connection lost, pool exhausted, SQLite still busy after its timeout), the
//! retries stop and every remaining waiter gets the same error shared through
//! [`StoreError::Batch`]`(Arc<StoreError>)`, since a `sqlx::Error` cannot be cloned.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Store, StoreError, WriteOp};
use crate::stats::{AtomicHistogram, BatchGroups, CommitNanos};

/// Counters of the writer, shared through an `Arc` for the metrics endpoint.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions attempted by the batching loop (single-group retries not included).
    pub batches: AtomicU64,
    /// Groups taken off the queue.
    pub groups: AtomicU64,
    /// Groups in the most recent batch.
    pub last_batch_size: AtomicU64,
    /// Largest batch so far.
    pub max_batch_size: AtomicU64,
    /// Groups queued and not yet taken by the writer. Incremented after a group is queued and
    /// decremented when the writer takes it, so it can read -1 for an instant.
    pub queue_depth: AtomicI64,
    /// Time spent in batch transactions (begin to commit), in nanoseconds.
    pub commit_nanos_total: AtomicU64,
    /// Batch transactions that failed and were retried or failed their groups.
    pub failed_batches: AtomicU64,
    /// Groups per batch transaction.
    pub batch_size: AtomicHistogram<BatchGroups>,
    /// Batch transaction time (begin to commit), in nanoseconds.
    pub commit_latency: AtomicHistogram<CommitNanos>,
}

/// What runs on the writer task once a group's transaction has committed (or failed): the
/// packet path's reply is encoded and sent from here, with no task or channel per request. It
/// must not block; anything slow it spawns.
pub type Done = Box<dyn FnOnce(Result<bool, StoreError>) + Send>;

/// Where a group's answer goes.
enum Reply {
    /// A waiting `submit`.
    Channel(oneshot::Sender<Result<bool, StoreError>>),
    /// A `submit_detached` callback.
    Callback(Done),
}

impl Reply {
    fn send(self, result: Result<bool, StoreError>) {
        match self {
            // A submitter that gave up waiting is not an error.
            Reply::Channel(tx) => _ = tx.send(result),
            Reply::Callback(done) => done(result),
        }
    }
}

/// One queued group and where its answer goes.
struct Job {
    group: Vec<WriteOp>,
    reply: Reply,
}

/// Submits write groups to the writer task. Cheap to clone; the task exits once every clone is
/// dropped and the queue has been flushed.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    queue: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

impl WriterHandle {
    /// Starts the writer task on the current tokio runtime. Each transaction holds at most
    /// `max_groups` groups; the queue holds at most `queue` groups, beyond which
    /// [`WriterHandle::submit`] waits (back-pressure). Both are raised to at least 1.
    ///
    /// Graceful shutdown: drop every handle, then await the returned `JoinHandle`; the task
    /// commits whatever is still queued before it ends.
    pub fn spawn(store: Store, max_groups: usize, queue: usize) -> (WriterHandle, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let stats = Arc::new(WriterStats::default());
        let task = tokio::spawn(run(store, rx, max_groups.max(1), Arc::clone(&stats)));
        (WriterHandle { queue: tx, stats }, task)
    }

    /// Queues one group and resolves once the transaction containing it has committed:
    /// `Ok(true)` when all its ops ran, `Ok(false)` when a guard failed (nothing of the group
    /// was written), `Err` when it could not be written.
    ///
    /// Cancelling the returned future after the group was queued does not withdraw it: it may
    /// still commit.
    pub async fn submit(&self, group: Vec<WriteOp>) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                group,
                reply: Reply::Channel(reply),
            })
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        answer.await.map_err(|_| StoreError::WriterClosed)?
    }

    /// Queues one group without waiting: `done` runs on the writer task with the same result
    /// [`WriterHandle::submit`] would return, after the transaction holding the group has
    /// committed (or failed). When the queue is full, a task waits for room (the packet path's
    /// in-flight limit bounds how many can); when the writer has stopped, `done` gets
    /// [`StoreError::WriterClosed`] at once.
    pub fn submit_detached(&self, group: Vec<WriteOp>, done: Done) {
        let job = Job {
            group,
            reply: Reply::Callback(done),
        };
        match self.queue.try_send(job) {
            Ok(()) => _ = self.stats.queue_depth.fetch_add(1, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(job)) => {
                let queue = self.queue.clone();
                let stats = Arc::clone(&self.stats);
                tokio::spawn(async move {
                    match queue.send(job).await {
                        Ok(()) => _ = stats.queue_depth.fetch_add(1, Ordering::Relaxed),
                        Err(mpsc::error::SendError(job)) => {
                            job.reply.send(Err(StoreError::WriterClosed));
                        }
                    }
                });
            }
            Err(mpsc::error::TrySendError::Closed(job)) => {
                job.reply.send(Err(StoreError::WriterClosed));
            }
        }
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<WriterStats> {
        Arc::clone(&self.stats)
    }
}

/// The writer loop: wait for one group, take whatever else is already queued (up to
/// `max_groups`), commit them together, answer everyone, repeat. Ends when all handles are gone
/// and the queue is empty.
async fn run(
    store: Store,
    mut queue: mpsc::Receiver<Job>,
    max_groups: usize,
    stats: Arc<WriterStats>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_groups);
    // The writer's own connection; dropped after a failure that is not a statement's (it may be
    // broken) and taken again for the next batch.
    let mut conn: Option<PoolConnection<Any>> = None;
    let keep = store.writer_keeps_connection();
    while let Some(first) = queue.recv().await {
        jobs.push(first);
        while jobs.len() < max_groups {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let n = jobs.len() as u64;
        stats
            .queue_depth
            .fetch_sub(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
        stats.groups.fetch_add(n, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.last_batch_size.store(n, Ordering::Relaxed);
        stats.max_batch_size.fetch_max(n, Ordering::Relaxed);
        stats.batch_size.observe(n);
        let batch = std::mem::take(&mut jobs);
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match store.writer_connection().await {
                Ok(c) => conn.insert(c),
                Err(err) => {
                    stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "store writer: no connection");
                    let shared = Arc::new(err);
                    for job in batch {
                        job.reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                    }
                    continue;
                }
            },
        };
        if !commit(&store, c, batch, &stats).await || !keep {
            conn = None;
        }
    }
    tracing::debug!("store writer: all handles dropped, queue flushed, exiting");
}

/// Commits one batch on `conn` and answers its submitters. Returns false when the connection
/// should be replaced (a failure that was not a statement's).
async fn commit(
    store: &Store,
    conn: &mut AnyConnection,
    jobs: Vec<Job>,
    stats: &WriterStats,
) -> bool {
    let (groups, replies): (Vec<Vec<WriteOp>>, Vec<_>) =
        jobs.into_iter().map(|j| (j.group, j.reply)).unzip();
    let started = Instant::now();
    let outcome = store.apply_batch_on(conn, &groups).await;
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    stats.commit_nanos_total.fetch_add(nanos, Ordering::Relaxed);
    stats.commit_latency.observe(nanos);
    match outcome {
        Ok(results) => {
            crate::audit::emit_committed(&groups, &results);
            for (reply, ok) in replies.into_iter().zip(results.iter()) {
                reply.send(Ok(*ok));
            }
            true
        }
        Err(err) => {
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            let statement = err.is_statement_error(store.backend());
            if groups.len() == 1 {
                if let Some(reply) = replies.into_iter().next() {
                    reply.send(Err(err));
                }
                return statement;
            }
            tracing::warn!(groups = groups.len(), error = %err, "store batch failed");
            if statement {
                retry_one_by_one(store, conn, groups, replies).await
            } else {
                let shared = Arc::new(err);
                for reply in replies {
                    reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                }
                false
            }
        }
    }
}

/// After a batch failed because of some group's statement: runs each group in its own
/// transaction, so only the faulty one gets the error. Stops at the first error that is not a
/// statement's and fails the rest with it (returning false: replace the connection).
async fn retry_one_by_one(
    store: &Store,
    conn: &mut AnyConnection,
    groups: Vec<Vec<WriteOp>>,
    replies: Vec<Reply>,
) -> bool {
    let mut pending = groups.into_iter().zip(replies);
    while let Some((group, reply)) = pending.next() {
        match store
            .apply_batch_on(conn, std::slice::from_ref(&group))
            .await
        {
            Ok(results) => {
                crate::audit::emit_committed(std::slice::from_ref(&group), &results);
                reply.send(Ok(results.first().copied().unwrap_or(true)));
            }
            Err(err) if err.is_statement_error(store.backend()) => {
                reply.send(Err(err));
            }
            Err(err) => {
                let shared = Arc::new(err);
                reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                for (_, reply) in pending.by_ref() {
                    reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                }
                return false;
            }
        }
    }
    true
}
