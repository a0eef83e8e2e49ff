//! `check-config` and `migrate`: validate the configuration file (and, when the database
//! exists, that this user can write it); create or upgrade the database schema.

use std::path::Path;

use anyhow::{bail, Result};

use super::output::{print, redact_url};
use crate::config::Config;
use crate::server::open_storage;
use crate::store::{check_existing, Access};

/// `check-config`: the configuration at `path` loaded; checks that this user can write the
/// database when it exists (refused with the path and the reason otherwise: the gateway would
/// refuse to start); prints what it holds.
pub(super) async fn check_config(path: &Path, config: &Config, json: bool) -> Result<()> {
    let database = match check_existing(&config.database_url).await {
        Ok(Access::Writable) => "writable".to_owned(),
        Ok(Access::NotCreated) => "not created yet".to_owned(),
        Ok(Access::Unreachable(why)) => {
            eprintln!("warning: database not reachable, write access not checked: {why}");
            "not reachable".to_owned()
        }
        Err(e) => bail!("{}: database: {e}", path.display()),
    };
    let summary = serde_json::json!({
        "file": path.display().to_string(),
        "database": redact_url(&config.database_url),
        "database_access": database,
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
            "{}: OK ({} clients, {} profiles, {} domains; database {database})",
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
    let (applied, known) = (store.migrations_applied(), store.migrations_known());
    store.close().await;
    let value = serde_json::json!({"migrated": true, "applied": applied, "known": known});
    print(json, &value, |_| {
        if applied == 0 {
            format!("database schema is up to date ({known} migrations, none to apply)")
        } else if applied == known {
            format!("created the database schema: applied {applied} migrations")
        } else {
            format!("upgraded the database schema: applied {applied} of {known} migrations")
        }
    })
}
