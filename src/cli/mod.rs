//! The `tokengate` command line: `serve`, `check-config`, `migrate` and the admin verbs.
//!
//! Admin verbs open the database and master key named by the config directly (the running
//! daemon picks their changes up through the store's change feed). Every verb prints a human
//! summary, or JSON with `--json`. Errors are returned as `anyhow` with context; `main` prints
//! them and exits non-zero.
//!
//! `args` holds the clap grammar; [`run`] hands each verb to its family's file: `users`,
//! `tokens` (tokens and PINs), `emergency` (emergency access, fixed passcodes, offline codes),
//! `api_key`, `audit`, `populate`, `key` (`key check`, `key rotate`), `db` (`check-config`,
//! `migrate`) and `serve` (with the demo mode). Every verb that opens the master key goes
//! through `server::open_storage`, which checks it against the database first. `output` has
//! the shared printing helpers, `logging` the tracing setup.

mod api_key;
mod args;
mod audit;
mod db;
mod emergency;
mod key;
mod logging;
mod output;
mod populate;
mod serve;
mod tokens;
mod users;

pub use args::{
    ApiKeyCmd, AuditCmd, Cli, Command, EmergencyCmd, FixedPasscodeCmd, IssueArgs, KeyCmd,
    LogFormat, OfflineCodeCmd, PinCmd, PopulateArgs, TokenAdd, TokenCmd, UserCmd,
};
pub use logging::init_tracing;

use std::path::Path;

use anyhow::Result;

use crate::admin::Admin;
use crate::config::Config;
use crate::server::open_storage;

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    let path = cli.config.as_path();
    match cli.command {
        // Needs no config: the key is made before the file that will hold its hash exists.
        Command::ApiKey(cmd) => api_key::run(cmd, json),
        Command::CheckConfig => db::check_config(path, &Config::load(path)?, json).await,
        Command::Migrate => db::migrate(&Config::load(path)?, json).await,
        Command::Serve { demo } => serve::run(Config::load(path)?, demo, json).await,
        Command::Audit(cmd) => {
            let config = Config::load(path)?;
            audit::run(&config, cmd, json, crate::clock::unix_now()).await
        }
        Command::User(cmd) => {
            with_admin(path, async move |admin, now| {
                users::run(admin, cmd, json, now).await
            })
            .await
        }
        Command::Token(cmd) => {
            with_admin(path, async move |admin, now| {
                tokens::run(admin, cmd, json, now).await
            })
            .await
        }
        Command::Pin(cmd) => {
            with_admin(path, async move |admin, now| {
                tokens::run_pin(admin, cmd, json, now).await
            })
            .await
        }
        Command::Emergency(cmd) => {
            with_admin(path, async move |admin, now| {
                emergency::run(admin, cmd, json, now).await
            })
            .await
        }
        Command::FixedPasscode(cmd) => {
            with_admin(path, async move |admin, now| {
                emergency::run_fixed_passcode(admin, cmd, json, now).await
            })
            .await
        }
        Command::OfflineCode(cmd) => {
            with_admin(path, async move |admin, now| {
                emergency::run_offline_code(admin, cmd, json, now).await
            })
            .await
        }
        Command::Key(cmd) => key::run(&Config::load(path)?, cmd, json).await,
        Command::Populate(args) => {
            with_admin(path, async move |admin, now| {
                populate::run(admin, args, json, now).await
            })
            .await
        }
    }
}

/// Runs an admin verb on the database and master key named by the config at `path`, as the
/// CLI's actor, then closes the database.
async fn with_admin(
    path: &Path,
    verb: impl AsyncFnOnce(&Admin<'_>, i64) -> Result<()>,
) -> Result<()> {
    let config = Config::load(path)?;
    let now = crate::clock::unix_now();
    let (store, key) = open_storage(&config).await?;
    let admin = Admin::new(&store, &config, &key, actor());
    let r = verb(&admin, now).await;
    store.close().await;
    r
}

/// The acting admin for audit records: `cli:` and the login (`SUDO_USER` first).
fn actor() -> String {
    let login = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{login}")
}
