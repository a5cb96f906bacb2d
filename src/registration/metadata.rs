//! Client metadata (RFC 7591 §2) in and out: what a registering party sends is read into the
//! same [`ClientSpec`] an administrator's registration produces, under stricter rules; what
//! oxidp only echoes (display URIs, contacts, application type) is kept as [`Echoed`].

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::RegistrationError;
use crate::admin::client_jwt::JwtAuthSpec;
use crate::admin::client_pairwise::pairwise_choice;
use crate::admin::clients::{ClientSpec, default_scopes};
use crate::config::DynamicRegistration;
use crate::oauth::{redirect_uri, scope};
use crate::store::Client;

const AUTH_METHODS: [&str; 5] =
    ["client_secret_basic", "client_secret_post", "none", "private_key_jwt", "client_secret_jwt"];
const MAX_CONTACTS: usize = 10;

/// The request body of `POST /register` and `PUT /register/{id}`. Unknown members are ignored
/// (RFC 7591 §2); members naming features oxidp does not offer are refused, never ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub application_type: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub scope: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub id_token_signed_response_alg: Option<String>,
    pub subject_type: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub sector_identifier_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
    pub request_object_signing_alg: Option<String>,
}

/// Registered metadata that changes nothing in the protocol; stored and echoed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Echoed {
    pub application_type: String,
    pub token_endpoint_auth_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `public` or `pairwise`.
    #[serde(default = "public_subjects")]
    pub subject_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<String>,
}

fn public_subjects() -> String {
    "public".into()
}

fn invalid(message: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidMetadata(message.into())
}

