//! API keys: generating one (`tokengate api-key new`), the SHA-256 the configuration stores, the
//! constant-time match of a presented key against every configured hash, and the bearer
//! extractor that turns the `Authorization` header into the acting [`Actor`] (401 otherwise,
//! counted, logged and audited by [`super::auth_failures`] with the reason, never the key).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::ApiKey;
use crate::stats::ApiAuthFailure;

use super::auth_failures;
use super::error::ApiError;
use super::Shared;

/// Prefix of every API key, so a leaked key is recognisable in logs and scanners.
pub const API_KEY_PREFIX: &str = "tgk_";

/// A freshly generated API key: the key (shown once) and the hash that goes into the config.
#[derive(Clone)]
pub struct NewApiKey {
    /// `tgk_` + 32 random bytes in base64url (no padding).
    pub key: String,
    /// Lower-case hex SHA-256 of `key`, for `key_sha256`.
    pub sha256_hex: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key", &"<redacted>")
            .field("sha256_hex", &self.sha256_hex)
            .finish()
    }
}

/// Generates an API key from 32 bytes of `rng`.
pub fn new_api_key(rng: &mut (impl RngCore + rand::CryptoRng)) -> NewApiKey {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut_slice());
    let key = format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice())
    );
    let sha256_hex = api_key_sha256(&key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    NewApiKey { key, sha256_hex }
}

/// SHA-256 of an API key as presented (the whole string, prefix included).
pub fn api_key_sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The configured key matching `presented`, if any. Every configured hash is compared, in
/// constant time, whatever matches, so timing tells nothing about which key (or how much of it)
/// was right.
pub fn match_api_key<'k>(keys: &'k [ApiKey], presented: &str) -> Option<&'k ApiKey> {
    let digest = api_key_sha256(presented);
    let mut found = subtle::Choice::from(0);
    let mut index = 0u64;
    for (i, k) in keys.iter().enumerate() {
        let eq = digest.ct_eq(&k.sha256);
        index = u64::conditional_select(&index, &(i as u64), eq);
        found |= eq;
    }
    if bool::from(found) {
        keys.get(usize::try_from(index).ok()?)
    } else {
        None
    }
}

/// The authenticated caller: the name of the API key presented.
#[derive(Debug, Clone)]
pub struct Actor(String);

impl Actor {
    /// The acting admin as audit records name it: `api:<key name>`.
    pub fn audit_name(&self) -> String {
        format!("api:{}", self.0)
    }
}

impl FromRequestParts<Shared> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, Self::Rejection> {
        let config = st.config();
        let keys = config
            .admin_api
            .as_ref()
            .map(|a| a.keys.as_slice())
            .unwrap_or(&[]);
        let refuse = |why: ApiAuthFailure, message: &'static str| {
            let source = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip());
            auth_failures::refused(st, source, why, &parts.method, parts.uri.path());
            ApiError::Unauthorized(message)
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(refuse(
                ApiAuthFailure::Missing,
                "missing API key: send Authorization: Bearer <key>",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|k| !k.is_empty());
        let Some(presented) = presented else {
            return Err(refuse(
                ApiAuthFailure::Malformed,
                "malformed Authorization header: expected Bearer <key>",
            ));
        };
        match match_api_key(keys, presented) {
            Some(k) => Ok(Actor(k.name.clone())),
            None => Err(refuse(ApiAuthFailure::UnknownKey, "invalid API key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, k: &str) -> ApiKey {
        ApiKey {
            name: name.into(),
            sha256: api_key_sha256(k),
        }
    }

    #[test]
    fn new_keys_are_prefixed_base64url_of_32_bytes_with_matching_hash() {
        let a = new_api_key(&mut rand::rngs::OsRng);
        let b = new_api_key(&mut rand::rngs::OsRng);
        assert_ne!(a.key, b.key);
        let body = a.key.strip_prefix(API_KEY_PREFIX).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(a.sha256_hex.len(), 64);
        let expect: String = api_key_sha256(&a.key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(a.sha256_hex, expect);
        assert!(!format!("{a:?}").contains(&a.key));
    }

    #[test]
    fn keys_match_by_hash_only() {
        let keys = [key("one", "tgk_a"), key("two", "tgk_b")];
        assert_eq!(match_api_key(&keys, "tgk_a").unwrap().name, "one");
        assert_eq!(match_api_key(&keys, "tgk_b").unwrap().name, "two");
        assert!(match_api_key(&keys, "tgk_c").is_none());
        assert!(match_api_key(&keys, "").is_none());
        assert!(match_api_key(&[], "tgk_a").is_none());
    }
}
