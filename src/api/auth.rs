//! /auth/*: registration, first-party login, refresh, logout, email verification, password recovery.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::problem::{ApiError, ApiResult};
use super::views::*;
use crate::audit::{Actor, Initiator};
use crate::login;
use crate::oauth::first_party;
use crate::state::SharedState;

pub struct AuthApi;

/// Someone not signed in, acting through `req`.
fn anonymous(state: &SharedState, req: &Request) -> Initiator {
    crate::web::initiator(state, req, Actor::Anonymous)
}

#[derive(ApiResponse)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<UserView>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted; a message is sent when the account exists (the answer is the same either way).
    #[oai(status = 202)]
    Accepted,
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register an account
    ///
    /// Creates a user with a password (10–256 characters, not a common password, not containing
    /// the email's local part) and mails an email-verification code. Off when `OXIDP_REGISTRATION=closed`.
    #[oai(path = "/register", method = "post")]
    async fn register(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<RegisterRequest>,
    ) -> ApiResult<Created> {
        let Json(body) = body;
        let by = anonymous(&state, req);
        let user = crate::account::register(&state, &by, &body.email, &body.password, body.name).await?;
        Ok(Created::Created(Json(user.into())))
    }

    /// Log in with email and password
    ///
    /// Returns tokens of the first-party client `oxidp-api`: an access token with `aud`
    /// `{issuer}/api` and scope `account` (and `admin` for administrators), and a refresh token.
    /// Shares the login page's brute-force limits: after a few failures each further one makes
    /// the next attempt wait (doubling), then the account is locked for a while; an attempt too
    /// early gets 429 with `Retry-After`, exactly as for an email that has no account.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<LoginRequest>,
    ) -> ApiResult<Json<TokenResponse>> {
        if state.config.password_login_api == crate::config::Switch::Off {
            return Err(ApiError::forbidden("disabled", "password login through the API is switched off"));
        }
        let origin = crate::web::origin(&state, req);
        let user = login::password_login(&state, &body.email, &body.password, &origin).await?;
        Ok(Json(first_party::login_tokens(&state, &user).await?.into()))
    }

    /// Refresh tokens
    ///
    /// Rotates a refresh token of `oxidp-api` (the old one stops working; reuse revokes the family).
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(&self, state: Data<&SharedState>, body: Json<RefreshRequest>) -> ApiResult<Json<TokenResponse>> {
        Ok(Json(first_party::refresh(&state, &body.refresh_token).await?.into()))
    }

    /// Log out
    ///
    /// Revokes the refresh token's family and the access tokens issued with it.
    #[oai(path = "/logout", method = "post")]
    async fn logout(&self, state: Data<&SharedState>, body: Json<RefreshRequest>) -> ApiResult<NoContent> {
        first_party::logout(&state, &body.refresh_token).await?;
        Ok(NoContent::NoContent)
    }

    /// Verify an email address
    ///
    /// Uses the single-use code from the verification mail (valid 24 hours).
    #[oai(path = "/verify-email", method = "post")]
    async fn verify_email(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<TokenRequest>,
    ) -> ApiResult<NoContent> {
        crate::account::verify_email(&state, &anonymous(&state, req), &body.token).await?;
        Ok(NoContent::NoContent)
    }

    /// Ask for a password reset
    ///
    /// Always answers 202, whether or not the account exists; when it does, a single-use code
    /// (valid 1 hour) is mailed.
    #[oai(path = "/forgot-password", method = "post")]
    async fn forgot_password(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<EmailRequest>,
    ) -> ApiResult<Accepted> {
        let origin = crate::web::origin(&state, req);
        crate::account::forgot_password(&state, origin.ip.as_deref(), &body.email).await?;
        Ok(Accepted::Accepted)
    }

    /// Reset the password
    ///
    /// Sets a new password with the mailed code; every session and refresh token of the user ends.
    #[oai(path = "/reset-password", method = "post")]
    async fn reset_password(
        &self,
        req: &Request,
        state: Data<&SharedState>,
        body: Json<ResetPasswordRequest>,
    ) -> ApiResult<NoContent> {
        crate::account::reset_password(&state, &anonymous(&state, req), &body.token, &body.password).await?;
        Ok(NoContent::NoContent)
    }
}
