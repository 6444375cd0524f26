//! The role actor: one catalog message in, the role's logic, the reply out — and a failure
//! that a retry can fix restarts the role by its child spec.
//!
//! Every role of a task (Analyst, Scaffolder, Developer, Tester, EnvAnalyzer, SecretResolver) is a
//! [`Role<M>`]: an actor that answers the one message `M` its role handles, by running the
//! role's function ([`RoleWork::work`]) with the [`Crew`]. A workflow sends it the message and
//! awaits the reply under a deadline; the actor lives under the task's subtree
//! (`workflows/tasks/<kind>/<task>/<role>`), so the tree shows who is working on what.
//!
//! **Retries are restart policies.** When the work fails with a retryable [`Failure`], the
//! actor replies with it *and fails its run*: its child spec restarts it after its backoff,
//! and the workflow's next attempt waits in the role's mailbox meanwhile — the wait between
//! attempts is the role's backoff, not a loop in role code. A panic or a handler past its
//! deadline is the same kind of failure, caught by the supervision runtime: the caller hears
//! `Panicked` or `Stuck` and the actor restarts under the same spec. A fatal failure is only
//! replied: the role stays up, and the workflow ends the task with it.

use super::Crew;
use artel_messages::{Classify, Failure, Request};
use artel_supervisors::{Actor, CallError, Context, Handler};
use futures_util::future::BoxFuture;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// A catalog message a role answers, and how it does its work.
pub trait RoleWork: Request<Reply = Result<Self::Output, Failure>> + Sized {
    /// What the work answers on success.
    type Output: Send + 'static;
    /// The role's name in the tree (`developer`).
    const ROLE: &'static str;
    /// Does the work.
    fn work(self, crew: &Crew) -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// Runs before every role's work, given the role's name: the seam for fault injection in
/// whole-system tests (a role that panics once, one that hangs past its deadline). `None` in
/// production.
pub type RoleHook = Arc<dyn Fn(&'static str) -> BoxFuture<'static, ()> + Send + Sync>;

/// The actor of one role, answering `M`.
pub struct Role<M> {
    crew: Crew,
    message: PhantomData<fn(M)>,
}

impl<M> Role<M> {
    /// A role working with `crew`.
    pub fn new(crew: Crew) -> Self {
        Self {
            crew,
            message: PhantomData,
        }
    }
}

impl<M: RoleWork> Actor for Role<M> {}

impl<M: RoleWork> Handler<M> for Role<M> {
    async fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> M::Reply {
        if let Some(hook) = &self.crew.hook {
            hook(M::ROLE).await;
        }
        let result = msg.work(&self.crew).await;
        if let Err(failure) = &result
            && failure.is_retryable()
        {
            // The restart after this role's backoff is the retry.
            ctx.fail(failure.clone());
        }
        result
    }
}

/// What a call to a role under a deadline came to: `Ok` with the role's own answer (its
/// result or failure), or `Err` with why no answer came — a panic, a handler past its
/// deadline, a stopped actor, or nothing within `wait` — in words naming `role`.
pub fn answer_of<T>(
    role: &str,
    wait: Duration,
    reply: Result<Result<Result<T, Failure>, CallError>, tokio::time::error::Elapsed>,
) -> Result<Result<T, Failure>, Failure> {
    match reply {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(CallError::Panicked(message))) => Err(Failure::retryable(format!(
            "the {role} panicked ({message}) and was restarted"
        ))),
        Ok(Err(CallError::Stuck(deadline))) => Err(Failure::retryable(format!(
            "the {role} was stuck past its {}s deadline and was restarted",
            deadline.as_secs()
        ))),
        Ok(Err(err)) => Err(Failure {
            class: err.class(),
            reason: format!("the {role} did not answer: {err}"),
            retry_after_ms: None,
        }),
        Err(_) => Err(Failure::retryable(format!(
            "the {role} gave no answer within {}s",
            wait.as_secs()
        ))),
    }
}

mod works {
    //! Which function of which role answers each message.
    use super::RoleWork;
    use crate::roles::{
        Crew, analyst, developer, env_analyzer, scaffolder, secret_resolver, tester,
    };
    use artel_messages::Failure;
    use artel_messages::developer::{Develop, Developed};
    use artel_messages::env_analyzer::{AnalyzeEnv, EnvAnalysis};
    use artel_messages::scaffolder::{Scaffold, Scaffolded};
    use artel_messages::secret_resolver::{ResolveSecrets, SecretResolution};
    use artel_messages::spec::{SpecWritten, WriteSpec};
    use artel_messages::tester::{RunTests, TestReport};

    impl RoleWork for WriteSpec {
        type Output = SpecWritten;
        const ROLE: &'static str = "analyst";
        async fn work(self, _crew: &Crew) -> Result<SpecWritten, Failure> {
            Ok(analyst::write(self))
        }
    }

    impl RoleWork for Scaffold {
        type Output = Scaffolded;
        const ROLE: &'static str = "scaffolder";
        async fn work(self, crew: &Crew) -> Result<Scaffolded, Failure> {
            scaffolder::scaffold(crew, self).await
        }
    }

    impl RoleWork for Develop {
        type Output = Developed;
        const ROLE: &'static str = "developer";
        async fn work(self, crew: &Crew) -> Result<Developed, Failure> {
            developer::develop(crew, self).await
        }
    }

    impl RoleWork for RunTests {
        type Output = TestReport;
        const ROLE: &'static str = "tester";
        async fn work(self, crew: &Crew) -> Result<TestReport, Failure> {
            tester::run_tests(crew, self).await
        }
    }

    impl RoleWork for AnalyzeEnv {
        type Output = EnvAnalysis;
        const ROLE: &'static str = "env-analyzer";
        async fn work(self, crew: &Crew) -> Result<EnvAnalysis, Failure> {
            env_analyzer::analyze(crew, self).await
        }
    }

    impl RoleWork for ResolveSecrets {
        type Output = SecretResolution;
        const ROLE: &'static str = "secret-resolver";
        async fn work(self, crew: &Crew) -> Result<SecretResolution, Failure> {
            secret_resolver::resolve(crew, self).await
        }
    }
}
