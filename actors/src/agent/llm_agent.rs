//! The built-in agent (`agent.kind = llm`): artel's own tool-calling loop.
//!
//! The loop runs in the Developer, on the host, with the provider's key; only the tools run in
//! the task's worker ([`tools`]). Each turn it checks the task's budget (turns, and USD
//! against what was spent plus the worst case of the next call), asks the model, records the
//! call in `llm_requests` (which the usage API and `/metrics` read), runs the tool calls, masks and truncates what
//! they printed ([`observe`]), and journals every message in `agent_turns` before going on.
//!
//! - **Durable:** a restarted Developer rebuilds the conversation from the journal without
//!   asking the model again, replays the journaled tool calls since artel's last commit in the
//!   fresh checkout (so the files are as the model left them), and answers a call left
//!   without a result "interrupted".
//! - **Stuck** ([`stuck`]): the first hit of a pattern warns the model; the second pauses the
//!   task for a human, saying what it was stuck on.
//! - **Context** ([`history`]): on an overflow the loop sends a condensed view.
//! - **Budgets:** reached, the task pauses: "spent $X of $Y; approve $Z more or cancel".
//!   When the user resumes the task (their "yes"), the agent raises the budget by what it
//!   asked for and goes on.
//! - **Rework:** when the tests fail after `finish`, their output is the next message of the
//!   same conversation.
//!
//! artel, not the model, commits: after `finish` (or a pause) the loop commits whatever the
//! model left in the checkout.

pub mod history;
pub mod observe;
pub mod stuck;
pub mod tools;

use crate::llm::budget::{self, Caps, Scope};
use crate::llm::cost;
use crate::llm::{LlmClient, LlmError, Message, Request, Role, ToolResult};
use crate::roles::workspace::Checkout;
use crate::settings::{AgentSettings, LlmSettings, ModelPrice};
use crate::store::{LlmRequestRow, Store};
use artel_messages::{Classify, Failure, ProjectId, SecretValue, TaskId};
use observe::Masker;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tools::{Observed, Toolbox};

/// The role name the agent's calls are recorded under.
pub const ROLE: &str = "Developer";

/// Messages of the tail kept by the first condensing; each further overflow halves it.
const FIRST_KEEP: usize = 24;

/// The configured agent.
#[derive(Debug)]
pub struct LlmAgent {
    client: LlmClient,
    price: Option<ModelPrice>,
    caps: Caps,
    turns: u32,
    tool_timeout: Duration,
    max_observation_chars: usize,
    max_output_tokens: u32,
    api_key: Option<SecretValue>,
}

/// What the Developer asks the agent to do.
pub struct Assignment<'a> {
    /// The store (journal, accounting, budgets, secrets).
    pub store: &'a Store,
    /// The project.
    pub project: ProjectId,
    /// The task.
    pub task: TaskId,
    /// The worker's checkout of the task branch.
    pub checkout: &'a Checkout,
    /// The request, in the user's words.
    pub description: &'a str,
    /// The spec and its API contract, when the Analyst made one.
    pub spec: Option<String>,
    /// The failing tests' output, in the rework loop.
    pub rework: Option<&'a str>,
    /// What the user said.
    pub guidance: Option<&'a str>,
}

/// How a session ended; either way artel committed what the model left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The model called `finish` with this summary.
    Finished(String),
    /// The task needs a human: a budget was reached or the model was stuck.
    Paused(String),
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum Entry {
    /// A message of the conversation.
    Message {
        /// The message.
        message: Message,
    },
    /// artel's warning that the model looks stuck (sent as a user message).
    Warning {
        /// The words.
        text: String,
    },
    /// The task paused for a human.
    Paused {
        /// Why, as the user was told.
        reason: String,
        /// Which cap resuming raises (journals from before project and daily caps: the
        /// task's).
        #[serde(default)]
        raise_scope: Scope,
        /// What resuming approves.
        raise_micro_usd: u64,
        /// Turns resuming approves.
        raise_turns: u32,
    },
    /// The task was resumed after a pause (the raise is applied).
    Resumed,
    /// artel committed the checkout.
    Committed,
}

impl Entry {
    fn message(&self) -> Option<Message> {
        match self {
            Self::Message { message } => Some(message.clone()),
            Self::Warning { text } => Some(Message::user(text.clone())),
            _ => None,
        }
    }

    /// A point after which the stuck watch starts afresh.
    fn resets_watch(&self) -> bool {
        matches!(
            self,
            Self::Warning { .. } | Self::Paused { .. } | Self::Resumed | Self::Committed
        )
    }
}

