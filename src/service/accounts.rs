//! Accounts: one sign-in for every door, sessions and API tokens (random,
//! stored as SHA-256 hashes), login throttling, passwords (Argon2id), users
//! and the rules on their changes, and the first `admin`. The HTTP API, the
//! pages and the command line all come through here.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{Actor, Service};
use crate::domain::job::now_millis;
use crate::domain::sso::{local_login_allowed, SsoIdentity, SsoRefusal};
use crate::domain::user::{check_password_policy, Role, User, Username};
use crate::error::{Error, ErrorCode, Result, SignInError};
use crate::password::{hash_password, verify_password};
use crate::store::tokens::TokenInfo;
use crate::store::users::UserChanges;
use crate::store::Db;

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

pub use crate::password::generate_password;

/// Checks a username and password, with throttling: after five failures
/// within 15 minutes every attempt is refused until 15 minutes after the
/// fifth; a success before that resets the count.
async fn check_password(db: &Db, username: &str, password: &str) -> Result<User> {
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
async fn sso_user(db: &Db, identity: &SsoIdentity) -> Result<User> {
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
        .update_user(name, &changes, Some(name))
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

/// Creates a local user; with no password given, generates one and returns
/// it. Every surface that creates users (the API, the Users page, the
/// command line, the first admin) comes through here.
pub(super) async fn insert_local_user(
    db: &Db,
    username: &str,
    password: Option<&str>,
    role: Role,
    actor: Option<&str>,
) -> Result<(User, Option<String>)> {
    let username = Username::parse(username)
        .map_err(|detail| Error::rejected(ErrorCode::InvalidUsername, detail))?;
    let generated = password.is_none().then(generate_password);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    check_password_policy(password)
        .map_err(|detail| Error::rejected(ErrorCode::InvalidPassword, detail))?;
    let hash = hash_password(password).await?;
    let user = db
        .insert_user(&username, role, Some(&hash), false, now_millis(), actor)
        .await?;
    Ok((user, generated))
}

/// Creates the first `admin` when the store has no user. Returns the
/// password when it was generated, so the caller can show it once.
pub async fn ensure_admin(db: &Db, password: Option<&str>) -> Result<Option<String>> {
    if db.count_users().await? > 0 {
        return Ok(None);
    }
    match insert_local_user(db, "admin", password, Role::Admin, None).await {
        Ok((_, generated)) => Ok(generated),
        // Another instance created it first.
        Err(e) if e.code() == ErrorCode::UserExists => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new session: the cookie value (shown to the browser only) and its CSRF token.
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
}

/// How a person proves who they are.
pub enum Credentials<'a> {
    /// A local account's username and password.
    Password {
        username: &'a str,
        password: &'a str,
    },
    /// A login the identity provider vouched for.
    SingleSignOn(SsoIdentity),
}

/// A signed-in user and the session that was started for them.
pub struct SignedIn {
    pub user: User,
    pub session: NewSession,
}

/// A new local user, as an admin asked for it.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    /// `None`: one is generated and answered once.
    pub password: Option<String>,
    pub role: Role,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

/// A role as typed, or `422 invalid_role`.
pub fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s.trim()).ok_or_else(|| {
        Error::rejected(
            ErrorCode::InvalidRole,
            format!("role {s:?} is not admin, operator or auditor"),
        )
    })
}

impl Service {
    /// The one sign-in of every door (the API's session, the login page,
    /// single sign-on's callback): checks the credentials (and, where only
    /// single sign-on is allowed, that a password login is the break-glass
    /// `admin`), ends the session the browser held (so a planted session id
    /// is never promoted), and starts a new one.
    #[tracing::instrument(skip_all)]
    pub async fn sign_in(
        &self,
        credentials: Credentials<'_>,
        previous_session: Option<&str>,
    ) -> Result<SignedIn> {
        let (user, how) = match credentials {
            Credentials::Password { username, password } => {
                if let Some(sso) = self.sso() {
                    if !local_login_allowed(sso.local_login, username) {
                        tracing::info!(
                            username,
                            "local login refused: only single sign-on is allowed"
                        );
                        return Err(SignInError::LocalLoginOff.into());
                    }
                }
                (
                    check_password(&self.db, username, password).await?,
                    "password",
                )
            }
            Credentials::SingleSignOn(identity) => {
                (sso_user(&self.db, &identity).await?, "single sign-on")
            }
        };
        if let Some(old) = previous_session {
            self.sign_out(old).await?;
        }
        let session = self.start_session(&user.username).await?;
        tracing::info!(username = %user.username, role = user.role.as_str(), how, "logged in");
        Ok(SignedIn { user, session })
    }

