//! Upstream sign-in: the single-use redirect transactions, and identities linked to local
//! users by (provider, issuer, subject). Resolving an identity is one transaction, so a
//! refused sign-in writes nothing.

use sqlx::FromRow;

use super::{Store, StoreError, StoreResult, User, is_unique_violation};

/// A provider added with `admin provider add`: its settings as JSON, its secret apart.
#[derive(Debug, Clone, FromRow)]
pub struct ProviderRow {
    pub name: String,
    pub settings: String,
    pub client_secret: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct UpstreamLogin {
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub verifier: String,
    /// The pending authorization request (its query string), or empty for the account page.
    pub request: String,
    pub binding_hash: String,
    pub expires_at: i64,
}

/// Who signed in upstream, as the verified id_token says.
#[derive(Debug, Clone)]
pub struct Identity {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

/// What to do with an identity seen for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFirstSignIn {
    Refuse,
    Create,
    /// Link to the local user with this verified email (when exactly one has it).
    LinkByVerifiedEmail,
}

/// An identity linked to a user, as the account page and `admin user show` list it.
#[derive(Debug, Clone, FromRow)]
pub struct LinkedIdentity {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    NotFound,
    /// It is the user's only way to sign in (no password, no other identity).
    LastWay,
}

/// What linking an identity to a signed-in user did.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkedTo {
    Now,
    /// It was this user's already.
    Already,
    /// Another local user has it: nothing changed.
    Elsewhere,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Signed in through a link made before.
    User(String),
    /// A link made now: to a new user (`"created"`) or to the user with the email (`"email"`).
    Linked(String, &'static str),
    /// Known nowhere, and this provider does not create users.
    Unknown,
    /// A local account has this email but it may not be linked automatically.
    EmailTaken,
    Disabled,
}

/// Links `identity` to `user_id` inside the caller's transaction.
async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    identity: &Identity,
    user_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO identity_links (provider, issuer, subject, user_id, email, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&identity.provider)
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(user_id)
    .bind(&identity.email)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn insert_upstream_login(&self, row: &UpstreamLogin) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO upstream_logins (state_hash, provider, nonce, verifier, request, binding_hash, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.state_hash)
        .bind(&row.provider)
        .bind(&row.nonce)
        .bind(&row.verifier)
        .bind(&row.request)
        .bind(&row.binding_hash)
        .bind(row.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Takes the transaction of `state_hash` out, once: a second callback finds nothing.
    pub async fn take_upstream_login(
        &self,
        state_hash: &str,
    ) -> StoreResult<Option<UpstreamLogin>> {
        Ok(
            sqlx::query_as("DELETE FROM upstream_logins WHERE state_hash = $1 RETURNING *")
                .bind(state_hash)
                .fetch_optional(&self.writer)
                .await?,
        )
    }

    /// The local user of `identity`: an existing link, else what `first` allows, in one
    /// transaction with the link (and the new user) it creates.
    pub async fn resolve_identity(
        &self,
        identity: &Identity,
        first: OnFirstSignIn,
        new_user: impl FnOnce() -> User,
        now: i64,
    ) -> StoreResult<Resolved> {
        let mut tx = self.writer.begin().await?;
        let linked: Option<(String, i64)> = sqlx::query_as(
            "SELECT u.id, u.disabled FROM identity_links l JOIN users u ON u.id = l.user_id
             WHERE l.provider = $1 AND l.issuer = $2 AND l.subject = $3",
        )
        .bind(&identity.provider)
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((id, disabled)) = linked {
            tx.rollback().await?;
            return Ok(if disabled == 0 {
                Resolved::User(id)
            } else {
                Resolved::Disabled
            });
        }
        let verified_email = identity
            .email
            .as_deref()
            .filter(|_| identity.email_verified)
            .map(str::to_lowercase);
        let same_email: Vec<(String, i64)> = match &identity.email {
            Some(email) => {
                sqlx::query_as("SELECT id, disabled FROM users WHERE LOWER(email) = $1")
                    .bind(email.to_lowercase())
                    .fetch_all(&mut *tx)
                    .await?
            }
            None => Vec::new(),
        };
        let (user_id, how) = match first {
            OnFirstSignIn::LinkByVerifiedEmail
                if verified_email.is_some() && same_email.len() == 1 =>
            {
                let (id, disabled) = same_email[0].clone();
                if disabled != 0 {
                    tx.rollback().await?;
                    return Ok(Resolved::Disabled);
                }
                (id, "email")
            }
            _ if !same_email.is_empty() => {
                tx.rollback().await?;
                return Ok(Resolved::EmailTaken);
            }
            OnFirstSignIn::Create => {
                let user = new_user();
                sqlx::query(
                    "INSERT INTO users (id, username, password_hash, email, display_name, disabled, created_at)
                     VALUES ($1, $2, $3, $4, $5, 0, $6)",
                )
                .bind(&user.id)
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(user.created_at)
                .execute(&mut *tx)
                .await?;
                (user.id, "created")
            }
            _ => {
                tx.rollback().await?;
                return Ok(Resolved::Unknown);
            }
        };
        insert_link(&mut tx, identity, &user_id, now).await?;
        tx.commit().await?;
        Ok(Resolved::Linked(user_id, how))
    }

    /// Links `identity` to `user_id` (the user's own "Link", while signed in), in one
    /// transaction with the check that nobody else has it.
    pub async fn link_identity(
        &self,
        identity: &Identity,
        user_id: &str,
        now: i64,
    ) -> StoreResult<LinkedTo> {
        let mut tx = self.writer.begin().await?;
        let owner: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM identity_links WHERE provider = $1 AND issuer = $2 AND subject = $3",
        )
        .bind(&identity.provider)
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((owner,)) = owner {
            tx.rollback().await?;
            return Ok(if owner == user_id {
                LinkedTo::Already
            } else {
                LinkedTo::Elsewhere
            });
        }
        insert_link(&mut tx, identity, user_id, now).await?;
        tx.commit().await?;
        Ok(LinkedTo::Now)
    }

