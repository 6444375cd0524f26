//! The managed local PostgreSQL, for real: initdb, start, reuse, stop, restart with data kept.

use artel_actors::managed_postgres::ManagedPostgres;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn psql(pg: &ManagedPostgres, sql: &str) -> String {
    let out = Command::new("psql")
        .arg("-h")
        .arg(pg.dir().join("run"))
        .args(["-p", "5432", "-U", "postgres", "-d", "artel", "-tAc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn initializes_starts_reuses_stops_and_keeps_data() {
    let root = std::env::temp_dir().join(format!("artel-managed-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // The server may run as another user: it must be able to reach the data dir.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();

    let pg = ManagedPostgres::locate(&root).expect("server binaries are installed");
    let url = pg
        .start()
        .await
        .expect("first start initializes and starts");
    assert!(url.starts_with("postgres://postgres@localhost:5432/artel?host="));
    assert!(pg.is_ready().await);
    psql(
        &pg,
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)",
    );

    // A second start (another artel process) reuses the running cluster.
    let again = ManagedPostgres::locate(&root).unwrap();
    assert_eq!(again.start().await.unwrap(), url);

    pg.stop().await.unwrap();
    assert!(!pg.is_ready().await);
    pg.start().await.expect("restarts the existing cluster");
    assert_eq!(psql(&pg, "SELECT v FROM kept"), "42");
    pg.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