    /// Ends a session.
    pub async fn sign_out(&self, session_id: &str) -> Result<()> {
        self.db.delete_session(&sha256_hex(session_id)).await
    }

    async fn start_session(&self, username: &str) -> Result<NewSession> {
        let id = random_token(32);
        let csrf_token = random_token(24);
        let now = now_millis();
        let ttl =
            chrono::Duration::from_std(self.accounts.session_ttl).map_err(anyhow::Error::from)?;
        self.db
            .insert_session(&sha256_hex(&id), username, &csrf_token, now, now + ttl)
            .await?;
        Ok(NewSession { id, csrf_token })
    }

    /// The active user of a session cookie, and the session's CSRF token.
    pub async fn session_user(&self, session_id: &str) -> Result<(User, String)> {
        let (username, csrf) = self
            .db
            .session(&sha256_hex(session_id), now_millis())
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok((self.active_user(&username).await?, csrf))
    }

    /// The active user a bearer token belongs to.
    pub async fn token_user(&self, token: &str) -> Result<User> {
        let owner = self
            .db
            .token_owner(&sha256_hex(token))
            .await?
            .ok_or(Error::InvalidToken)?;
        match self.active_user(&owner).await {
            Err(Error::Unauthenticated) => Err(Error::InvalidToken),
            other => other,
        }
    }

