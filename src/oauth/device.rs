//! The device authorization grant (RFC 8628), browser and device sides. `authorize` answers
//! `POST /device_authorization`; a person then types the user code at `/device` (`enter`),
//! signs in, and approves or denies on a confirmation page (`decide`), which is shown even when
//! the code came in `verification_uri_complete` (§5.4: a remote attacker may send the link).
//! The device polls `/token` meanwhile (`grants::device_code`). Everything lives in the
//! database (`device_codes`) so every instance sees every state; both codes only as keyed hashes.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::client_auth::{self, ClientCredentials};
use super::params::Params;
use super::{OAuthError, access_token, scope};
use crate::audit::{Actor, Initiator, Origin};
use crate::crypto::random_token;
use crate::kv::{Admission, Throttle};
use crate::session::ActiveSession;
use crate::state::AppState;
use crate::store::{Client, ConsentStore, DeviceApproval, DeviceAuthorization, DeviceCodeStore, StoreError};

pub use super::grant_types::DEVICE_CODE as GRANT_TYPE;
pub const DEVICE_CODE_PURPOSE: &str = "device-code";
const USER_CODE_PURPOSE: &str = "device-user-code";
const BROWSER_PURPOSE: &str = "device-browser";
/// RFC 8628 §6.1: 20 consonants (no vowels, so no words), 8 of them: 20^8 ≈ 2.6·10^10 codes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// Added to the polling interval on each `slow_down` (§3.5).
pub const SLOW_DOWN_STEP: i64 = 5;
/// User-code entries one address may make in [`ENTRY_WINDOW`], and all addresses together:
/// with at most this many guesses a window, guessing a live code stays hopeless.
pub const ENTRY_LIMIT_PER_IP: i64 = 20;
pub const ENTRY_LIMIT_GLOBAL: i64 = 1_000;
pub const ENTRY_WINDOW: i64 = 600;
/// The sign-in pages (password and upstream) carry a device ticket as their `request`, with this
/// prefix, where they otherwise carry a pending authorization request; after the sign-in the
/// browser goes on to the confirmation page.
pub const SIGN_IN_PREFIX: &str = "device.";

/// The ticket a sign-in's `request` names, when it continues a device authorization.
/// Only the shape of a ticket we make (base64url, at most 64 characters) counts.
pub fn ticket_of_sign_in(request: &str) -> Option<&str> {
    request.strip_prefix(SIGN_IN_PREFIX).filter(|ticket| {
        !ticket.is_empty()
            && ticket.len() <= 64
            && ticket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Device authorizations a public client (named by its id alone) may start per address.
pub const REQUESTS_PER_IP: i64 = 60;

/// The answer to `POST /device_authorization` (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// What can go wrong on the browser side; `http::error` turns each into a page.
#[derive(Debug)]
pub enum DeviceError {
    /// No live device authorization has this user code (unknown, expired, or already decided).
    UnknownCode,
    /// Too many user codes tried: from this address, or from everyone.
    Throttled {
        retry_after: i64,
    },
    /// The confirmation ticket is gone, or belongs to another browser.
    TicketExpired,
    Unavailable,
    Internal(String),
}

crate::store::from_store_error!(DeviceError);

impl From<crate::kv::KvError> for DeviceError {
    fn from(_: crate::kv::KvError) -> Self {
        DeviceError::Unavailable
    }
}

/// `POST /device_authorization`: authenticates the client and starts a device authorization.
pub async fn authorize(
    state: &AppState,
    params: &Params,
    credentials: &ClientCredentials,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    super::params::reject_malformed(params)?;
    let client = client_auth::authenticate(state, params, credentials).await?;
    if !client.allows_grant(GRANT_TYPE) {
        return Err(OAuthError::unauthorized_client("the client may not use the device authorization grant"));
    }
    let scopes = scope::resolve_for_client(&client, params.get("scope"))?;
    let resource = params.get("resource");
    access_token::check_resource(state, &client, resource)?;
    if client.is_public {
        // Anyone can send a public client's id: each request writes a row, so count the address.
        let throttle = Throttle { limit: REQUESTS_PER_IP, window: 600, free: 0, delay: 0, max_delay: 0 };
        let key = format!("limit:device-authorization:ip:{}", credentials.source);
        if let Admission::Delayed { retry_after } | Admission::Locked { retry_after } =
            state.kv.admit(&key, &throttle).await?
        {
            return Err(OAuthError::RateLimited { retry_after });
        }
    }
    let now = state.now();
    let device_code = random_token(32);
    let ttl = state.config.device_code_ttl;
    // A new user code on the rare collision with a live (or not yet purged) one.
    for _ in 0..5 {
        let user_code = new_user_code();
        let row = DeviceAuthorization {
            id: uuid::Uuid::new_v4().to_string(),
            device_code_hash: state.secret.keyed_hash(DEVICE_CODE_PURPOSE, &device_code),
            user_code_hash: state.secret.keyed_hash(USER_CODE_PURPOSE, &user_code),
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            resource: resource.map(str::to_string),
            created_at: now,
            expires_at: now + ttl,
            poll_interval: state.config.device_code_interval,
            last_polled_at: None,
            status: "pending".into(),
            user_id: None,
            session_id: None,
            auth_time: None,
            amr: None,
            grant_id: None,
        };
        match state.db.insert_device_authorization(&row).await {
            Err(StoreError::Conflict) => continue,
            other => other?,
        }
        let verification_uri = format!("{}/device", state.config.issuer);
        let shown = display(&user_code);
        return Ok(DeviceAuthorizationResponse {
            device_code,
            verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
            user_code: shown,
            verification_uri,
            expires_in: ttl,
            interval: state.config.device_code_interval,
        });
    }
    Err(OAuthError::Internal("no free user code after 5 tries".into()))
}

fn new_user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..USER_CODE_LEN).map(|_| char::from(USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())])).collect()
}

