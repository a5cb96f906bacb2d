//! OpenID Connect upstreams (Google, Authentik, any issuer) with the openidconnect crate.
//!
//! Discovery (with the JWKS) is fetched on first use and cached per provider for an hour; an ID
//! token signed with a key the cached JWKS does not have makes one JWKS refresh (at most every
//! few seconds), so an upstream's key rotation needs no restart. The ID token is fully
//! validated: signature, `iss` (exactly the configured issuer, trailing slash included), `aud`,
//! `exp` on oxidp's clock, `nonce`, and `at_hash` when present.

use std::sync::{Arc, Mutex};

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreIdTokenClaims, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse, UserInfoClaims,
};

use super::attempt::LoginAttempt;
use super::error::FederationError;
use super::profile::UpstreamProfile;
use crate::clock::SharedClock;
use crate::config::UpstreamConfig;

/// How long discovery and the JWKS are kept before they are fetched again.
const METADATA_MAX_AGE: i64 = 3600;
/// The least time between two JWKS fetches prompted by an unknown `kid`.
const JWKS_REFRESH_INTERVAL: i64 = 10;
/// Google's ID tokens may name the issuer without the scheme.
const GOOGLE_BARE_ISSUER: &str = "accounts.google.com";

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched_at: i64,
    jwks_fetched_at: i64,
}

pub struct OidcUpstream {
    name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    scopes: Vec<String>,
    redirect_uri: RedirectUrl,
    google: bool,
    http: reqwest::Client,
    cache: Mutex<Option<Arc<Discovered>>>,
}

/// What the start of a login sends the browser to, and what the callback must check.
pub struct OidcStart {
    pub location: String,
    pub nonce: String,
}

impl OidcUpstream {
    pub fn new(
        name: &str,
        config: &UpstreamConfig,
        redirect_uri: &str,
        http: reqwest::Client,
        google: bool,
    ) -> Result<Self, String> {
        let issuer = config.issuer_url().ok_or("no issuer")?;
        Ok(Self {
            name: name.to_string(),
            issuer: IssuerUrl::new(issuer.to_string()).map_err(|e| format!("issuer: {e}"))?,
            client_id: ClientId::new(config.client_id.clone()),
            client_secret: config.client_secret.clone().map(ClientSecret::new),
            scopes: config.scope_list(),
            redirect_uri: RedirectUrl::new(redirect_uri.to_string()).map_err(|e| format!("redirect URI: {e}"))?,
            google,
            http,
            cache: Mutex::new(None),
        })
    }

    /// The configured issuer, verbatim.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The authorization URL with `state`, a fresh `nonce` and the PKCE challenge.
    pub async fn authorization_url(
        &self,
        clock: &SharedClock,
        raw_state: &str,
        challenge: PkceCodeChallenge,
        prompt: Prompt,
    ) -> Result<OidcStart, FederationError> {
        let discovered = self.discovered(clock, false).await?;
        let client = self.client(&discovered.metadata);
        let nonce = crate::crypto::random_token(32);
        let (csrf, nonce_value) = (raw_state.to_string(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(csrf),
                move || Nonce::new(nonce_value),
            )
            .set_pkce_challenge(challenge);
        // openidconnect adds `openid` itself.
        for scope in self.scopes.iter().filter(|scope| *scope != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        request = match prompt {
            Prompt::Login => request.add_prompt(CoreAuthPrompt::Login),
            Prompt::MaxAge(seconds) => request.add_extra_param("max_age", seconds.to_string()),
            Prompt::Default => request,
        };
        let (url, _, _) = request.url();
        Ok(OidcStart { location: url.to_string(), nonce })
    }

    /// Exchanges the code (with the PKCE verifier) and validates the ID token.
    pub async fn finish(
        &self,
        clock: &SharedClock,
        attempt: &LoginAttempt,
        code: &str,
    ) -> Result<UpstreamProfile, FederationError> {
        let nonce = Nonce::new(attempt.nonce.clone().ok_or_else(|| invalid("the login attempt has no nonce"))?);
        let discovered = self.discovered(clock, false).await?;
        let client = self.client(&discovered.metadata);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| invalid(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|error| match error {
                RequestTokenError::Request(openidconnect::HttpClientError::Reqwest(error))
                    if super::outbound::is_unreachable(&error) =>
                {
                    FederationError::Unreachable(format!("{}: token endpoint: {error}", self.name))
                }
                RequestTokenError::ServerResponse(response) => {
                    invalid(format!("the token endpoint refused the code: {}", response.error()))
                }
                other => invalid(format!("token exchange failed: {other}")),
            })?;
        let id_token = response.id_token().ok_or_else(|| invalid("the token response has no id_token"))?;

        let (claims, used) = match self.verify(clock, discovered.clone(), id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                // The upstream may have rotated its keys since the JWKS was cached.
                let refreshed = self.discovered(clock, true).await?;
                self.verify(clock, refreshed, id_token, &nonce)
            }
            other => other,
        }
        .map_err(|error| invalid(format!("ID token rejected: {error}")))?;
        let issuer = claims.issuer().as_str();
        if issuer != self.issuer.as_str() && !(self.google && issuer == GOOGLE_BARE_ISSUER) {
            return Err(invalid("ID token rejected: wrong issuer"));
        }
        if let Some(expected) = claims.access_token_hash() {
            let verifier = self.verifier(clock, &used);
            let (Ok(alg), Ok(key)) = (id_token.signing_alg(), id_token.signing_key(&verifier)) else {
                return Err(invalid("ID token rejected: cannot check at_hash"));
            };
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| invalid(format!("at_hash: {e}")))?;
            if actual != *expected {
                return Err(invalid("ID token rejected: at_hash does not match the access token"));
            }
        }

        let mut profile = UpstreamProfile {
            subject: claims.subject().to_string(),
            email: claims.email().map(|email| email.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims.name().and_then(|name| name.get(None)).map(|name| name.to_string()),
        };
        if profile.email.is_none() {
            self.fill_from_userinfo(&client, response.access_token().clone(), &claims, &mut profile).await;
        }
        Ok(profile)
    }

    /// The verified claims, and the discovery (keys) that verified them.
    fn verify(
        &self,
        clock: &SharedClock,
        discovered: Arc<Discovered>,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: &Nonce,
    ) -> Result<(CoreIdTokenClaims, Arc<Discovered>), ClaimsVerificationError> {
        let claims = id_token.claims(&self.verifier(clock, &discovered), nonce)?.clone();
        Ok((claims, discovered))
    }

    fn verifier(&self, clock: &SharedClock, discovered: &Discovered) -> CoreIdTokenVerifier<'static> {
        let clock: SharedClock = clock.clone();
        let keys = discovered.metadata.jwks().clone();
        let verifier = match &self.client_secret {
            Some(secret) => CoreIdTokenVerifier::new_confidential_client(
                self.client_id.clone(),
                secret.clone(),
                self.issuer.clone(),
                keys,
            ),
            None => CoreIdTokenVerifier::new_public_client(self.client_id.clone(), self.issuer.clone(), keys),
        };
        verifier
            .set_allowed_algs(discovered.metadata.id_token_signing_alg_values_supported().iter().cloned())
            // Google may write its issuer without the scheme; that case is checked after.
            .require_issuer_match(!self.google)
            .set_time_fn(move || chrono::DateTime::from_timestamp(clock.now(), 0).unwrap_or_default())
    }

