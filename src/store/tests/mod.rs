//! The store conformance suite: every test runs its body against every backend available
//! (SQLite always, PostgreSQL too when `TEST_DATABASE_URL` is set), so both databases are held
//! to the same behaviour in one run. Test names carry the SPEC rule they check, where one
//! applies.
//!
//! One file per area, as `src/store/` is laid out; the fixtures they share are here.

mod audit;
mod batch_equivalence;
mod batch_guards;
mod challenges;
mod changes;
mod checkpoint;
mod emergency;
mod key_check;
mod open;
mod principal;
mod tokens;
mod users;
mod writer;

use sqlx::{Executor, Row};

use super::testing::{all_test_stores, fresh_sqlite_store};
use super::*;
use crate::engine::WriteOp;
use crate::model::{
    AuditRecord, AvailableRule, Challenge, ChallengeKind, EmergencyAccess, EmergencyCode,
    EmergencyKind, EmergencyMode, FixedPasscode, HashAlgorithm, OfflineCode, OtpMode, PinState,
    PrincipalRecord, Token, TokenId, TokenKind, User, UserId,
};

fn new_token(serial: &str, user_id: Option<UserId>) -> NewToken {
    NewToken {
        serial: serial.to_owned(),
        user_id,
        kind: TokenKind::Pin,
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
        mode: OtpMode::Totp { period: 30 },
        seed_enc: vec![0, 1, 2, 255, 254, 0, 7],
        expires_at: None,
        pin_hash: Some("hash".to_owned()),
        pin_state: PinState::Set,
    }
}

fn audit(at: i64, user_name: &str, reason: &str) -> AuditRecord {
    AuditRecord {
        at,
        actor: None,
        user_name: user_name.to_owned(),
        client: Some("vpn1".to_owned()),
        protocol: "radius".to_owned(),
        method: "token".to_owned(),
        result: "accept".to_owned(),
        reason: reason.to_owned(),
    }
}

fn challenge(
    state: &str,
    user_id: UserId,
    token_id: Option<TokenId>,
    expires_at: i64,
) -> Challenge {
    Challenge {
        state: state.to_owned(),
        user_id,
        token_id,
        kind: ChallengeKind::NextTokencode,
        data: "{\"step\":5}".to_owned(),
        created_at: expires_at - 120,
        expires_at,
    }
}

fn advance(token_id: TokenId, step: i64) -> WriteOp {
    WriteOp::AdvanceStep {
        token_id,
        step,
        drift: 0,
    }
}

/// A user with one token, the usual starting point.
async fn user_with_token(store: &Store, name: &str) -> (User, Token) {
    let user = store.create_user(name, "default", None, 100).await.unwrap();
    let token = store
        .create_token(&new_token(&format!("T-{name}"), Some(user.id)), 100)
        .await
        .unwrap();
    (user, token)
}

async fn last_step(store: &Store, serial: &str) -> i64 {
    store
        .token_by_serial(serial)
        .await
        .unwrap()
        .unwrap()
        .last_step
}

fn code(hash: &str) -> EmergencyCode {
    EmergencyCode {
        id: 0,
        code_hash: hash.to_owned(),
        used_at: None,
    }
}

/// An OTT set of `n` codes `H0, H1, …` (prefixed) for a token.
fn ott(token_id: TokenId, prefix: &str, n: usize) -> EmergencyAccess {
    EmergencyAccess {
        token_id,
        mode: EmergencyMode::Unavailable,
        kind: EmergencyKind::Ott,
        rule: AvailableRule::Deny,
        expires_at: 10_000,
        issued_at: 1_000,
        codes: (0..n).map(|i| code(&format!("{prefix}{i}"))).collect(),
    }
}

fn tft(token_id: TokenId, hash: &str) -> EmergencyAccess {
    EmergencyAccess {
        token_id,
        mode: EmergencyMode::Lost,
        kind: EmergencyKind::Tft,
        rule: AvailableRule::AllowAndDisable,
        expires_at: 20_000,
        issued_at: 2_000,
        codes: vec![code(hash)],
    }
}

fn consume(code_id: i64, used_at: i64) -> WriteOp {
    WriteOp::ConsumeEmergencyCode { code_id, used_at }
}

fn offline_of_token(token_id: TokenId, byte: u8) -> OfflineCode {
    OfflineCode {
        token_id: Some(token_id),
        user_id: None,
        code_enc: vec![byte, 0, 255, byte],
        expires_at: 50_000,
        reset: false,
        online: false,
        created_at: 3_000,
    }
}

fn offline_of_user(user_id: UserId, byte: u8) -> OfflineCode {
    OfflineCode {
        token_id: None,
        user_id: Some(user_id),
        code_enc: vec![byte; 5],
        expires_at: 60_000,
        reset: true,
        online: false,
        created_at: 4_000,
    }
}

fn fixed(user_id: UserId, hash: Option<&str>) -> FixedPasscode {
    FixedPasscode {
        user_id,
        allowed: true,
        code_hash: hash.map(str::to_owned),
        expires_at: Some(70_000),
        set_at: 5_000,
    }
}
