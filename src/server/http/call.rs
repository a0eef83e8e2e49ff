//! One request as the handlers see it: [`Call`], the authorised caller with the configuration
//! and time the request runs under, and the step every change ends with (this gateway forgets
//! the users it touched, one log line). A handler is then: call [`Call::admin`], report the
//! change with [`Call::changed`], answer.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::Response;

use crate::admin::{Admin, AdminError};
use crate::config::Config;
use crate::model::UserId;
use crate::store::Store;

use super::error::{ApiError, ApiResult};
use super::keys::Actor;
use super::{Shared, LOG_TARGET};

/// An authorised request. Extracting it checks the API key first (401 otherwise), then reads
/// the configuration in force and the time once for the whole request (a reload applies to the
/// next request).
pub(super) struct Call {
    /// Who acts (the API key's name).
    pub(super) actor: Actor,
    /// What the handlers share.
    pub(super) st: Shared,
    /// The configuration in force when the request came in.
    pub(super) config: Arc<Config>,
    /// The time of the request (Unix seconds, the gateway's clock).
    pub(super) now: i64,
}

impl FromRequestParts<Shared> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Shared) -> Result<Self, Self::Rejection> {
        let actor = Actor::from_request_parts(parts, st).await?;
        Ok(Call {
            actor,
            st: st.clone(),
            config: st.config(),
            now: st.clock.now(),
        })
    }
}

impl Call {
    /// Admin operations as this caller, under this request's configuration.
    pub(super) fn admin(&self) -> Admin<'_> {
        Admin::new(
            &self.st.store,
            &self.config,
            &self.st.key,
            self.actor.audit_name(),
        )
    }

    /// The store, for the read-only routes that need no admin logic.
    pub(super) fn store(&self) -> &Store {
        &self.st.store
    }

    /// After a change: makes this gateway forget the cached state of `users` now (the change
    /// feed would catch up within a poll interval; an admin who locks a user expects it to hold
    /// at once), then logs the change ([`Call::log`]).
    pub(super) async fn changed(
        &self,
        users: impl IntoIterator<Item = Option<UserId>>,
        action: &str,
        object: &str,
    ) {
        let ids: Vec<UserId> = users.into_iter().flatten().collect();
        if !ids.is_empty() {
            self.st.auth.invalidate_users(&ids).await;
        }
        self.log(action, object);
    }

    /// One log line per change: who, what, on which object (never the body). [`Call::changed`]
    /// ends with it; alone, for a step that leaves every user's cached state as it was.
    pub(super) fn log(&self, action: &str, object: &str) {
        tracing::info!(
            target: LOG_TARGET,
            actor = %self.actor.audit_name(),
            action,
            object,
            "admin API change"
        );
    }

    /// `name` as the Admin layer normalises user names (the configured case rule).
    pub(super) fn normalize(&self, name: &str) -> String {
        self.config.file.server.user_name_case.normalize(name)
    }

    /// The owner of token `serial` now (before a change, to invalidate the old owner too).
    pub(super) async fn owner_of(&self, serial: &str) -> ApiResult<Option<UserId>> {
        Ok(self
            .store()
            .token_by_serial(serial)
            .await
            .map_err(AdminError::from)?
            .and_then(|t| t.user_id))
    }

    /// The id of the user `name` names (as the Admin layer normalises it), to invalidate after
    /// a change made by name.
    pub(super) async fn user_id_of(&self, name: &str) -> ApiResult<Option<UserId>> {
        let n = self.normalize(name);
        Ok(self
            .store()
            .user_by_name(&n)
            .await
            .map_err(AdminError::from)?
            .map(|u| u.id))
    }
}

/// A response that carries codes in clear: no cache may keep it.
pub(super) fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
