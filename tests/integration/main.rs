//! Integration tests: each runs a real server over HTTP on SQLite and on PostgreSQL.

// A failing test or a broken benchmark set-up should stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod account_api;
mod admin_api;
mod api_keys;
mod authentik;
mod browser_flow;
mod caching;
mod cli;
mod code_flow;
mod faults;
mod federation;
mod internal;
mod keys;
mod login_throttle;
mod logout;
mod observability;
mod openapi_doc;
mod operations;
mod permissions;
mod prehijacking;
mod redis_sessions;
mod refresh_and_replay;
mod scale_out;
mod secrets_at_rest;
mod signing_algs;
mod storage;
mod threats;
mod token_errors;
mod trusted_issuers;
mod unauthenticated_work;
