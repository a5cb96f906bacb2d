//! Authentik's admin API (`OXIDP_AUTHENTIK__BASE_URL`, `__TOKEN`): making sure a user exists
//! there with the given username, name, email and active flag (SPEC §7).
//!
//! Idempotent: the user is looked up by username (`GET /api/v3/core/users/?username=…`, every
//! page of the paginated answer), created when missing (`POST /api/v3/core/users/`) and changed
//! only in the fields that differ (`PATCH /api/v3/core/users/{pk}/`). A create that loses a race
//! to another one finds the winner and updates it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Config, DEFAULT_UPSTREAM_TIMEOUT};
use crate::federation::outbound;
use crate::state::AppState;
use crate::store::UserStore;

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

impl From<crate::store::StoreError> for AuthentikError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Unavailable(_) => AuthentikError::Unavailable,
            other => AuthentikError::Internal(other.to_string()),
        }
    }
}

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
    fn changes(&self, current: &AuthentikUser) -> Map<String, Value> {
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

/// Completes the request from the oxidp user it names and checks it.
async fn desired_user(state: &AppState, request: EnsureRequest) -> Result<DesiredUser, AuthentikError> {
    let invalid = |field, message: &str| AuthentikError::Invalid { field, message: message.into() };
    let user = match request.sub.as_deref() {
        Some(sub) => Some(state.db.user_by_sub(sub).await?.ok_or(AuthentikError::UnknownUser)?),
        None => None,
    };
    let email = request.email.or_else(|| user.as_ref().map(|u| u.email.clone()));
    let email = email.map(|e| e.trim().to_string()).ok_or_else(|| invalid("email", "email or sub is required"))?;
    crate::admin::users::check_email(&email).map_err(|_| invalid("email", "not a valid email address"))?;
    let username = request.username.map(|u| u.trim().to_string()).unwrap_or_else(|| email.clone());
    if username.is_empty() || username.chars().count() > 150 || username.chars().any(char::is_whitespace) {
        return Err(invalid("username", "1 to 150 characters without spaces"));
    }
    let name = request.name.or_else(|| user.as_ref().and_then(|u| u.name.clone())).unwrap_or_else(|| username.clone());
    if name.trim().is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(invalid("name", "1 to 256 characters, no control characters"));
    }
    let is_active = request.is_active.unwrap_or_else(|| user.as_ref().is_none_or(|u| u.is_active()));
    Ok(DesiredUser { username, name: name.trim().to_string(), email, is_active })
}

/// Creates or updates the Authentik user; calling it again with the same request changes nothing.
pub async fn ensure(state: &AppState, request: EnsureRequest) -> Result<Ensured, AuthentikError> {
    let client = state.authentik.as_ref().ok_or(AuthentikError::NotConfigured)?;
    let desired = desired_user(state, request).await?;
    let existing = match client.find_by_username(&desired.username).await? {
        Some(existing) => existing,
        None => match client.create(&desired).await {
            Ok(user) => return Ok(Ensured { user, created: true, updated: false }),
            // Another call created it meanwhile (Authentik refuses a duplicate username with 400).
            Err(AuthentikError::Rejected { status: 400, detail }) => client
                .find_by_username(&desired.username)
                .await?
                .ok_or(AuthentikError::Rejected { status: 400, detail })?,
            Err(other) => return Err(other),
        },
    };
    let changes = desired.changes(&existing);
    if changes.is_empty() {
        return Ok(Ensured { user: existing, created: false, updated: false });
    }
    let user = client.update(existing.pk, &changes).await?;
    Ok(Ensured { user, created: false, updated: true })
}
