//! The token store: one JSON file under the user's configuration directory, readable by its
//! owner only. Writes go to a temporary file that is renamed over the old one, under an
//! exclusive lock on a companion lock file, and every change re-reads the file after
//! taking the lock, so parallel invocations never lose a rotated refresh token.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// What is kept for one (issuer, resource) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The MCP endpoint as the user named it (commands find the entry by it).
    #[serde(default)]
    pub url: String,
    pub issuer: String,
    pub resource: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `client_secret_post` when the secret goes in the body; Basic otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds; absolute, so a token read later is judged correctly.
    #[serde(default)]
    pub expires_at: i64,
    #[serde(default)]
    pub scope: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Contents {
    pub version: u32,
    pub entries: Vec<Entry>,
}

impl Contents {
    /// Adds or replaces the entry for the same issuer and resource.
    pub fn put(&mut self, entry: Entry) {
        self.entries.retain(|e| {
            !(e.issuer == entry.issuer && e.resource == entry.resource) && e.url != entry.url
        });
        self.entries.push(entry);
    }
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    /// `MCP_CLIENT_TOKEN_FILE`, else `$XDG_CONFIG_HOME/mcp-client/tokens.json`, else
    /// `~/.config/mcp-client/tokens.json`.
    pub fn default_location() -> anyhow::Result<Self> {
        if let Some(p) = std::env::var_os("MCP_CLIENT_TOKEN_FILE") {
            return Ok(Self { path: p.into() });
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config")
            }
        };
        Ok(Self {
            path: base.join("mcp-client").join("tokens.json"),
        })
    }

    #[cfg(test)]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Reads the store as it is now (missing: empty).
    pub fn read(&self) -> anyhow::Result<Contents> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        check_private(&self.path)?;
        serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "the token store {} is damaged ({e}): remove it and log in again",
                self.path.display()
            )
        })
    }

    /// Runs `change` on the current contents under the exclusive lock and writes the result,
    /// atomically, when it returns Ok.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Contents) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let lock = self.lock()?;
        let mut contents = self.read()?;
        let out = change(&mut contents)?;
        self.write(&contents)?;
        drop(lock);
        Ok(out)
    }

    /// The exclusive lock, held until the file is dropped. Waiting for it is what makes a
    /// second `token` wait for the first one's refresh instead of racing it.
    pub fn lock(&self) -> anyhow::Result<File> {
        self.ensure_dir()?;
        let path = self.path.with_extension("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    }

    fn ensure_dir(&self) -> anyhow::Result<()> {
        let dir = self.dir();
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        check_private(dir)
    }

    /// Replaces the file with `contents`; call it with the lock held.
    pub fn write(&self, contents: &Contents) -> anyhow::Result<()> {
        self.ensure_dir()?;
        let tmp = self.path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        // The mode applies only when the file is created: make sure of it either way.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(&serde_json::to_vec_pretty(contents)?)?;
        file.sync_all()?;
        fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }
}

/// Refuses a file or directory that others may read or write, or that another user owns:
/// tokens in it could have been read or planted.
fn check_private(path: &Path) -> anyhow::Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let me = current_uid();
    if meta.uid() != me {
        bail!(
            "{} belongs to another user (uid {}): refusing to use it",
            path.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is accessible to other users (mode {mode:o}): run `chmod {} {}` or remove it",
            path.display(),
            if meta.is_dir() { "700" } else { "600" },
            path.display()
        );
    }
    Ok(())
}

fn current_uid() -> u32 {
    // /proc/self belongs to the process's real user; no unsafe call needed.
    fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(resource: &str, token: &str) -> Entry {
        Entry {
            url: resource.into(),
            issuer: "https://as".into(),
            resource: resource.into(),
            client_id: "c".into(),
            client_secret: None,
            auth_method: None,
            token_endpoint: "https://as/token".into(),
            revocation_endpoint: None,
            access_token: Some(token.into()),
            refresh_token: Some("r".into()),
            expires_at: 100,
            scope: "mcp:read".into(),
        }
    }

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mcp-client-store-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn files_are_private_and_replaced_whole() {
        let dir = scratch();
        let store = Store::at(dir.join("sub/tokens.json"));
        store
            .update(|c| {
                c.put(entry("https://mcp/a", "t1"));
                Ok(())
            })
            .unwrap();
        store
            .update(|c| {
                c.put(entry("https://mcp/a", "t2"));
                Ok(())
            })
            .unwrap();
        let c = store.read().unwrap();
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.entries[0].access_token.as_deref(), Some("t2"));
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&dir.join("sub")), 0o700);

        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let e = store.read().unwrap_err().to_string();
        assert!(
            e.contains("accessible to other users") && e.contains("chmod 600"),
            "{e}"
        );
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o600)).unwrap();

        fs::write(store.path(), "{\"version\":1,\"entries\":[{\"issuer\":").unwrap();
        let e = store.read().unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("log in again"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
