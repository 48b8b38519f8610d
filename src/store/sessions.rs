//! Browser sessions and login throttling. Both live in the store, so any
//! instance behind a load balancer serves any request.

use chrono::{DateTime, Utc};

use super::{with_pool, Db};
use crate::error::Result;

impl Db {
    #[tracing::instrument(skip_all)]
    pub async fn insert_session(
        &self,
        id_hash: &str,
        username: &str,
        csrf_token: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO sessions (id_hash, username, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
        with_pool!(self, pool => sqlx::query(sql)
            .bind(id_hash)
            .bind(username)
            .bind(csrf_token)
            .bind(created_at)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The username and CSRF token of a live session.
    #[tracing::instrument(skip_all)]
    pub async fn session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let sql =
            "SELECT username, csrf_token FROM sessions WHERE id_hash = $1 AND expires_at > $2";
        let row: Option<(String, String)> = with_pool!(self, pool => sqlx::query_as(sql).bind(id_hash).bind(now).fetch_optional(pool).await)?;
        Ok(row)
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = with_pool!(self, pool => sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done)
    }

    /// Until when logins of `username` are refused, if they are.
    #[tracing::instrument(skip_all)]
    pub async fn login_locked_until(
        &self,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let sql = "SELECT locked_until FROM login_locks WHERE username = $1 AND locked_until > $2";
        let until: Option<DateTime<Utc>> = with_pool!(self, pool => sqlx::query_scalar(sql).bind(username).bind(now).fetch_optional(pool).await)?;
        Ok(until)
    }

    /// Records a failed login and, when it is the `limit`-th within `window`,
    /// locks the username until `now + window`. Returns the lock's end if set.
    #[tracing::instrument(skip_all)]
    pub async fn record_login_failure(
        &self,
        username: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        limit: i64,
    ) -> Result<Option<DateTime<Utc>>> {
        let since = now - window;
        let until = now + window;
        let locked = with_pool!(self, pool => {
            let mut tx = super::write_tx!(pool)?;
            sqlx::query("DELETE FROM login_failures WHERE username = $1 AND failed_at <= $2")
                .bind(username).bind(since).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO login_failures (username, failed_at) VALUES ($1, $2)")
                .bind(username).bind(now).execute(&mut *tx).await?;
            let recent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE username = $1")
                .bind(username).fetch_one(&mut *tx).await?;
            let locked = recent >= limit;
            if locked {
                sqlx::query(
                    "INSERT INTO login_locks (username, locked_until) VALUES ($1, $2) \
                     ON CONFLICT (username) DO UPDATE SET locked_until = excluded.locked_until",
                )
                .bind(username).bind(until).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM login_failures WHERE username = $1").bind(username).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(locked)
        })?;
        Ok(locked.then_some(until))
    }

    /// A successful login resets the count.
    #[tracing::instrument(skip_all)]
    pub async fn clear_login_failures(&self, username: &str) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = super::write_tx!(pool)?;
            sqlx::query("DELETE FROM login_failures WHERE username = $1").bind(username).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM login_locks WHERE username = $1").bind(username).execute(&mut *tx).await?;
            tx.commit().await
        })?;
        Ok(())
    }
}
