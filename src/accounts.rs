//! Accounts: passwords (hashed by `crate::password`), API tokens and
//! sessions (random, stored as SHA-256 hashes), login throttling, and the
//! first `admin`. Shared by the HTTP API and the command line.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::domain::job::now_millis;
use crate::domain::sso::{SsoIdentity, SsoRefusal};
use crate::domain::user::{check_password_policy, Role, User, Username};
use crate::error::{Error, Result, SignInError};
use crate::password::verify_password;
use crate::store::tokens::TokenInfo;
use crate::store::users::UserChanges;
use crate::store::Db;

// Hashing lives in `crate::password`; these stay reachable here for callers.
pub use crate::password::{generate_password, hash_password};

/// Failed logins allowed per username within `LOGIN_WINDOW` before throttling.
pub const LOGIN_FAILURE_LIMIT: i64 = 5;
/// The throttling window, and how long a lock lasts.
pub const LOGIN_WINDOW_MINUTES: i64 = 15;

/// `n` random bytes, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a high-entropy secret (API tokens, session ids), hex.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of their contents (the lengths
/// are not secret: tokens of one kind all have the same length).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Checks a username and password, with throttling: after five failures
/// within 15 minutes every attempt is refused until 15 minutes after the
/// fifth; a success before that resets the count.
pub async fn login(db: &Db, username: &str, password: &str) -> Result<User> {
    let now = now_millis();
    if let Some(until) = db.login_locked_until(username, now).await? {
        return Err(rate_limited(until, now));
    }
    let record = db.get_user(username).await?;
    let hash = record.as_ref().and_then(|r| r.password_hash.as_deref());
    // No such user or no password: a dummy hash is verified all the same.
    let password_ok = verify_password(password, hash).await;
    match record {
        Some(r) if password_ok && !r.user.disabled => {
            db.clear_login_failures(username).await?;
            Ok(r.user)
        }
        _ => {
            let window = chrono::Duration::minutes(LOGIN_WINDOW_MINUTES);
            db.record_login_failure(username, now, window, LOGIN_FAILURE_LIMIT)
                .await?;
            tracing::info!(username, "login failed");
            Err(Error::InvalidCredentials)
        }
    }
}

fn rate_limited(until: DateTime<Utc>, now: DateTime<Utc>) -> Error {
    let ms = (until - now).num_milliseconds().max(0) as u64;
    Error::RateLimited {
        retry_after_s: ms.div_ceil(1000).max(1),
    }
}

/// The user a single sign-on login vouched for: created at their first
/// login (marked `sso`, no password), their role set from this login's groups
/// every time, so a user who left a group loses its role now. A local account
/// of the same name is refused rather than taken over: whoever controls a
/// name at the provider must not become a local admin or operator.
pub async fn sso_login(db: &Db, identity: &SsoIdentity) -> Result<User> {
    let name = identity.username.as_str();
    let record = match db.get_user(name).await? {
        Some(record) => record,
        None => {
            if let Some(user) = db
                .insert_sso_user(&identity.username, identity.role, now_millis())
                .await?
            {
                tracing::info!(
                    username = name,
                    role = identity.role.as_str(),
                    "created a user at their first single sign-on"
                );
                return Ok(user);
            }
            // Another login of the same user created it a moment ago.
            db.get_user(name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("user {name:?} vanished during its first login"))?
        }
    };
    let refuse = |refusal| Err(Error::SignIn(SignInError::Refused(refusal)));
    if !record.sso {
        return refuse(SsoRefusal::LocalAccount {
            username: name.to_owned(),
        });
    }
    if record.user.disabled {
        return refuse(SsoRefusal::Disabled {
            username: name.to_owned(),
        });
    }
    if record.user.role == identity.role {
        return Ok(record.user);
    }
    let changes = UserChanges {
        role: Some(identity.role),
        ..UserChanges::default()
    };
    let user = db
        .update_user(name, &changes)
        .await?
        .ok_or_else(|| anyhow::anyhow!("user {name:?} vanished during its login"))?;
    tracing::info!(
        username = name,
        from = record.user.role.as_str(),
        to = identity.role.as_str(),
        "single sign-on changed the user's role"
    );
    Ok(user)
}

