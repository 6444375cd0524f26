//! The ProductOwner's model brain (`product_owner.kind = llm`): the session's lines go to the
//! ProductOwner's model, which answers in its own words or calls one of the [`tools`] that
//! mirror the intents.
//!
//! - **One set of actions.** A tool call becomes the [`Intent`] the offline parser would
//!   give ([`tools::intent`]) and [`act`] carries it out: both brains build, deploy, cancel
//!   and resume through the same functions.
//! - **Secret values never reach the model.** The local secret detector ([`intent::parse`])
//!   runs first, when the line comes in ([`Sessions::say`](super::Sessions::say) stores the
//!   value and journals the line redacted); such a line is acted on here without the model,
//!   and the model sees it, in later requests, only as `NAME=<given>`. Every text sent is
//!   also masked against the project's stored secrets.
//! - **Deterministic replay.** The model's decision about a line (the tool call it chose,
//!   or the fallback) is journaled in `po_decisions` before anything is done; answering the
//!   line again after a crash reads it back and never asks the model again.
//! - **Fallback.** On any provider error (or a tool call that does not fit) the offline
//!   parser answers, and the user is told once: not again until the model has answered.
//! - **Accounting.** Every request is recorded in `llm_requests` with the role [`ROLE`], the
//!   project and the session, like the Developer's (but never under a task: a task's budget is
//!   the Developer's to spend).

pub mod tools;

use super::Sessions;
use super::product_owner::{HELP, Situation, act, interpret};
use crate::agent::llm_agent::observe::Masker;
use crate::intent;
use crate::llm::accounting::{self, Scope};
use crate::llm::budget::{self, Caps};
use crate::llm::{LlmClient, Message, Request};
use crate::settings::{LlmSettings, ModelPrice};
use crate::workflow::Staffing;
use artel_messages::dto::{ChatLineDto, SessionDto};
use artel_messages::event::ChatRole;
use artel_messages::product_owner::Intent;
use artel_messages::{Classify, Failure, StepKind, StepStatus, TaskStatus};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The role the ProductOwner's calls are recorded under in `llm_requests`.
pub const ROLE: &str = "product_owner";

/// Transcript lines before the current one that the model sees.
const HISTORY_LINES: usize = 30;

/// What the user is told, once, when the offline parser answers for the model.
const NOTICE: &str = "(My language model is not answering right now, so my simple offline \
parser read that. Plain requests work best: \"make me …\", \"status\", \"yes\", \"cancel\".)";

/// The ProductOwner's model.
#[derive(Debug)]
pub struct LlmProductOwner {
    client: LlmClient,
    price: Option<ModelPrice>,
    /// The project's and the user's daily caps (a task's cap is the Developer's).
    caps: Caps,
    max_output_tokens: u32,
}

/// What the ProductOwner decided about one line, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
enum Decision {
    /// The model answered: its words, and the tool it called, if any.
    Model {
        /// What it said.
        text: String,
        /// The call acted on (the first, when it made several).
        call: Option<Chosen>,
    },
    /// The model could not be used: the offline parser answers.
    Offline {
        /// Why.
        error: String,
        /// Whether the user is told (the first fallback since the model last answered).
        notice: bool,
        /// The budget that stopped the call, as the user is told (no provider fault).
        #[serde(default)]
        budget: Option<String>,
    },
}

/// A tool call the model chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Chosen {
    /// The tool.
    name: String,
    /// Its arguments.
    arguments: serde_json::Value,
}

impl LlmProductOwner {
    /// The ProductOwner on `client`, priced by `llm.prices`. With a project or daily budget,
    /// a model without a price is refused: the budget could not be kept.
    pub fn new(client: LlmClient, llm: &LlmSettings) -> Result<Self, Failure> {
        let price = llm.prices.get(client.model()).cloned();
        let caps = Caps::from_settings(None, llm);
        if caps.any() && price.is_none() {
            return Err(Failure::fatal(format!(
                "the ProductOwner's calls count against {} but its model {:?} has no price: \
                 add [llm.prices.\"{}\"] with input and output USD per million tokens",
                caps.settings().join(" and "),
                client.model(),
                client.model()
            )));
        }
        Ok(Self {
            client,
            price,
            caps,
            max_output_tokens: llm.max_output_tokens,
        })
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        self.client.model()
    }