/// The task's journal, as loaded and as it grows.
struct Journal<'a> {
    store: &'a Store,
    task: TaskId,
    entries: Vec<Entry>,
}

impl<'a> Journal<'a> {
    async fn load(store: &'a Store, task: TaskId) -> Result<Self, Failure> {
        let rows = store.agent_turns(task).await.map_err(|e| e.to_failure())?;
        let entries = rows
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<Entry>, _>>()
            .map_err(|e| Failure::fatal(format!("the agent's journal is unreadable: {e}")))?;
        Ok(Self {
            store,
            task,
            entries,
        })
    }

    async fn push(&mut self, entry: Entry) -> Result<(), Failure> {
        let json = serde_json::to_value(&entry)
            .map_err(|e| Failure::fatal(format!("cannot journal a turn: {e}")))?;
        self.store
            .append_agent_turn(self.task, self.entries.len(), &json)
            .await
            .map_err(|e| e.to_failure())?;
        self.entries.push(entry);
        Ok(())
    }

    async fn say(&mut self, message: Message) -> Result<(), Failure> {
        self.push(Entry::Message { message }).await
    }

    fn messages(&self) -> Vec<Message> {
        self.entries.iter().filter_map(Entry::message).collect()
    }

    /// The messages since the stuck watch last started, and whether that start was a warning.
    fn watched(&self) -> (Vec<Message>, bool) {
        let start = self.entries.iter().rposition(Entry::resets_watch);
        let warned = start.is_some_and(|i| matches!(self.entries[i], Entry::Warning { .. }));
        let from = start.map_or(0, |i| i + 1);
        (
            self.entries[from..]
                .iter()
                .filter_map(Entry::message)
                .collect(),
            warned,
        )
    }

    fn turns(&self) -> u32 {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Message { message } if message.role == Role::Assistant))
            .count() as u32
    }
}

impl LlmAgent {
    /// The agent `[agent]` and `[llm]` configure. With a USD budget, a model without a price
    /// is refused: the budget could not be kept.
    pub fn new(
        client: LlmClient,
        agent: &AgentSettings,
        llm: &LlmSettings,
    ) -> Result<Self, Failure> {
        let price = llm.prices.get(client.model()).cloned();
        if agent
            .budget_usd
            .is_some_and(|usd| !(usd.is_finite() && usd > 0.0))
        {
            return Err(Failure::fatal(
                "agent.budget_usd must be a positive amount of USD",
            ));
        }
        let caps = Caps::from_settings(agent.budget_usd, llm);
        if caps.any() && price.is_none() {
            return Err(Failure::fatal(format!(
                "the Developer has a budget ({}) but the model {:?} has no price: add \
                 [llm.prices.\"{}\"] with input and output USD per million tokens",
                caps.settings().join(", "),
                client.model(),
                client.model()
            )));
        }
        Ok(Self {
            client,
            price,
            caps,
            turns: agent.max_turns.max(1),
            tool_timeout: Duration::from_secs(agent.tool_timeout_secs.max(1)),
            max_observation_chars: agent.max_observation_chars.max(200),
            max_output_tokens: llm.max_output_tokens,
            api_key: llm.api_key.clone(),
        })
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        self.client.model()
    }

    /// Works on `job` until the model finishes or the task needs a human, then commits.
    pub async fn run(&self, job: &Assignment<'_>) -> Result<Outcome, Failure> {
        let mut journal = Journal::load(job.store, job.task).await?;
        let client = self.client_for(job).await?;
        let masker = self.masker(job, &client).await?;
        let mut tools = Toolbox::open(
            job.checkout,
            masker.clone(),
            self.max_observation_chars,
            self.tool_timeout,
        )
        .await?;
        let result = self
            .drive(&client, job, &mut journal, &mut tools, &masker)
            .await;
        let result = match result {
            Ok(outcome) => {
                let message = match &outcome {
                    Outcome::Finished(summary) => first_line(summary, "the LLM agent's work"),
                    Outcome::Paused(_) => "Work in progress (the LLM agent paused)".to_owned(),
                };
                match tools.commit(&message).await {
                    Ok(()) => journal.push(Entry::Committed).await.map(|()| outcome),
                    Err(failure) => Err(failure),
                }
            }
            Err(failure) => Err(failure),
        };
        tools.close().await;
        result
    }

