//! Connection set-up shared by both servers. The `DATABASE_URL` scheme picks the backend:
//! `sqlite:` (the file and its directory are created when missing; WAL, foreign keys and a
//! busy timeout are switched on) or `postgres:`. Queries go through sqlx's `Any` driver with
//! portable SQL; each server keeps one migration directory per backend.

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

/// Why a database could not be opened or brought to this server's schema: one line that
/// names the database (without its password) and the innermost cause, once.
#[derive(Debug)]
pub struct SetupError(String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// The last error in a chain: sqlx repeats its source in its own message, so printing the
/// whole chain would say the same thing twice.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(source) = e.source() {
        e = source;
    }
    e.to_string()
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Opens a pool for `url`.
pub async fn connect(url: &str) -> Result<(AnyPool, Backend), SetupError> {
    let backend = backend_of(url)?;
    let pool = open(
        url,
        backend,
        if backend == Backend::Sqlite { 4 } else { 10 },
    )
    .await?;
    Ok((pool, backend))
}

/// The pool writes go through. SQLite has one writer at a time, and a connection that finds
/// the database locked waits in steps of up to 100 ms: writes instead queue here, on one
/// connection of their own, while reads go on beside them (WAL). PostgreSQL: `pool` itself.
pub async fn writer(url: &str, backend: Backend, pool: &AnyPool) -> Result<AnyPool, SetupError> {
    // A second pool on an in-memory database would be a second database.
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    match backend {
        Backend::Postgres => Ok(pool.clone()),
        Backend::Sqlite if in_memory => Ok(pool.clone()),
        Backend::Sqlite => open(url, backend, 1).await,
    }
}

fn backend_of(url: &str) -> Result<Backend, SetupError> {
    sqlx::any::install_default_drivers();
    Backend::of(url).ok_or_else(|| {
        SetupError(format!(
            "DATABASE_URL must start with sqlite: or postgres:, not {:?}",
            redacted(url)
        ))
    })
}

async fn open(url: &str, backend: Backend, max: u32) -> Result<AnyPool, SetupError> {
    let fail = |e: &(dyn std::error::Error + 'static)| {
        SetupError(format!(
            "cannot open the database {}: {}",
            redacted(url),
            innermost(e)
        ))
    };
    let mut url = url.to_owned();
    if backend == Backend::Sqlite {
        if let Some(dir) = sqlite_path(&url).and_then(Path::parent)
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        // A missing file is created, as the docs promise, unless the URL says otherwise.
        if !url.contains("mode=") && sqlite_path(&url).is_some() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("mode=rwc");
        }
    }
    let options = AnyConnectOptions::from_str(&url).map_err(|e| fail(&e))?;
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        // A wrong host or port, or a database that went away, fails in seconds (503) instead
        // of the default half minute.
        .acquire_timeout(std::time::Duration::from_secs(5))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the single writer; the busy timeout makes
                    // concurrent writers queue instead of failing.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                         PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| fail(&e))?;
    Ok(pool)
}

/// Applies `migrator` for `server` ("the authorization server"). A database that already
/// holds another schema (typically the other server's: both number their migrations from
/// 1) is refused with a message that says to give each server its own database.
pub async fn migrate(
    pool: &AnyPool,
    migrator: &sqlx::migrate::Migrator,
    server: &str,
    url: &str,
) -> Result<(), SetupError> {
    use sqlx::migrate::MigrateError;
    match migrator.run(pool).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMismatch(v) | MigrateError::VersionMissing(v)) => {
            Err(SetupError(format!(
                "the database {} holds migrations that are not {server}'s (version {v} \
                 differs): it belongs to another server. The authorization server and the \
                 resource server each need a database of their own: give each its own \
                 DATABASE_URL",
                redacted(url)
            )))
        }
        Err(e) => Err(SetupError(format!(
            "migrating the database {} failed: {}",
            redacted(url),
            innermost(&e)
        ))),
    }
}

/// The file path of a `sqlite:` URL, for creating its directory.
fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path))
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A connection-level failure (the server down or restarting, the pool exhausted), as opposed
/// to an error in a query: callers answer 503 and the request may succeed when retried.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL shutting down or starting (class 57P: operator intervention) or out
        // of connections (53300).
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_and_path_from_url() {
        assert_eq!(Backend::of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(
            Backend::of("sqlite://data/a.db?mode=rwc"),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::of("mysql://x"), None);
        assert_eq!(
            sqlite_path("sqlite://data/a.db?mode=rwc"),
            Some(Path::new("data/a.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("postgres://authz:s3cr%3At@db.internal:5432/authz?sslmode=require"),
            "postgres://authz@db.internal:5432/authz?sslmode=require"
        );
        assert_eq!(
            redacted("postgres://db.internal/authz"),
            "postgres://db.internal/authz"
        );
        assert_eq!(redacted("sqlite://data/a.db"), "sqlite://data/a.db");
    }

    #[tokio::test]
    async fn a_wrong_host_is_named_once_with_its_cause() {
        let e = connect("postgres://u:pw@nosuchhost.invalid/x")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e.matches("nosuchhost.invalid").count(), 1, "{e}");
        assert!(!e.contains("pw"), "{e}");
        // The cause appears once, not repeated by the error chain.
        let cause = e.rsplit(": ").next().unwrap();
        assert_eq!(e.matches(cause).count(), 1, "{e}");
    }

    #[tokio::test]
    async fn a_missing_sqlite_file_is_created() {
        let dir = std::env::temp_dir().join(format!("db-create-{}", std::process::id()));
        let url = format!("sqlite://{}/sub/a.db", dir.display());
        let (pool, _) = connect(&url).await.unwrap();
        pool.close().await;
        assert!(dir.join("sub/a.db").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
