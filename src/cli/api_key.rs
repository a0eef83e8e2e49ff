//! `api-key new`: make an admin HTTP API key and the config lines that hold its hash. Needs no
//! config file or database.

use anyhow::Result;
use serde::Serialize;

use super::output::print;
use super::ApiKeyCmd;

/// The output of `api-key new`: the key (shown once) and the config lines holding its hash.
#[derive(Debug, Serialize)]
struct ApiKeyOutput {
    name: String,
    key: String,
    key_sha256: String,
    toml: String,
}

/// Runs an `api-key` verb.
pub(super) fn run(cmd: ApiKeyCmd, json: bool) -> Result<()> {
    match cmd {
        ApiKeyCmd::New { name } => {
            crate::config::check_api_key_name(&name).map_err(|why| anyhow::anyhow!(why))?;
            let k = crate::server::http::new_api_key(&mut rand::rngs::OsRng);
            let toml = format!(
                "[[admin_api.key]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\n",
                k.sha256_hex
            );
            let out = ApiKeyOutput {
                name,
                key: k.key,
                key_sha256: k.sha256_hex,
                toml,
            };
            print(json, &out, |o| {
                format!(
                    "API key for {:?} (shown once; the config keeps only its SHA-256):\n\n  {}\n\n\
                     Add these lines to the config file (with an [admin_api] listen address) and \
                     restart:\n\n{}",
                    o.name,
                    o.key,
                    o.toml.trim_end()
                )
            })
        }
    }
}