/// `BCDFGHJK` as `BCDF-GHJK`.
pub fn display(code: &str) -> String {
    let (left, right) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{left}-{right}")
}

/// A typed user code as stored: any case, dashes and spaces dropped; None when it cannot be one.
pub fn normalise_user_code(input: &str) -> Option<String> {
    let code: String =
        input.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    let valid = code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// What the confirmation page needs, under a random ticket id, until the person decides.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: String,
    pub device_id: String,
    /// The normalised user code, shown again on the confirmation page.
    pub user_code: String,
}

/// A ticket as kept in the key-value store: bound to the browser that entered the code, the
/// user code encrypted (the store holds no usable code).
#[derive(Serialize, Deserialize)]
struct StoredTicket {
    device_id: String,
    sealed_user_code: String,
    browser: String,
}

/// A device authorization waiting for the person's decision, with its client.
#[derive(Debug)]
pub struct Confirmation {
    pub ticket: Ticket,
    pub authorization: DeviceAuthorization,
    pub client: Client,
}

fn ticket_key(id: &str) -> String {
    format!("device-ticket:{id}")
}

/// A user code typed at `/device` from `source` by the browser holding `browser_cookie`: counted
/// (per address and overall) before it is looked up, so parallel guesses cannot slip past.
/// Returns the ticket of the confirmation page.
pub async fn enter(state: &AppState, input: &str, source: &str, browser_cookie: &str) -> Result<Ticket, DeviceError> {
    admit_entry(state, &format!("limit:device-entry:ip:{source}"), ENTRY_LIMIT_PER_IP).await?;
    admit_entry(state, "limit:device-entry:all", ENTRY_LIMIT_GLOBAL).await?;
    let user_code = normalise_user_code(input).ok_or(DeviceError::UnknownCode)?;
    let hash = state.secret.keyed_hash(USER_CODE_PURPOSE, &user_code);
    let now = state.now();
    let authorization = state
        .db
        .device_authorization_by_user_code(&hash)
        .await?
        .filter(|a| a.status == "pending" && a.expires_at > now)
        .ok_or(DeviceError::UnknownCode)?;
    let stored = StoredTicket {
        device_id: authorization.id.clone(),
        sealed_user_code: state.secret.encrypt(user_code.as_bytes()),
        browser: state.secret.keyed_hash(BROWSER_PURPOSE, browser_cookie),
    };
    let ticket = Ticket { id: random_token(24), device_id: authorization.id, user_code };
    let bytes = serde_json::to_vec(&stored).map_err(|e| DeviceError::Internal(e.to_string()))?;
    state.kv.put(&ticket_key(&ticket.id), bytes, authorization.expires_at - now).await?;
    Ok(ticket)
}

async fn admit_entry(state: &AppState, key: &str, limit: i64) -> Result<(), DeviceError> {
    let throttle = Throttle { limit, window: ENTRY_WINDOW, free: 0, delay: 0, max_delay: 0 };
    match state.kv.admit(key, &throttle).await? {
        Admission::Admitted => Ok(()),
        Admission::Delayed { retry_after } | Admission::Locked { retry_after } => {
            Err(DeviceError::Throttled { retry_after: retry_after.max(1) })
        }
    }
}

