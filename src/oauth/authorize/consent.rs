//! The person's answer on the consent page: recorded in the audit log, then either the
//! request goes on (consent remembered) or the client hears `access_denied`.

use super::{AuthorizeError, Outcome, Pending, pending, resume};
use crate::audit::{Actor, Initiator, Origin};
use crate::oauth::ErrorCode;
use crate::session::ActiveSession;
use crate::state::AppState;

pub async fn decide(
    state: &AppState,
    origin: &Origin,
    mut request: Pending,
    session: &ActiveSession,
    approve: bool,
) -> Result<Outcome, AuthorizeError> {
    let by = Initiator::new(Actor::User(session.user.id.clone()), origin.clone());
    let action = if approve { "consent.granted" } else { "consent.denied" };
    let details = serde_json::json!({ "scope": request.request.scopes.join(" ") });
    by.record(state, action, ("client", &request.request.client_id), details).await?;
    if !approve {
        pending::forget(state, &request.id).await?;
        return Err(AuthorizeError::Redirect {
            redirect_uri: request.request.redirect_uri.clone(),
            error: ErrorCode::AccessDenied,
            description: "the user denied the request".into(),
            state: request.request.state.clone(),
        });
    }
    pending::mark_consent_given(state, &mut request, &session.user.id).await?;
    resume(state, request, Some(session)).await
}
