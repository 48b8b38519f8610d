//! Single sign-on logins under way: what the callback needs to check the
//! provider's answer. In the store, so any instance finishes a login another
//! started, and taken (deleted) by the callback, so each is used once.

use chrono::{DateTime, Utc};

use super::{with_pool, Db};
use crate::error::Result;

/// What `/auth/oidc/login` leaves for `/auth/oidc/callback`.
#[derive(Clone, Debug)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where the browser goes once logged in.
    pub next: String,
}

impl Db {
    /// Records a login under the hash of the browser's cookie, and forgets
    /// the logins that were never finished.
    #[tracing::instrument(skip_all)]
    pub async fn insert_pending_login(
        &self,
        id_hash: &str,
        login: &PendingLogin,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO oidc_logins (id_hash, state, nonce, pkce_verifier, next, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id_hash)
            .bind(&login.state)
            .bind(&login.nonce)
            .bind(&login.pkce_verifier)
            .bind(&login.next)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Removes and returns the live login recorded under `id_hash`.
    #[tracing::instrument(skip_all)]
    pub async fn take_pending_login(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>> {
        let sql = "DELETE FROM oidc_logins WHERE id_hash = $1 \
                   RETURNING state, nonce, pkce_verifier, next, expires_at";
        let row: Option<(String, String, String, String, DateTime<Utc>)> = with_pool!(self, pool =>
            sqlx::query_as(sql).bind(id_hash).fetch_optional(pool).await)?;
        Ok(
            row.and_then(|(state, nonce, pkce_verifier, next, expires_at)| {
                (expires_at > now).then_some(PendingLogin {
                    state,
                    nonce,
                    pkce_verifier,
                    next,
                })
            }),
        )
    }
}
