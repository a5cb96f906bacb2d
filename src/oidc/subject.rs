//! The `sub` a client sees (OIDC Core §8): the person's public identifier, or for a client with
//! pairwise subjects a keyed hash of the client's sector and that identifier, so clients of
//! different sectors cannot correlate their users. ID tokens, userinfo and logout tokens all
//! take it from here. Access tokens keep the public `sub`: they are for resource servers (often
//! shared by many clients) and for oxidp's own API, which looks the person up by it.

use crate::state::AppState;
use crate::store::{ClientPairwiseStore, StoreResult, User};

const PURPOSE: &str = "pairwise-sub";

/// `user`'s subject identifier as `client_id` sees it.
pub async fn for_client(state: &AppState, client_id: &str, user: &User) -> StoreResult<String> {
    Ok(match state.db.client_pairwise(client_id).await? {
        Some(pairwise) => pairwise_sub(state, &pairwise.sector, &user.sub),
        None => user.sub.clone(),
    })
}

/// Stable for a sector and a person, and useless to anyone without the server secret.
pub fn pairwise_sub(state: &AppState, sector: &str, public_sub: &str) -> String {
    state.secret.keyed_hash(PURPOSE, &format!("{sector}\n{public_sub}"))
}
