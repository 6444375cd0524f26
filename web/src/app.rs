//! Assembles a running artel from [`Settings`]: the database (managed or given), the store,
//! readiness probes and the supervision tree with its front doors. `main` and the system tests
//! start artel the same way, and [`App::start`] reports the address it bound, so tests can
//! ask for port 0.

use crate::gateways::http::{HttpGateway, HttpState};
use anyhow::Context as _;
use artel_actors::health::{HealthMonitor, PostgresProbe, Probe, Readiness, RedisProbe};
use artel_actors::managed_postgres::ManagedPostgres;
use artel_actors::settings::Settings;
use artel_actors::store::{MasterKey, Store};
use artel_supervisors::{ChildSpec, ExitReason, Registry, Supervisor, SupervisorHandle};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// How often readiness probes run.
const HEALTH_PERIOD: Duration = Duration::from_secs(2);

/// A running artel.
pub struct App {
    tree: SupervisorHandle,
    store: Store,
    managed: Option<ManagedPostgres>,
    address: SocketAddr,
}

impl App {
    /// Starts everything; on return the HTTP front door is listening.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data dir {}; set ARTEL_DATA_DIR or data_dir in artel.toml",
                settings.data_dir.display()
            )
        })?;
        let (url, managed) = match &settings.database.url {
            Some(url) => (url.expose().to_owned(), None),
            None => {
                let managed = ManagedPostgres::locate(&settings.data_dir)?;
                tracing::info!(dir = %managed.dir().display(), "no DATABASE_URL: starting the managed PostgreSQL");
                (managed.start().await?, Some(managed))
            }
        };
        let store = Store::connect(&url)
            .await
            .context("cannot connect to PostgreSQL")?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        let store = store.with_master_key(master_key(&settings)?);

        let readiness = Readiness::default();
        let mut probes: Vec<Box<dyn Probe>> = vec![Box::new(PostgresProbe(store.clone()))];
        if let Some(redis) = &settings.redis.url {
            let client = redis::Client::open(redis.expose())
                .context("REDIS_URL / redis.url is not a Redis URL")?;
            probes.push(Box::new(RedisProbe(client)));
        }
        let probes = Arc::new(probes);

        let listener = TcpListener::bind(&settings.http.listen).with_context(|| {
            format!(
                "cannot listen on {}; is another artel running? Set ARTEL_HTTP__LISTEN to another address",
                settings.http.listen
            )
        })?;
        let address = listener.local_addr()?;

        let (_health, health) = ChildSpec::actor("health", {
            let (probes, readiness) = (probes.clone(), readiness.clone());
            move || HealthMonitor::new(probes.clone(), readiness.clone(), HEALTH_PERIOD)
        });
        let root = Supervisor::new("artel");
        let state = HttpState {
            registry: Registry::new(),
            readiness: readiness.clone(),
        };
        let (_http, http) = ChildSpec::actor("http", {
            let state = state.clone();
            move || HttpGateway::new(listener.try_clone(), state.clone())
        });
        let tree = root
            .child(health.role("health"))
            .child(
                Supervisor::new("gateways")
                    .child(http.role("gateway"))
                    .into_child(),
            )
            .start_in(state.registry.clone())
            .await;
        if tree.is_finished() {
            anyhow::bail!("artel's supervision tree failed to start; see the log above");
        }
        Ok(Self {
            tree,
            store,
            managed,
            address,
        })
    }

    /// The address the HTTP front door listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Waits until the tree gives up on its own (it only does by escalation).
    pub async fn failed(&mut self) -> ExitReason {
        self.tree.finished().await
    }

    /// Stops the tree in reverse start order, closes the pool and stops the managed database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let reason = self.tree.shutdown().await;
        tracing::info!(%reason, "supervision tree stopped");
        self.store.close().await;
        if let Some(managed) = self.managed {
            managed.stop().await?;
            tracing::info!("managed PostgreSQL stopped");
        }
        Ok(())
    }
}

/// The master key from settings, or the key file in the data dir (created on first start).
fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(text) = &settings.secrets.master_key {
        return MasterKey::parse(text.expose()).context("ARTEL_MASTER_KEY / secrets.master_key");
    }
    let path = settings
        .secrets
        .master_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("master.key"));
    MasterKey::load_or_create(&path).context("the master key file")
}
