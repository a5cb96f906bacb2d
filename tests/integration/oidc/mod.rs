//! OpenID Connect on top of the OAuth core (`src/oidc/`): userinfo and RP-initiated logout. ID
//! tokens are checked where they are issued (oauth/authorization_code.rs, signing_algs.rs).

mod backchannel_logout;
mod logout;
mod pairwise;
mod protected_resource;
mod userinfo;
