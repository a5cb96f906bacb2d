//! The client of Authentik's admin API and the shapes it reads and writes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Config, DEFAULT_UPSTREAM_TIMEOUT};
use crate::federation::outbound;

/// Pages of a user search read at most (a username filter finds one user; this bounds a bad answer).
const MAX_PAGES: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum AuthentikError {
    #[error("the Authentik admin API is not configured")]
    NotConfigured,
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("no oxidp user has this sub")]
    UnknownUser,
    #[error("Authentik cannot be reached: {0}")]
    Unreachable(String),
    /// Authentik answered with an error status.
    #[error("Authentik answered {status}: {detail}")]
    Rejected { status: u16, detail: String },
    #[error("unexpected answer from Authentik: {0}")]
    BadResponse(String),
    #[error("storage unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

crate::store::from_store_error!(AuthentikError);

/// A user as Authentik's API shows it (the fields oxidp uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthentikUser {
    pub pk: i64,
    pub username: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default = "active")]
    pub is_active: bool,
    /// Authentik's hashed user id (the OIDC `sub` in its default subject mode).
    #[serde(default)]
    pub uid: Option<String>,
}

fn active() -> bool {
    true
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    next: u32,
}

#[derive(Deserialize)]
struct UserPage {
    pagination: Option<Pagination>,
    results: Vec<AuthentikUser>,
}

/// What the caller asks for; absent fields come from the oxidp user named by `sub`.
#[derive(Debug, Clone, Default)]
pub struct EnsureRequest {
    pub sub: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Ensured {
    pub user: AuthentikUser,
    pub created: bool,
    pub updated: bool,
}

pub struct AuthentikClient {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl AuthentikClient {
    /// The client when the admin API is configured.
    pub fn from_config(config: &Config) -> Result<Option<AuthentikClient>, String> {
        let Some(authentik) = &config.authentik else { return Ok(None) };
        let (Some(base_url), Some(token)) = (&authentik.base_url, &authentik.token) else { return Ok(None) };
        let http = outbound::client(authentik.timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT))
            .map_err(|e| format!("OXIDP_AUTHENTIK: {e}"))?;
        Ok(Some(AuthentikClient { base_url: base_url.trim_end_matches('/').to_string(), token: token.clone(), http }))
    }

    fn users_url(&self) -> String {
        format!("{}/api/v3/core/users/", self.base_url)
    }

    /// The user with exactly this username, if any.
    pub async fn find_by_username(&self, username: &str) -> Result<Option<AuthentikUser>, AuthentikError> {
        let mut page = 1;
        for _ in 0..MAX_PAGES {
            let request = self.http.get(self.users_url()).query(&[("username", username), ("page", &page.to_string())]);
            let body: UserPage = self.send(request, &[200]).await?;
            if let Some(user) = body.results.into_iter().find(|user| user.username == username) {
                return Ok(Some(user));
            }
            match body.pagination.map(|p| p.next).unwrap_or(0) {
                0 => return Ok(None),
                next => page = next,
            }
        }
        Ok(None)
    }

    pub async fn create(&self, user: &DesiredUser) -> Result<AuthentikUser, AuthentikError> {
        let body = json!({
            "username": user.username,
            "name": user.name,
            "email": user.email,
            "is_active": user.is_active,
        });
        self.send(self.http.post(self.users_url()).json(&body), &[200, 201]).await
    }

    pub async fn update(&self, pk: i64, changes: &Map<String, Value>) -> Result<AuthentikUser, AuthentikError> {
        let url = format!("{}{pk}/", self.users_url());
        self.send(self.http.patch(url).json(changes), &[200]).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        expected: &[u16],
    ) -> Result<T, AuthentikError> {
        let response = request
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| AuthentikError::Unreachable(error.to_string()))?;
        let status = response.status().as_u16();
        let body = outbound::body(response).await.map_err(|e| AuthentikError::Unreachable(e.to_string()))?;
        if !expected.contains(&status) {
            // Authentik explains a refused write per field; keep the text short for logs and callers.
            let detail: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(AuthentikError::Rejected { status, detail });
        }
        serde_json::from_slice(&body).map_err(|e| AuthentikError::BadResponse(e.to_string()))
    }
}

/// The user as it should be in Authentik.
#[derive(Debug, Clone)]
pub struct DesiredUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub is_active: bool,
}

impl DesiredUser {
    /// The fields of `current` that differ from what is wanted.
    pub fn changes(&self, current: &AuthentikUser) -> Map<String, Value> {
        let mut changes = Map::new();
        if current.name != self.name {
            changes.insert("name".into(), json!(self.name));
        }
        if current.email != self.email {
            changes.insert("email".into(), json!(self.email));
        }
        if current.is_active != self.is_active {
            changes.insert("is_active".into(), json!(self.is_active));
        }
        changes
    }
}
