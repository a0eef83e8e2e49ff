//! `user …`: create, show, list, lock and unlock users.

use anyhow::Result;

use super::output::print;
use super::tokens::token_line;
use super::UserCmd;
use crate::admin::Admin;

/// Runs a `user` verb.
pub(super) async fn run(admin: &Admin<'_>, cmd: UserCmd, json: bool, now: i64) -> Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            domain,
            profile,
        } => {
            let user = admin
                .add_user(&name, &domain, profile.as_deref(), now)
                .await?;
            print(json, &user, |u| {
                format!("created user {} in domain {}", u.name, u.domain)
            })
        }
        UserCmd::Show { name } => {
            let v = admin.show_user(&name).await?;
            print(json, &v, |v| {
                let mut s = format!(
                    "user {}  domain={}  locked={}  failures={}  profile={}",
                    v.user.name,
                    v.user.domain,
                    v.user.locked,
                    v.user.fail_count,
                    v.user.profile.as_deref().unwrap_or("-")
                );
                for t in &v.tokens {
                    s.push_str(&format!("\n  token {}", token_line(t)));
                }
                s
            })
        }
        UserCmd::List => {
            let users = admin.store.list_users().await?;
            print(json, &users, |us| {
                us.iter()
                    .map(|u| {
                        format!(
                            "{}\t{}\t{}",
                            u.name,
                            u.domain,
                            if u.locked { "locked" } else { "active" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        UserCmd::Lock { name } => {
            let u = admin.set_locked(&name, true, now).await?;
            print(json, &u, |u| format!("locked {}", u.name))
        }
        UserCmd::Unlock { name } => {
            let u = admin.set_locked(&name, false, now).await?;
            print(json, &u, |u| format!("unlocked {}", u.name))
        }
    }
}
