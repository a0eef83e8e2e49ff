//! The PostgreSQL group commit in one statement: a batch of the packet path's usual groups
//! (replay guard, failure bookkeeping, audit rows) is written by a single `WITH … UPDATE …
//! INSERT …` statement instead of `BEGIN`, a statement per kind and `COMMIT`.
//!
//! Why: on PostgreSQL every statement is a network round trip to a server process, and the one
//! writer waits for each. The general path ([`Store::apply_batch_on`]) takes four per batch at
//! least (`BEGIN`, the multi-row compare-and-set, the multi-row audit insert, `COMMIT`);
//! measured at peak, a batch of about 32 groups took 1.5 ms to commit. A single statement
//! outside an explicit transaction is its own transaction, atomic and committed (with its WAL
//! flush) before the reply comes back, so the durability and all-or-nothing rules are
//! unchanged.
//!
//! The rows travel as four JSON parameters, read with `json_to_recordset`. One statement text
//! serves every batch size (a `VALUES` list would need a text per size, and thousands of bound
//! parameters), and `serde_json` does the quoting of what a NAS sent as the user name. Each row
//! carries its group's number `g`; the data-modifying CTEs share one snapshot, so the rows of the
//! guarded groups are filtered on the guard's `RETURNING` (`g IN (SELECT g FROM adv)`), which is
//! exactly "a failed guard skips the rest of its group".
//!
//! What it takes ([`plan`]): every group is either a leading [`WriteOp::AdvanceStep`] that the
//! batch's multi-row guard can take (see [`super::batchable_advances`]) or no guard at all,
//! followed only by [`WriteOp::TouchToken`], [`WriteOp::SetTokenBadCount`],
//! [`WriteOp::SetUserFailures`] and [`WriteOp::Audit`]. Within one statement PostgreSQL must not
//! update a row twice (which of two updates wins would be unspecified), so every token and user
//! row may be written by one op of the batch only, except a group's bad-count reset of its own
//! guarded token, which joins the guard's row. Anything else (challenges, emergency codes, new
//! PINs, a row written twice) goes through the general path, which runs groups in order.
//!
//! [`Store::apply_batch_on`]: crate::store::Store::apply_batch_on

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::batchable_advances;
use crate::engine::WriteOp;
use crate::model::{AuditRecord, TokenId, UserId};
use crate::store::{rows, StoreError};

/// The statement. `$1` guards (`g`, token, step, drift, bad count or null), `$2` token writes
/// (`g` or -1, token, bad count or null for a touch), `$3` user failure bookkeeping, `$4` audit
/// rows (`g` or -1, then the columns, `n` for their order). Returns the groups whose guard
/// advanced.
const SQL: &str = "\
WITH adv AS (\
 UPDATE tokens SET last_step = v.step, drift = v.drift, \
 bad_count = COALESCE(v.bad, tokens.bad_count) \
 FROM json_to_recordset($1::json) AS v(g int, id bigint, step bigint, drift bigint, bad bigint) \
 WHERE tokens.id = v.id AND tokens.last_step < v.step \
 RETURNING v.g), \
tok AS (\
 UPDATE tokens SET bad_count = COALESCE(v.bad, tokens.bad_count) \
 FROM json_to_recordset($2::json) AS v(g int, id bigint, bad bigint) \
 WHERE tokens.id = v.id AND (v.g < 0 OR v.g IN (SELECT g FROM adv))), \
usr AS (\
 UPDATE users SET fail_count = v.fc, fail_window_start = v.fws, locked = v.locked, \
 locked_at = v.la \
 FROM json_to_recordset($3::json) AS v(g int, id bigint, fc bigint, fws bigint, locked bigint, \
 la bigint) \
 WHERE users.id = v.id AND (v.g < 0 OR v.g IN (SELECT g FROM adv))), \
ins AS (\
 INSERT INTO audit (at, actor, user_name, client, protocol, method, result, reason) \
 SELECT a.at, a.actor, a.user_name, a.client, a.protocol, a.method, a.result, a.reason \
 FROM json_to_recordset($4::json) AS a(n int, g int, at bigint, actor text, user_name text, \
 client text, protocol text, method text, result text, reason text) \
 WHERE a.g < 0 OR a.g IN (SELECT g FROM adv) \
 ORDER BY a.n) \
SELECT g FROM adv";

/// `g` of the rows of groups without a guard: written unconditionally.
const NO_GUARD: i64 = -1;

