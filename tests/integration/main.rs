//! Integration tests: each runs a real server over HTTP on SQLite and on PostgreSQL.
//!
//! The files follow the code: one file (or folder) per module they exercise, e.g. every
//! refresh-token test in oauth/refresh_token.rs, every test of the login limits in
//! login_throttle.rs. common.rs is the harness (real servers, clients, helpers shared across
//! files); browser.rs drives the browser side of the authorization flow page by page.

// A failing test or a broken benchmark set-up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bounded_state;
mod browser;
mod common;

mod account_api;
mod admin_api;
mod api_keys;
mod authentik;
mod cli;
mod client_ip;
mod faults;
mod federation;
mod housekeeping;
mod internal;
mod keys;
mod legacy_passwords;
mod login_throttle;
mod oauth;
mod observability;
mod oidc;
mod openapi_doc;
mod operations;
mod outbound;
mod pages;
mod permissions;
mod prehijacking;
mod registration;
mod registration_management;
mod scale_out;
mod secrets;
mod service_links;
mod session;
mod signing_algs;
mod storage;
mod threats;
mod trusted_issuers;
mod unauthenticated_work;
mod user_import;
