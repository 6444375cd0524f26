//! Deployments and the ports they hold: what lets a deployed service outlive an artel restart.
//!
//! A deployment is one attempt to run a commit of a project (migration 03), plus what the
//! local deploy target needs to start it again (migration 13): the port, the directory with
//! the code, the command, the *names* of the secrets in its environment, the health path and,
//! while it runs, the process group leader's pid. At start artel reads
//! [`Store::live_deployments`] and restarts each one; the recorded pid tells it which leftover
//! process group of a crashed artel to kill first.
//!
//! Status changes follow [`DeploymentStatus::can_transition_to`]. A new deployment becomes
//! `live` only through [`Store::promote_deployment`], which in one transaction supersedes the
//! project's previous live deployment, so the unique index "one live per project" never sees
//! two. Until then the previous one keeps serving; if the new one fails,
//! [`Store::fail_deployment`] ends it `failed` or `rolled_back` and the previous one never
//! stopped being live.
//!
//! Ports are rows of `allocations` (kind `port`, no server: the local machine). A unique index
//! holds each port once among unreleased rows, so two concurrent allocations cannot get the
//! same port; [`Store::allocate_port`] also skips ports something outside artel listens on.

use super::rows::{get, name, time};
use super::{Store, StoreError};
use artel_messages::deployer::DeployTarget;
use artel_messages::dto::DeploymentDto;
use artel_messages::{DeploymentId, DeploymentStatus, ProjectId, TaskId, Timestamp};
use sqlx::postgres::PgRow;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// The constraint that holds each port once among unreleased allocations.
const PORT_HELD_ONCE: &str = "allocations_port_held_once";

