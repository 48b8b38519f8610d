//! Users and their password hashes.

use chrono::{DateTime, Utc};

use super::events::{append, NewEvent};
use super::tx::{args, write_tx, Tx};
use super::{with_pool, Db};
use crate::domain::event::EventType;
use crate::domain::user::{Role, User, Username};
use crate::error::{Error, ErrorCode, Result};

#[derive(sqlx::FromRow)]
struct UserRow {
    username: String,
    role: String,
    password_hash: Option<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
    sso: bool,
}

/// A user with the credential the store keeps for them.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    /// `None` for accounts that cannot log in with a password (imported).
    pub password_hash: Option<String>,
    /// Created by a single sign-on login: only the provider vouches for it.
    pub sso: bool,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<Self> {
        let role = Role::parse(&r.role).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "user {:?} has unknown role {:?}",
                r.username,
                r.role
            ))
        })?;
        Ok(UserRecord {
            user: User {
                username: r.username,
                role,
                disabled: r.disabled,
                created_at: r.created_at,
            },
            password_hash: r.password_hash,
            sso: r.sso,
        })
    }
}

const USER_COLUMNS: &str = "username, role, password_hash, disabled, created_at, sso";

/// Changes to apply to a user; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

impl Db {
    #[tracing::instrument(skip_all)]
    pub async fn count_users(&self) -> Result<i64> {
        let n: i64 = with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
        Ok(n)
    }

    /// Creates a user; a taken username is a `409 user_exists`.
    #[tracing::instrument(skip_all, fields(username = %username.as_str()))]
    pub async fn insert_user(
        &self,
        username: &Username,
        role: Role,
        password_hash: Option<&str>,
        disabled: bool,
        created_at: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Result<User> {
        let user = User {
            username: username.as_str().to_owned(),
            role,
            disabled,
            created_at,
        };
        let row = user.clone();
        let password_hash = password_hash.map(str::to_owned);
        let actor = actor.map(str::to_owned);
        let inserted = write_tx!(self, |tx| async move {
            let inserted = tx
                .execute(
                    "INSERT INTO users (username, role, password_hash, disabled, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username) DO NOTHING",
                    &args![
                        &row.username,
                        row.role.as_str(),
                        password_hash,
                        row.disabled,
                        row.created_at
                    ],
                )
                .await?;
            if inserted == 1 {
                append(
                    tx,
                    user_event(EventType::UserCreated, actor.as_deref(), &row, None)?,
                )
                .await?;
            }
            Ok(inserted)
        })?;
        if inserted == 0 {
            return Err(Error::rejected(
                ErrorCode::UserExists,
                format!("user {:?} already exists", username.as_str()),
            ));
        }
        Ok(user)
    }

    /// Creates the user of a first single sign-on login: no password, marked
    /// `sso`. `None` when the username is already taken.
    #[tracing::instrument(skip_all, fields(username = %username.as_str()))]
    pub async fn insert_sso_user(
        &self,
        username: &Username,
        role: Role,
        created_at: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let name = username.as_str().to_owned();
        let inserted = write_tx!(self, |tx| async move {
            let inserted = tx
                .execute(
                    "INSERT INTO users (username, role, password_hash, disabled, created_at, sso) \
                     VALUES ($1, $2, NULL, FALSE, $3, TRUE) ON CONFLICT (username) DO NOTHING",
                    &args![&name, role.as_str(), created_at],
                )
                .await?;
            if inserted == 1 {
                let user = User {
                    username: name.clone(),
                    role,
                    disabled: false,
                    created_at,
                };
                append(
                    tx,
                    user_event(EventType::UserCreated, Some(&name), &user, None)?,
                )
                .await?;
            }
            Ok(inserted)
        })?;
        Ok((inserted == 1).then(|| User {
            username: username.as_str().to_owned(),
            role,
            disabled: false,
            created_at,
        }))
    }

    #[tracing::instrument(skip_all)]
    pub async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(username).fetch_optional(pool).await)?;
        row.map(UserRecord::try_from).transpose()
    }

    #[tracing::instrument(skip_all)]
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
        rows.into_iter()
            .map(|r| UserRecord::try_from(r).map(|u| u.user))
            .collect()
    }

    /// Applies `changes`; `None` when the user does not exist. Disabling a user
    /// or changing their password ends their sessions.
    #[tracing::instrument(skip_all)]
    pub async fn update_user(
        &self,
        username: &str,
        changes: &UserChanges,
        actor: Option<&str>,
    ) -> Result<Option<User>> {
        let name = username.to_owned();
        let changes = changes.clone();
        let actor = actor.map(str::to_owned);
        let updated = write_tx!(self, |tx| async move {
            let ends_sessions = changes.disabled == Some(true) || changes.password_hash.is_some();
            let password_changed = changes.password_hash.is_some();
            let done = tx
                .execute(
                    "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), \
                     password_hash = COALESCE($4, password_hash) WHERE username = $1",
                    &args![
                        name.as_str(),
                        changes.role.map(Role::as_str),
                        changes.disabled,
                        changes.password_hash
                    ],
                )
                .await?;
            if ends_sessions {
                tx.execute("DELETE FROM sessions WHERE username = $1", &args![&name])
                    .await?;
            }
            if done == 1 {
                let row = tx
                    .fetch_optional(
                        "SELECT role, disabled, created_at FROM users WHERE username = $1",
                        &args![&name],
                    )
                    .await?
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("user {name:?} vanished")))?;
                let role: String = row.get(0)?;
                let user = User {
                    username: name.clone(),
                    role: Role::parse(&role).ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("user {name:?} has unknown role {role:?}"))
                    })?,
                    disabled: row.get(1)?,
                    created_at: row.get(2)?,
                };
                let mut changed = Vec::new();
                if changes.role.is_some() {
                    changed.push("role");
                }
                if changes.disabled.is_some() {
                    changed.push("disabled");
                }
                if password_changed {
                    changed.push("password");
                }
                let event = user_event(
                    EventType::UserChanged,
                    actor.as_deref(),
                    &user,
                    Some(&changed),
                )?;
                append(tx, event).await?;
            }
            Ok(done == 1)
        })?;
        if !updated {
            return Ok(None);
        }
        Ok(self.get_user(username).await?.map(|r| r.user))
    }
}

/// A user's event: the user after the change (never a password or its
/// hash), and for a change which fields it touched.
fn user_event(
    event_type: EventType,
    actor: Option<&str>,
    user: &User,
    changed: Option<&[&str]>,
) -> Result<NewEvent> {
    let mut data = serde_json::to_value(user).map_err(anyhow::Error::from)?;
    if let Some(changed) = changed {
        data["changed"] = serde_json::json!(changed);
    }
    Ok(NewEvent::new(
        event_type,
        actor,
        serde_json::json!({"username": user.username}),
        data,
        crate::time::now_millis(),
    ))
}
