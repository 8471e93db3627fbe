//! The store's single-use and rotation rules, on SQLite and on PostgreSQL (`DATABASE_URL`):
//! the guarantees the endpoints build on, checked below them.

use authz_server::store::{CodeRow, Exchange, GrantRow, NewTokens, Store, Table, User};

/// The store and its database, which is removed when the pair is dropped.
async fn store_with_user() -> (Store, e2e::TestDatabase) {
    let db = e2e::TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store
        .insert_user(&User {
            id: "u1".into(),
            username: "u1".into(),
            password_hash: "x".into(),
            email: None,
            display_name: None,
            disabled: 0,
            created_at: 0,
        })
        .await
        .unwrap();
    (store, db)
}

fn code(hash: &str) -> CodeRow {
    CodeRow {
        code_hash: hash.into(),
        client_id: "c".into(),
        user_id: "u1".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "x".into(),
        resource: "http://127.0.0.1/mcp".into(),
        scope: "mcp:read".into(),
        expires_at: 1_000,
        consumed_at: None,
        grant_id: None,
        redirect_uri_sent: 1,
    }
}

fn tokens(grant: &str, jti: &str, refresh: &str, new_grant: bool) -> NewTokens {
    NewTokens {
        grant: new_grant.then(|| GrantRow {
            id: grant.into(),
            user_id: Some("u1".into()),
            client_id: "c".into(),
            resource: "http://127.0.0.1/mcp".into(),
            scope: "mcp:read".into(),
            created_at: 0,
            last_used_at: 0,
            revoked_at: None,
        }),
        access: authz_server::store::AccessTokenRow {
            jti: jti.into(),
            grant_id: Some(grant.into()),
            client_id: "c".into(),
            user_id: Some("u1".into()),
            resource: "http://127.0.0.1/mcp".into(),
            scope: "mcp:read".into(),
            issued_at: 0,
            expires_at: 10_000,
            revoked_at: None,
        },
        refresh: Some(authz_server::store::RefreshTokenRow {
            token_hash: refresh.into(),
            grant_id: grant.into(),
            created_at: 0,
            expires_at: 10_000,
        }),
    }
}

#[tokio::test]
async fn a_code_is_redeemed_once_a_refusal_writes_nothing_and_a_replay_revokes() {
    let (store, _db) = store_with_user().await;
    store
        .insert_code(&code("h1"), Some(("mcp:read", 0)))
        .await
        .unwrap();
    assert_eq!(
        store.count(Table::Consents).await.unwrap(),
        1,
        "consent with the code"
    );
    // The caller's checks refuse: rolled back, the code can still be redeemed.
    let refused = store
        .redeem_code("h1", "g1", 10, |_| Err::<NewTokens, _>("no"))
        .await
        .unwrap();
    assert!(matches!(refused, Exchange::Rejected("no")));
    assert_eq!(store.count(Table::Grants).await.unwrap(), 0);
    let issued = store
        .redeem_code("h1", "g1", 10, |_| {
            Ok::<_, ()>(tokens("g1", "j1", "r1", true))
        })
        .await
        .unwrap();
    assert!(matches!(issued, Exchange::Issued));
    let replay = store
        .redeem_code("h1", "g2", 11, |_| {
            Ok::<_, ()>(tokens("g2", "j2", "r2", true))
        })
        .await
        .unwrap();
    assert!(matches!(replay, Exchange::Replayed));
    assert!(
        store
            .grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some(),
        "replay revokes"
    );
    assert_eq!(
        store.count(Table::Grants).await.unwrap(),
        1,
        "the replay wrote no grant"
    );
    let unknown = store
        .redeem_code("nope", "g3", 11, |_| {
            Ok::<_, ()>(tokens("g3", "j3", "r3", true))
        })
        .await
        .unwrap();
    assert!(matches!(unknown, Exchange::NotFound));
}

#[tokio::test]
async fn a_refresh_token_rotates_with_a_grace_window_then_its_use_revokes_the_grant() {
    let (store, _db) = store_with_user().await;
    store.insert_code(&code("h1"), None).await.unwrap();
    store
        .redeem_code("h1", "g1", 10, |_| {
            Ok::<_, ()>(tokens("g1", "j1", "r1", true))
        })
        .await
        .unwrap();
    let first = store
        .rotate_refresh_token("r1", 100, 30, |_| {
            Ok::<_, ()>(tokens("g1", "j2", "r2", false))
        })
        .await
        .unwrap();
    assert!(matches!(first, Exchange::Issued));
    // Within the grace window the same successor is written again: no second row.
    let again = store
        .rotate_refresh_token("r1", 120, 30, |_| {
            Ok::<_, ()>(tokens("g1", "j3", "r2", false))
        })
        .await
        .unwrap();
    assert!(matches!(again, Exchange::Issued));
    assert_eq!(store.count(Table::RefreshTokens).await.unwrap(), 2);
    let late = store
        .rotate_refresh_token("r1", 200, 30, |_| {
            Ok::<_, ()>(tokens("g1", "j4", "r3", false))
        })
        .await
        .unwrap();
    assert!(matches!(late, Exchange::Replayed));
    assert!(
        store
            .grant("g1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    let after = store
        .rotate_refresh_token("r2", 201, 30, |_| {
            Ok::<_, ()>(tokens("g1", "j5", "r4", false))
        })
        .await
        .unwrap();
    assert!(matches!(after, Exchange::NotFound), "the family is dead");
}

/// Both servers pointed at one database: whichever starts second stops with a message that
/// says to give each its own database, and leaves the first one's schema as it was.
#[tokio::test]
async fn a_database_holding_the_other_servers_schema_is_refused() {
    for authorization_server_first in [true, false] {
        let db = e2e::TestDatabase::new().await;
        let second = if authorization_server_first {
            Store::connect(&db.url).await.unwrap();
            resource_server::store::Store::connect(&db.url)
                .await
                .err()
                .map(|e| e.to_string())
        } else {
            resource_server::store::Store::connect(&db.url)
                .await
                .unwrap();
            Store::connect(&db.url).await.err().map(|e| e.to_string())
        };
        let message = second.expect("the second server refuses the database");
        assert!(
            message.contains("belongs to another server")
                && message.contains("each need a database of their own"),
            "{message}"
        );
        assert!(!message.contains("password"), "{message}");
    }
}
