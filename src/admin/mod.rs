//! Administrative operations shared by the CLI and (later) the admin API.

pub mod clients;
pub mod users;