impl ClientMetadata {
    /// The client this metadata describes, or the RFC 7591 §3.2.2 error. A registered client is
    /// never first-party, never has API access or resource-server rights, and under `open`
    /// never uses client_credentials: such scopes are dropped, such grants refused.
    pub fn into_spec(self, mode: DynamicRegistration) -> Result<(ClientSpec, Echoed), RegistrationError> {
        let auth_method = self.token_endpoint_auth_method.unwrap_or_else(|| "client_secret_basic".into());
        if !AUTH_METHODS.contains(&auth_method.as_str()) {
            return Err(invalid(format!(
                "token_endpoint_auth_method '{auth_method}' is not supported (supported: {})",
                AUTH_METHODS.join(", ")
            )));
        }
        let public = auth_method == "none";
        let grant_types = self.grant_types.unwrap_or_else(|| vec!["authorization_code".into()]);
        let exchange = crate::oauth::grants::token_exchange::GRANT_TYPE;
        if mode == DynamicRegistration::Open && grant_types.iter().any(|g| g == "client_credentials" || g == exchange) {
            return Err(invalid(
                "client_credentials and token exchange are not available to openly registered clients",
            ));
        }
        let uses_code = grant_types.iter().any(|g| g == "authorization_code");
        let response_types =
            self.response_types.unwrap_or_else(|| if uses_code { vec!["code".into()] } else { vec![] });
        if let Some(other) = response_types.iter().find(|r| r.as_str() != "code") {
            return Err(invalid(format!("response_type '{other}' is not supported (supported: code)")));
        }
        if uses_code == response_types.is_empty() {
            return Err(invalid("response_types 'code' goes with grant_types 'authorization_code', and only with it"));
        }
        let application_type = self.application_type.unwrap_or_else(|| "web".into());
        if !["web", "native"].contains(&application_type.as_str()) {
            return Err(invalid("application_type must be web or native"));
        }
        let redirect_uris = self.redirect_uris.unwrap_or_default();
        for uri in &redirect_uris {
            redirect_uri::validate_registration(uri).map_err(RegistrationError::InvalidRedirectUri)?;
        }
        let post_logout_redirect_uris = self.post_logout_redirect_uris.unwrap_or_default();
        for uri in &post_logout_redirect_uris {
            redirect_uri::validate_registration(uri)
                .map_err(|message| invalid(format!("post_logout_redirect_uris: {message}")))?;
        }
        let mut scopes = match self.scope.as_deref() {
            Some(text) => scope::parse(text).map_err(|_| invalid("scope must be space-separated scope tokens"))?,
            None => default_scopes(),
        };
        // Rights an administrator grants are never self-registered: dropped, and the granted
        // `scope` is echoed (RFC 7591 §3.2.1).
        scopes.retain(|s| !scope::is_api_scope(s));
        let name = self.client_name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
        let name = name.unwrap_or_else(|| default_name(&redirect_uris));
        let mut contacts = self.contacts.unwrap_or_default();
        contacts.retain(|c| !c.trim().is_empty());
        if contacts.len() > MAX_CONTACTS || contacts.iter().any(|c| c.len() > 320) {
            return Err(invalid(format!("contacts: at most {MAX_CONTACTS} addresses of at most 320 characters")));
        }
        let echoed = Echoed {
            application_type,
            token_endpoint_auth_method: auth_method,
            client_uri: web_uri("client_uri", self.client_uri)?,
            logo_uri: web_uri("logo_uri", self.logo_uri)?,
            policy_uri: web_uri("policy_uri", self.policy_uri)?,
            tos_uri: web_uri("tos_uri", self.tos_uri)?,
            contacts,
            jwks: self.jwks.clone(),
            jwks_uri: self.jwks_uri.clone(),
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg.clone(),
            subject_type: self.subject_type.clone().unwrap_or_else(public_subjects),
            sector_identifier_uri: self.sector_identifier_uri.clone(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: self.backchannel_logout_session_required.unwrap_or(false),
            request_object_signing_alg: self.request_object_signing_alg.clone(),
        };
        let uses_jwt = ["private_key_jwt", "client_secret_jwt"].contains(&echoed.token_endpoint_auth_method.as_str());
        // Request objects are verified with the keys (or secret) of JWT client authentication.
        if !uses_jwt
            && (self.jwks.is_some()
                || self.jwks_uri.is_some()
                || self.token_endpoint_auth_signing_alg.is_some()
                || self.request_object_signing_alg.is_some())
        {
            return Err(invalid(
                "jwks, jwks_uri, token_endpoint_auth_signing_alg and request_object_signing_alg go with \
                 private_key_jwt or client_secret_jwt",
            ));
        }
        let jwt_auth = uses_jwt.then(|| JwtAuthSpec {
            method: echoed.token_endpoint_auth_method.clone(),
            jwks: self.jwks.as_ref().map(Value::to_string),
            jwks_uri: self.jwks_uri.clone(),
            signing_alg: self.token_endpoint_auth_signing_alg.clone(),
            request_object_alg: self.request_object_signing_alg.clone(),
        });
        let pairwise = pairwise_choice(self.subject_type.as_deref(), self.sector_identifier_uri.clone())
            .map_err(|e| invalid(format!("{}: {}", e.field, e.message)))?;
        let backchannel_logout = self
            .backchannel_logout_uri
            .clone()
            .map(|uri| (uri, self.backchannel_logout_session_required.unwrap_or(false)));
        let spec = ClientSpec {
            backchannel_logout,
            pairwise,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            first_party: false,
            grant_types,
            scopes,
            audiences: Vec::new(),
            resources: Vec::new(),
            resource_server: false,
            pkce_exempt: false,
            api_access: false,
            id_token_alg: self.id_token_signed_response_alg,
            require_par: self.require_pushed_authorization_requests.unwrap_or(false),
            dpop_bound_access_tokens: self.dpop_bound_access_tokens.unwrap_or(false),
            jwt_auth,
            registered_via: Some(super::VIA_REGISTRATION.into()),
        };
        Ok((spec, echoed))
    }
}

/// A display URI: https (http only on loopback, for development), no userinfo, at most 2000 characters.
fn web_uri(name: &str, uri: Option<String>) -> Result<Option<String>, RegistrationError> {
    let Some(uri) = uri else { return Ok(None) };
    let parsed = url::Url::parse(&uri).map_err(|_| invalid(format!("{name} is not a URL")))?;
    let loopback = parsed.host_str().is_some_and(|h| h.starts_with("127.") || h == "[::1]");
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
    if !scheme_ok || !parsed.username().is_empty() || parsed.password().is_some() || uri.len() > 2000 {
        return Err(invalid(format!("{name} must be an https URL without credentials")));
    }
    Ok(Some(uri))
}

/// A name for a client that gave none: the host of its first redirect URI.
fn default_name(redirect_uris: &[String]) -> String {
    redirect_uris
        .first()
        .and_then(|uri| url::Url::parse(uri).ok())
        .and_then(|url| url.host_str().map(str::to_string))
        .unwrap_or_else(|| "Registered client".into())
}

/// The client's metadata as RFC 7591 §3.2.1 / RFC 7592 §3 return it (without credentials).
pub fn describe(client: &Client, echoed: &Echoed, issued_at: i64) -> Value {
    let response_types: Vec<&str> = if client.allows_grant("authorization_code") { vec!["code"] } else { vec![] };
    let mut body = json!({
        "client_id": client.id,
        "client_id_issued_at": issued_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "response_types": response_types,
        "scope": scope::join(&client.scopes),
        "require_pushed_authorization_requests": client.require_par,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "id_token_signed_response_alg": client.id_token_alg.as_deref().unwrap_or("RS256"),
    });
    if let (Value::Object(body), Ok(Value::Object(extra))) = (&mut body, serde_json::to_value(echoed)) {
        body.extend(extra);
    }
    if !client.is_public
        && let Value::Object(body) = &mut body
    {
        body.insert("client_secret_expires_at".into(), json!(0));
    }
    body
}