#[derive(Serialize)]
struct GuardRow {
    g: i64,
    id: TokenId,
    step: i64,
    drift: i64,
    bad: Option<i64>,
}

#[derive(Serialize)]
struct TokenRow {
    g: i64,
    id: TokenId,
    bad: Option<i64>,
}

#[derive(Serialize)]
struct UserRow {
    g: i64,
    id: UserId,
    fc: i64,
    fws: i64,
    locked: i64,
    la: Option<i64>,
}

#[derive(Serialize)]
struct AuditRow<'a> {
    n: usize,
    g: i64,
    at: i64,
    actor: Option<Cow<'a, str>>,
    user_name: Cow<'a, str>,
    client: Option<Cow<'a, str>>,
    protocol: &'a str,
    method: &'a str,
    result: &'a str,
    reason: Cow<'a, str>,
}

impl<'a> AuditRow<'a> {
    fn new(n: usize, g: i64, r: &'a AuditRecord) -> AuditRow<'a> {
        AuditRow {
            n,
            g,
            at: r.at,
            actor: r.actor.as_deref().map(rows::audit_text),
            user_name: rows::audit_text(&r.user_name),
            client: r.client.as_deref().map(rows::audit_text),
            protocol: &r.protocol,
            method: &r.method,
            result: &r.result,
            reason: rows::audit_text(&r.reason),
        }
    }
}

/// A batch laid out for [`SQL`]: the four JSON parameters, and which groups have a guard.
#[derive(Debug)]
pub(crate) struct Plan {
    params: [String; 4],
    guarded: Vec<bool>,
}

/// Lays `groups` out for the single statement; `None` when the batch holds anything it does
/// not take (see the module doc), so the general path must run it.
pub(crate) fn plan(groups: &[Vec<WriteOp>]) -> Option<Plan> {
    let leads = batchable_advances(groups);
    let mut guards = Vec::new();
    let mut tokens = Vec::new();
    let mut users = Vec::new();
    let mut audits = Vec::new();
    let mut token_rows: HashSet<TokenId> = HashSet::new();
    let mut user_rows: HashSet<UserId> = HashSet::new();
    let mut guarded = Vec::with_capacity(groups.len());
    for (i, (group, lead)) in groups.iter().zip(&leads).enumerate() {
        let (rest, g) = match lead {
            Some((id, step, drift)) => {
                let g = i64::try_from(i).ok()?;
                if !token_rows.insert(*id) {
                    return None;
                }
                guards.push(GuardRow {
                    g,
                    id: *id,
                    step: *step,
                    drift: *drift,
                    bad: None,
                });
                (group.get(1..).unwrap_or_default(), g)
            }
            None => (group.as_slice(), NO_GUARD),
        };
        guarded.push(g >= 0);
        for op in rest {
            match op {
                WriteOp::Audit(r) => audits.push(AuditRow::new(audits.len(), g, r)),
                WriteOp::TouchToken { token_id } => {
                    if !token_rows.insert(*token_id) {
                        return None;
                    }
                    tokens.push(TokenRow {
                        g,
                        id: *token_id,
                        bad: None,
                    });
                }
                WriteOp::SetTokenBadCount {
                    token_id,
                    bad_count,
                } => {
                    let bad = Some(i64::from(*bad_count));
                    match guards.last_mut() {
                        // The group's own guarded token: one row, one update.
                        Some(row) if g >= 0 && row.g == g && row.id == *token_id => {
                            row.bad = bad;
                        }
                        _ => {
                            if !token_rows.insert(*token_id) {
                                return None;
                            }
                            tokens.push(TokenRow {
                                g,
                                id: *token_id,
                                bad,
                            });
                        }
                    }
                }
                WriteOp::SetUserFailures {
                    user_id,
                    fail_count,
                    fail_window_start,
                    locked,
                    locked_at,
                } => {
                    if !user_rows.insert(*user_id) {
                        return None;
                    }
                    users.push(UserRow {
                        g,
                        id: *user_id,
                        fc: i64::from(*fail_count),
                        fws: *fail_window_start,
                        locked: rows::flag(*locked),
                        la: *locked_at,
                    });
                }
                _ => return None,
            }
        }
    }
    Some(Plan {
        params: [
            serde_json::to_string(&guards).ok()?,
            serde_json::to_string(&tokens).ok()?,
            serde_json::to_string(&users).ok()?,
            serde_json::to_string(&audits).ok()?,
        ],
        guarded,
    })
}

/// Runs a planned batch as one statement (its own transaction, committed when this returns
/// `Ok`); returns whether each group succeeded. Inside an explicit transaction it would still be
/// correct, but pay the round trips it exists to save.
pub(crate) async fn apply(conn: &mut AnyConnection, plan: Plan) -> Result<Vec<bool>, StoreError> {
    let [guards, tokens, users, audits] = plan.params;
    let rows = sqlx::query(SQL)
        .bind(guards)
        .bind(tokens)
        .bind(users)
        .bind(audits)
        .fetch_all(&mut *conn)
        .await?;
    let mut advanced = vec![false; plan.guarded.len()];
    for row in rows {
        let g: i64 = row.try_get(0).map_err(|e| StoreError::Corrupt {
            what: format!("advanced group: {e}"),
        })?;
        let slot = usize::try_from(g)
            .ok()
            .and_then(|g| advanced.get_mut(g))
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("advanced group {g} is not in the batch"),
            })?;
        *slot = true;
    }
    Ok(plan
        .guarded
        .iter()
        .zip(advanced)
        .map(|(guarded, advanced)| !guarded || advanced)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(name: &str) -> WriteOp {
        WriteOp::Audit(AuditRecord {
            at: 1,
            actor: None,
            user_name: name.to_owned(),
            client: Some("nas".to_owned()),
            protocol: "radius".to_owned(),
            method: "token".to_owned(),
            result: "accept".to_owned(),
            reason: "ok".to_owned(),
        })
    }

    fn advance(token_id: TokenId, step: i64) -> WriteOp {
        WriteOp::AdvanceStep {
            token_id,
            step,
            drift: 0,
        }
    }

    #[test]
    fn accepts_rejects_and_unknown_users_are_planned_and_a_reset_joins_its_guard_row() {
        let failures = |user_id| WriteOp::SetUserFailures {
            user_id,
            fail_count: 1,
            fail_window_start: 100,
            locked: false,
            locked_at: None,
        };
        let p = plan(&[
            vec![
                advance(1, 10),
                WriteOp::SetTokenBadCount {
                    token_id: 1,
                    bad_count: 0,
                },
                failures(1),
                audit("accept"),
            ],
            vec![
                WriteOp::SetTokenBadCount {
                    token_id: 2,
                    bad_count: 1,
                },
                failures(2),
                audit("wrong \"quoted\" \\ name"),
            ],
            vec![WriteOp::TouchToken { token_id: 3 }, audit("unknown")],
        ])
        .unwrap();
        assert_eq!(p.guarded, [true, false, false]);
        assert_eq!(
            p.params[0],
            r#"[{"g":0,"id":1,"step":10,"drift":0,"bad":0}]"#
        );
        assert_eq!(
            p.params[1],
            r#"[{"g":-1,"id":2,"bad":1},{"g":-1,"id":3,"bad":null}]"#
        );
        let audits: serde_json::Value = serde_json::from_str(&p.params[3]).unwrap();
        assert_eq!(audits[1]["user_name"], "wrong \"quoted\" \\ name");
        assert_eq!(audits[1]["g"], -1);
        assert_eq!(audits[0]["g"], 0);
        assert_eq!(audits[2]["n"], 2);
    }

    #[test]
    fn a_row_written_twice_or_an_op_it_does_not_take_goes_to_the_general_path() {
        // Two groups' failure bookkeeping for one user.
        let twice_user = |n| WriteOp::SetUserFailures {
            user_id: 7,
            fail_count: n,
            fail_window_start: 0,
            locked: false,
            locked_at: None,
        };
        assert!(plan(&[vec![twice_user(1)], vec![twice_user(2)]]).is_none());
        // A guarded token touched by another group.
        assert!(plan(&[
            vec![advance(4, 10)],
            vec![WriteOp::TouchToken { token_id: 4 }]
        ])
        .is_none());
        // The same token guarded twice: not batchable, so not taken.
        assert!(plan(&[vec![advance(4, 10)], vec![advance(4, 11)]]).is_none());
        // A challenge, an emergency code.
        assert!(plan(&[vec![WriteOp::ConsumeChallenge {
            state: "s".to_owned()
        }]])
        .is_none());
        assert!(plan(&[vec![WriteOp::ConsumeEmergencyCode {
            code_id: 1,
            used_at: 1
        }]])
        .is_none());
        // A guard after a write (needs a savepoint).
        assert!(plan(&[vec![audit("x"), advance(5, 1)]]).is_none());
    }
}
