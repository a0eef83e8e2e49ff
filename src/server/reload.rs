//! Reload: re-read the TOML file and put its clients, policies, prompts and profiles in force
//! without stopping the listeners (SIGHUP and `POST /api/v1/reload`).
//!
//! The new file is validated exactly as at start-up; a file that fails is refused with its
//! file, key and reason, and the running configuration stays in force. A valid one is swapped
//! in whole: the RADIUS and TACACS+ client tables and the auth service's configuration are each
//! one `ArcSwap`, read once per request (RADIUS: per datagram; TACACS+: per connection), so a
//! request in flight finishes under the configuration it started with and nothing is locked or
//! allocated per packet. After a secret change the RADIUS table keeps the old secret for
//! `[radius] previous_secret_grace_secs` (see [`super::radius`]), so requests already on the
//! wire are still answered.
//!
//! Settings bound at start-up (listen addresses, the database, the data directory and master
//! key, cache sizes, challenge TTL, the audit retention task, the metrics listener) are not reloaded: when they changed,
//! the running values are kept and a warning names each section that needs a restart. Every
//! attempt, refused or not, is an audited admin action (written through the group-commit
//! writer). This module must not touch sockets.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;

use super::radius::Radius;
use super::service::AuthService;
use super::tacacs::Tacacs;

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// The file read.
    pub file: String,
    /// Clients now configured.
    pub clients: usize,
    /// RADIUS clients whose secret changed (the old one stays valid for the grace period).
    pub secrets_changed: usize,
    /// Security domains now configured.
    pub domains: usize,
    /// Reply profiles now configured.
    pub profiles: usize,
    /// Sections that changed but need a restart; their running values were kept.
    pub restart_needed: Vec<&'static str>,
}

/// Re-reads the configuration file and swaps it into the running front ends.
pub struct Reloader {
    path: PathBuf,
    auth: Arc<AuthService>,
    radius: Arc<Radius>,
    tacacs: Option<Arc<Tacacs>>,
    metrics: Arc<Metrics>,
    /// One reload at a time (SIGHUP and the API may race).
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Binds the front ends a reload updates.
    pub fn new(
        path: PathBuf,
        auth: Arc<AuthService>,
        radius: Arc<Radius>,
        tacacs: Option<Arc<Tacacs>>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        Reloader {
            path,
            auth,
            radius,
            tacacs,
            metrics,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads and validates the file; on success puts it in force and returns what changed, on
    /// failure logs and returns why (the running configuration is untouched). `actor` names who
    /// asked in the audit record (`signal:SIGHUP`, `api:<key name>`).
    pub async fn reload(&self, actor: &str) -> Result<ReloadReport, ConfigError> {
        let _one = self.busy.lock().await;
        let result = self.reload_now().await;
        let (outcome, reason) = match &result {
            Ok(r) if r.restart_needed.is_empty() => ("ok", "none".to_string()),
            Ok(r) => (
                "ok",
                format!("restart needed for {}", r.restart_needed.join(", ")),
            ),
            Err(e) => ("refused", e.to_string()),
        };
        let record = crate::model::AuditRecord {
            at: self.auth.clock().now(),
            actor: Some(actor.to_string()),
            user_name: String::new(),
            client: None,
            protocol: "admin".into(),
            method: "config_reload".into(),
            result: outcome.into(),
            reason,
        };
        if let Err(e) = self.auth.write_audit(record).await {
            tracing::warn!(error = %e, "config reload: audit record not written");
        }
        result
    }

    async fn reload_now(&self) -> Result<ReloadReport, ConfigError> {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError {
                    file: self.path.display().to_string(),
                    key: "-".into(),
                    reason: format!("reading the file failed: {e}"),
                })
            });
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(
                    file = %e.file,
                    key = %e.key,
                    reason = %e.reason,
                    "reload refused; the running configuration stays in force"
                );
                return Err(e);
            }
        };
        let old = self.auth.config();
        let (merged, restart_needed) = keep_start_up_settings(&old, new);
        for section in &restart_needed {
            tracing::warn!(
                section,
                "changed in the file but not reloadable: restart needed (keeping the running value)"
            );
        }
        let merged = Arc::new(merged);
        self.auth.set_config(merged.clone());
        let secrets_changed = self.radius.reload_clients(&merged, &self.metrics);
        if let Some(t) = &self.tacacs {
            t.reload_clients(&merged, &self.metrics);
        }
        let report = ReloadReport {
            file: merged.path.display().to_string(),
            clients: merged.clients.len(),
            secrets_changed,
            domains: merged.domains.len(),
            profiles: merged.profiles.len(),
            restart_needed,
        };
        tracing::info!(
            file = %report.file,
            clients = report.clients,
            secrets_changed = report.secrets_changed,
            domains = report.domains,
            profiles = report.profiles,
            "configuration reloaded"
        );
        Ok(report)
    }
}

fn same<T: Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// Copies into `new` every start-up-only setting of `old`; returns the merged config and the
/// sections whose value in `new` was different (and so was not applied).
fn keep_start_up_settings(old: &Config, mut new: Config) -> (Config, Vec<&'static str>) {
    let mut changed = Vec::new();
    if !same(&old.file.server, &new.file.server)
        || old.database_url != new.database_url
        || old.data_dir != new.data_dir
        || old.master_key_file != new.master_key_file
    {
        changed.push("server");
        new.file.server = old.file.server.clone();
        new.database_url = old.database_url.clone();
        new.data_dir = old.data_dir.clone();
        new.master_key_file = old.master_key_file.clone();
    }
    if !same(&old.file.radius, &new.file.radius) || old.radius_listen != new.radius_listen {
        changed.push("radius");
        new.file.radius = old.file.radius.clone();
        new.radius_listen = old.radius_listen.clone();
    }
    if !same(&old.file.cache, &new.file.cache) {
        changed.push("cache");
        new.file.cache = old.file.cache.clone();
    }
    if !same(&old.file.challenge, &new.file.challenge) {
        changed.push("challenge");
        new.file.challenge = old.file.challenge.clone();
    }
    if !same(&old.file.metrics, &new.file.metrics) || old.metrics_listen != new.metrics_listen {
        changed.push("metrics");
        new.file.metrics = old.file.metrics.clone();
        new.metrics_listen = old.metrics_listen;
    }
    if !same(&old.file.audit, &new.file.audit) {
        changed.push("audit");
        new.file.audit = old.file.audit.clone();
    }
    match (&old.admin_api, &mut new.admin_api) {
        (Some(o), Some(n)) => {
            // API keys reload; the listener does not.
            if o.listen != n.listen {
                changed.push("admin_api.listen");
                n.listen = o.listen;
            }
        }
        (None, None) => {}
        _ => {
            changed.push("admin_api");
            new.admin_api = old.admin_api.clone();
        }
    }
    match (&old.tacacs, &mut new.tacacs) {
        (Some(o), Some(n)) => {
            // Authorization sets reload; the listener and its limits do not.
            if o.listen != n.listen
                || o.max_connections != n.max_connections
                || o.idle_timeout != n.idle_timeout
                || o.max_sessions_per_connection != n.max_sessions_per_connection
                || o.max_rounds != n.max_rounds
            {
                changed.push("tacacs");
                n.listen = o.listen.clone();
                n.max_connections = o.max_connections;
                n.idle_timeout = o.idle_timeout;
                n.max_sessions_per_connection = o.max_sessions_per_connection;
                n.max_rounds = o.max_rounds;
            }
        }
        (None, None) => {}
        _ => {
            changed.push("tacacs");
            new.tacacs = old.tacacs.clone();
        }
    }
    (new, changed)
}
