//! The spec: the Analyst's typed reading of a request — what the service must have, before
//! anything is built.
//!
//! The systems artel replaces went from a chat line straight to code, and whatever the
//! generator understood became "what was asked". Here the request first becomes a [`Spec`]:
//! resources with typed fields, relations between them, actions beyond CRUD, filters, search
//! and sort, and — said plainly — what could not be placed. The user sees it and confirms or
//! corrects it; the offline agent compiles it; the Tester derives the acceptance suite from
//! it. It is journaled with the task and versioned: a correction or later guidance makes a
//! new version, never an in-place edit.

use crate::error::Failure;
use crate::ids::{ProjectId, TaskId};
use crate::named::named_enum;
use crate::request::Request;
use serde::{Deserialize, Serialize};

named_enum! {
    /// The type of one field, as the API validates it.
    pub enum FieldType("field type") {
        /// A short single-line string (≤ 200 characters).
        String = "string",
        /// Free text, possibly multi-line (≤ 10 000 characters).
        Text = "text",
        /// A whole number.
        Integer = "integer",
        /// A decimal number.
        Number = "number",
        /// An amount of money: a decimal with at most two fractional digits, never negative.
        Money = "money",
        /// `true` or `false`.
        Boolean = "boolean",
        /// A calendar date, `YYYY-MM-DD`.
        Date = "date",
        /// A moment, RFC 3339.
        Datetime = "datetime",
        /// An absolute `http`/`https` URL.
        Url = "url",
        /// An e-mail address.
        Email = "email",
        /// One of [`Field::choices`].
        Enum = "enum",
        /// A list of short strings (tags, ingredients).
        StringList = "string_list",
    }
}

named_enum! {
    /// What an action beyond CRUD does to one record.
    pub enum ActionKind("action kind") {
        /// Sets a boolean field to true, or false for its undo (`mark done`, `borrow`).
        SetFlag = "set_flag",
        /// Records that something happened today, once per day (`check off a habit`).
        CheckIn = "check_in",
        /// `GET /r/<id>` answers 302 to the record's URL field and counts the hit.
        Redirect = "redirect",
    }
}

/// The Analyst's reading of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Spec {
    /// The spec's version: 1 as written from the request, +1 for each correction.
    pub version: u32,
    /// A short human title of the service ("Library catalog").
    pub title: String,
    /// The language the request was written in (`en`, `ru`), for the answers the user gets.
    pub language: String,
    /// The resources, in the order the request named them.
    pub resources: Vec<Resource>,
    /// Parts of the request the Analyst could not place, in the user's words.
    pub unplaced: Vec<String>,
    /// Set when the request is not a resource API at all (a bot, a converter): what it is,
    /// in words. Such a spec is not built offline.
    pub out_of_range: Option<String>,
}

/// One kind of record the service stores and serves under `/api/<plural>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Plural name, snake_case ASCII: the collection's path (`books`, `visits`).
    pub plural: String,
    /// Singular name, snake_case ASCII (`book`, `visit`).
    pub singular: String,
    /// The user's own word for it when it was not English (`книги`), for the description.
    pub label: Option<String>,
    /// Its fields, besides `id`, `created_at` and the references of [`Resource::belongs_to`].
    pub fields: Vec<Field>,
    /// The singular names of resources each record belongs to: a `comment` with
    /// `belongs_to: ["post"]` has a required `post_id` that must name an existing post, and
    /// is also listed at `/api/posts/<id>/comments`.
    pub belongs_to: Vec<String>,
    /// Actions beyond CRUD.
    pub actions: Vec<Action>,
    /// Fields the list can be filtered on by equality (`?category=food`).
    pub filters: Vec<String>,
    /// Fields the list's `?q=` searches, case-insensitively.
    pub search: Vec<String>,
    /// Fields the list can be sorted by (`?sort=due_date`, `?sort=-due_date`).
    pub sort: Vec<String>,
}

/// One field of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// snake_case ASCII name (`isbn`, `due_date`).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Whether a create must give it.
    pub required: bool,
    /// Whether two records may not share a value.
    pub unique: bool,
    /// The value a create that omits it gets (JSON of the field's type).
    pub default: Option<serde_json::Value>,
    /// The allowed values of an [`FieldType::Enum`] field; empty otherwise.
    pub choices: Vec<String>,
}

/// An action beyond CRUD on one record: `POST /api/<plural>/<id>/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// snake_case name, also the path segment (`borrow`, `return`, `check_in`, `done`).
    pub name: String,
    /// What it does.
    pub kind: ActionKind,
    /// The field it works on: the boolean of a [`ActionKind::SetFlag`] (`borrowed`), the
    /// URL of a [`ActionKind::Redirect`] (`url`); the date list of a check-in (`days`).
    pub field: String,
    /// For [`ActionKind::SetFlag`]: the value it sets (`borrow` → true, `return` → false).
    pub value: Option<bool>,
}

impl Spec {
    /// The resource whose singular or plural name is `name`.
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.singular == name || r.plural == name)
    }

    /// True when the offline agent can build it: at least one resource, and not a request
    /// of another kind.
    pub fn is_buildable_offline(&self) -> bool {
        self.out_of_range.is_none() && !self.resources.is_empty()
    }
}

impl Resource {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Write the spec of an engineering task's request, or edit the current one (the Analyst's
/// message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteSpec {
    /// The project.
    pub project: ProjectId,
    /// The engineering task.
    pub task: TaskId,
    /// The user's request, as typed.
    pub request: String,
    /// The spec written so far, when this is an edit; `None` writes version 1 from the
    /// request.
    pub current: Option<Spec>,
    /// What the user said to change, in their words ("add a due date").
    pub correction: Option<String>,
}

impl Request for WriteSpec {
    type Reply = Result<SpecWritten, Failure>;
}

/// The spec a [`WriteSpec`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecWritten {
    /// The spec: a new version when the correction changed anything.
    pub spec: Spec,
    /// The parts of the correction the Analyst could not apply, in the user's words (they
    /// still reach the Developer as guidance).
    pub not_applied: Vec<String>,
}
