//! Integration tests: each runs a real server over HTTP on SQLite and on PostgreSQL.

mod common;

mod browser_flow;
mod cli;
mod code_flow;
mod keys;
mod logout;
mod refresh_and_replay;
mod storage;
mod token_errors;
