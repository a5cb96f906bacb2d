//! The OpenID Connect parts: discovery, ID tokens, user claims, userinfo, logout.

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod logout;
pub mod subject;
pub mod userinfo;
