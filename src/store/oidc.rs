//! Single sign-on logins under way: what the callback needs to check the
//! provider's answer. In the store, so any instance finishes a login another
//! started, and taken (deleted) by the callback, so each is used once.

use chrono::{DateTime, Utc};

use super::tx::{args, write_tx, Tx};
use super::Db;
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
        let row = args![
            id_hash,
            login.state.as_str(),
            login.nonce.as_str(),
            login.pkce_verifier.as_str(),
            login.next.as_str(),
            expires_at
        ];
        write_tx!(self, |tx| async move {
            tx.execute(
                "DELETE FROM oidc_logins WHERE expires_at <= $1",
                &args![now],
            )
            .await?;
            tx.execute(
                "INSERT INTO oidc_logins (id_hash, state, nonce, pkce_verifier, next, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &row,
            )
            .await?;
            Ok(())
        })
    }

    /// Removes and returns the live login recorded under `id_hash`.
    #[tracing::instrument(skip_all)]
    pub async fn take_pending_login(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>> {
        let id_hash = id_hash.to_owned();
        let row = write_tx!(self, |tx| async move {
            tx.fetch_optional(
                "DELETE FROM oidc_logins WHERE id_hash = $1 \
                 RETURNING state, nonce, pkce_verifier, next, expires_at",
                &args![id_hash],
            )
            .await
        })?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: DateTime<Utc> = row.get(4)?;
        Ok((expires_at > now).then_some(PendingLogin {
            state: row.get(0)?,
            nonce: row.get(1)?,
            pkce_verifier: row.get(2)?,
            next: row.get(3)?,
        }))
    }
}
