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

/// Opens a pool for `url`.
pub async fn connect(url: &str) -> Result<(AnyPool, Backend), sqlx::Error> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url).ok_or_else(|| {
        sqlx::Error::Configuration("DATABASE_URL must start with sqlite: or postgres:".into())
    })?;
    if backend == Backend::Sqlite
        && let Some(dir) = sqlite_path(url).and_then(Path::parent)
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
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
        .await?;
    Ok((pool, backend))
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
}