    /// The configured client, with the project owner's own provider key when they stored
    /// one (the system key otherwise).
    async fn client_for(&self, job: &Assignment<'_>) -> Result<LlmClient, Failure> {
        let owner = job
            .store
            .project_owner(job.project)
            .await
            .map_err(|e| e.to_failure())?;
        let Some(owner) = owner else {
            return Ok(self.client.clone());
        };
        let key = job
            .store
            .reveal_user_llm_key(owner, self.client.provider())
            .await
            .map_err(|e| e.to_failure())?;
        Ok(match key {
            Some(key) => self.client.with_api_key(key),
            None => self.client.clone(),
        })
    }

    /// Every resolved secret of the project, and the provider keys.
    async fn masker(&self, job: &Assignment<'_>, client: &LlmClient) -> Result<Masker, Failure> {
        let mut values: Vec<String> = self
            .api_key
            .iter()
            .chain(client.api_key())
            .map(|k| k.expose().to_owned())
            .collect();
        let names = job
            .store
            .secret_names(job.project)
            .await
            .map_err(|e| e.to_failure())?;
        for name in names {
            let value = job
                .store
                .reveal_secret(job.project, &name)
                .await
                .map_err(|e| e.to_failure())?;
            values.push(value.expose().to_owned());
        }
        Ok(Masker::new(values))
    }

    async fn drive(
        &self,
        client: &LlmClient,
        job: &Assignment<'_>,
        journal: &mut Journal<'_>,
        tools: &mut Toolbox,
        masker: &Masker,
    ) -> Result<Outcome, Failure> {
        if journal.entries.is_empty() {
            journal.say(Message::system(system_prompt())).await?;
            journal
                .say(Message::user(masker.mask(&first_prompt(job))))
                .await?;
        } else {
            self.resume(job, journal, tools, masker).await?;
        }
        let mut keep: Option<usize> = None;
        loop {
            let raise = job
                .store
                .budget_raise(job.task)
                .await
                .map_err(|e| e.to_failure())?;
            let turns = self.turns + raise.turns;
            if journal.turns() >= turns {
                let reason = format!(
                    "the Developer's model used {} of its {turns} turns; approve {} more turns \
                     or cancel",
                    journal.turns(),
                    self.turns
                );
                return pause(journal, reason, Scope::Task, 0, self.turns).await;
            }
            let messages = journal.messages();
            let messages = match keep {
                Some(n) => history::condense(&messages, n).unwrap_or(messages),
                None => messages,
            };
            let request = Request {
                messages,
                tools: tools::specs(),
                max_output_tokens: None,
            };
            if self.caps.any()
                && let Some(price) = &self.price
            {
                let spent = job
                    .store
                    .spending(job.project, Some(job.task))
                    .await
                    .map_err(|e| e.to_failure())?;
                let projected = self.worst_case(price, &request);
                if let Some(reached) = self.caps.reached(&spent, projected) {
                    let reason = reached.reason(ROLE);
                    return pause(journal, reason, reached.scope, reached.ask, 0).await;
                }
            }
            let started = Instant::now();
            let answer = client.complete(&request).await;
            self.record(client, job, &answer, started).await?;
            let completion = match answer {
                Ok(completion) => completion,
                Err(LlmError::ContextOverflow { message, .. }) => {
                    let whole = journal.messages();
                    let mut next = keep
                        .map_or(FIRST_KEEP, |n| n / 2)
                        .min(request.messages.len().saturating_sub(3));
                    while next > 0 && history::condense(&whole, next).is_none() {
                        next -= 1;
                    }
                    if next == 0 {
                        return Err(Failure::fatal(format!(
                            "the conversation does not fit the Developer's model even condensed \
                             ({message}): use a model with a larger context window"
                        )));
                    }
                    tracing::info!(task = %job.task, keep = next, "condensing the agent's history");
                    keep = Some(next);
                    continue;
                }
                Err(err) => return Err(err.to_failure()),
            };
            let calls: Vec<_> = completion.message.tool_calls().cloned().collect();
            journal.say(completion.message).await?;
            if calls.is_empty() {
                journal
                    .push(Entry::Message {
                        message: Message::user(
                            "Use the tools to do the work (bash, str_replace_based_edit_tool), \
                             and call finish with a summary when you are done.",
                        ),
                    })
                    .await?;
            } else {
                let mut results = Vec::new();
                let mut finished = None;
                for call in &calls {
                    match tools.call(call).await? {
                        Observed::Result(result) => results.push(result),
                        Observed::Finish(summary) => {
                            results.push(ToolResult::ok(&call.id, "finished"));
                            finished = Some(summary);
                        }
                    }
                }
                journal.say(Message::tool_results(results)).await?;
                if let Some(summary) = finished {
                    return Ok(Outcome::Finished(summary));
                }
            }
            let (watched, warned) = journal.watched();
            if let Some(stuck) = stuck::detect(&watched) {
                if warned {
                    let reason =
                        format!("the Developer's model is stuck: {stuck}; give guidance or cancel");
                    return pause(journal, reason, Scope::Task, 0, 0).await;
                }
                journal
                    .push(Entry::Warning {
                        text: format!(
                            "artel: you seem stuck — {stuck}. Step back, read the error, and try \
                             a different approach. If it happens again, the task goes to a human."
                        ),
                    })
                    .await?;
            }
        }
    }

