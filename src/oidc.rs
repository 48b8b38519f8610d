//! Single sign-on through an OpenID Connect provider: the authorization-code
//! flow with PKCE, `state` and `nonce`, the ID token checked (signature,
//! issuer, audience, expiry, nonce), and userinfo asked when the role claim
//! is not in the ID token. Who the user is then decided by `domain::sso`.
//!
//! The provider is discovered at each login rather than once at start-up:
//! logins are rare, the console starts while the provider is down, and a
//! provider's new signing keys are used at once.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DiscoveryError,
    IdToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse, UserInfoClaims, UserInfoError,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{ConfigError, OidcConfig};
use crate::domain::sso::{RoleMap, SsoClaims};
use crate::error::SignInError;
use crate::store::oidc::PendingLogin;

/// The path the provider sends the browser back to.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

/// How long the provider may take to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Every claim beyond the standard ones, so the configured role claim can be
/// any of them.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}
impl AdditionalClaims for OtherClaims {}

type ProviderIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The configured provider and what the login pages need to know of it.
pub struct Sso {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    scopes: Vec<String>,
    role_claim: String,
    redirect_url: Option<String>,
    http: openidconnect::reqwest::Client,
    pub roles: RoleMap,
    /// Text of the login page's button.
    pub label: String,
    /// `false`: only `admin` logs in with a password.
    pub local_login: bool,
}

/// Where to send the browser, and what to keep for the callback.
pub struct Authorization {
    pub url: String,
    pub pending: PendingLogin,
}

impl Sso {
    pub fn new(config: &OidcConfig) -> Result<Self, ConfigError> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| ConfigError(format!("oidc.issuer: {e}")))?;
        let http = openidconnect::reqwest::Client::builder()
            // Following a redirect from the provider's endpoints would let a
            // compromised answer make the console fetch any URL.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| ConfigError(format!("oidc: cannot build the HTTP client: {e}")))?;
        Ok(Sso {
            issuer,
            client_id: ClientId::new(config.client_id.clone()),
            client_secret: config
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
            scopes: config.scopes.clone(),
            role_claim: config.role_claim.clone(),
            redirect_url: config.redirect_url.clone(),
            http,
            roles: config.role_map()?,
            label: config.label.clone(),
            local_login: config.local_login,
        })
    }

    /// The provider's issuer identifier.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The callback URL: the configured one, else this site's callback at
    /// the host the browser asked for (the provider accepts only the URLs
    /// registered for the client, so a forged `Host` leads nowhere).
    pub fn redirect_url(
        &self,
        host: Option<&str>,
        https: bool,
    ) -> Result<RedirectUrl, SignInError> {
        let url = match (&self.redirect_url, host) {
            (Some(url), _) => url.clone(),
            (None, Some(host))
                if !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)) =>
            {
                let scheme = if https { "https" } else { "http" };
                format!("{scheme}://{host}{CALLBACK_PATH}")
            }
            _ => {
                return Err(SignInError::ProviderBroken(
                    "no usable Host header to build the callback URL; set oidc.redirect_url".into(),
                ))
            }
        };
        RedirectUrl::new(url).map_err(|e| SignInError::ProviderBroken(e.to_string()))
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, SignInError> {
        CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer = %self.issuer.as_str(), error = %error_chain(&e), "single sign-on: discovery failed");
                match e {
                    DiscoveryError::Request(_) => SignInError::ProviderDown,
                    other => SignInError::ProviderBroken(format!("discovery: {other}")),
                }
            })
    }

    /// Starts a login: a fresh `state`, `nonce` and PKCE verifier, and the
    /// provider's authorization URL carrying the first two and the
    /// verifier's challenge.
    pub async fn begin(
        &self,
        redirect: RedirectUrl,
        next: String,
    ) -> Result<Authorization, SignInError> {
        let metadata = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
        .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            pending: PendingLogin {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                next,
            },
        })
    }

    /// Finishes a login whose `state` was already matched: trades the code
    /// for tokens, verifies the ID token, and returns the claims that say who
    /// the user is.
    pub async fn finish(
        &self,
        redirect: RedirectUrl,
        code: String,
        pending: &PendingLogin,
    ) -> Result<SsoClaims, SignInError> {
        let metadata = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
        .set_redirect_uri(redirect);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::ProviderBroken(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(error = %error_chain(&e), "single sign-on: the code exchange failed");
                match e {
                    RequestTokenError::ServerResponse(answer) => {
                        SignInError::ProviderRefused(answer.to_string())
                    }
                    RequestTokenError::Request(_) => SignInError::ProviderDown,
                    other => SignInError::ProviderBroken(format!("token endpoint: {other}")),
                }
            })?;
        let raw = token
            .id_token()
            .ok_or_else(|| SignInError::ProviderBroken("no ID token in the token response".into()))?
            .to_string();
        // Parsed again with every claim kept, so the role claim can be any of them.
        let id_token: ProviderIdToken = raw
            .parse()
            .map_err(|e: serde_json::Error| SignInError::BadToken(e.to_string()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .map_err(|e| SignInError::BadToken(e.to_string()))?;
        let mut found = SsoClaims {
            subject: claims.subject().to_string(),
            preferred_username: claims.preferred_username().map(|u| u.to_string()),
            email: claims.email().map(|e| e.to_string()),
            groups: claims
                .additional_claims()
                .claims
                .get(&self.role_claim)
                .cloned(),
        };
        if found.groups.is_none() {
            if let Ok(request) =
                client.user_info(token.access_token().clone(), Some(claims.subject().clone()))
            {
                let info: UserInfoClaims<OtherClaims, CoreGenderClaim> =
                    request.request_async(&self.http).await.map_err(|e| {
                        tracing::warn!(error = %error_chain(&e), "single sign-on: userinfo failed");
                        match e {
                            UserInfoError::ClaimsVerification(e) => {
                                SignInError::BadToken(format!("userinfo: {e}"))
                            }
                            UserInfoError::Request(_) => SignInError::ProviderDown,
                            other => SignInError::ProviderBroken(format!("userinfo: {other}")),
                        }
                    })?;
                found.groups = info
                    .additional_claims()
                    .claims
                    .get(&self.role_claim)
                    .cloned();
                if found.preferred_username.is_none() {
                    found.preferred_username = info.preferred_username().map(|u| u.to_string());
                }
                if found.email.is_none() {
                    found.email = info.email().map(|e| e.to_string());
                }
            }
        }
        Ok(found)
    }
}

/// An error and its causes on one line, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
