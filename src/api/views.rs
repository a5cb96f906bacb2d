//! Request and response bodies of the JSON API. Requests refuse unknown fields.

use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;

use crate::store::{ApiKey, Session, User};

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct RegisterRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(max_length = 1024))]
    pub password: String,
    #[oai(validator(max_length = 256))]
    pub name: Option<String>,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    #[oai(validator(max_length = 320))]
    pub email: String,
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct RefreshRequest {
    #[oai(validator(max_length = 512))]
    pub refresh_token: String,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct TokenRequest {
    #[oai(validator(max_length = 512))]
    pub token: String,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct EmailRequest {
    #[oai(validator(max_length = 320))]
    pub email: String,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[oai(validator(max_length = 512))]
    pub token: String,
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    #[oai(validator(max_length = 1024))]
    pub new_password: String,
}

/// Fields absent are left alone; `null` clears a field.
#[derive(Object, Debug, Default)]
#[oai(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: MaybeUndefined<String>,
    pub given_name: MaybeUndefined<String>,
    pub family_name: MaybeUndefined<String>,
    pub picture: MaybeUndefined<String>,
    pub phone_number: MaybeUndefined<String>,
    pub locale: MaybeUndefined<String>,
    pub zoneinfo: MaybeUndefined<String>,
}

#[derive(Object, Debug)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    #[oai(nullable)]
    pub refresh_token: Option<String>,
}

impl From<crate::oauth::token::TokenResponse> for TokenResponse {
    fn from(t: crate::oauth::token::TokenResponse) -> Self {
        TokenResponse {
            access_token: t.access_token,
            token_type: t.token_type.into(),
            expires_in: t.expires_in,
            scope: t.scope,
            refresh_token: t.refresh_token,
        }
    }
}

#[derive(Object, Debug)]
pub struct UserView {
    pub id: String,
    /// The subject in ID tokens and access tokens.
    pub sub: String,
    /// None for an account made from an upstream that did not prove an email.
    #[oai(nullable)]
    pub email: Option<String>,
    pub email_verified: bool,
    #[oai(nullable)]
    pub name: Option<String>,
    #[oai(nullable)]
    pub given_name: Option<String>,
    #[oai(nullable)]
    pub family_name: Option<String>,
    #[oai(nullable)]
    pub picture: Option<String>,
    #[oai(nullable)]
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    #[oai(nullable)]
    pub locale: Option<String>,
    #[oai(nullable)]
    pub zoneinfo: Option<String>,
    pub role: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            sub: u.sub,
            email: u.email,
            email_verified: u.email_verified,
            name: u.name,
            given_name: u.given_name,
            family_name: u.family_name,
            picture: u.picture,
            phone_number: u.phone_number,
            phone_number_verified: u.phone_number_verified,
            locale: u.locale,
            zoneinfo: u.zoneinfo,
            role: u.role,
            status: u.status,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Object, Debug)]
pub struct SessionView {
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub auth_time: i64,
    /// Authentication methods: `pwd`, `fed`.
    pub amr: Vec<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        SessionView {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            auth_time: s.auth_time,
            amr: s.amr.split(' ').filter(|m| !m.is_empty()).map(str::to_string).collect(),
            ip: s.ip,
            user_agent: s.user_agent,
        }
    }
}

#[derive(Object, Debug)]
pub struct SessionPage {
    pub items: Vec<SessionView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Object, Debug)]
#[oai(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[oai(validator(max_length = 100))]
    pub name: String,
    /// Any of `read:users`, `write:users`, `admin` (administrators only).
    #[oai(validator(max_items = 3))]
    pub scopes: Vec<String>,
    /// Unix time after which the key stops working.
    pub expires_at: Option<i64>,
}

#[derive(Object, Debug)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The key's first characters after `oxk_`, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    #[oai(nullable)]
    pub expires_at: Option<i64>,
    #[oai(nullable)]
    pub last_used_at: Option<i64>,
    #[oai(nullable)]
    pub revoked_at: Option<i64>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Object, Debug)]
pub struct CreatedApiKey {
    /// The key itself: shown this once, never again.
    pub key: String,
    #[oai(flatten)]
    pub details: ApiKeyView,
}

#[derive(Object, Debug)]
pub struct ApiKeyPage {
    pub items: Vec<ApiKeyView>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// Opaque list cursors: base64url of `created_at:id`.
pub fn encode_cursor(created_at: i64, id: &str) -> String {
    crate::crypto::b64url(format!("{created_at}:{id}"))
}

pub fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let bytes = crate::crypto::b64url_decode(cursor)?;
    let text = String::from_utf8(bytes).ok()?;
    let (created, id) = text.split_once(':')?;
    Some((created.parse().ok()?, id.to_string()))
}
