//! The running gateway: owns the store, the group-commit writer, the caches and the listeners.
//!
//! `Gateway::start` opens everything from a validated [`Config`] and returns once every listener
//! is bound (so tests and the CLI know the ports); `Gateway::shutdown` stops reading, lets
//! in-flight requests finish and be answered, flushes the writer and closes the database. All
//! tasks are owned by a `TaskTracker` and stop on one `CancellationToken` (no detached spawns);
//! that includes the admin HTTP API ([`http`]) when `[admin_api]` is configured and the TACACS+
//! front end ([`tacacs`]) when `[tacacs]` is, and the monitoring listener ([`health`]: `/metrics`,
//! `/healthz`, `/readyz`) when `[metrics]` is.
//!
//! Start-up refuses rather than running broken: every RADIUS address is claimed first
//! ([`listen`]: another process serving it stops the start), and a database this process
//! cannot write is refused with the path and the reason (`store::access`) before any listener
//! is bound. The log names the version, the configuration file, the database (password
//! redacted), the master key file and every listener.

// The I/O layer: it may read the monotonic clock for latency histograms and duplicate-cache
// ages, and pick the thread RNG (clippy.toml disallows both in the layers below).
#![allow(clippy::disallowed_methods)]

pub mod dupcache;
pub mod health;
pub mod http;
pub mod listen;
pub mod master_key;
pub mod radius;
pub mod reload;
pub mod service;
pub mod tacacs;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::otp::MasterKey;
use crate::stats::Stats;
use crate::store::{Store, StoreOptions, WriterHandle};

use service::AuthService;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The master key file.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The metrics registry refused a metric (a bug, reported rather than hidden).
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Another process already serves a listen address (see [`listen`]).
    #[error("cannot listen on {addr} ({what}): another process is already serving it; stop it or change the listen address")]
    InUse {
        /// The address.
        addr: SocketAddr,
        /// Which listener (`RADIUS`, `TACACS+`, …).
        what: &'static str,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
}

impl StartError {
    /// The error for a listener `what` that could not be bound on `addr`: [`StartError::InUse`]
    /// when the address is taken, [`StartError::Bind`] otherwise.
    fn bind(addr: SocketAddr, what: &'static str, source: std::io::Error) -> StartError {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            StartError::InUse { addr, what }
        } else {
            StartError::Bind { addr, source }
        }
    }
}

/// A running gateway.
pub struct Gateway {
    /// The configuration it runs with.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// The authentication service (shared by the front ends).
    pub auth: Arc<AuthService>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Prometheus metrics (rendered at `/metrics`).
    pub metrics: Arc<Metrics>,
    /// The clock (tests may advance it).
    pub clock: Arc<Clock>,
    radius_addrs: Vec<SocketAddr>,
    tacacs_addrs: Vec<SocketAddr>,
    tacacs_tls_addrs: Vec<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    reloader: Arc<reload::Reloader>,
    metrics_addr: Option<SocketAddr>,
    ready: Arc<AtomicBool>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    writer_task: tokio::task::JoinHandle<()>,
    key: Arc<MasterKey>,
    instance: master_key::InstanceGuard,
    /// The claims on the RADIUS addresses ([`listen`]), released when the gateway is dropped.
    _claims: Vec<listen::Claim>,
}

/// Opens (creating if needed) the data directory (0700) and database (0600, and with it its
/// `-wal` and `-shm` files) named by `config`, and unlocks the master key against the database
/// (see [`master_key::unlock`]: a key that does not match the database's check value, or a
/// missing key file for a database with data, is an error; only a fresh, empty database gets a
/// new key, created 0600).
pub async fn open_storage(config: &Config) -> Result<(Store, MasterKey), StartError> {
    prepare_data_dir(config)?;
    open_storage_with(config, &StoreOptions::default()).await
}

/// How often the gateway checkpoints a SQLite WAL in the background (off the group commit).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// On SQLite, creates the data directory (0700, see `keys::create_private_dir`) and warns when
/// an existing one is open to other users (left as it is: an operator may have meant it).
fn prepare_data_dir(config: &Config) -> Result<(), StartError> {
    if !config.database_url.starts_with("sqlite:") {
        return Ok(());
    }
    crate::keys::create_private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&config.data_dir) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %config.data_dir.display(),
                    mode = %format!("{mode:o}"),
                    "the data directory is open to other users; chmod 700 it"
                );
            }
        }
    }
    Ok(())
}

/// [`open_storage`] with explicit pool settings (the gateway moves SQLite checkpoints to a
/// background task), once the data directory is prepared.
async fn open_storage_with(
    config: &Config,
    options: &StoreOptions,
) -> Result<(Store, MasterKey), StartError> {
    let store = Store::open_with(&config.database_url, options).await?;
    let unlocked =
        master_key::unlock(&store, &config.master_key_file, crate::clock::unix_now()).await;
    match unlocked {
        Ok(key) => Ok((store, key)),
        Err(e) => {
            store.close().await;
            Err(e)
        }
    }
}

