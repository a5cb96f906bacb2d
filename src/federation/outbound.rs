//! The HTTP client oxidp uses towards upstreams (identity providers, token issuers, Authentik):
//! no redirects followed, a time limit on every request, bounded response bodies.

use std::time::Duration;

/// The largest response body read from an upstream.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn client(timeout_seconds: u64) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_secs(timeout_seconds);
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("oxidp/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Whether a failed request never got an answer (time-out, refused connection, reset): the
/// upstream is unreachable rather than wrong.
pub fn is_unreachable(error: &reqwest::Error) -> bool {
    error.is_timeout() || error.is_connect() || error.is_request()
}

/// Reads at most [`MAX_BODY`] bytes of a response.
pub async fn body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("reading the response failed: {0}")]
    Transport(reqwest::Error),
    #[error("the response is larger than {MAX_BODY} bytes")]
    TooLarge,
}
