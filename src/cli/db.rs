//! `check-config` and `migrate`: validate the configuration file; create or upgrade the
//! database schema.

use std::path::Path;

use anyhow::Result;

use super::output::{print, redact_url};
use crate::config::Config;
use crate::server::open_storage;

/// `check-config`: the configuration at `path` loaded; prints what it holds.
pub(super) fn check_config(path: &Path, config: &Config, json: bool) -> Result<()> {
    let summary = serde_json::json!({
        "file": path.display().to_string(),
        "database": redact_url(&config.database_url),
        "radius_listen": config.radius_listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "clients": config.clients.iter().map(|c| &c.name).collect::<Vec<_>>(),
        "profiles": config.profiles.keys().collect::<Vec<_>>(),
        "domains": config.domains.keys().collect::<Vec<_>>(),
        "dictionary_attributes": config.dictionary.len(),
        "admin_api": config.admin_api.as_ref().map(|a| serde_json::json!({
            "listen": a.listen.to_string(),
            "keys": a.keys.iter().map(|k| &k.name).collect::<Vec<_>>(),
        })),
    });
    print(json, &summary, |_| {
        format!(
            "{}: OK ({} clients, {} profiles, {} domains)",
            path.display(),
            config.clients.len(),
            config.profiles.len(),
            config.domains.len()
        )
    })
}

/// `migrate`: create or upgrade the schema.
pub(super) async fn migrate(config: &Config, json: bool) -> Result<()> {
    let (store, _) = open_storage(config).await?;
    store.close().await;
    print(json, &serde_json::json!({"migrated": true}), |_| {
        "database schema is up to date".into()
    })
}