/// A deployment to create, `deploying`. The caller chooses its id, so creating it twice (a
/// repeated deploy step) is recognized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    /// Its id, chosen by the deploy workflow.
    pub id: DeploymentId,
    /// The project deployed.
    pub project: ProjectId,
    /// The deploy task that makes it.
    pub task: TaskId,
    /// The commit deployed: 7 to 64 lowercase hex digits.
    pub commit: String,
    /// The directory holding the exported code, where the service starts.
    pub workdir: PathBuf,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The names of the project's secrets to set in its environment (values are read from
    /// the store at every start, never recorded here).
    pub env_names: Vec<String>,
    /// The path that must answer 2xx for the service to count as healthy, e.g. `/health`.
    pub health_path: String,
    /// Where it runs: [`DeployTarget::Local`] or [`DeployTarget::Docker`] (recorded as the
    /// `docker` server).
    pub target: DeployTarget,
}

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRecord {
    /// Its id.
    pub id: DeploymentId,
    /// The project deployed.
    pub project: ProjectId,
    /// The deploy task that made it.
    pub task: TaskId,
    /// The commit deployed.
    pub commit: String,
    /// Where it runs: [`DeployTarget::Local`] unless it names a server.
    pub target: DeployTarget,
    /// Where it is in its lifecycle.
    pub status: DeploymentStatus,
    /// Where it answers, once live.
    pub url: Option<String>,
    /// The port it listens on, once started.
    pub port: Option<u16>,
    /// The directory holding its code.
    pub workdir: Option<PathBuf>,
    /// The program and its arguments (empty when not recorded).
    pub command: Vec<String>,
    /// The names of the secrets set in its environment.
    pub env_names: Vec<String>,
    /// The path its health check asks for.
    pub health_path: String,
    /// Its process group leader while it runs.
    pub pid: Option<u32>,
    /// Why it failed or was rolled back.
    pub failure: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl DeploymentRecord {
    /// The record front doors return.
    pub fn to_dto(&self) -> DeploymentDto {
        DeploymentDto {
            id: self.id,
            project: self.project,
            task: self.task,
            commit: self.commit.clone(),
            target: self.target.clone(),
            status: self.status,
            url: self.url.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A deployment row joined with its server (if any), so the record knows its target.
const DEPLOYMENT_SELECT: &str = "SELECT d.id, d.project_id, d.task_id, d.commit_sha, d.status, \
     d.url, d.port, d.workdir, d.command, d.env_names, d.health_path, d.pid, d.failure, \
     d.created_at, d.updated_at, s.kind AS server_kind, s.host AS server_host, \
     s.ssh_user AS server_user \
     FROM deployments d LEFT JOIN servers s ON s.id = d.server_id";

fn deployment_from_row(row: &PgRow) -> Result<DeploymentRecord, StoreError> {
    let command: Option<serde_json::Value> = get(row, "command")?;
    let command = match command {
        None => Vec::new(),
        Some(value) => serde_json::from_value(value).map_err(|err| StoreError::Decode {
            what: "deployment command",
            reason: err.to_string(),
        })?,
    };
    Ok(DeploymentRecord {
        id: DeploymentId::from_uuid(get(row, "id")?),
        project: ProjectId::from_uuid(get(row, "project_id")?),
        task: TaskId::from_uuid(get(row, "task_id")?),
        commit: get(row, "commit_sha")?,
        target: target(row)?,
        status: name(row, "status")?,
        url: get(row, "url")?,
        port: get::<Option<i32>>(row, "port")?
            .map(|port| narrow(port, "deployment port"))
            .transpose()?,
        workdir: get::<Option<String>>(row, "workdir")?.map(PathBuf::from),
        command,
        env_names: get(row, "env_names")?,
        health_path: get(row, "health_path")?,
        pid: get::<Option<i32>>(row, "pid")?
            .map(|pid| narrow(pid, "deployment pid"))
            .transpose()?,
        failure: get(row, "failure")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

/// A database integer as the narrower unsigned type it stands for.
fn narrow<T: TryFrom<i32>>(value: i32, what: &'static str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Decode {
        what,
        reason: format!("{value} is out of range"),
    })
}

/// The joined server columns as a [`DeployTarget`]: no server is the local machine.
fn target(row: &PgRow) -> Result<DeployTarget, StoreError> {
    let kind: Option<String> = get(row, "server_kind")?;
    match kind.as_deref() {
        None | Some("local") => Ok(DeployTarget::Local),
        Some("docker") => Ok(DeployTarget::Docker),
        Some("ssh") => Ok(DeployTarget::Ssh {
            host: get::<Option<String>>(row, "server_host")?.unwrap_or_default(),
            user: get::<Option<String>>(row, "server_user")?.unwrap_or_default(),
        }),
        Some(other) => Err(StoreError::Decode {
            what: "server kind",
            reason: format!("unknown kind `{other}`"),
        }),
    }
}

/// Refuses a commit the `commit_sha` CHECK would refuse, with a readable error.
fn check_commit(commit: &str) -> Result<(), StoreError> {
    let hex = commit
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex && (7..=64).contains(&commit.len()) {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what: "commit",
            reason: format!("`{commit}` is not 7 to 64 lowercase hex digits"),
        })
    }
}

/// Whether something (artel or not) could listen on `127.0.0.1:port` right now.
fn bindable(port: u16) -> bool {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn not_found(id: DeploymentId) -> StoreError {
    StoreError::NotFound {
        what: "deployment",
        key: id.to_string(),
    }
}

impl Store {
    /// Creates a deployment, `deploying`, on its target. Creating the same deployment
    /// (same id, project, task and commit) again returns the stored one; reusing its id for
    /// other work is a [`StoreError::Conflict`].
    #[tracing::instrument(skip(self, new), fields(deployment = %new.id, project = %new.project))]
    pub async fn create_deployment(
        &self,
        new: &NewDeployment,
    ) -> Result<DeploymentRecord, StoreError> {
        check_commit(&new.commit)?;
        let workdir = new.workdir.to_str().ok_or_else(|| StoreError::Invalid {
            what: "deployment workdir",
            reason: format!("{} is not UTF-8", new.workdir.display()),
        })?;
        if !new.health_path.starts_with('/') {
            return Err(StoreError::Invalid {
                what: "health path",
                reason: format!("`{}` does not start with `/`", new.health_path),
            });
        }
        let server = match &new.target {
            DeployTarget::Local => None,
            DeployTarget::Docker => Some(self.docker_server().await?),
            DeployTarget::Ssh { host, .. } => {
                return Err(StoreError::Invalid {
                    what: "deploy target",
                    reason: format!("SSH hosts ({host}) are not a deploy target yet"),
                });
            }
        };
        sqlx::query(
            "INSERT INTO deployments \
             (id, project_id, task_id, commit_sha, workdir, command, env_names, health_path, \
              server_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(new.id.as_uuid())
        .bind(new.project.as_uuid())
        .bind(new.task.as_uuid())
        .bind(&new.commit)
        .bind(workdir)
        .bind(serde_json::json!(new.command))
        .bind(&new.env_names)
        .bind(&new.health_path)
        .bind(server)
        .execute(&self.pool)
        .await?;
        let stored = self
            .deployment(new.id)
            .await?
            .ok_or_else(|| not_found(new.id))?;
        if stored.project != new.project
            || stored.task != new.task
            || stored.commit != new.commit
            || stored.target != new.target
        {
            return Err(StoreError::Conflict {
                what: "deployment id",
                key: new.id.to_string(),
                detail: format!(
                    "commit {} of project {} for task {}",
                    stored.commit, stored.project, stored.task
                ),
            });
        }
        Ok(stored)
    }

    /// The id of the `servers` row standing for the Docker deploy host, created on first use.
    async fn docker_server(&self) -> Result<uuid::Uuid, StoreError> {
        let id = sqlx::query_scalar(
            "INSERT INTO servers (id, name, kind) VALUES ($1, 'docker', 'docker') \
             ON CONFLICT (name) DO UPDATE SET updated_at = servers.updated_at RETURNING id",
        )
        .bind(uuid::Uuid::now_v7())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// The deployment with this id, if any.
    #[tracing::instrument(skip(self))]
    pub async fn deployment(
        &self,
        id: DeploymentId,
    ) -> Result<Option<DeploymentRecord>, StoreError> {
        let row = sqlx::query(&format!("{DEPLOYMENT_SELECT} WHERE d.id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    /// `project`'s deployments, newest first.
    #[tracing::instrument(skip(self))]
    pub async fn deployments(
        &self,
        project: ProjectId,
    ) -> Result<Vec<DeploymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{DEPLOYMENT_SELECT} WHERE d.project_id = $1 ORDER BY d.created_at DESC, d.id DESC"
        ))
        .bind(project.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// `project`'s live deployment, if it has one.
    #[tracing::instrument(skip(self))]
    pub async fn live_deployment(
        &self,
        project: ProjectId,
    ) -> Result<Option<DeploymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "{DEPLOYMENT_SELECT} WHERE d.project_id = $1 AND d.status = 'live'"
        ))
        .bind(project.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    /// Every live deployment of every project, oldest first: what a starting artel restarts.
    #[tracing::instrument(skip(self))]
    pub async fn live_deployments(&self) -> Result<Vec<DeploymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{DEPLOYMENT_SELECT} WHERE d.status = 'live' ORDER BY d.created_at, d.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// Records that the deployment's service was started on `port`, its process group led by
    /// `pid`. Refused for a deployment that is over (failed, rolled back, superseded).
    #[tracing::instrument(skip(self))]
    pub async fn set_deployment_running(
        &self,
        id: DeploymentId,
        port: u16,
        pid: u32,
    ) -> Result<DeploymentRecord, StoreError> {
        let pid = i32::try_from(pid).map_err(|_| StoreError::Invalid {
            what: "pid",
            reason: format!("{pid} is out of range"),
        })?;
        self.record_running(id, port, Some(pid)).await
    }

    /// Records that the deployment's service was started on `port` where artel has no
    /// process of it (a container). Refused for a deployment that is over.
    #[tracing::instrument(skip(self))]
    pub async fn set_deployment_port(
        &self,
        id: DeploymentId,
        port: u16,
    ) -> Result<DeploymentRecord, StoreError> {
        self.record_running(id, port, None).await
    }

    async fn record_running(
        &self,
        id: DeploymentId,
        port: u16,
        pid: Option<i32>,
    ) -> Result<DeploymentRecord, StoreError> {
        let updated = sqlx::query(
            "UPDATE deployments SET port = $2, pid = $3, updated_at = now() \
             WHERE id = $1 AND status IN ('deploying', 'live') RETURNING id",
        )
        .bind(id.as_uuid())
        .bind(i32::from(port))
        .bind(pid)
        .fetch_optional(&self.pool)
        .await?;
        let current = self.deployment(id).await?.ok_or_else(|| not_found(id))?;
        if updated.is_none() {
            return Err(StoreError::InvalidTransition {
                what: "deployment",
                key: id.to_string(),
                from: current.status.as_str(),
                to: "running",
            });
        }
        Ok(current)
    }

    /// Forgets the deployment's process group, if it is still `pid` (a newer start may have
    /// recorded another): its service is no longer running. True if the pid was cleared.
    #[tracing::instrument(skip(self))]
    pub async fn clear_deployment_pid(
        &self,
        id: DeploymentId,
        pid: u32,
    ) -> Result<bool, StoreError> {
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(false);
        };
        let done = sqlx::query(
            "UPDATE deployments SET pid = NULL, updated_at = now() WHERE id = $1 AND pid = $2",
        )
        .bind(id.as_uuid())
        .bind(pid)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the URL the deployment answers at (e.g. after a restart on another port).
    #[tracing::instrument(skip(self))]
    pub async fn set_deployment_url(
        &self,
        id: DeploymentId,
        url: &str,
    ) -> Result<DeploymentRecord, StoreError> {
        let updated = sqlx::query(
            "UPDATE deployments SET url = $2, updated_at = now() WHERE id = $1 RETURNING id",
        )
        .bind(id.as_uuid())
        .bind(url)
        .fetch_optional(&self.pool)
        .await?;
        updated.ok_or_else(|| not_found(id))?;
        self.deployment(id).await?.ok_or_else(|| not_found(id))
    }

    /// Makes the deployment its project's live one, answering at `url`, and returns the
    /// deployment it replaced (now `superseded`), if any — all in one transaction, so there
    /// is never a moment with two live deployments or none. Promoting a deployment that is
    /// already live changes only its URL and returns `None`; promoting one that is over is a
    /// [`StoreError::InvalidTransition`].
    #[tracing::instrument(skip(self))]
    pub async fn promote_deployment(
        &self,
        id: DeploymentId,
        url: &str,
    ) -> Result<Option<DeploymentRecord>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let project: uuid::Uuid =
            sqlx::query_scalar("SELECT project_id FROM deployments WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| not_found(id))?;
        // One promotion per project at a time: the second waits and then sees the first's
        // result as the live one it supersedes.
        sqlx::query("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE")
            .bind(project)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query(&format!(
            "{DEPLOYMENT_SELECT} WHERE d.id = $1 FOR UPDATE OF d"
        ))
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        let current = deployment_from_row(&row)?;
        if current.status == DeploymentStatus::Live {
            sqlx::query("UPDATE deployments SET url = $2, updated_at = now() WHERE id = $1")
                .bind(id.as_uuid())
                .bind(url)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        check_transition(&current, DeploymentStatus::Live)?;
        let previous: Option<uuid::Uuid> = sqlx::query_scalar(
            "UPDATE deployments SET status = 'superseded', updated_at = now() \
             WHERE project_id = $1 AND status = 'live' RETURNING id",
        )
        .bind(project)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deployments SET status = 'live', url = $2, failure = NULL, \
             updated_at = now() WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(url)
        .execute(&mut *tx)
        .await?;
        let previous = match previous {
            Some(previous) => {
                let row = sqlx::query(&format!("{DEPLOYMENT_SELECT} WHERE d.id = $1"))
                    .bind(previous)
                    .fetch_one(&mut *tx)
                    .await?;
                Some(deployment_from_row(&row)?)
            }
            None => None,
        };
        tx.commit().await?;
        Ok(previous)
    }

    /// Ends a deployment that did not come up: `failed` (nothing to restore) or
    /// `rolled_back` (the previous live one keeps serving), with the reason. Ending it again
    /// with the same status changes nothing; any other status is [`StoreError::Invalid`].
    #[tracing::instrument(skip(self, failure))]
    pub async fn fail_deployment(
        &self,
        id: DeploymentId,
        status: DeploymentStatus,
        failure: &str,
    ) -> Result<DeploymentRecord, StoreError> {
        if !matches!(
            status,
            DeploymentStatus::Failed | DeploymentStatus::RolledBack
        ) {
            return Err(StoreError::Invalid {
                what: "deployment failure status",
                reason: format!("`{status}` is neither `failed` nor `rolled_back`"),
            });
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "{DEPLOYMENT_SELECT} WHERE d.id = $1 FOR UPDATE OF d"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found(id))?;
        let current = deployment_from_row(&row)?;
        if current.status == status {
            tx.commit().await?;
            return Ok(current);
        }
        check_transition(&current, status)?;
        sqlx::query(
            "UPDATE deployments SET status = $2, failure = $3, updated_at = now() WHERE id = $1",
        )
        .bind(id.as_uuid())
        .bind(status.as_str())
        .bind(failure)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.deployment(id).await?.ok_or_else(|| not_found(id))
    }

    /// A port on the local machine for `deployment` of `project`, from `range`: the one the
    /// deployment already holds there if it can still be bound, else the lowest port not held
    /// by any unreleased allocation and free on 127.0.0.1 right now. A port another allocation
    /// takes concurrently is skipped. No port left is [`StoreError::Exhausted`] (retryable:
    /// ports are released as deployments stop).
    #[tracing::instrument(skip(self))]
    pub async fn allocate_port(
        &self,
        project: ProjectId,
        deployment: DeploymentId,
        range: RangeInclusive<u16>,
    ) -> Result<u16, StoreError> {
        let (low, high) = (i32::from(*range.start()), i32::from(*range.end()));
        let held: Vec<(i32, Option<uuid::Uuid>)> = sqlx::query_as(
            "SELECT port, deployment_id FROM allocations WHERE kind = 'port' \
             AND server_id IS NULL AND released_at IS NULL AND port BETWEEN $1 AND $2",
        )
        .bind(low)
        .bind(high)
        .fetch_all(&self.pool)
        .await?;
        let own = held
            .iter()
            .filter(|(_, owner)| *owner == Some(deployment.as_uuid()))
            .filter_map(|(port, _)| u16::try_from(*port).ok())
            .min();
        if let Some(port) = own {
            if bindable(port) {
                return Ok(port);
            }
            tracing::warn!(port, "the deployment's port is taken by someone else");
        }
        for port in range.clone() {
            if held.iter().any(|(held, _)| *held == i32::from(port)) || !bindable(port) {
                continue;
            }
            let inserted = sqlx::query(
                "INSERT INTO allocations (kind, project_id, deployment_id, port) \
                 VALUES ('port', $1, $2, $3)",
            )
            .bind(project.as_uuid())
            .bind(deployment.as_uuid())
            .bind(i32::from(port))
            .execute(&self.pool)
            .await
            .map_err(StoreError::from);
            match inserted {
                Ok(_) => {
                    if own.is_some() {
                        self.release_ports_except(deployment, port).await?;
                    }
                    return Ok(port);
                }
                Err(err) if err.constraint() == Some(PORT_HELD_ONCE) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Exhausted {
            what: "port",
            detail: format!(
                "every port of {}..={} is in use",
                range.start(),
                range.end()
            ),
        })
    }

    /// Releases every port `deployment` holds (kept as released rows, for the record).
    #[tracing::instrument(skip(self))]
    pub async fn release_ports(&self, deployment: DeploymentId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE allocations SET released_at = now() WHERE deployment_id = $1 \
             AND kind = 'port' AND released_at IS NULL",
        )
        .bind(deployment.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases the ports `deployment` holds other than `keep`.
    async fn release_ports_except(
        &self,
        deployment: DeploymentId,
        keep: u16,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE allocations SET released_at = now() WHERE deployment_id = $1 \
             AND kind = 'port' AND released_at IS NULL AND port <> $2",
        )
        .bind(deployment.as_uuid())
        .bind(i32::from(keep))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Refuses a status change the catalog's transition rules refuse.
fn check_transition(current: &DeploymentRecord, to: DeploymentStatus) -> Result<(), StoreError> {
    if current.status.can_transition_to(to) {
        Ok(())
    } else {
        Err(StoreError::InvalidTransition {
            what: "deployment",
            key: current.id.to_string(),
            from: current.status.as_str(),
            to: to.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_short_or_long_lowercase_hex() {
        assert!(check_commit("0123abc").is_ok());
        assert!(check_commit(&"f".repeat(64)).is_ok());
        for bad in ["012345", "0123ABC", "0123abz", &"a".repeat(65)] {
            assert!(
                matches!(check_commit(bad), Err(StoreError::Invalid { .. })),
                "{bad}"
            );
        }
    }
}
