//! GitHub (and GitHub Enterprise) with the oauth2 crate: authorization code with PKCE, then the
//! REST API's `/user` (the numeric `id` is the subject) and `/user/emails` (the primary address,
//! verified or not). Every URL is configurable.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::attempt::LoginAttempt;
use super::error::FederationError;
use super::profile::UpstreamProfile;
use crate::config::{GITHUB_API_URL, GITHUB_AUTH_URL, GITHUB_TOKEN_URL, UpstreamConfig};

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The REST API version the requests are written for.
const API_VERSION: &str = "2022-11-28";

pub struct GithubUpstream {
    name: String,
    client: Client,
    api_url: String,
    scopes: Vec<String>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: Option<String>,
    name: Option<String>,
    /// The public profile email: not known to be verified.
    email: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

impl GithubUpstream {
    pub fn new(name: &str, config: &UpstreamConfig, redirect_uri: &str, http: reqwest::Client) -> Result<Self, String> {
        let auth_url = config.auth_url.as_deref().unwrap_or(GITHUB_AUTH_URL);
        let token_url = config.token_url.as_deref().unwrap_or(GITHUB_TOKEN_URL);
        let mut client = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(AuthUrl::new(auth_url.to_string()).map_err(|e| format!("auth URL: {e}"))?)
            .set_token_uri(TokenUrl::new(token_url.to_string()).map_err(|e| format!("token URL: {e}"))?)
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_string()).map_err(|e| format!("redirect URI: {e}"))?)
            // GitHub documents the client credentials as form parameters.
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(Self {
            name: name.to_string(),
            client,
            api_url: config.api_url.as_deref().unwrap_or(GITHUB_API_URL).trim_end_matches('/').to_string(),
            scopes: config.scope_list(),
            http,
        })
    }

    pub fn authorization_url(&self, raw_state: &str, challenge: PkceCodeChallenge) -> String {
        let csrf = raw_state.to_string();
        let mut request = self.client.authorize_url(move || CsrfToken::new(csrf)).set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        request.url().0.to_string()
    }

    pub async fn finish(&self, attempt: &LoginAttempt, code: &str) -> Result<UpstreamProfile, FederationError> {
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|error| match error {
                RequestTokenError::Request(oauth2::HttpClientError::Reqwest(error))
                    if super::outbound::is_unreachable(&error) =>
                {
                    FederationError::Unreachable(format!("{}: token endpoint: {error}", self.name))
                }
                RequestTokenError::ServerResponse(response) => {
                    invalid(format!("the token endpoint refused the code: {}", response.error()))
                }
                // GitHub answers a bad code with 200 and an error object, which does not parse as a token.
                other => invalid(format!("token exchange failed: {other}")),
            })?;
        let access_token = token.access_token().secret();
        let user: GithubUser = self.get(access_token, "/user").await?.ok_or_else(|| invalid("/user refused"))?;
        // Without the user:email scope the list is refused; the public profile email remains.
        let emails: Vec<GithubEmail> = self.get(access_token, "/user/emails").await?.unwrap_or_default();
        let primary = emails.iter().find(|e| e.primary && e.verified).or_else(|| emails.iter().find(|e| e.primary));
        let (email, email_verified) = match primary {
            Some(primary) => (Some(primary.email.clone()), primary.verified),
            None => (user.email.clone().filter(|email| !email.is_empty()), false),
        };
        Ok(UpstreamProfile {
            subject: user.id.to_string(),
            email,
            email_verified,
            name: user.name.filter(|name| !name.is_empty()).or(user.login),
        })
    }

    /// A GET on the REST API; `None` when GitHub answers 401, 403 or 404.
    async fn get<T: DeserializeOwned>(&self, token: &str, path: &str) -> Result<Option<T>, FederationError> {
        let response = self
            .http
            .get(format!("{}{path}", self.api_url))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .send()
            .await
            .map_err(|error| self.request_error(path, error))?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403 | 404) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(invalid(format!("{path} answered {status}")));
        }
        let body = super::outbound::body(response).await.map_err(|e| invalid(format!("{path}: {e}")))?;
        serde_json::from_slice(&body).map(Some).map_err(|e| invalid(format!("{path}: unexpected JSON: {e}")))
    }

    fn request_error(&self, path: &str, error: reqwest::Error) -> FederationError {
        if super::outbound::is_unreachable(&error) {
            FederationError::Unreachable(format!("{}: {path}: {error}", self.name))
        } else {
            invalid(format!("{path}: {error}"))
        }
    }
}

fn invalid(message: impl Into<String>) -> FederationError {
    FederationError::InvalidResponse(message.into())
}