/// The ticket `id` with its still pending authorization, for the browser holding `browser_cookie`.
pub async fn confirmation(
    state: &AppState,
    id: &str,
    browser_cookie: Option<&str>,
) -> Result<Confirmation, DeviceError> {
    if id.is_empty() || id.len() > 64 {
        return Err(DeviceError::TicketExpired);
    }
    let bytes = state.kv.get(&ticket_key(id)).await?.ok_or(DeviceError::TicketExpired)?;
    let stored: StoredTicket = serde_json::from_slice(&bytes).map_err(|e| DeviceError::Internal(e.to_string()))?;
    let same_browser =
        browser_cookie.is_some_and(|cookie| state.secret.verify_keyed_hash(BROWSER_PURPOSE, cookie, &stored.browser));
    if !same_browser {
        return Err(DeviceError::TicketExpired);
    }
    let user_code = state
        .secret
        .decrypt(&stored.sealed_user_code)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| DeviceError::Internal("device ticket does not decrypt".into()))?;
    let ticket = Ticket { id: id.to_string(), device_id: stored.device_id, user_code };
    let now = state.now();
    let authorization = state
        .db
        .device_authorization_by_id(&ticket.device_id)
        .await?
        .filter(|a| a.status == "pending" && a.expires_at > now)
        .ok_or(DeviceError::UnknownCode)?;
    let client = super::clients::find(state, &authorization.client_id).await?.ok_or(DeviceError::UnknownCode)?;
    Ok(Confirmation { ticket, authorization, client })
}

/// The person's answer on the confirmation page: audited like consent, remembered as consent
/// when approved, and written to the device authorization for the polling device to see.
pub async fn decide(
    state: &AppState,
    origin: &Origin,
    confirmation: Confirmation,
    session: &ActiveSession,
    approve: bool,
) -> Result<(), DeviceError> {
    let Confirmation { ticket, authorization, client } = confirmation;
    state.kv.delete(&ticket_key(&ticket.id)).await?;
    let mut scopes = scope::parse(&authorization.scope).map_err(|_| DeviceError::Internal("stored scope".into()))?;
    // `admin` reaches only administrators; others get the rest of what was asked for.
    if !session.user.is_admin() {
        scopes.retain(|scope| scope != scope::ADMIN);
    }
    let scope = scopes.join(" ");
    let by = Initiator::new(Actor::User(session.user.id.clone()), origin.clone());
    let action = if approve { "consent.granted" } else { "consent.denied" };
    let details = serde_json::json!({ "scope": scope, "grant_type": GRANT_TYPE });
    by.record(state, action, ("client", &client.id), details).await?;
    let now = state.now();
    let decided = if approve {
        let approval = DeviceApproval {
            user_id: &session.user.id,
            session_id: &session.session.id,
            auth_time: session.session.auth_time,
            amr: &session.session.amr,
            scope: &scope,
        };
        let approved = state.db.approve_device(&authorization.id, &approval, now).await?;
        if approved && !client.first_party {
            state.db.save_consent(&session.user.id, &client.id, &scope, now).await?;
        }
        approved
    } else {
        state.db.deny_device(&authorization.id, now).await?
    };
    if decided { Ok(()) } else { Err(DeviceError::UnknownCode) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_read_in_any_case_with_or_without_dash_or_spaces() {
        for typed in ["BCDF-GHJK", "bcdfghjk", "bcdf ghjk", " Bcdf-Ghjk ", "BC DF-GH JK"] {
            assert_eq!(normalise_user_code(typed).as_deref(), Some("BCDFGHJK"), "{typed}");
        }
        for wrong in ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "BCDF_GHJK"] {
            assert_eq!(normalise_user_code(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn sign_in_requests_name_a_ticket_only_in_its_shape() {
        assert_eq!(ticket_of_sign_in("device.abc-DEF_123"), Some("abc-DEF_123"));
        for other in ["device.", "device.a/b", "device.a b", "device.//evil.example", "abc", "xdevice.abc"] {
            assert_eq!(ticket_of_sign_in(other), None, "{other}");
        }
        assert_eq!(ticket_of_sign_in(&format!("device.{}", "a".repeat(65))), None);
    }

    #[test]
    fn new_user_codes_use_the_alphabet_and_show_with_a_dash() {
        let code = new_user_code();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        let shown = display(&code);
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        assert_eq!(normalise_user_code(&shown), Some(code));
    }
}
