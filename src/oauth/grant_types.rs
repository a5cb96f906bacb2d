//! The names of the grant types beyond RFC 6749's, where discovery, client validation and the
//! grants themselves read them (a leaf: it imports nothing).

/// RFC 8628 §3.4.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