    /// Picks the conversation up after a restart, a rework or a pause.
    async fn resume(
        &self,
        job: &Assignment<'_>,
        journal: &mut Journal<'_>,
        tools: &mut Toolbox,
        masker: &Masker,
    ) -> Result<(), Failure> {
        // The checkout is fresh from the branch: redo what the model did since artel's
        // last commit, so the files are as it left them (outputs are not shown again).
        let since = journal
            .entries
            .iter()
            .rposition(|e| matches!(e, Entry::Committed))
            .map_or(0, |i| i + 1);
        let replay: Vec<_> = journal.entries[since..]
            .iter()
            .filter_map(|e| match e {
                Entry::Message { message } if message.role == Role::Assistant => {
                    Some(message.tool_calls().cloned().collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .filter(|c| c.name != "finish")
            .collect();
        let open = history::unanswered_calls(&journal.messages());
        for call in replay.iter().filter(|c| !open.contains(&c.id)) {
            tools.call(call).await?;
        }
        if !open.is_empty() {
            let results = open.into_iter().map(|id| {
                ToolResult::error(
                    id,
                    "interrupted: artel restarted while this ran, so it may have done part of \
                     its work or none; check before going on",
                )
            });
            journal.say(Message::tool_results(results)).await?;
            return Ok(());
        }
        // A pause not yet followed by a resumption: this run is the user's approval.
        let pause = journal
            .entries
            .iter()
            .rev()
            .find(|e| matches!(e, Entry::Paused { .. } | Entry::Resumed))
            .filter(|e| matches!(e, Entry::Paused { .. }))
            .cloned();
        if let Some(Entry::Paused {
            raise_scope,
            raise_micro_usd,
            raise_turns,
            ..
        }) = &pause
        {
            // Only the user moves a task out of needs_human: this run is their approval.
            budget::approve(
                job.store,
                *raise_scope,
                job.project,
                job.task,
                *raise_micro_usd,
                *raise_turns,
            )
            .await
            .map_err(|e| e.to_failure())?;
            journal.push(Entry::Resumed).await?;
        }
        let finished = journal.messages().last().is_some_and(|m| {
            m.role == Role::Tool && m.tool_results_iter().any(|r| r.content == "finished")
        });
        let at_rest = finished
            || matches!(
                journal.entries.last(),
                Some(Entry::Committed | Entry::Resumed)
            );
        if at_rest {
            let text = continuation(job, pause.is_some());
            journal.say(Message::user(masker.mask(&text))).await?;
        }
        Ok(())
    }

    /// The most the next call can cost: its whole prompt uncached (a character is at most
    /// one token) and every output token it may write.
    fn worst_case(&self, price: &ModelPrice, request: &Request) -> u64 {
        let chars: usize = request
            .messages
            .iter()
            .flat_map(|m| m.content.iter())
            .map(|p| serde_json::to_string(p).map_or(0, |s| s.len()))
            .sum::<usize>()
            + serde_json::to_string(&request.tools).map_or(0, |s| s.len());
        let usage = crate::llm::Usage {
            input: (chars / 3) as u64,
            output: u64::from(request.max_output_tokens.unwrap_or(self.max_output_tokens)),
            cached_input: 0,
        };
        cost::cost_micro_usd(price, &usage)
    }

    /// Writes the call to `llm_requests`.
    async fn record(
        &self,
        client: &LlmClient,
        job: &Assignment<'_>,
        answer: &Result<crate::llm::Completion, LlmError>,
        started: Instant,
    ) -> Result<(), Failure> {
        let latency_ms = started.elapsed().as_millis() as u64;
        let usage = answer.as_ref().map(|c| c.usage).unwrap_or_default();
        let cost_micro_usd = self
            .price
            .as_ref()
            .map_or(0, |p| cost::cost_micro_usd(p, &usage));
        let status = match answer {
            Ok(_) => "ok",
            Err(err) => err.request_status(),
        };
        let row = LlmRequestRow {
            project: Some(job.project),
            task: Some(job.task),
            role: ROLE.to_owned(),
            provider: client.provider().as_str().to_owned(),
            model: client.model().to_owned(),
            tokens_in: usage.input,
            tokens_out: usage.output,
            tokens_cached: usage.cached_input,
            cost_micro_usd,
            latency_ms,
            status,
            error: answer.as_ref().err().map(ToString::to_string),
        };
        job.store
            .record_llm_request(&row)
            .await
            .map_err(|e| e.to_failure())
    }
}

async fn pause(
    journal: &mut Journal<'_>,
    reason: String,
    raise_scope: Scope,
    raise_micro_usd: u64,
    raise_turns: u32,
) -> Result<Outcome, Failure> {
    journal
        .push(Entry::Paused {
            reason: reason.clone(),
            raise_scope,
            raise_micro_usd,
            raise_turns,
        })
        .await?;
    Ok(Outcome::Paused(reason))
}

fn first_line(text: &str, fallback: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(fallback);
    line.chars().take(100).collect()
}

/// The standing instructions.
fn system_prompt() -> String {
    format!(
        "You are the Developer of artel, writing a small web service in the project's git \
         checkout, which is your current directory. You have three tools: `bash` (a fresh \
         shell in the checkout for each call), `str_replace_based_edit_tool` (paths relative \
         to the checkout) and `finish`.\n\n\
         The project contract:\n\
         - `artel.json` is the manifest: `run` (the command that serves the service; it reads \
         the port from the PORT environment variable), `test` (the command that runs its \
         tests), `health` (a path answering 2xx when it is up) and `env` (the environment \
         variables it needs). Keep it valid JSON with exactly these fields (and `name`).\n\
         - `app.py` exposes `make_server(port, host=\"127.0.0.1\", quiet=False)` returning a \
         server with `serve_forever()`; the scaffold's skeleton shows the shape. Keep \
         `GET /health` answering 200.\n\
         - Write tests for what you build, next to the existing ones, and run them.\n\n\
         Work step by step: look at the files, change them, run the tests with bash. artel \
         commits your work and runs the tests itself after you call `finish` with a summary; \
         do not commit. Stay inside the checkout; `../{}` is artel's, not yours.",
        tools::TOOLS_DIR
    )
}

/// The task, as the first user message.
fn first_prompt(job: &Assignment<'_>) -> String {
    let mut text = format!("Build this: {}\n", job.description.trim());
    if let Some(spec) = &job.spec {
        text.push_str(&format!("\nThe confirmed spec:\n{spec}\n"));
    }
    if let Some(guidance) = job.guidance.filter(|g| !g.trim().is_empty()) {
        text.push_str(&format!("\nThe user's guidance: {guidance}\n"));
    }
    if let Some(rework) = job.rework {
        text.push_str(&format!(
            "\nThe tests failed on the previous attempt:\n{rework}\n"
        ));
    }
    text
}

/// What starts the next part of a conversation that was at rest.
fn continuation(job: &Assignment<'_>, after_pause: bool) -> String {
    let mut text = String::new();
    if after_pause {
        text.push_str("The user approved going on; continue where you stopped.\n");
    }
    if let Some(rework) = job.rework {
        text.push_str(&format!(
            "artel ran the tests after your finish and they failed:\n{rework}\n\nFix the \
             code and call finish again.\n"
        ));
    }
    if let Some(guidance) = job.guidance.filter(|g| !g.trim().is_empty()) {
        text.push_str(&format!("The user's guidance: {guidance}\n"));
    }
    if text.is_empty() {
        text.push_str("Continue the work, and call finish when it is done.");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn journal_entries_round_trip() {
        for entry in [
            Entry::Message {
                message: Message::user("hi"),
            },
            Entry::Warning { text: "w".into() },
            Entry::Paused {
                reason: "r".into(),
                raise_scope: Scope::UserDay,
                raise_micro_usd: 5,
                raise_turns: 1,
            },
            Entry::Resumed,
            Entry::Committed,
        ] {
            let json = serde_json::to_value(&entry).unwrap();
            assert_eq!(serde_json::from_value::<Entry>(json).unwrap(), entry);
        }
    }

    #[test]
    fn a_pause_journaled_before_scoped_budgets_raises_the_task() {
        let old = json!({"entry": "paused", "reason": "r", "raise_micro_usd": 5, "raise_turns": 0});
        let Ok(Entry::Paused { raise_scope, .. }) = serde_json::from_value(old) else {
            panic!("an old pause still reads");
        };
        assert_eq!(raise_scope, Scope::Task);
    }
}