    /// What the ProductOwner answers to `line`, after doing what it asks.
    pub(super) async fn answer<R: Staffing>(
        &self,
        sessions: &Sessions<R>,
        session: &SessionDto,
        line: &ChatLineDto,
        situation: &Situation,
    ) -> Result<String, Failure> {
        let local = intent::parse(&line.text);
        if local.carries_secret() {
            return act(sessions, session, situation, local).await;
        }
        let store = sessions.store();
        let journaled = store
            .po_decision(line.id)
            .await
            .map_err(|e| e.to_failure())?;
        let decision = match journaled {
            Some(json) => read(json)?,
            None => {
                let fresh = self.decide(sessions, session, line, situation).await?;
                let json = serde_json::to_value(&fresh)
                    .map_err(|e| Failure::fatal(format!("cannot journal a decision: {e}")))?;
                read(
                    store
                        .record_po_decision(session.id, line.id, &json)
                        .await
                        .map_err(|e| e.to_failure())?,
                )?
            }
        };
        match decision {
            Decision::Model { text, call: None } => Ok(if text.trim().is_empty() {
                HELP.to_owned()
            } else {
                text.trim().to_owned()
            }),
            Decision::Model {
                text,
                call: Some(call),
            } => {
                // Checked before it was journaled; a call an older artel journaled that this
                // one no longer reads is answered offline rather than never.
                let intent = tools::intent(&call.name, &call.arguments).unwrap_or_else(|why| {
                    tracing::warn!(session = %session.id, %why, "a journaled tool call no longer fits");
                    interpret(&line.text, situation)
                });
                if let Intent::ProvideSecret { name, .. } = &intent
                    && !has_secret(sessions, session, name).await?
                {
                    return Ok(format!(
                        "I don't have {name} yet. Send it on a line of its own as \
                         {name}=<value>: I store it encrypted, and it is never shown to \
                         anyone, me included."
                    ));
                }
                let done = act(sessions, session, situation, intent).await?;
                Ok(match text.trim() {
                    "" => done,
                    said => format!("{said}\n\n{done}"),
                })
            }
            Decision::Offline { notice, budget, .. } => {
                let done = act(
                    sessions,
                    session,
                    situation,
                    interpret(&line.text, situation),
                )
                .await?;
                Ok(match (notice, budget) {
                    (false, _) => done,
                    (true, None) => format!("{done}\n\n{NOTICE}"),
                    (true, Some(budget)) => format!(
                        "{done}\n\n(The model budget {budget}, so my simple offline parser read \
                         that. Plain requests work best: \"make me …\", \"status\", \"yes\".)"
                    ),
                })
            }
        }
    }

    /// Asks the model about `line` and records the call; any failure becomes the fallback.
    async fn decide<R: Staffing>(
        &self,
        sessions: &Sessions<R>,
        session: &SessionDto,
        line: &ChatLineDto,
        situation: &Situation,
    ) -> Result<Decision, Failure> {
        let store = sessions.store();
        let request = self.request(sessions, session, line, situation).await?;
        if let Some(reached) = self.budget_reached(sessions, session, &request).await? {
            // Never over a budget: the offline parser answers, and the user is told why.
            tracing::info!(session = %session.id, "the ProductOwner's model budget is reached");
            let mut decision = self
                .fallback(store, session, line, reached.reason("ProductOwner"))
                .await?;
            if let Decision::Offline { budget, .. } = &mut decision {
                *budget = Some(reached.summary());
            }
            return Ok(decision);
        }
        let started = Instant::now();
        let answer = self.client.complete(&request).await;
        // The project's and the session's, not a task's: a task's budget is the Developer's.
        let scope = Scope {
            project: session.project,
            task: None,
            session: Some(session.id),
        };
        accounting::record(
            store,
            &self.client,
            self.price.as_ref(),
            ROLE,
            scope,
            &answer,
            started,
        )
        .await?;
        let error = match answer {
            Ok(completion) => {
                let text = completion.message.joined_text();
                let Some(call) = completion.message.tool_calls().next() else {
                    return Ok(Decision::Model { text, call: None });
                };
                match tools::intent(&call.name, &call.arguments) {
                    Ok(_) => {
                        return Ok(Decision::Model {
                            text,
                            call: Some(Chosen {
                                name: call.name.clone(),
                                arguments: call.arguments.clone(),
                            }),
                        });
                    }
                    Err(why) => format!("the model's tool call does not fit: {why}"),
                }
            }
            Err(err) => err.to_string(),
        };
        tracing::warn!(session = %session.id, %error, "the ProductOwner falls back to the offline parser");
        self.fallback(store, session, line, error).await
    }