    pub async fn linked_identities(&self, user_id: &str) -> StoreResult<Vec<LinkedIdentity>> {
        Ok(sqlx::query_as(
            "SELECT provider, issuer, subject, email, created_at FROM identity_links
             WHERE user_id = $1 ORDER BY created_at, provider",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes one of the user's identities, never the last way the user can sign in.
    pub async fn unlink_identity(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Unlinked> {
        let mut tx = self.writer.begin().await?;
        let (links,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM identity_links WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
        let password: Option<(String,)> =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        // Users created by an upstream sign-in have the placeholder "!" for a password.
        let has_password = password.is_some_and(|(h,)| h != "!");
        if links <= 1 && !has_password {
            tx.rollback().await?;
            return Ok(Unlinked::LastWay);
        }
        let removed = sqlx::query(
            "DELETE FROM identity_links WHERE user_id = $1 AND provider = $2 AND subject = $3",
        )
        .bind(user_id)
        .bind(provider)
        .bind(subject)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(if removed == 1 {
            Unlinked::Done
        } else {
            Unlinked::NotFound
        })
    }

    pub async fn insert_provider(&self, row: &ProviderRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO upstream_providers (name, settings, client_secret, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&row.name)
        .bind(&row.settings)
        .bind(&row.client_secret)
        .bind(row.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("provider")
            } else {
                e.into()
            }
        })?;
        Ok(())
    }

    pub async fn list_providers(&self) -> StoreResult<Vec<ProviderRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM upstream_providers ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Removes a provider added with the admin command; its users' links stay (so adding it
    /// again restores their sign-in) but nobody can use it meanwhile.
    pub async fn delete_provider(&self, name: &str) -> StoreResult<bool> {
        Ok(
            sqlx::query("DELETE FROM upstream_providers WHERE name = $1")
                .bind(name)
                .execute(&self.writer)
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// Whether a username is free (for users created by a first upstream sign-in).
    pub async fn username_taken(&self, username: &str) -> StoreResult<bool> {
        Ok(self.user_by_username(username).await?.is_some())
    }
}
