//! `serve`: run the gateway until SIGTERM/SIGINT (reloading the config on SIGHUP), and the demo
//! mode that creates a demo user and prints how to log in.

use anyhow::{Context, Result};

use crate::admin::{Admin, TokenSpec};
use crate::config::Config;
use crate::server::{open_storage, Gateway};

const DEMO_USER: &str = "demo";
const DEMO_SERIAL: &str = "DEMO-0001";
const DEMO_PIN: &str = "8642";

/// Creates the demo user and token unless they exist; the token's URI when it was created now.
async fn ensure_demo(config: &Config) -> Result<Option<String>> {
    let (store, key) = open_storage(config).await?;
    let admin = Admin::new(&store, config, &key, "cli:demo".into());
    let now = crate::clock::unix_now();
    let mut uri = None;
    if store.user_by_name(DEMO_USER).await?.is_none() {
        admin.add_user(DEMO_USER, "default", None, now).await?;
    }
    if store.token_by_serial(DEMO_SERIAL).await?.is_none() {
        let c = admin
            .add_token(
                TokenSpec {
                    serial: Some(DEMO_SERIAL.into()),
                    user: Some(DEMO_USER.into()),
                    pin: Some(DEMO_PIN.into()),
                    ..TokenSpec::default()
                },
                now,
            )
            .await?;
        uri = Some(c.otpauth_uri);
    }
    store.close().await;
    Ok(uri)
}

/// `serve`: start the gateway (after the demo user with `--demo`) and run it until SIGTERM or
/// SIGINT; SIGHUP reloads the configuration.
pub(super) async fn run(config: Config, demo: bool, _json: bool) -> Result<()> {
    let demo_uri = if demo {
        Some(ensure_demo(&config).await?)
    } else {
        None
    };
    let cfg_path = config.path.clone();
    // Installed before the listeners start: an early SIGHUP must not kill the daemon.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    let gw = Gateway::start(config).await?;
    if let Some(uri) = demo_uri {
        let addr = gw
            .radius_addrs()
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let secret = gw
            .config
            .clients
            .first()
            .map(|c| String::from_utf8_lossy(&c.secret.0).into_owned())
            .unwrap_or_default();
        println!("==================== DEMO MODE ====================");
        println!("Demo user '{DEMO_USER}', PIN {DEMO_PIN}, TOTP token {DEMO_SERIAL} (SHA-1, 6 digits, 30 s).");
        if let Some(uri) = uri {
            println!("Add it to an authenticator app with this URI (shown once):\n  {uri}");
        }
        println!("Log in through RADIUS (passcode = PIN + current tokencode):");
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "tokengate".into());
        println!(
            "  echo \"User-Name = {DEMO_USER}, User-Password = {DEMO_PIN}$({exe} -c {} token code {DEMO_SERIAL}), Message-Authenticator = 0x00\" | radclient -x {addr} auth {secret}",
            cfg_path.display()
        );
        println!("The demo user is for trying tokengate out: remove it before production use.");
        println!("===================================================");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                // Success and failure are both logged (and audited) by the reload itself.
                let _ = gw.reload().await;
            }
        }
    }
    gw.shutdown().await;
    tracing::info!("stopped cleanly");
    Ok(())
}
