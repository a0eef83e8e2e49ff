//! The async side of one authentication: cache, per-user serialisation, engine, group commit.
//!
//! For each request: resolve the user from the moka cache (loading and decrypting from the
//! store on a miss), lock that user's slot (so two requests for one user never decide on the same
//! state), run the pure engine on a copy, submit the engine's writes to the group-commit writer,
//! and once they are durable keep the copy and hand the decision to the caller's completion
//! ([`AuthDone`]; `authenticate` wraps that in a future). `authenticate_now` does all of it
//! without awaiting when nothing has to be waited for (the RADIUS fast path). When a
//! guard fails (the replay CAS or a single-use State lost a race to another request or another
//! instance), the copy is discarded, the user reloaded from the database and the attempt
//! recorded as a failure. Nothing here waits on a slow hash: PINs and codes use keyed hashes.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use moka::sync::Cache;
use tokio::sync::{Mutex, OwnedMutexGuard};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::config::{Config, NameCase};
use crate::engine::ChapResponse;
use crate::engine::WriteOp;
use crate::engine::{self, AuthRequest, Ctx, LiveCode, LiveToken, Outcome, Principal, StateLookup};
use crate::model::{AuditRecord, Challenge, UserId};
use crate::otp::{Pepper, SeedCipher};
use crate::stats::AuthCounters;
use crate::store::{Store, StoreError, WriterHandle};

/// A failure that prevents answering at all (the front end drops the request and counts it).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The database failed.
    #[error("store: {0}")]
    Store(String),
    /// The gateway is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(e.to_string())
    }
}

/// The result the front end renders.
#[derive(Debug, Clone)]
pub struct AuthResult {
    /// The engine's outcome (decision, method, reason); its `ops` have been committed and are
    /// no longer in it.
    pub outcome: Outcome,
    /// The user's own reply profile, if any (wins over the client's).
    pub user_profile: Option<String>,
}

type Slot = Arc<Mutex<Principal>>;

/// Receives an authentication's result once its writes are durable (see
/// [`AuthService::authenticate_then`]).
pub type AuthDone = Box<dyn FnOnce(Result<AuthResult, AuthError>) + Send>;

/// An engine decision waiting for its writes. Lives for one request and is moved once into the
/// writer's completion, so the size difference between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Decided {
    /// Unknown user: only the decoy touch and the audit row are written.
    Unknown(Outcome),
    /// A known user: `working` replaces the cached state once `out.ops` commit; the lock is
    /// held until then.
    Known {
        guard: OwnedMutexGuard<Principal>,
        working: Principal,
        out: Outcome,
        name: String,
    },
}

/// What a decision needs that may have to be waited for.
enum Ready {
    /// The user does not exist.
    Unknown,
    /// The user's locked cached state and the State's challenge, if any.
    Known(OwnedMutexGuard<Principal>, StateLookup),
}

/// What a lost replay race needs of the request to record its failure.
struct RetryRequest {
    raw_user_name: String,
    client: String,
    protocol: String,
}

/// Shared authentication service used by every front end.
pub struct AuthService {
    /// Swapped whole by a reload; read once per request.
    config: ArcSwap<Config>,
    store: Store,
    writer: std::sync::Mutex<Option<WriterHandle>>,
    pepper: Pepper,
    cipher: SeedCipher,
    clock: Arc<Clock>,
    principals: Cache<String, Slot>,
    unknown: moka::sync::Cache<String, ()>,
    names: moka::sync::Cache<UserId, String>,
    challenges: moka::sync::Cache<String, Challenge>,
    /// Highest token id seen (0 = not read yet), for [`AuthService::decoy_token`].
    max_token_id: std::sync::atomic::AtomicI64,
    counters: Arc<AuthCounters>,
    /// Itself, for completions that finish a request after the writer commits.
    me: std::sync::Weak<AuthService>,
}