    pub(super) async fn active_user(&self, username: &str) -> Result<User> {
        match self.db.get_user(username).await? {
            Some(r) if !r.user.disabled => Ok(r.user),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Changes one's own password. The current one is checked like a login
    /// (wrong guesses count towards the same lock-out, so a stolen session
    /// cannot try passwords without limit); the change ends every session of
    /// the user, and this browser goes on in the new one answered.
    pub async fn change_own_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        confirm: &str,
    ) -> Result<NewSession> {
        check_password(&self.db, &user.username, current)
            .await
            .map_err(|e| match e {
                Error::InvalidCredentials => {
                    Error::rejected(ErrorCode::InvalidPassword, "the current password is wrong")
                }
                other => other,
            })?;
        if new != confirm {
            return Err(Error::rejected(
                ErrorCode::InvalidPassword,
                "the two new passwords differ",
            ));
        }
        check_password_policy(new)
            .map_err(|detail| Error::rejected(ErrorCode::InvalidPassword, detail))?;
        let changes = UserChanges {
            password_hash: Some(hash_password(new).await?),
            ..UserChanges::default()
        };
        self.db
            .update_user(&user.username, &changes, Some(&user.username))
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(username = %user.username, "password changed");
        self.start_session(&user.username).await
    }

    /// Every user (admins only).
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<User>> {
        actor.require_admin()?;
        self.db.list_users().await
    }

    /// The names of every user, for the audit's user filter (those who see
    /// every job).
    pub async fn usernames(&self, actor: &Actor) -> Result<Vec<String>> {
        actor.require_sees_all()?;
        Ok(self
            .db
            .list_users()
            .await?
            .into_iter()
            .map(|u| u.username)
            .collect())
    }

    /// Creates a local user (admins and the command line); with no password
    /// given, one is generated and answered once.
    #[tracing::instrument(skip_all, fields(username = %new.username))]
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<(User, Option<String>)> {
        actor.require_admin()?;
        let (user, generated) = insert_local_user(
            &self.db,
            new.username.trim(),
            new.password.as_deref(),
            new.role,
            actor.user().map(|u| u.username.as_str()),
        )
        .await?;
        tracing::info!(by = actor_name(actor), username = %user.username, role = user.role.as_str(), "user created");
        Ok((user, generated))
    }

    /// Applies an admin's (or the command line's) changes to a user, with
    /// the rules every surface shares: nobody disables themselves or gives
    /// up their own admin role, the last enabled admin stays an enabled
    /// admin, and a new password follows the policy. A new password or
    /// disabling ends the user's sessions.
    #[tracing::instrument(skip_all, fields(username))]
    pub async fn change_user(
        &self,
        actor: &Actor,
        username: &str,
        change: UserChange,
    ) -> Result<User> {
        actor.require_admin()?;
        let removes_admin =
            change.disabled == Some(true) || change.role.is_some_and(|r| r != Role::Admin);
        if removes_admin {
            if actor.user().is_some_and(|me| me.username == username) {
                return Err(Error::rejected(
                    ErrorCode::SelfLockout,
                    "you cannot disable yourself or give up your own admin role",
                ));
            }
            let target = self.db.get_user(username).await?.ok_or(Error::NotFound)?;
            if target.user.role == Role::Admin && !target.user.disabled {
                let admins = self.db.list_users().await?;
                let enabled_admins = admins
                    .iter()
                    .filter(|u| u.role == Role::Admin && !u.disabled)
                    .count();
                if enabled_admins <= 1 {
                    return Err(Error::rejected(
                        ErrorCode::SelfLockout,
                        format!(
                            "{username} is the last enabled admin: the console would have none"
                        ),
                    ));
                }
            }
        }
        let password_hash = match change.password.as_deref() {
            Some(p) => {
                check_password_policy(p)
                    .map_err(|detail| Error::rejected(ErrorCode::InvalidPassword, detail))?;
                Some(hash_password(p).await?)
            }
            None => None,
        };
        let changes = UserChanges {
            role: change.role,
            disabled: change.disabled,
            password_hash,
        };
        let user = self
            .db
            .update_user(
                username,
                &changes,
                actor.user().map(|u| u.username.as_str()),
            )
            .await?
            .ok_or(Error::NotFound)?;
        tracing::info!(by = actor_name(actor), username = %user.username, "user changed");
        Ok(user)
    }

    /// Starts a new session for an admin who just reset their own password
    /// (the reset ended all of theirs, this one too).
    pub async fn resume_after_own_reset(&self, admin: &User) -> Result<NewSession> {
        self.start_session(&admin.username).await
    }

    /// A new API token for `user`; the token is returned once, only its hash
    /// is stored.
    pub async fn create_token(&self, user: &User, name: &str) -> Result<(TokenInfo, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::rejected(
                ErrorCode::InvalidTokenName,
                "the token name must have 1 to 100 characters",
            ));
        }
        let token = format!("tms_{}", random_token(32));
        let id = Uuid::now_v7();
        let now = now_millis();
        self.db
            .insert_token(id, &user.username, name, &sha256_hex(&token), now)
            .await?;
        tracing::info!(username = %user.username, token_id = %id, "API token created");
        let info = TokenInfo {
            id,
            name: name.to_owned(),
            created_at: now,
            last_used_at: None,
        };
        Ok((info, token))
    }

    /// A token for `username`, made on the command line.
    pub async fn create_token_for(
        &self,
        actor: &Actor,
        username: &str,
        name: &str,
    ) -> Result<String> {
        actor.require_admin()?;
        let user = self.active_user(username).await.map_err(|_| {
            Error::rejected(
                ErrorCode::InvalidUsername,
                format!("no active user {username:?}"),
            )
        })?;
        Ok(self.create_token(&user, name).await?.1)
    }

    /// The user's own tokens, without their secrets.
    pub async fn list_tokens(&self, user: &User) -> Result<Vec<TokenInfo>> {
        self.db.list_tokens(&user.username).await
    }

    /// Revokes one of the user's own tokens; `404` for any other id.
    pub async fn revoke_token(&self, user: &User, id: &str) -> Result<()> {
        let id = Uuid::parse_str(id).map_err(|_| Error::NotFound)?;
        if !self.db.delete_token(&user.username, id).await? {
            return Err(Error::NotFound);
        }
        tracing::info!(username = %user.username, token_id = %id, "API token revoked");
        Ok(())
    }
}

fn actor_name(actor: &Actor) -> &str {
    actor.user().map_or("command line", |u| u.username.as_str())
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
