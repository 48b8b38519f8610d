//! API tokens, stored as SHA-256 hashes: the token itself is shown once.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::events::{append, NewEvent};
use super::tx::{args, write_tx, Tx};
use super::{with_pool, Db};
use crate::domain::event::EventType;
use crate::error::Result;

/// What the owner may see of a token (never the token). A plain record: the
/// API and the account page each show it their own way.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl Db {
    #[tracing::instrument(skip_all)]
    pub async fn insert_token(
        &self,
        id: Uuid,
        username: &str,
        name: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<()> {
        let row = args![id, username, name, token_hash, created_at];
        // The token's name and owner, never the token or its hash.
        let event = NewEvent::new(
            EventType::TokenCreated,
            Some(username),
            serde_json::json!({"token_id": id, "username": username}),
            serde_json::json!({"token_id": id, "username": username, "name": name,
                "created_at": crate::time::format_time(&created_at)}),
            created_at,
        );
        write_tx!(self, |tx| async move {
            tx.execute(
                "INSERT INTO api_tokens (id, username, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                &row,
            )
            .await?;
            append(tx, event).await?;
            Ok(())
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_tokens(&self, username: &str) -> Result<Vec<TokenInfo>> {
        let sql = "SELECT id, name, created_at, last_used_at FROM api_tokens WHERE username = $1 ORDER BY created_at, id";
        let rows: Vec<TokenRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(username).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|r| TokenInfo {
                id: r.id,
                name: r.name,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
            })
            .collect())
    }

    /// Deletes one of the user's own tokens; false when there is none.
    #[tracing::instrument(skip_all)]
    pub async fn delete_token(&self, username: &str, id: Uuid) -> Result<bool> {
        let key = args![id, username];
        let username = username.to_owned();
        let done = write_tx!(self, |tx| async move {
            let gone = tx
                .fetch_optional(
                    "DELETE FROM api_tokens WHERE id = $1 AND username = $2 RETURNING name",
                    &key,
                )
                .await?;
            let Some(gone) = gone else {
                return Ok(false);
            };
            let name: String = gone.get(0)?;
            let event = NewEvent::new(
                EventType::TokenRevoked,
                Some(&username),
                serde_json::json!({"token_id": id, "username": &username}),
                serde_json::json!({"token_id": id, "username": &username, "name": name}),
                crate::time::now_millis(),
            );
            append(tx, event).await?;
            Ok(true)
        })?;
        Ok(done)
    }

    /// The owner of a token, by the token's hash.
    #[tracing::instrument(skip_all)]
    pub async fn token_owner(&self, token_hash: &str) -> Result<Option<String>> {
        let sql = "SELECT username FROM api_tokens WHERE token_hash = $1";
        let owner: Option<String> = with_pool!(self, pool => sqlx::query_scalar(sql).bind(token_hash).fetch_optional(pool).await)?;
        Ok(owner)
    }
}
