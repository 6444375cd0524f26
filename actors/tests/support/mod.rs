//! Shared by actors' integration tests: a fresh, migrated database per test on the Postgres
//! that `.ci/services.sh` starts.

#![allow(dead_code)]

pub mod llm_peer;
pub mod python_service;

use artel_actors::store::{NewTask, Store};
use artel_messages::{ProjectId, TaskId, TaskKind};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
use std::str::FromStr;

const FALLBACK_URL: &str = "postgres://postgres@127.0.0.1:54329/postgres";

/// A freshly created and migrated database, dropped (best effort) when the test ends.
pub struct TestDb {
    pub store: Store,
    pub admin: PgConnectOptions,
    pub name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let url = std::env::var("ARTEL_TEST_DATABASE_URL").unwrap_or_else(|_| FALLBACK_URL.into());
        let admin = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|err| panic!("ARTEL_TEST_DATABASE_URL is not a Postgres URL: {err}"));
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "cannot reach the test Postgres at {url} ({err}); \
                 start it with `. .ci/services.sh` from the repository root"
                )
            });
        let name = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let store = Self::connect(&admin, &name).await;
        store
            .migrate()
            .await
            .expect("migrations apply to an empty database");
        Self { store, admin, name }
    }

    pub async fn connect(admin: &PgConnectOptions, name: &str) -> Store {
        Store::connect_with(admin.clone().database(name))
            .await
            .expect("connect to the test database")
    }

    /// The URL of this database, for a child process.
    pub fn url(&self) -> String {
        let url = std::env::var("ARTEL_TEST_DATABASE_URL").unwrap_or_else(|_| FALLBACK_URL.into());
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
        format!("{base}/{}", self.name)
    }
}

impl TestDb {
    /// A user owning a project named `name` with one task of `kind`: what most tests need
    /// before they can record anything.
    pub async fn project_with_task(&self, name: &str, kind: TaskKind) -> (ProjectId, TaskId) {
        let user = self.store.create_user("ada", None).await.unwrap();
        let project = self
            .store
            .create_project(user.id, name, "made by a test")
            .await
            .unwrap()
            .id;
        let task = self
            .store
            .create_task(&NewTask {
                id: TaskId::new(),
                project,
                kind,
                description: format!("the {kind} task of {name}"),
                session: None,
            })
            .await
            .unwrap()
            .id;
        (project, task)
    }
}

/// Fails the test with what to do when no Docker daemon answers.
pub fn require_docker() {
    let info = std::process::Command::new("docker").arg("info").output();
    assert!(
        info.is_ok_and(|o| o.status.success()),
        "no Docker daemon answers: `. .ci/services.sh` installs docker.io, starts dockerd \
         and builds the worker image"
    );
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Best effort, off the test's runtime (which may be shutting down).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}