impl AuthService {
    /// Builds the service around an open store and a running writer.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        writer: WriterHandle,
        pepper: Pepper,
        cipher: SeedCipher,
        clock: Arc<Clock>,
    ) -> Arc<AuthService> {
        let c = config.file.cache.clone();
        Arc::new_cyclic(|me| AuthService {
            principals: Cache::builder().max_capacity(c.max_users).build(),
            unknown: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(c.negative_ttl_secs.max(1)))
                .build(),
            names: moka::sync::Cache::builder()
                .max_capacity(c.max_users)
                .build(),
            challenges: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(config.file.challenge.ttl_secs))
                .build(),
            max_token_id: std::sync::atomic::AtomicI64::new(0),
            config: ArcSwap::new(config),
            store,
            writer: std::sync::Mutex::new(Some(writer)),
            pepper,
            cipher,
            clock,
            counters: Arc::new(AuthCounters::default()),
            me: me.clone(),
        })
    }

    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// Puts a reloaded configuration in force: requests that already read the old one finish
    /// with it, the next ones use the new one.
    pub fn set_config(&self, config: Arc<Config>) {
        self.config.store(config);
    }

    /// Cache and emergency-code counters (shared with `metrics`, which exports them).
    pub fn counters(&self) -> &Arc<AuthCounters> {
        &self.counters
    }

    /// The clock this service decides with.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    fn writer(&self) -> Result<WriterHandle, AuthError> {
        self.writer
            .lock()
            .map_err(|_| AuthError::ShuttingDown)?
            .clone()
            .ok_or(AuthError::ShuttingDown)
    }

    /// Writes one audit record through the group-commit writer; returns once it is durable
    /// (TACACS+ accounting answers SUCCESS only after this).
    pub async fn write_audit(&self, record: AuditRecord) -> Result<(), AuthError> {
        self.write_audits(vec![record]).await
    }

    /// Writes audit records through the group-commit writer as one group (one transaction);
    /// returns once they are durable.
    pub async fn write_audits(&self, records: Vec<AuditRecord>) -> Result<(), AuthError> {
        if records.is_empty() {
            return Ok(());
        }
        let ops = records.into_iter().map(WriteOp::Audit).collect();
        self.writer()?.submit(ops).await?;
        Ok(())
    }

    /// Gives up the writer handle so the writer task can flush and stop (graceful shutdown).
    pub fn close_writer(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
    }

    /// Normalises a login name under the configured case rule.
    pub fn normalize(&self, name: &str) -> String {
        self.config
            .load()
            .file
            .server
            .user_name_case
            .normalize(name)
    }

    /// The configured case rule.
    pub fn name_case(&self) -> NameCase {
        self.config.load().file.server.user_name_case
    }

    async fn load(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let Some(rec) = self.store.load_principal_record(name).await? else {
            return Ok(None);
        };
        let mut live = Vec::with_capacity(rec.tokens.len());
        for mut t in rec.tokens {
            let seed = match self.cipher.decrypt(&t.seed_enc, t.serial.as_bytes()) {
                Ok(seed) => seed,
                Err(_) => {
                    tracing::error!(
                        serial = %t.serial,
                        "token seed does not decrypt under this master key; token unusable"
                    );
                    continue;
                }
            };
            let emergency = rec.emergency.iter().find(|e| e.token_id == t.id).cloned();
            let offline_code = rec
                .offline
                .iter()
                .find(|o| o.token_id == Some(t.id))
                .and_then(|o| {
                    let code = self
                        .cipher
                        .decrypt(&o.code_enc, &crate::admin::offline_token_aad(t.id))
                        .ok()?;
                    Some(LiveCode {
                        code: Zeroizing::new(String::from_utf8_lossy(&code).to_ascii_uppercase()),
                        expires_at: o.expires_at,
                        online: o.online,
                    })
                });
            // The cached copy needs only the decrypted seed; the engine's copy of the user is
            // cloned per request, and nothing writes a token row back from it.
            t.seed_enc = Vec::new();
            live.push(LiveToken {
                token: t,
                seed,
                emergency,
                offline_code,
                codes: crate::otp::CodeCache::default(),
            });
        }
        self.names.insert(rec.user.id, rec.user.name.clone());
        Ok(Some(Principal {
            user: rec.user,
            tokens: live,
            fixed_passcode: rec.fixed_passcode,
        }))
    }

    async fn slot(&self, name: &str) -> Result<Option<Slot>, AuthError> {
        if self.unknown.contains_key(name) {
            self.counters.cache_hits.fetch_add(1, Relaxed);
            return Ok(None);
        }
        if let Some(s) = self.principals.get(name) {
            self.counters.cache_hits.fetch_add(1, Relaxed);
            return Ok(Some(s));
        }
        self.counters.cache_misses.fetch_add(1, Relaxed);
        match self.load(name).await? {
            // Two requests may load one user at once: the first entry wins, both use it.
            Some(p) => Ok(Some(
                self.principals
                    .entry(name.to_string())
                    .or_insert_with(|| Arc::new(Mutex::new(p)))
                    .into_value(),
            )),
            None => {
                self.unknown.insert(name.to_string(), ());
                Ok(None)
            }
        }
    }

    async fn lookup_state(&self, state: &str) -> Result<StateLookup, AuthError> {
        if let Some(c) = self.challenges.get(state) {
            return Ok(StateLookup::Found(c));
        }
        Ok(match self.store.challenge(state).await? {
            Some(c) => StateLookup::Found(c),
            None => StateLookup::Unknown,
        })
    }

    /// Authenticates one request; the answer is durable when this returns.
    pub async fn authenticate(
        &self,
        raw_user_name: &str,
        passcode: &[u8],
        state: Option<&str>,
        client: &str,
        protocol: &str,
    ) -> Result<AuthResult, AuthError> {
        self.authenticate_with(raw_user_name, passcode, None, state, client, protocol)
            .await
    }

    /// A CHAP login (single exchange): the engine looks for the tokencode the response was
    /// made from (tokens without a PIN only) and judges it like [`AuthService::authenticate`].
    pub async fn authenticate_chap(
        &self,
        raw_user_name: &str,
        chap: ChapResponse<'_>,
        client: &str,
        protocol: &str,
    ) -> Result<AuthResult, AuthError> {
        self.authenticate_with(raw_user_name, b"", Some(chap), None, client, protocol)
            .await
    }

    async fn authenticate_with(
        &self,
        raw_user_name: &str,
        passcode: &[u8],
        chap: Option<ChapResponse<'_>>,
        state: Option<&str>,
        client: &str,
        protocol: &str,
    ) -> Result<AuthResult, AuthError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done: AuthDone = Box::new(move |r| _ = tx.send(r));
        self.authenticate_then(raw_user_name, passcode, chap, state, client, protocol, done)
            .await;
        rx.await.map_err(|_| AuthError::ShuttingDown)?
    }

    /// Decides one request and hands its writes to the group-commit writer; `done` gets the
    /// result once they are durable. It runs on the writer task (or, after a lost replay race,
    /// on a task of its own) and must not block. Awaits only to load a user, read a challenge
    /// from the database, wait for that user's earlier request, or read the decoy id range;
    /// [`AuthService::authenticate_now`] is the same without any of those waits.
    #[allow(clippy::too_many_arguments)]
    pub async fn authenticate_then(
        &self,
        raw_user_name: &str,
        passcode: &[u8],
        chap: Option<ChapResponse<'_>>,
        state: Option<&str>,
        client: &str,
        protocol: &str,
        done: AuthDone,
    ) {
        let req = AuthRequest {
            user_name: raw_user_name,
            passcode,
            client,
            protocol,
            chap,
        };
        match self.decide(&req, state).await {
            Ok(decided) => self.submit(decided, &req, done),
            Err(e) => done(Err(e)),
        }
    }

    /// The packet path's fast case: when the user is cached (or cached as unknown), idle, and
    /// any State is in the challenge cache, decides at once and queues the writes (`done` runs
    /// after the commit, as with [`AuthService::authenticate_then`]). Otherwise nothing happens
    /// and `done` comes back: the caller continues with `authenticate_then` on a task.
    pub fn authenticate_now(
        &self,
        raw_user_name: &str,
        passcode: &[u8],
        state: Option<&str>,
        client: &str,
        protocol: &str,
        done: AuthDone,
    ) -> Result<(), AuthDone> {
        let req = AuthRequest {
            user_name: raw_user_name,
            passcode,
            client,
            protocol,
            chap: None,
        };
        let config = self.config.load_full();
        let name = config.file.server.user_name_case.normalize(raw_user_name);
        let ready = if self.unknown.contains_key(&name) {
            (self.max_token_id.load(Relaxed) > 0).then_some(Ready::Unknown)
        } else {
            self.principals.get(&name).and_then(|slot| {
                let lookup = match state {
                    None => StateLookup::None,
                    Some(s) => StateLookup::Found(self.challenges.get(s)?),
                };
                Some(Ready::Known(slot.try_lock_owned().ok()?, lookup))
            })
        };
        let Some(ready) = ready else {
            return Err(done);
        };
        self.counters.cache_hits.fetch_add(1, Relaxed);
        let decided = self.run_engine(&config, name, &req, ready);
        self.submit(decided, &req, done);
        Ok(())
    }

    /// Hands a decision's writes to the writer; the completion finishes the request.
    fn submit(&self, decided: Decided, req: &AuthRequest<'_>, done: AuthDone) {
        let writer = match self.writer() {
            Ok(w) => w,
            Err(e) => return done(Err(e)),
        };
        match decided {
            Decided::Unknown(mut out) => {
                let ops = std::mem::take(&mut out.ops);
                writer.submit_detached(
                    ops,
                    Box::new(move |r| {
                        done(r.map_err(AuthError::from).map(|_| AuthResult {
                            outcome: out,
                            user_profile: None,
                        }));
                    }),
                );
            }
            Decided::Known {
                guard,
                working,
                mut out,
                name,
            } => {
                let ops = std::mem::take(&mut out.ops);
                // Only challenge ops are kept (rarely any) for the cache; the rest move to the
                // writer.
                let challenge_ops: Vec<WriteOp> = ops
                    .iter()
                    .filter(|op| {
                        matches!(
                            op,
                            WriteOp::ConsumeChallenge { .. } | WriteOp::InsertChallenge(_)
                        )
                    })
                    .cloned()
                    .collect();
                let this = self.me();
                let retry = RetryRequest {
                    raw_user_name: req.user_name.to_owned(),
                    client: req.client.to_owned(),
                    protocol: req.protocol.to_owned(),
                };
                writer.submit_detached(
                    ops,
                    Box::new(move |r| {
                        let Some(this) = this else {
                            return done(Err(AuthError::ShuttingDown));
                        };
                        this.note_challenges(&challenge_ops);
                        match r {
                            Ok(true) => {
                                let mut guard = guard;
                                *guard = working;
                                let user_profile = guard.user.profile.clone();
                                drop(guard);
                                done(Ok(AuthResult {
                                    outcome: out,
                                    user_profile,
                                }));
                            }
                            // A guard failed: someone else used the code or the State first.
                            Ok(false) => {
                                tokio::spawn(async move {
                                    done(this.replay_lost(guard, &name, &retry).await);
                                });
                            }
                            Err(e) => done(Err(e.into())),
                        }
                    }),
                );
            }
        }
    }

    /// Gets what a decision needs, waiting where it has to (see `authenticate_then`).
    async fn decide(
        &self,
        req: &AuthRequest<'_>,
        state: Option<&str>,
    ) -> Result<Decided, AuthError> {
        let config = self.config.load_full();
        let name = config.file.server.user_name_case.normalize(req.user_name);
        let ready = match self.slot(&name).await? {
            None => {
                self.read_decoy_range().await;
                Ready::Unknown
            }
            Some(slot) => {
                let lookup = match state {
                    None => StateLookup::None,
                    Some(s) => self.lookup_state(s).await?,
                };
                let guard = match slot.clone().try_lock_owned() {
                    Ok(g) => g,
                    Err(_) => slot.lock_owned().await,
                };
                Ready::Known(guard, lookup)
            }
        };
        Ok(self.run_engine(&config, name, req, ready))
    }

    /// Runs the engine: on a copy of the user's cached state (whose lock the result holds
    /// until the writes commit), or the unknown-user path (SPEC L-4).
    fn run_engine(
        &self,
        config: &Config,
        name: String,
        req: &AuthRequest<'_>,
        ready: Ready,
    ) -> Decided {
        let now = self.clock.now();
        let ttl = i64::try_from(config.file.challenge.ttl_secs).unwrap_or(120);
        let ctx = |domain: &str| Ctx {
            policies: config.policies(domain),
            prompts: &config.file.prompts,
            pepper: &self.pepper,
            challenge_ttl: ttl,
        };
        match ready {
            Ready::Unknown => {
                // Same engine path (dummy work), same answer; a decoy row and the audit are
                // written.
                let mut out = engine::authenticate(
                    &ctx("default"),
                    None,
                    &StateLookup::None,
                    req,
                    now,
                    &mut rand::rngs::OsRng,
                );
                if let Some(token_id) = self.decoy_token() {
                    out.ops.insert(0, WriteOp::TouchToken { token_id });
                }
                Decided::Unknown(out)
            }
            Ready::Known(guard, lookup) => {
                let mut working = guard.clone();
                let out = engine::authenticate(
                    &ctx(&guard.user.domain),
                    Some(&mut working),
                    &lookup,
                    req,
                    now,
                    &mut rand::rngs::OsRng,
                );
                Decided::Known {
                    guard,
                    working,
                    out,
                    name,
                }
            }
        }
    }

    /// After a guard failed at commit: start again from the database, which is the truth across
    /// instances, and record the attempt as a failure (its writes are awaited here).
    async fn replay_lost(
        &self,
        mut guard: OwnedMutexGuard<Principal>,
        name: &str,
        retry: &RetryRequest,
    ) -> Result<AuthResult, AuthError> {
        let Some(mut fresh) = self.load(name).await? else {
            drop(guard);
            self.principals.invalidate(name);
            return Err(AuthError::Store(
                "user vanished during authentication".into(),
            ));
        };
        let config = self.config.load_full();
        let ctx = Ctx {
            policies: config.policies(&fresh.user.domain),
            prompts: &config.file.prompts,
            pepper: &self.pepper,
            challenge_ttl: i64::try_from(config.file.challenge.ttl_secs).unwrap_or(120),
        };
        let req = AuthRequest {
            user_name: &retry.raw_user_name,
            passcode: b"",
            client: &retry.client,
            protocol: &retry.protocol,
            chap: None,
        };
        let mut out = engine::replay_failure(&ctx, &mut fresh, &req, self.clock.now());
        self.writer()?.submit(std::mem::take(&mut out.ops)).await?;
        let user_profile = fresh.user.profile.clone();
        *guard = fresh;
        Ok(AuthResult {
            outcome: out,
            user_profile,
        })
    }

    /// This service as an `Arc` (`None` once it is being dropped).
    fn me(&self) -> Option<Arc<AuthService>> {
        self.me.upgrade()
    }

    /// A random existing token id for an unknown user's [`WriteOp::TouchToken`] (SPEC L-4: a
    /// wrong passcode rewrites its token's and user's rows; an unknown user's request must cost
    /// the database about as much). `None` until [`AuthService::read_decoy_range`] found tokens.
    fn decoy_token(&self) -> Option<i64> {
        let max = self.max_token_id.load(Relaxed);
        (max > 0).then(|| rand::Rng::gen_range(&mut rand::thread_rng(), 1..=max))
    }

    /// Reads the token id range once (again while there are no tokens).
    async fn read_decoy_range(&self) {
        if self.max_token_id.load(Relaxed) <= 0 {
            if let Ok(max) = self.store.max_token_id().await {
                self.max_token_id.store(max, Relaxed);
            }
        }
    }

    fn note_challenges(&self, ops: &[WriteOp]) {
        for op in ops {
            match op {
                WriteOp::ConsumeChallenge { state } => self.challenges.invalidate(state),
                WriteOp::InsertChallenge(c) => self.challenges.insert(c.state.clone(), c.clone()),
                _ => {}
            }
        }
    }

    /// Forgets cached state of these users (admin changes made elsewhere).
    pub async fn invalidate_users(&self, ids: &[UserId]) {
        let mut unknown_changed = false;
        for id in ids {
            match self.names.get(id) {
                Some(name) => self.principals.invalidate(&name),
                // A user we never loaded: maybe a new one we remember as unknown.
                None => unknown_changed = true,
            }
        }
        if unknown_changed {
            self.unknown.invalidate_all();
        }
    }

    /// Follows the store's change feed until `cancel` fires (admin changes by the CLI or another
    /// instance invalidate the cached users).
    pub async fn follow_changes(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let every = Duration::from_millis(self.config.load().file.cache.change_poll_ms.max(50));
        let mut seq = match self.store.latest_change().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "change feed unavailable at start");
                0
            }
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.store.changes_since(seq).await {
                Ok(changes) if !changes.is_empty() => {
                    seq = changes.last().map(|c| c.0).unwrap_or(seq);
                    let ids: Vec<UserId> = changes.iter().map(|c| c.1).collect();
                    self.invalidate_users(&ids).await;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "change feed poll failed"),
            }
        }
    }

    /// Removes expired challenge sessions from the database now and then.
    pub async fn purge_loop(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.store.purge_expired_challenges(self.clock.now()).await {
                Ok(n) => _ = self.counters.challenges_purged.fetch_add(n, Relaxed),
                Err(e) => tracing::warn!(error = %e, "purging expired challenges failed"),
            }
        }
    }
}