    /// Without an email in the ID token, the userinfo endpoint may have one (same subject only).
    async fn fill_from_userinfo(
        &self,
        client: &Client,
        access_token: openidconnect::AccessToken,
        claims: &CoreIdTokenClaims,
        profile: &mut UpstreamProfile,
    ) {
        let Ok(request) = client.user_info(access_token, Some(claims.subject().clone())) else { return };
        let info: Result<UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim>, _> =
            request.request_async(&self.http).await;
        match info {
            Ok(info) => {
                profile.email = info.email().map(|email| email.to_string());
                profile.email_verified = info.email_verified().unwrap_or(false);
                if profile.name.is_none() {
                    profile.name = info.name().and_then(|name| name.get(None)).map(|name| name.to_string());
                }
            }
            Err(error) => tracing::warn!(provider = %self.name, %error, "userinfo request failed"),
        }
    }

    fn client(&self, metadata: &CoreProviderMetadata) -> Client {
        CoreClient::from_provider_metadata(metadata.clone(), self.client_id.clone(), self.client_secret.clone())
            .set_redirect_uri(self.redirect_uri.clone())
    }

    /// The cached discovery document, fetched when missing or old; with `refresh_keys`, the
    /// JWKS is fetched again unless that happened moments ago. No lock is held while fetching:
    /// a slow upstream delays only the logins that need it, each by its own time-out.
    async fn discovered(&self, clock: &SharedClock, refresh_keys: bool) -> Result<Arc<Discovered>, FederationError> {
        let now = clock.now();
        if let Some(current) = self.cached() {
            let fresh = current.fetched_at + METADATA_MAX_AGE > now;
            let keys_recent = current.jwks_fetched_at + JWKS_REFRESH_INTERVAL > now;
            if fresh && (!refresh_keys || keys_recent) {
                return Ok(current);
            }
            if fresh {
                let jwks = CoreJsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &self.http)
                    .await
                    .map_err(|error| self.discovery_error("JWKS", error))?;
                let metadata = current.metadata.clone().set_jwks(jwks);
                let refreshed = Arc::new(Discovered { metadata, fetched_at: current.fetched_at, jwks_fetched_at: now });
                self.store(refreshed.clone());
                return Ok(refreshed);
            }
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|error| self.discovery_error("discovery", error))?;
        let discovered = Arc::new(Discovered { metadata, fetched_at: now, jwks_fetched_at: now });
        self.store(discovered.clone());
        Ok(discovered)
    }

    fn cached(&self) -> Option<Arc<Discovered>> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn store(&self, discovered: Arc<Discovered>) {
        *self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(discovered);
    }

    fn discovery_error(
        &self,
        what: &str,
        error: openidconnect::DiscoveryError<openidconnect::HttpClientError<reqwest::Error>>,
    ) -> FederationError {
        match error {
            openidconnect::DiscoveryError::Request(openidconnect::HttpClientError::Reqwest(error))
                if super::outbound::is_unreachable(&error) =>
            {
                FederationError::Unreachable(format!("{}: {what}: {error}", self.name))
            }
            other => invalid(format!("{}: {what} failed: {other}", self.name)),
        }
    }
}

/// What the authorization request asks of the upstream's own sign-in.
#[derive(Debug, Clone, Copy)]
pub enum Prompt {
    Default,
    /// The client asked for a fresh login (`prompt=login`, `max_age=0`).
    Login,
    MaxAge(i64),
}

fn invalid(message: impl Into<String>) -> FederationError {
    FederationError::InvalidResponse(message.into())
}
