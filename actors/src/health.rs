//! Readiness: is every part artel depends on reachable right now?
//!
//! A [`HealthMonitor`] actor probes each dependency (Postgres always; Redis and Docker when
//! configured) on a timer and keeps the latest [`ReadinessReport`] where `/health/ready` and
//! operators read it. When a dependency goes away it says so once, clearly, at `error`
//! ("work that needs it pauses until it returns"), and once more when it is back — the work
//! itself pauses and resumes through the supervisors' restart policies, not here.

use artel_messages::{Failure, Request, Timestamp};
use artel_supervisors::{Actor, Context, Handler};
use futures_util::future::BoxFuture;
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One dependency to check.
pub trait Probe: Send + Sync + 'static {
    /// Its name in the report (`postgres`, `redis`, …).
    fn name(&self) -> &'static str;
    /// `Ok` when it answers; `Err` says what is wrong.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// The latest result of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Whether it answered.
    pub ok: bool,
    /// What is wrong, when it did not.
    pub error: Option<String>,
    /// Since when it has been in this state.
    pub since: Timestamp,
}

/// Readiness of the whole process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// True when every check is ok (and at least one round has run).
    pub ready: bool,
    /// Each dependency by name.
    pub checks: BTreeMap<&'static str, Check>,
}

/// Shared, always-current readiness (cheap to clone).
#[derive(Clone, Default)]
pub struct Readiness(Arc<RwLock<BTreeMap<&'static str, Check>>>);

impl Readiness {
    /// The current report. Not ready until every probe has answered once.
    pub fn report(&self) -> ReadinessReport {
        let checks = self.0.read().clone();
        ReadinessReport {
            ready: !checks.is_empty() && checks.values().all(|c| c.ok),
            checks,
        }
    }

    /// Records one probe result; returns true when the state changed.
    fn record(&self, name: &'static str, result: Result<(), String>) -> bool {
        let mut checks = self.0.write();
        let ok = result.is_ok();
        let changed = checks.get(name).is_none_or(|c| c.ok != ok);
        let since = match checks.get(name) {
            Some(c) if !changed => c.since,
            _ => Timestamp::now(),
        };
        checks.insert(
            name,
            Check {
                ok,
                error: result.err(),
                since,
            },
        );
        changed
    }
}

/// Probes every dependency each `period` and keeps [`Readiness`] current.
pub struct HealthMonitor {
    probes: Arc<Vec<Box<dyn Probe>>>,
    readiness: Readiness,
    period: Duration,
}

impl HealthMonitor {
    /// A monitor over `probes`, writing to `readiness`.
    pub fn new(probes: Arc<Vec<Box<dyn Probe>>>, readiness: Readiness, period: Duration) -> Self {
        Self {
            probes,
            readiness,
            period,
        }
    }

    async fn probe_all(&self) {
        for probe in self.probes.iter() {
            let result =
                match tokio::time::timeout(self.period.max(Duration::from_secs(1)), probe.check())
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {:?}", self.period)),
                };
            let failed = result.as_ref().err().cloned();
            if self.readiness.record(probe.name(), result) {
                match failed {
                    Some(error) => tracing::error!(
                        dependency = probe.name(),
                        %error,
                        "{} is unreachable; work that needs it pauses until it returns",
                        probe.name()
                    ),
                    None => {
                        tracing::info!(dependency = probe.name(), "{} is reachable", probe.name())
                    }
                }
            }
        }
    }
}

/// "Probe now" (sent by the monitor's own timer).
#[derive(Debug)]
pub struct ProbeNow;
impl Request for ProbeNow {
    type Reply = ();
}

impl Actor for HealthMonitor {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.probe_all().await;
        ctx.every(self.period, || ProbeNow);
        Ok(())
    }
}

impl Handler<ProbeNow> for HealthMonitor {
    async fn handle(&mut self, _msg: ProbeNow, _ctx: &mut Context<Self>) {
        self.probe_all().await;
    }
}

/// Postgres answers `SELECT 1`.
pub struct PostgresProbe(pub crate::store::Store);

impl Probe for PostgresProbe {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            sqlx::query("SELECT 1")
                .execute(self.0.pool())
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

/// Redis answers `PING`.
pub struct RedisProbe(pub redis::Client);

impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut conn = self
                .0
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_every_probe_answered_and_all_ok() {
        let readiness = Readiness::default();
        assert!(!readiness.report().ready);
        assert!(readiness.record("postgres", Ok(())));
        assert!(readiness.report().ready);
        assert!(!readiness.record("postgres", Ok(())), "no change, no news");
        assert!(readiness.record("redis", Err("connection refused".into())));
        let report = readiness.report();
        assert!(!report.ready);
        assert_eq!(
            report.checks["redis"].error.as_deref(),
            Some("connection refused")
        );
    }
}