    /// The cap the call about to be made would cross, if any: the project's (when the
    /// session has one) or its owner's for today.
    async fn budget_reached<R: Staffing>(
        &self,
        sessions: &Sessions<R>,
        session: &SessionDto,
        request: &Request,
    ) -> Result<Option<budget::Reached>, Failure> {
        let (Some(price), Some(project)) = (&self.price, session.project) else {
            return Ok(None);
        };
        if !self.caps.any() {
            return Ok(None);
        }
        let spent = sessions
            .store()
            .spending(project, None)
            .await
            .map_err(|e| e.to_failure())?;
        let projected = budget::worst_case(price, request, self.max_output_tokens);
        Ok(self.caps.reached(&spent, projected))
    }

    /// The offline parser answers for the model, because of `error`; the user is told once
    /// per outage.
    async fn fallback(
        &self,
        store: &crate::store::Store,
        session: &SessionDto,
        line: &ChatLineDto,
        error: String,
    ) -> Result<Decision, Failure> {
        let before = store
            .po_decision_before(session.id, line.id)
            .await
            .map_err(|e| e.to_failure())?
            .map(read)
            .transpose()?;
        let told = matches!(before, Some(Decision::Offline { .. }));
        Ok(Decision::Offline {
            error,
            notice: !told,
            budget: None,
        })
    }

    /// The request about `line`: the standing instructions and the session's situation, the
    /// recent transcript and the line, secrets shown as `NAME=<given>` and masked.
    async fn request<R: Staffing>(
        &self,
        sessions: &Sessions<R>,
        session: &SessionDto,
        line: &ChatLineDto,
        situation: &Situation,
    ) -> Result<Request, Failure> {
        let store = sessions.store();
        let masker = match session.project {
            Some(project) => Masker::for_project(store, project, []).await?,
            None => Masker::default(),
        };
        let mut messages = vec![Message::system(
            masker.mask(&self.instructions(sessions, session, situation).await?),
        )];
        let earlier: Vec<ChatLineDto> = store
            .chat_lines(session.id, 0)
            .await
            .map_err(|e| e.to_failure())?
            .into_iter()
            .filter(|l| l.id < line.id)
            .collect();
        let from = earlier.len().saturating_sub(HISTORY_LINES);
        let window = earlier[from..]
            .iter()
            .skip_while(|l| l.role != ChatRole::User);
        for said in window {
            let text = masker.mask(&shown(&said.text, said.role));
            messages.push(match said.role {
                ChatRole::User => Message::user(text),
                ChatRole::ProductOwner => Message::assistant(text),
            });
        }
        messages.push(Message::user(
            masker.mask(&shown(&line.text, ChatRole::User)),
        ));
        Ok(Request {
            messages,
            tools: tools::specs(),
            max_output_tokens: None,
        })
    }

