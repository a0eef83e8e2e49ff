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
//!
//! Every failed write attempt (a batch, or a group retried alone) is counted in
//! [`WriterStats::write_failing`] with its error until the next commit, for `/readyz`; a
//! commit costs one relaxed load for it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::Any;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use std::future::Future;

use super::batch::FastWriter;
use super::{Backend, Store, StoreError};
use crate::engine::WriteOp;
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
    /// Write attempts that failed in a row (a batch, or a group retried alone); reset by the
    /// next commit. `/readyz` is not ready while it is above 0 and a write probe fails.
    pub write_failures: AtomicU64,
    /// The error of the most recent failed write attempt (kept until the next one).
    last_write_error: std::sync::Mutex<Option<String>>,
}

impl WriterStats {
    /// A write attempt committed (one relaxed load when nothing failed before).
    fn note_commit(&self) {
        if self.write_failures.load(Ordering::Relaxed) != 0 {
            self.write_failures.store(0, Ordering::Relaxed);
        }
    }

    /// A write attempt failed with `err`.
    fn note_failure(&self, err: &StoreError) {
        if let Ok(mut last) = self.last_write_error.lock() {
            *last = Some(err.to_string());
        }
        self.write_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// How many write attempts failed in a row, and the last error; `None` when the last one
    /// committed.
    pub fn write_failing(&self) -> Option<(u64, String)> {
        let n = self.write_failures.load(Ordering::Relaxed);
        if n == 0 {
            return None;
        }
        let last = self
            .last_write_error
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_default();
        Some((n, last))
    }
}

/// What runs once a group's transaction has committed (or failed), on the writer's thread for a
/// small batch or on the shared runtime for a large one (see `commit`): the packet path's
/// reply is encoded and sent from here, with no task or channel per request. It must not
/// block; anything slow it spawns (onto the shared runtime, whose context it runs in).
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
        let main = tokio::runtime::Handle::current();
        let max_groups = max_groups.max(1);
        let task = match store.backend() {
            Backend::Sqlite => {
                spawn_on_own_thread(run(store, rx, max_groups, Arc::clone(&stats), main))
            }
            Backend::Postgres => tokio::spawn(run(store, rx, max_groups, Arc::clone(&stats), main)),
        };
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

    /// Queues one group without waiting: `done` runs (see [`Done`]) with the same result
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

/// Runs the SQLite writer loop on a thread of its own with a single-threaded runtime, and
/// returns a handle that completes when it has finished.
///
/// Why: sqlx runs each SQLite connection on a worker thread and every statement is a round
/// trip to it (four per batch). On the shared runtime, each time the worker answers, the writer
/// task waits in a run queue behind the receive loops, which decide up to a budget of datagrams
/// before yielding: that wait, four times per batch, was most of a commit's time at peak load.
/// On its own thread the writer is woken directly. A large batch's replies go out on the shared
/// runtime (see `fan_outs` in [`run`] and [`commit`]).
fn spawn_on_own_thread(writer: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()> {
    let (finished, wait) = oneshot::channel::<()>();
    let started = std::thread::Builder::new()
        .name("tokengate-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(writer),
                Err(e) => tracing::error!(error = %e, "store writer: no runtime; writes fail"),
            }
            _ = finished.send(());
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "store writer: thread not started; writes fail");
    }
    tokio::spawn(async move {
        _ = wait.await;
    })
}

/// The writer loop: wait for one group, take whatever else is already queued (up to
/// `max_groups`), commit them together, answer everyone, repeat. Ends when all handles are gone
/// and the queue is empty.
async fn run(
    store: Store,
    mut queue: mpsc::Receiver<Job>,
    max_groups: usize,
    stats: Arc<WriterStats>,
    main: tokio::runtime::Handle,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_groups);
    let mut conns = Conns::new(store);
    // Answers of committed batches being sent on other tasks; all are awaited before exiting.
    let mut fan_outs = JoinSet::new();
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
        while fan_outs.try_join_next().is_some() {}
        commit(
            &mut conns,
            std::mem::take(&mut jobs),
            &stats,
            (&mut fan_outs, &main),
        )
        .await;
    }
    while fan_outs.join_next().await.is_some() {}
    conns.close().await;
    tracing::debug!("store writer: all handles dropped, queue flushed, exiting");
}

/// After the writer's own SQLite connection failed to open, how long it uses sqlx alone.
const FAST_RETRY: Duration = Duration::from_secs(10);

/// The writer's connections: on a SQLite file, its own `rusqlite` connection ([`FastWriter`])
/// for the packet path's batches; otherwise (and for batches that connection does not take) a
/// pooled sqlx connection it keeps. Either is dropped after a failure that is not a
/// statement's (it may be broken) and opened again for the next batch.
struct Conns {
    store: Store,
    /// Whether the pooled connection is kept between batches.
    keep: bool,
    sqlx: Option<PoolConnection<Any>>,
    fast: Option<FastWriter>,
    /// Set after the own connection failed to open: sqlx alone until then.
    fast_retry_at: Option<Instant>,
}

impl Conns {
    fn new(store: Store) -> Conns {
        Conns {
            keep: store.writer_keeps_connection(),
            store,
            sqlx: None,
            fast: None,
            fast_retry_at: None,
        }
    }

    fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// The own SQLite connection, opened if needed; `None` when there is none to use.
    fn fast(&mut self) -> Option<&mut FastWriter> {
        if self.fast.is_none() {
            if self
                .fast_retry_at
                .is_some_and(|t| crate::clock::monotonic() < t)
            {
                return None;
            }
            match self.store.fast_writer()? {
                Ok(f) => {
                    self.fast_retry_at = None;
                    self.fast = Some(f);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store writer: own SQLite connection failed; using the pool");
                    self.fast_retry_at = Some(crate::clock::monotonic() + FAST_RETRY);
                    return None;
                }
            }
        }
        self.fast.as_mut()
    }

    /// Applies one batch (see [`Store::apply_batch`]).
    async fn apply(&mut self, groups: &[Vec<WriteOp>]) -> Result<Vec<bool>, StoreError> {
        let backend = self.backend();
        if self.store.is_closed() {
            // The own connection would still work: a closed store takes no more writes.
            self.fast = None;
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        if FastWriter::supports(groups) {
            if let Some(fast) = self.fast() {
                let result = fast.apply_batch(groups);
                if result
                    .as_ref()
                    .is_err_and(|e| !e.is_statement_error(backend))
                {
                    self.fast = None;
                }
                return result;
            }
        }
        let conn = match self.sqlx.as_mut() {
            Some(c) => c,
            None => self.sqlx.insert(self.store.writer_connection().await?),
        };
        let result = self.store.apply_batch_on(conn, groups).await;
        if !self.keep
            || result
                .as_ref()
                .is_err_and(|e| !e.is_statement_error(backend))
        {
            self.sqlx = None;
        }
        result
    }

    /// Closes the pooled connection here, on the runtime that opened it, rather than handing
    /// it back to the pool.
    async fn close(&mut self) {
        if let Some(c) = self.sqlx.take() {
            _ = c.close().await;
        }
        self.fast = None;
    }
}

/// Batches of at most this many groups are answered on the writer's thread (see [`commit`]).
const INLINE_REPLIES: usize = 4;

/// Commits one batch and answers its submitters.
async fn commit(
    conns: &mut Conns,
    jobs: Vec<Job>,
    stats: &WriterStats,
    (fan_outs, main): (&mut JoinSet<()>, &tokio::runtime::Handle),
) {
    let (groups, replies): (Vec<Vec<WriteOp>>, Vec<_>) =
        jobs.into_iter().map(|j| (j.group, j.reply)).unzip();
    // Callbacks encode and send replies (a few µs each). Those of a small batch run on this
    // thread, in the shared runtime's context (what they spawn goes there): handing them over
    // would cost a thread wake-up per commit, more than the replies themselves. A larger batch's
    // go to the shared runtime while this task starts the next transaction.
    let hand_over =
        replies.len() > INLINE_REPLIES && replies.iter().any(|r| matches!(r, Reply::Callback(_)));
    let started = crate::clock::monotonic();
    let outcome = conns.apply(&groups).await;
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    stats.commit_nanos_total.fetch_add(nanos, Ordering::Relaxed);
    stats.commit_latency.observe(nanos);
    match outcome {
        Ok(results) => {
            stats.note_commit();
            let fan_out = move || {
                crate::audit::log::emit_committed(&groups, &results);
                for (reply, ok) in replies.into_iter().zip(results.iter()) {
                    reply.send(Ok(*ok));
                }
            };
            if hand_over {
                fan_outs.spawn_on(async move { fan_out() }, main);
            } else {
                let _runtime = main.enter();
                fan_out();
            }
        }
        Err(err) => {
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            stats.note_failure(&err);
            if groups.len() == 1 {
                if let Some(reply) = replies.into_iter().next() {
                    reply.send(Err(err));
                }
                return;
            }
            tracing::warn!(groups = groups.len(), error = %err, "store batch failed");
            if err.is_statement_error(conns.backend()) {
                retry_one_by_one(conns, groups, replies, stats).await;
            } else {
                let shared = Arc::new(err);
                for reply in replies {
                    reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                }
            }
        }
    }
}

/// After a batch failed because of some group's statement: runs each group in its own
/// transaction, so only the faulty one gets the error. Stops at the first error that is not a
/// statement's and fails the rest with it.
async fn retry_one_by_one(
    conns: &mut Conns,
    groups: Vec<Vec<WriteOp>>,
    replies: Vec<Reply>,
    stats: &WriterStats,
) {
    let mut pending = groups.into_iter().zip(replies);
    while let Some((group, reply)) = pending.next() {
        let outcome = conns.apply(std::slice::from_ref(&group)).await;
        match &outcome {
            Ok(_) => stats.note_commit(),
            Err(err) => stats.note_failure(err),
        }
        match outcome {
            Ok(results) => {
                crate::audit::log::emit_committed(std::slice::from_ref(&group), &results);
                reply.send(Ok(results.first().copied().unwrap_or(true)));
            }
            Err(err) if err.is_statement_error(conns.backend()) => {
                reply.send(Err(err));
            }
            Err(err) => {
                let shared = Arc::new(err);
                reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                for (_, reply) in pending.by_ref() {
                    reply.send(Err(StoreError::Batch(Arc::clone(&shared))));
                }
                return;
            }
        }
    }
}
