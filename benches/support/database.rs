//! A fresh, migrated database on the test Postgres for one bench run, dropped at the end.
//!
//! Shared by the benches that need Postgres (`#[path]`-included: each bench is its own crate).
//! The server is `ARTEL_TEST_DATABASE_URL` (default: the one `. .ci/services.sh` starts).

use artel_actors::store::Store;
use sqlx::{Connection, Executor, PgConnection};

const FALLBACK_URL: &str = "postgres://postgres@127.0.0.1:54329/postgres";

/// A fresh database: the store on it, the admin URL and its name (for [`drop_database`]).
pub async fn fresh_database() -> (Store, String, String) {
    let admin = std::env::var("ARTEL_TEST_DATABASE_URL").unwrap_or_else(|_| FALLBACK_URL.into());
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "no Postgres at {admin} ({e}); set ARTEL_TEST_DATABASE_URL or run `. .ci/services.sh`"
        )
    });
    let name = format!("artel_bench_{}", uuid::Uuid::new_v4().simple());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the bench database");
    conn.close().await.ok();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let store = Store::connect(&format!("{base}/{name}"))
        .await
        .expect("connect to the bench database");
    store.migrate().await.expect("migrate the bench database");
    (store, admin, name)
}

/// Drops what [`fresh_database`] made.
pub async fn drop_database(admin: &str, name: &str) {
    if let Ok(mut conn) = PgConnection::connect(admin).await {
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}
