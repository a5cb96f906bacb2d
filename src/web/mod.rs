//! The poem side shared by the pages and protocol endpoints (`http/`) and the JSON API
//! (`api/`): what is read from a request (client address, origin, cookies, user agent,
//! form bodies), the one cookie policy, CSRF for forms, and the middleware around every
//! request. Neither `http/` nor `api/` imports the other; both import this.

pub mod cookies;
pub mod csrf;
pub mod middleware;
pub mod request;

pub use middleware::request_id;
pub use request::{client_ip, initiator, origin};
