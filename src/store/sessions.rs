//! Browser sessions and login throttling. Both live in the store, so any
//! instance behind a load balancer serves any request.

use chrono::{DateTime, Utc};

use super::events::{append, NewEvent};
use super::tx::{args, write_tx, Tx};
use super::{with_pool, Db};
use crate::domain::event::EventType;
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
        let row = args![id_hash, username, csrf_token, created_at, expires_at];
        // Who and until when; never the session's id or CSRF token.
        let event = NewEvent::new(
            EventType::SessionLogin,
            Some(username),
            serde_json::json!({"username": username}),
            serde_json::json!({"username": username,
                "created_at": crate::time::format_time(&created_at),
                "expires_at": crate::time::format_time(&expires_at)}),
            created_at,
        );
        write_tx!(self, |tx| async move {
            tx.execute(
                "INSERT INTO sessions (id_hash, username, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &row,
            )
            .await?;
            append(tx, event).await?;
            Ok(())
        })
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
        let id_hash = id_hash.to_owned();
        write_tx!(self, |tx| async move {
            let gone = tx
                .fetch_optional(
                    "DELETE FROM sessions WHERE id_hash = $1 RETURNING username",
                    &args![id_hash],
                )
                .await?;
            if let Some(gone) = gone {
                let username: String = gone.get(0)?;
                let event = NewEvent::new(
                    EventType::SessionLogout,
                    Some(&username),
                    serde_json::json!({"username": &username}),
                    serde_json::json!({"username": &username}),
                    crate::time::now_millis(),
                );
                append(tx, event).await?;
            }
            Ok(())
        })
    }

    /// Forgets what only matters for a while: sessions past their expiry,
    /// failed logins older than `failures_before` and locks that ended.
    /// This is what keeps the throttling tables bounded by what arrives
    /// within one window, whatever usernames are tried.
    #[tracing::instrument(skip_all)]
    pub async fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<u64> {
        write_tx!(self, |tx| async move {
            let sessions = tx
                .execute("DELETE FROM sessions WHERE expires_at <= $1", &args![now])
                .await?;
            tx.execute(
                "DELETE FROM login_failures WHERE failed_at <= $1",
                &args![failures_before],
            )
            .await?;
            tx.execute(
                "DELETE FROM login_locks WHERE locked_until <= $1",
                &args![now],
            )
            .await?;
            Ok(sessions)
        })
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
        let username = username.to_owned();
        let locked = write_tx!(self, |tx| async move {
            tx.execute(
                "DELETE FROM login_failures WHERE username = $1 AND failed_at <= $2",
                &args![&username, since],
            )
            .await?;
            tx.execute(
                "INSERT INTO login_failures (username, failed_at) VALUES ($1, $2)",
                &args![&username, now],
            )
            .await?;
            let recent: i64 = tx
                .fetch_optional(
                    "SELECT COUNT(*) FROM login_failures WHERE username = $1",
                    &args![&username],
                )
                .await?
                .map_or(Ok(0), |row| row.get(0))?;
            let locked = recent >= limit;
            if locked {
                tx.execute(
                    "INSERT INTO login_locks (username, locked_until) VALUES ($1, $2) \
                     ON CONFLICT (username) DO UPDATE SET locked_until = excluded.locked_until",
                    &args![&username, until],
                )
                .await?;
                tx.execute(
                    "DELETE FROM login_failures WHERE username = $1",
                    &args![&username],
                )
                .await?;
            }
            // The name tried (which may be no user at all), never the password.
            let event = NewEvent::new(
                EventType::SessionLoginFailed,
                None,
                serde_json::json!({"username": &username}),
                serde_json::json!({"username": &username, "locked": locked}),
                now,
            );
            append(tx, event).await?;
            Ok(locked)
        })?;
        Ok(locked.then_some(until))
    }

    /// A successful login resets the count.
    #[tracing::instrument(skip_all)]
    pub async fn clear_login_failures(&self, username: &str) -> Result<()> {
        let username = username.to_owned();
        write_tx!(self, |tx| async move {
            tx.execute(
                "DELETE FROM login_failures WHERE username = $1",
                &args![&username],
            )
            .await?;
            tx.execute(
                "DELETE FROM login_locks WHERE username = $1",
                &args![&username],
            )
            .await?;
            Ok(())
        })
    }

    /// How many failed logins the store remembers (for tests and metrics).
    #[tracing::instrument(skip_all)]
    pub async fn count_login_failures(&self) -> Result<i64> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM login_failures").fetch_one(pool).await)?;
        Ok(n)
    }
}