    /// The standing instructions, with what the session is about and what waits.
    async fn instructions<R: Staffing>(
        &self,
        sessions: &Sessions<R>,
        session: &SessionDto,
        situation: &Situation,
    ) -> Result<String, Failure> {
        let store = sessions.store();
        let fail = |e: crate::store::StoreError| e.to_failure();
        let mut text = String::from(
            "You are the ProductOwner of artel, which builds and runs small web services \
             for its users: a spec first (the user confirms it), then scaffold, develop, \
             test and deploy, by artel's own crew. You are the one the user talks to.\n\n\
             Act only through your tools: build, status, list_projects, deploy, set_secret, \
             cancel, guidance and answer_question. Call at most one per answer; artel tells \
             the user what it did. When the user only talks or asks about artel, answer \
             briefly in their language without a tool. Do not invent progress: news of the \
             tasks comes from artel.\n\n\
             Secrets: users give them as NAME=value on a line of their own; artel stores \
             the value encrypted before you see the line, and you see NAME=<given>. Never \
             ask for a value in any other way, and never repeat one.\n",
        );
        let projects = store.projects(session.user).await.map_err(fail)?;
        if projects.is_empty() {
            text.push_str("\nThe user has no projects yet.\n");
        } else {
            let names: Vec<&str> = projects.iter().map(|p| p.name.as_str()).collect();
            text.push_str(&format!("\nThe user's projects: {}.\n", names.join(", ")));
        }
        if let Some(project) = session.project {
            let current = store.project_of_task(project).await.map_err(fail)?;
            text.push_str(&format!(
                "This conversation is about {}: {}\n",
                current.name, current.description
            ));
        }
        match &situation.waiting {
            Some(task) if situation.spec_waits => {
                // The spec that waits is the newest written one (a waiting task records no
                // failure: the question went out in its status event).
                let steps = store.steps(task.id).await.map_err(fail)?;
                let spec = steps
                    .iter()
                    .rev()
                    .find(|s| s.step == StepKind::WriteSpec && s.status == StepStatus::Succeeded)
                    .and_then(|s| s.output.as_ref())
                    .and_then(|o| o.get("summary"))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                text.push_str(&format!(
                    "\nWaiting for the user: the spec below needs their answer. A yes is \
                     answer_question approve; a change to it is answer_question correct; \
                     no or cancel is answer_question reject.\n{spec}\n"
                ));
            }
            Some(task) if task.status == TaskStatus::NeedsHuman => {
                let reason = task.failure.as_ref().map_or("", |f| f.reason.as_str());
                text.push_str(&format!(
                    "\nWaiting for the user: the {} task needs them: {reason}\nA yes (try \
                     again) is answer_question approve; advice for the Developer is \
                     guidance; giving a missing secret is NAME=value from the user.\n",
                    task.kind
                ));
            }
            _ => text.push_str("\nNothing waits for the user.\n"),
        }
        Ok(text)
    }
}

/// A transcript line as the model sees it: a user's line that gave a secret is `NAME=<given>`.
fn shown(text: &str, role: ChatRole) -> String {
    match (role, intent::parse(text)) {
        (ChatRole::User, Intent::ProvideSecret { name, .. }) => format!("{name}=<given>"),
        _ => text.to_owned(),
    }
}

/// True when the session's project holds the secret `name`.
async fn has_secret<R: Staffing>(
    sessions: &Sessions<R>,
    session: &SessionDto,
    name: &str,
) -> Result<bool, Failure> {
    let Some(project) = session.project else {
        return Ok(false);
    };
    let names = sessions
        .store()
        .secret_names(project)
        .await
        .map_err(|e| e.to_failure())?;
    Ok(names.iter().any(|n| n == name))
}

fn read(json: serde_json::Value) -> Result<Decision, Failure> {
    serde_json::from_value(json).map_err(|e| {
        Failure::fatal(format!(
            "a journaled ProductOwner decision is unreadable: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_round_trip_through_the_journal() {
        for decision in [
            Decision::Model {
                text: "hi".into(),
                call: None,
            },
            Decision::Model {
                text: String::new(),
                call: Some(Chosen {
                    name: "build".into(),
                    arguments: serde_json::json!({"description": "a recipe box"}),
                }),
            },
            Decision::Offline {
                error: "HTTP 500".into(),
                notice: true,
                budget: None,
            },
            Decision::Offline {
                error: "budget".into(),
                notice: true,
                budget: Some("for today (all your projects) is reached".into()),
            },
        ] {
            let json = serde_json::to_value(&decision).unwrap();
            assert_eq!(read(json).unwrap(), decision);
        }
    }

    #[test]
    fn a_line_that_gave_a_secret_is_shown_by_name_only() {
        let journaled = intent::redact(
            "STRIPE_KEY=sk-live-123456",
            &intent::parse("STRIPE_KEY=sk-live-123456"),
        );
        assert_eq!(shown(&journaled, ChatRole::User), "STRIPE_KEY=<given>");
        assert_eq!(shown("make me a blog", ChatRole::User), "make me a blog");
    }
}