/// Creates a local user; with no password given, generates one and returns it.
pub async fn create_user(
    db: &Db,
    username: &str,
    password: Option<&str>,
    role: Role,
) -> Result<(User, Option<String>)> {
    let username = Username::parse(username).map_err(|detail| Error::Unprocessable {
        code: "invalid_username",
        detail,
    })?;
    let generated = password.is_none().then(generate_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    check_password_policy(password).map_err(|detail| Error::Unprocessable {
        code: "invalid_password",
        detail,
    })?;
    let hash = hash_password(password).await?;
    let user = db
        .insert_user(&username, role, Some(&hash), false, now_millis())
        .await?;
    Ok((user, generated))
}

/// Creates the first `admin` when the store has no user. Returns the
/// password when it was generated, so the caller can show it once.
pub async fn ensure_admin(db: &Db, password: Option<&str>) -> Result<Option<String>> {
    if db.count_users().await? > 0 {
        return Ok(None);
    }
    match create_user(db, "admin", password, Role::Admin).await {
        Ok((_, generated)) => Ok(generated),
        // Another instance created it first.
        Err(Error::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new API token for `username`; the token is returned once, only its
/// hash is stored.
pub async fn create_api_token(db: &Db, username: &str, name: &str) -> Result<(TokenInfo, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::Unprocessable {
            code: "invalid_token_name",
            detail: "the token name must have 1 to 100 characters".into(),
        });
    }
    let token = format!("tms_{}", random_token(32));
    let id = Uuid::now_v7();
    let now = now_millis();
    db.insert_token(id, username, name, &sha256_hex(&token), now)
        .await?;
    let info = TokenInfo {
        id,
        name: name.to_owned(),
        created_at: crate::domain::job::format_time(&now),
        last_used_at: None,
    };
    Ok((info, token))
}

/// The active user a bearer token belongs to.
pub async fn authenticate_token(db: &Db, token: &str) -> Result<User> {
    let owner = db
        .token_owner(&sha256_hex(token))
        .await?
        .ok_or(Error::Unauthenticated)?;
    active_user(db, &owner).await
}

async fn active_user(db: &Db, username: &str) -> Result<User> {
    match db.get_user(username).await? {
        Some(r) if !r.user.disabled => Ok(r.user),
        _ => Err(Error::Unauthenticated),
    }
}

/// A new session: the cookie value (shown to the browser only) and its CSRF token.
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

pub async fn start_session(
    db: &Db,
    username: &str,
    ttl: std::time::Duration,
) -> Result<NewSession> {
    let id = random_token(32);
    let csrf_token = random_token(24);
    let now = now_millis();
    let expires = now + chrono::Duration::from_std(ttl).map_err(anyhow::Error::from)?;
    db.insert_session(&sha256_hex(&id), username, &csrf_token, now, expires)
        .await?;
    Ok(NewSession { id, csrf_token })
}

/// The active user of a session cookie, and the session's CSRF token.
pub async fn session_user(db: &Db, session_id: &str) -> Result<(User, String)> {
    let (username, csrf) = db
        .session(&sha256_hex(session_id), now_millis())
        .await?
        .ok_or(Error::Unauthenticated)?;
    Ok((active_user(db, &username).await?, csrf))
}

pub async fn end_session(db: &Db, session_id: &str) -> Result<()> {
    db.delete_session(&sha256_hex(session_id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        let cases = [
            ("abc", "abc", true),
            ("", "", true),
            ("abc", "abd", false),
            ("abc", "xbc", false),
            ("abc", "ab", false),
            ("ab", "abc", false),
            ("", "a", false),
            ("a", "", false),
        ];
        for (a, b, equal) in cases {
            assert_eq!(constant_time_eq(a, b), equal, "{a:?} vs {b:?}");
        }
    }
}