impl Gateway {
    /// Starts with the system clock.
    pub async fn start(config: Config) -> Result<Gateway, StartError> {
        Self::start_with_clock(config, Arc::new(Clock::system())).await
    }

    /// Starts with a given clock (tests move it to cross expiry boundaries).
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<Clock>,
    ) -> Result<Gateway, StartError> {
        let config = Arc::new(config);
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            config = %config.path.display(),
            "tokengate starting"
        );
        // Claim every RADIUS address first: a second gateway on one is refused before it
        // touches the database (see `listen`).
        let mut claims = Vec::with_capacity(config.radius_listen.len());
        let mut radius_binds = Vec::with_capacity(config.radius_listen.len());
        for addr in &config.radius_listen {
            let (resolved, claim) =
                listen::claim_udp(*addr).map_err(|e| StartError::bind(*addr, "RADIUS", e))?;
            claims.push(claim);
            radius_binds.push(resolved);
        }
        let options = StoreOptions {
            background_checkpoint: Some(CHECKPOINT_EVERY),
            ..StoreOptions::default()
        };
        // Before the access check probes it.
        prepare_data_dir(&config)?;
        // Refuse a database this process cannot write (say, files root created by running the
        // CLI first) now, with the path and the reason, not by dropping every request later.
        let url = config.database_url.clone();
        tokio::task::spawn_blocking(move || crate::store::check_sqlite_files(&url))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .map_err(|source| StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })??;
        let (store, key) = open_storage_with(&config, &options).await?;
        tracing::info!(
            database = %crate::config::redact_url(&config.database_url),
            migrations_applied = store.migrations_applied(),
            "database opened"
        );
        tracing::info!(file = %config.master_key_file.display(), "master key loaded");
        if let Err(e) = store.check_writable().await {
            store.close().await;
            return Err(e.into());
        }
        // Held while the gateway runs, so `key rotate` can tell that it does.
        let instance = match master_key::hold(&store, &config.master_key_file, &key).await {
            Ok(guard) => guard,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        let key = Arc::new(key);
        let (writer, writer_task) =
            WriterHandle::spawn(store.clone(), config.file.server.write_batch, 65_536);
        let stats = Arc::new(Stats::default());
        let writer_stats = writer.stats();
        let auth = AuthService::new(
            config.clone(),
            store.clone(),
            writer,
            key.pepper(),
            key.seed_cipher(),
            clock.clone(),
        );
        let metrics = Arc::new(Metrics::new(
            stats.clone(),
            writer_stats.clone(),
            auth.counters().clone(),
        )?);
        let ready = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let radius = Arc::new(radius::Radius::new(
            config.clone(),
            auth.clone(),
            stats.clone(),
            &metrics,
        ));
        let tacacs_front = config.tacacs.as_ref().map(|t| {
            Arc::new(tacacs::Tacacs::new(
                config.clone(),
                t,
                auth.clone(),
                store.clone(),
                stats.clone(),
                &metrics,
            ))
        });
        let reloader = Arc::new(reload::Reloader::new(
            config.path.clone(),
            auth.clone(),
            radius.clone(),
            tacacs_front.clone(),
            metrics.clone(),
        ));
        // The monitoring listener is bound first and served at once, so `/readyz` answers 503
        // until every other listener is bound.
        let mut metrics_addr = None;
        if let Some(addr) = config.metrics_listen {
            let bind_err = |source| StartError::bind(addr, "metrics", source);
            let listener = http::bind(addr).await.map_err(bind_err)?;
            let local = listener.local_addr().map_err(bind_err)?;
            metrics_addr = Some(local);
            let state = Arc::new(health::HealthState::new(
                metrics.clone(),
                store.clone(),
                writer_stats.clone(),
                ready.clone(),
            ));
            tracker.spawn(http::serve(listener, health::router(state), cancel.clone()));
        }
        // Bind the admin API before any listener task starts, so a taken port fails the start early.
        let admin = match &config.admin_api {
            None => None,
            Some(api) => {
                let addr = api.listen;
                let listener = http::bind(addr)
                    .await
                    .map_err(|source| StartError::bind(addr, "admin API", source))?;
                let local = listener
                    .local_addr()
                    .map_err(|source| StartError::Bind { addr, source })?;
                let state = Arc::new(http::ApiState::new(
                    store.clone(),
                    key.clone(),
                    auth.clone(),
                    clock.clone(),
                    reloader.clone(),
                    stats.clone(),
                ));
                Some((listener, state, local))
            }
        };
        let admin_addr = admin.as_ref().map(|a| a.2);
        let mut radius_addrs = Vec::new();
        for addr in radius_binds {
            let bind_err = |source| StartError::bind(addr, "RADIUS", source);
            let sockets = radius::bind_sockets(addr).map_err(bind_err)?;
            let local = match sockets.first() {
                Some(sock) => sock.local_addr().map_err(bind_err)?,
                None => addr,
            };
            radius_addrs.push(local);
            tracing::info!(%local, sockets = sockets.len(), "RADIUS listening");
            for sock in sockets {
                tracker.spawn(radius.clone().serve(
                    Arc::new(sock),
                    cancel.clone(),
                    tracker.clone(),
                ));
            }
        }
        let mut tacacs_addrs = Vec::new();
        let mut tacacs_tls_addrs = Vec::new();
        if let (Some(t), Some(front)) = (&config.tacacs, &tacacs_front) {
            // Plain TCP listeners, then TLS ones (RFC 9887): same front end, own acceptor.
            let plain = t.listen.iter().map(|a| (a, None));
            let tls = t.tls.iter().flat_map(|tls| {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
                tls.listen.iter().map(move |a| (a, Some(acceptor.clone())))
            });
            for (addr, acceptor) in plain.chain(tls) {
                let what = if acceptor.is_some() {
                    "TACACS+ over TLS"
                } else {
                    "TACACS+"
                };
                let bind_err = |source| StartError::bind(*addr, what, source);
                let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
                let local = listener.local_addr().map_err(bind_err)?;
                if acceptor.is_some() {
                    tacacs_tls_addrs.push(local);
                    tracing::info!(%local, "TACACS+ over TLS listening");
                } else {
                    tacacs_addrs.push(local);
                    tracing::info!(%local, "TACACS+ listening");
                }
                tracker.spawn(front.clone().serve(
                    listener,
                    acceptor,
                    cancel.clone(),
                    tracker.clone(),
                ));
            }
        }
        if let Some((listener, state, local)) = admin {
            tracing::info!(%local, "admin API listening");
            tracker.spawn(http::serve_api(listener, state, cancel.clone()));
        }
        tracker.spawn(auth.clone().follow_changes(cancel.clone()));
        tracker.spawn(auth.clone().purge_loop(cancel.clone()));
        let retention = &config.file.audit;
        if retention.retention_days > 0 {
            tracker.spawn(crate::audit::retention::retention_loop(
                store.clone(),
                clock.clone(),
                retention.retention_days,
                retention.prune_batch,
                cancel.clone(),
            ));
        }
        if let Some(local) = metrics_addr {
            // Logged after the RADIUS listeners: scripts read the first `local=` as RADIUS.
            tracing::info!(%local, "metrics listening");
        }
        ready.store(true, Ordering::Release);
        Ok(Gateway {
            config,
            store,
            auth,
            stats,
            metrics,
            clock,
            radius_addrs,
            tacacs_addrs,
            tacacs_tls_addrs,
            admin_addr,
            reloader,
            metrics_addr,
            ready,
            cancel,
            tracker,
            writer_task,
            key,
            instance,
            _claims: claims,
        })
    }

    /// The master key the gateway unlocked (with the pepper carried over a rotation), for
    /// in-process admin operations ([`crate::admin::Admin::new`]).
    pub fn master_key(&self) -> &MasterKey {
        &self.key
    }

    /// The bound RADIUS addresses (actual ports when the config said `:0`).
    pub fn radius_addrs(&self) -> &[SocketAddr] {
        &self.radius_addrs
    }

    /// The bound TACACS+ addresses (actual ports when the config said `:0`); empty without
    /// `[tacacs]`.
    pub fn tacacs_addrs(&self) -> &[SocketAddr] {
        &self.tacacs_addrs
    }

    /// The bound TACACS+ over TLS addresses (`tls_listen`, actual ports for `:0`).
    pub fn tacacs_tls_addrs(&self) -> &[SocketAddr] {
        &self.tacacs_tls_addrs
    }

    /// The bound admin API address, when `[admin_api]` is configured (actual port for `:0`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Re-reads the configuration file and puts its clients, policies, prompts and profiles in
    /// force (SIGHUP). An invalid file changes nothing and its error is returned.
    pub async fn reload(&self) -> Result<reload::ReloadReport, crate::config::ConfigError> {
        self.reloader.reload("signal:SIGHUP").await
    }

    /// The configuration in force now (the start-up one until a reload).
    pub fn current_config(&self) -> Arc<Config> {
        self.auth.config()
    }

    /// The bound metrics listener address, when `[metrics]` is configured (actual port for `:0`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops reading, answers what is in flight, flushes pending writes, closes the database.
    pub async fn shutdown(self) {
        self.ready.store(false, Ordering::Release);
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        self.auth.close_writer();
        if let Err(e) = self.writer_task.await {
            tracing::error!(error = %e, "writer task failed during shutdown");
        }
        self.instance.release().await;
        self.store.close().await;
    }
}
