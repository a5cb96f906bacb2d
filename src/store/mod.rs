//! Storage: one SQL text per operation, run on PostgreSQL or SQLite through [`Db`].
//! Each table family has its own small trait in its own file; the PostgreSQL/SQLite
//! differences live only in this folder.

// The traits are used through the concrete `Db`, whose futures are `Send`.
#![allow(async_fn_in_trait)]

pub mod api_clients;
pub mod api_keys;
pub mod audit;
pub mod backchannel;
pub mod client_jwt_auth;
pub mod client_metadata_documents;
pub mod client_pairwise;
pub mod clients;
pub mod codes;
pub mod consents;
pub mod deliveries;
pub mod grants;
pub mod housekeeping;
pub mod identities;
pub mod identity_links;
pub mod one_time_tokens;
pub mod organizations;
pub mod permissions;
pub mod registrations;
pub mod sessions;
pub mod signing_keys;
pub mod token_exchange;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use api_clients::{ApiClient, ApiClientStore};
pub use api_keys::{ApiKey, ApiKeyStore};
pub use audit::{AuditEntry, AuditFilter, AuditStore};
pub use backchannel::{BackchannelLogout, BackchannelStore, SessionParticipant};
pub use client_jwt_auth::{ClientJwtAuth, ClientJwtAuthStore};
pub use client_metadata_documents::ClientMetadataDocumentStore;
pub use client_pairwise::{ClientPairwise, ClientPairwiseStore};
pub use clients::{Client, ClientStore, NewClient};
pub use codes::{AuthCode, CodeConsumption, CodeStore};
pub use consents::ConsentStore;
pub use deliveries::{Delivery, DeliveryStore};
pub use grants::{AccessTokenState, Grant, GrantStore, RefreshToken};
pub use identities::{Identity, IdentityStore, LinkOutcome};
pub use identity_links::{IdentityLinkStore, UnlinkOutcome};
pub use one_time_tokens::OneTimeTokenStore;
pub use organizations::{Member, MembershipWrite, ORGANIZATION_SCOPE, Organization, OrganizationStore, UserMembership};
pub use permissions::{PermissionKey, PermissionStore, PermissionWrite};
pub use registrations::{Registration, RegistrationStore};
pub use sessions::{DatabaseSessions, Session, SessionStore};
pub use signing_keys::{SigningKeyRecord, SigningKeyStore};
pub use token_exchange::{ExchangePolicy, TokenExchangeStore};
pub use users::{NewUser, Profile, RoleChange, User, UserFilter, UserStore};

#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (or Redis, where sessions live when configured) cannot be reached now;
    /// callers answer 503 and retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// A unique constraint refused the write.
    #[error("already exists")]
    Conflict,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(error)),
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => StoreError::Unavailable(Box::new(error)),
            _ => StoreError::Database(error),
        }
    }
}

/// SQLite "busy"/"locked" and PostgreSQL connection-class errors are transient.
fn is_busy(code: Option<&str>) -> bool {
    matches!(code, Some("5") | Some("6") | Some("517")) || code.is_some_and(|c| c.starts_with("08") || c == "57P01")
}

/// A session store on Redis that cannot be reached fails closed, like an unreachable database.
impl From<crate::kv::KvError> for StoreError {
    fn from(error: crate::kv::KvError) -> Self {
        StoreError::Unavailable(Box::new(error))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The one mapping of storage failures into a core error: an unreachable store becomes
/// `Unavailable` (callers answer 503 and retry later), anything else `Internal`. The error
/// type needs both variants.
macro_rules! from_store_error {
    ($error:ty) => {
        impl From<$crate::store::StoreError> for $error {
            fn from(error: $crate::store::StoreError) -> Self {
                match error {
                    $crate::store::StoreError::Unavailable(_) => <$error>::Unavailable,
                    other => <$error>::Internal(other.to_string()),
                }
            }
        }
    };
}
pub(crate) use from_store_error;

/// Runs the same expression on whichever pool `db` holds.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Postgres($pool) => $body,
            $crate::store::Db::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Db {
    pub async fn connect(url: &str) -> StoreResult<Db> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL never corrupts the database; it only skips an fsync per commit
                // (a power cut may lose the last commits). The code flow commits several times.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(5));
            if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            }
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
            Ok(Db::Sqlite(pool))
        } else {
            let pool =
                PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(3)).connect(url).await?;
            Ok(Db::Postgres(pool))
        }
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Db::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// True when a trivial query succeeds.
    pub async fn ping(&self) -> bool {
        on_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// Waits for connections in use to come back, then closes them all: SQLite checkpoints its
    /// WAL into the database file, PostgreSQL sees clean disconnects.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    /// (open connections, idle connections) of the pool.
    pub fn pool_usage(&self) -> (u32, usize) {
        on_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgres",
            Db::Sqlite(_) => "sqlite",
        }
    }
}

/// JSON-encoded string lists in a TEXT column.
pub(crate) fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn decode_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}
