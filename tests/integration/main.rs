//! Integration tests: each runs a real server over HTTP on SQLite and on PostgreSQL.

mod common;

mod code_flow;
