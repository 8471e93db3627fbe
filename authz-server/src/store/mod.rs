//! Persistence through sqlx. One `Store` serves both backends: the SQL is portable
//! (`$n` placeholders, `RETURNING`, BIGINT/TEXT columns) and the backend is chosen by the
//! `DATABASE_URL` scheme: an embedded SQLite file by default, PostgreSQL for production.
//! Each backend keeps its own migration directory, applied at start-up.
//!
//! Every change that touches more than one row runs in one transaction, and single-use
//! values (codes, refresh tokens) are consumed with one conditional `UPDATE … RETURNING`.

use sqlx::{AnyPool, FromRow};

mod admin;
mod audit;
pub mod device;
mod exchange;
pub mod federation;
mod feed;
mod grants;
mod live;
mod maintenance;
pub use admin::*;
pub use device::{DeviceRow, Poll};
pub use feed::FEED_RETENTION_SECS;
pub use grants::*;
pub use maintenance::Table;

pub use db::Backend;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where every write goes (see `db::writer`).
    writer: AnyPool,
    backend: Backend,
    audit_queue: std::sync::Arc<audit::AuditQueue>,
    live: std::sync::Arc<live::Live>,
}

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub disabled: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub metadata: String,
    pub client_id_issued_at: i64,
    pub origin: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub pkcs8: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: String,
    pub auth_time: i64,
    /// The scopes this sign-in's user may be granted (space-separated); `None`: no limit.
    pub scope_limit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Setup(#[from] db::SetupError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database could not be reached (down, restarting, out of connections), as opposed
    /// to a query it refused: the request may succeed when retried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => db::is_unavailable(e),
            _ => false,
        }
    }
}

use db::is_unique_violation;

impl Store {
    /// Connects, creating the SQLite file (and its directory) when needed, and applies
    /// the migrations of the chosen backend.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let (pool, backend) = db::connect(url).await?;
        let store = Self {
            writer: pool.clone(),
            pool,
            backend,
            audit_queue: Default::default(),
            live: Default::default(),
        };
        store.migrate(url).await?;
        let writer = db::writer(url, backend, &store.pool).await?;
        Ok(Self { writer, ..store })
    }

    /// Brings the schema up to date; `url` only names the database in an error.
    pub async fn migrate(&self, url: &str) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/authz-server/sqlite"),
            Backend::Postgres => sqlx::migrate!("../migrations/authz-server/postgres"),
        };
        db::migrate(&self.pool, &migrator, "the authorization server", url).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Writes the queued audit events, then closes the pool.
    pub async fn close(&self) {
        if let Err(e) = self.flush_audit().await {
            tracing::error!(error = %e, "audit events could not be written before closing");
        }
        self.writer.close().await;
        self.pool.close().await;
    }

    // ---- users ----

    pub async fn insert_user(&self, user: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, email, display_name, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(user.disabled)
        .bind(user.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("user") } else { e.into() })?;
        Ok(())
    }

    pub async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?)
    }

    // ---- clients ----

    pub async fn insert_client(&self, row: &ClientRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, metadata, client_id_issued_at, origin)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.client_id)
        .bind(&row.secret_hash)
        .bind(&row.metadata)
        .bind(row.client_id_issued_at)
        .bind(&row.origin)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("client")
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    async fn load_client(&self, client_id: &str) -> StoreResult<Option<ClientRow>> {
        Ok(sqlx::query_as("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn count_clients(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM clients")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    // ---- login sessions ----

    pub async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &str,
        auth_time: i64,
        expires_at: i64,
        scope_limit: Option<&str>,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, auth_time, expires_at, scope_limit) VALUES ($1, $2, $3, $4, $5)")
            .bind(id_hash)
            .bind(user_id)
            .bind(auth_time)
            .bind(expires_at)
            .bind(scope_limit)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The live session's user, if the user is still enabled.
    pub async fn session(&self, id_hash: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        Ok(sqlx::query_as(
            "SELECT s.user_id, s.auth_time, s.scope_limit FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // ---- consent ----

    /// The scope a user approved for a client at one resource server.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 AND resource = $3",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(resource)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }

    // ---- installation secrets ----

    /// The named secret every instance shares, created by whichever instance asks first.
    pub async fn server_secret(&self, name: &str, fresh: &str, now: i64) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(now)
        .execute(&self.writer)
        .await?;
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?;
        Ok(value)
    }

    // ---- signing keys ----

    pub async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Inserts a new key and retires the previous active ones, in one transaction.
    /// Makes `row` the active key unless there already is one (another instance starting at
    /// the same moment may have made it: the unique index on the active key decides).
    pub async fn create_first_signing_key(&self, row: &SigningKeyRow) -> StoreResult<()> {
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, pkcs8, created_at, retired_at)
             SELECT $1, $2, $3, NULL
              WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
        )
        .bind(&row.kid)
        .bind(&row.pkcs8)
        .bind(row.created_at)
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn rotate_signing_key(&self, row: &SigningKeyRow) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, pkcs8, created_at, retired_at) VALUES ($1, $2, $3, NULL)")
            .bind(&row.kid)
            .bind(&row.pkcs8)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
