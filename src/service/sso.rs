//! Single sign-on's two legs, as rules: what a login under way keeps, how
//! the provider's answer is checked, and the sign-in it ends in (the same
//! one as a password login, `Service::sign_in`). The protocol itself is
//! `crate::oidc`; the pages only carry cookies and redirects.
//!
//! The login under way (`state`, `nonce`, PKCE verifier, return path) is kept
//! in the store under the hash of a random id that the browser holds in a
//! cookie. The store rather than a signed cookie: instances need no shared
//! signing key, any instance finishes a login another started, and taking
//! the record deletes it, so each login is used once. The cookie binds it to
//! the browser that started it, so a callback URL planted in another
//! browser (login CSRF) finds nothing.

use super::accounts::{constant_time_eq, random_token, sha256_hex, Credentials, SignedIn};
use super::Service;
use crate::domain::job::now_millis;
use crate::error::{Error, Result, SignInError};
use crate::oidc::Sso;

/// How long a person may take at the provider.
pub const PENDING_MINUTES: i64 = 10;

/// Where the browser is sent, and the id its cookie must carry back.
pub struct SsoStart {
    pub pending_id: String,
    pub provider_url: String,
}

/// What the provider's redirect back said.
#[derive(Clone, Debug, Default)]
pub struct SsoAnswer {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The provider that answered (RFC 9207), when it says.
    pub iss: Option<String>,
}

/// Where the browser asked to reach the console, which decides the
/// callback URL.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    pub host: Option<&'a str>,
    pub secure: bool,
}

impl Service {
    fn configured_sso(&self) -> Result<&Sso> {
        self.sso().ok_or(Error::SignIn(SignInError::NotConfigured))
    }

    /// Starts a single sign-on login that returns to `next`.
    pub async fn begin_sso(&self, site: Site<'_>, next: String) -> Result<SsoStart> {
        let sso = self.configured_sso()?;
        let redirect = sso.redirect_url(site.host, site.secure)?;
        let authorization = sso.begin(redirect, next).await?;
        let pending_id = random_token(32);
        let now = now_millis();
        let expires = now + chrono::Duration::minutes(PENDING_MINUTES);
        self.db
            .insert_pending_login(
                &sha256_hex(&pending_id),
                &authorization.pending,
                now,
                expires,
            )
            .await?;
        Ok(SsoStart {
            pending_id,
            provider_url: authorization.url,
        })
    }

    /// Finishes a login with the provider's answer: the login under way
    /// (used up whatever happens), its `state`, the issuer, the code traded
    /// and the ID token verified, then the sign-in. Answers the signed-in
    /// user and where the browser goes next.
    pub async fn finish_sso(
        &self,
        site: Site<'_>,
        pending_id: Option<&str>,
        answer: SsoAnswer,
        previous_session: Option<&str>,
    ) -> Result<(SignedIn, String)> {
        let sso = self.configured_sso()?;
        let Some(pending_id) = pending_id else {
            return Err(SignInError::BadState.into());
        };
        let pending = self
            .db
            .take_pending_login(&sha256_hex(pending_id), now_millis())
            .await?
            .ok_or(SignInError::BadState)?;
        if !constant_time_eq(answer.state.as_deref().unwrap_or_default(), &pending.state) {
            return Err(SignInError::BadState.into());
        }
        // An answer from another provider than the one asked (mix-up attack).
        if answer.iss.as_deref().is_some_and(|iss| iss != sso.issuer()) {
            return Err(SignInError::BadState.into());
        }
        if let Some(error) = answer.error {
            let detail = match answer.error_description {
                Some(description) => format!("{error} ({description})"),
                None => error,
            };
            return Err(SignInError::ProviderRefused(detail).into());
        }
        let code = answer
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SignInError::ProviderBroken("no authorization code".into()))?;
        let redirect = sso.redirect_url(site.host, site.secure)?;
        let claims = sso.finish(redirect, code, &pending).await?;
        let identity = claims.identify(&sso.roles).map_err(SignInError::Refused)?;
        let signed_in = self
            .sign_in(Credentials::SingleSignOn(identity), previous_session)
            .await?;
        Ok((signed_in, pending.next))
    }
}
