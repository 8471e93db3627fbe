//! The resource server's own data: per-user notes and request counts.

use std::sync::Arc;

use sqlx::{AnyPool, FromRow};

mod pending;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where every write goes (see `db::writer`).
    writer: AnyPool,
    pending: Arc<pending::Pending>,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Note {
    pub id: String,
    pub title: String,
    pub content: String,
    pub created_at: i64,
}

/// One tool call through the gateway, for the audit trail.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct GatewayCall {
    pub id: String,
    pub at: i64,
    pub upstream: String,
    pub tool: String,
    pub user_sub: String,
    pub client_id: String,
    pub outcome: String,
    pub duration_ms: i64,
    pub arguments: Option<String>,
}

impl Store {
    /// The gateway's signing key (kid, PKCS#8 base64): the oldest, so instances that
    /// created one at the same moment agree.
    pub async fn gateway_key(&self) -> sqlx::Result<Option<(String, String)>> {
        sqlx::query_as("SELECT kid, pkcs8 FROM gateway_keys ORDER BY created_at, kid LIMIT 1")
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn insert_gateway_key(&self, kid: &str, pkcs8: &str, now: i64) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO gateway_keys (kid, pkcs8, created_at) VALUES ($1, $2, $3)")
            .bind(kid)
            .bind(pkcs8)
            .bind(now)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    pub async fn insert_gateway_call(&self, c: &GatewayCall) -> sqlx::Result<()> {
        let mut conn = self.writer.acquire().await?;
        Self::insert_gateway_call_in(&mut conn, c).await
    }

    async fn insert_gateway_call_in(
        conn: &mut sqlx::AnyConnection,
        c: &GatewayCall,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO gateway_calls (id, at, upstream, tool, user_sub, client_id, outcome, duration_ms, arguments)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.id)
        .bind(c.at)
        .bind(&c.upstream)
        .bind(&c.tool)
        .bind(&c.user_sub)
        .bind(&c.client_id)
        .bind(&c.outcome)
        .bind(c.duration_ms)
        .bind(&c.arguments)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    }

    /// Removes the audit of gateway calls older than `before`; returns how many.
    pub async fn purge_gateway_calls(&self, before: i64) -> sqlx::Result<u64> {
        self.flush().await?;
        sqlx::query("DELETE FROM gateway_calls WHERE at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .map(|r| r.rows_affected())
    }

    /// The newest gateway calls first.
    pub async fn gateway_calls(&self, limit: i64) -> sqlx::Result<Vec<GatewayCall>> {
        self.flush().await?;
        sqlx::query_as("SELECT * FROM gateway_calls ORDER BY at DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
    }

    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (pool, backend) = db::connect(url).await?;
        let migrator = match backend {
            db::Backend::Sqlite => sqlx::migrate!("../migrations/resource-server/sqlite"),
            db::Backend::Postgres => sqlx::migrate!("../migrations/resource-server/postgres"),
        };
        db::migrate(&pool, &migrator, "the resource server", url).await?;
        Ok(Self {
            writer: db::writer(url, backend, &pool).await?,
            pool,
            pending: Arc::default(),
        })
    }

    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Writes what is waiting (see `pending`), then closes the pool.
    pub async fn close(&self) {
        // A few tries: another instance's write or a restarting database can refuse one.
        for attempt in 1..=3 {
            match self.flush().await {
                Ok(()) => break,
                Err(e) if attempt == 3 => {
                    tracing::error!(error = %e, "request counts and gateway calls could not be written before closing");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "writing request counts before closing failed; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
        self.writer.close().await;
        self.pool.close().await;
    }

    pub async fn insert_note(&self, user: &str, note: &Note) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO notes (id, user_sub, title, content, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&note.id)
            .bind(user)
            .bind(&note.title)
            .bind(&note.content)
            .bind(note.created_at)
            .execute(&self.writer)
            .await
            .map(|_| ())
    }

    pub async fn notes(&self, user: &str) -> sqlx::Result<Vec<Note>> {
        sqlx::query_as("SELECT id, title, content, created_at FROM notes WHERE user_sub = $1 ORDER BY created_at DESC, id")
            .bind(user)
            .fetch_all(&self.pool)
            .await
    }

    /// A note of this user; another user's note is indistinguishable from a missing one.
    pub async fn note(&self, user: &str, id: &str) -> sqlx::Result<Option<Note>> {
        sqlx::query_as(
            "SELECT id, title, content, created_at FROM notes WHERE user_sub = $1 AND id = $2",
        )
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }
}
