//! The API a spec defines, spelled out: the one reading of a [`Spec`] that the offline agent
//! builds, the acceptance suite checks and the contract tells an LLM developer.
//!
//! A spec says what the user asked for; it does not say which fields a `redirect` action
//! needs, what a relation is called on the wire, or what a bad value of each type looks like.
//! [`Api::of`] decides that once:
//! - names become snake_case ASCII; a resource or field without a usable name, a duplicate,
//!   or a field that would shadow `id`, `created_at` or a reference is left out;
//! - each `belongs_to` becomes a required `<parent singular>_id` reference field, and the
//!   parent lists the child (for nested routes and for refusing to delete a parent that has
//!   children); references to no resource, to itself, or that close a cycle are left out,
//!   since no first record could ever be made;
//! - a `set_flag` action's field is a boolean (added, default `false`, when the spec lacks
//!   it), a `check_in`'s is a service-kept list of dates, and a `redirect`'s is a URL, with a
//!   service-kept `hits` counter beside it;
//! - a default that does not fit its field's type is dropped, and a default makes a field
//!   optional; `unique` on a boolean or an enum (a handful of records at most) is dropped;
//! - filters, search and sort keep only names of fields the resource has (sort may also
//!   name `created_at`).
//!
//! Whatever was changed or left out is said in [`Api::notes`], in words.

use artel_messages::spec::{self, ActionKind, FieldType, Spec};
use serde::Serialize;
use serde_json::{Value, json};

/// The longest `string` field and `string_list` item.
pub const STRING_MAX: usize = 200;
/// The longest `text` field.
pub const TEXT_MAX: usize = 10_000;
/// The longest `url` field.
pub const URL_MAX: usize = 2_000;
/// The longest `email` field.
pub const EMAIL_MAX: usize = 254;
/// The most items a `string_list` field holds.
pub const LIST_MAX_ITEMS: usize = 100;
/// The longest name kept for a resource, field or action.
const NAME_MAX: usize = 60;

/// What a field holds, as the API validates it: the spec's types and three the API adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// [`FieldType::String`].
    String,
    /// [`FieldType::Text`].
    Text,
    /// [`FieldType::Integer`].
    Integer,
    /// [`FieldType::Number`].
    Number,
    /// [`FieldType::Money`].
    Money,
    /// [`FieldType::Boolean`].
    Boolean,
    /// [`FieldType::Date`].
    Date,
    /// [`FieldType::Datetime`].
    Datetime,
    /// [`FieldType::Url`].
    Url,
    /// [`FieldType::Email`].
    Email,
    /// [`FieldType::Enum`].
    Enum,
    /// [`FieldType::StringList`].
    StringList,
    /// The id of a record of the resource the field's record belongs to.
    Reference,
    /// The days a `check_in` action recorded, `YYYY-MM-DD`, kept by the service.
    DateList,
    /// The hits of a `redirect`, kept by the service.
    Counter,
}

impl Kind {
    /// Its name on the wire and in the contract.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Money => "money",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::Url => "url",
            Self::Email => "email",
            Self::Enum => "enum",
            Self::StringList => "string_list",
            Self::Reference => "reference",
            Self::DateList => "date_list",
            Self::Counter => "counter",
        }
    }
}

impl From<FieldType> for Kind {
    fn from(ty: FieldType) -> Self {
        match ty {
            FieldType::String => Self::String,
            FieldType::Text => Self::Text,
            FieldType::Integer => Self::Integer,
            FieldType::Number => Self::Number,
            FieldType::Money => Self::Money,
            FieldType::Boolean => Self::Boolean,
            FieldType::Date => Self::Date,
            FieldType::Datetime => Self::Datetime,
            FieldType::Url => Self::Url,
            FieldType::Email => Self::Email,
            FieldType::Enum => Self::Enum,
            FieldType::StringList => Self::StringList,
        }
    }
}

/// The whole API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Api {
    /// The service's title.
    pub title: String,
    /// Its resources, in the spec's order.
    pub resources: Vec<Resource>,
    /// What [`Api::of`] changed or left out of the spec, and why.
    pub notes: Vec<String>,
}

/// One resource, served under `/api/<plural>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// The collection's path segment.
    pub plural: String,
    /// One record's name: in messages and in the reference fields of its children.
    pub singular: String,
    /// The user's own word for it, from the spec.
    pub label: Option<String>,
    /// Every field besides `id` and `created_at`: references first, then the spec's, then
    /// those its actions need.
    pub fields: Vec<Field>,
    /// The resources its records belong to.
    pub parents: Vec<Link>,
    /// The resources whose records belong to it: listed at `/api/<plural>/<id>/<child>`.
    pub children: Vec<Link>,
    /// Actions beyond CRUD.
    pub actions: Vec<Action>,
    /// The URL field `GET /r/<id>` redirects to, when it has a redirect action.
    pub redirect: Option<String>,
    /// Fields the list filters on by equality (`?<field>=`).
    pub filters: Vec<String>,
    /// Fields `?q=` searches.
    pub search: Vec<String>,
    /// Fields (or `created_at`) the list sorts by (`?sort=<field>`, `?sort=-<field>`).
    pub sort: Vec<String>,
}

/// A relation seen from one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The plural of the resource at the other end.
    pub resource: String,
    /// The child's reference field (`post_id`).
    pub field: String,
}

/// One field of a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    /// Its JSON name.
    pub name: String,
    /// What it holds.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// A create must give it (and an update may not clear it).
    pub required: bool,
    /// No two records share a value.
    pub unique: bool,
    /// A client may set it; false for what the service keeps (check-in days, hits).
    pub writable: bool,
    /// What a create that leaves it out gets (`null` when there is no default).
    pub default: Value,
    /// The allowed values of an enum.
    pub choices: Vec<String>,
    /// The longest value (strings) or item (string lists).
    pub max_length: Option<usize>,
    /// The most items of a string list.
    pub max_items: Option<usize>,
    /// For a reference: the plural of the resource it names.
    pub parent: Option<String>,
    /// For a reference: that resource's singular, for messages.
    pub parent_singular: Option<String>,
    /// Values its type refuses, each with a 4xx: what the tests send to prove validation.
    pub bad: Vec<Value>,
}

/// An action beyond CRUD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// Its path segment: `POST /api/<plural>/<id>/<name>` (a redirect is `GET /r/<id>`).
    pub name: String,
    /// What it does.
    pub kind: ActionKind,
    /// The field it works on.
    pub field: String,
    /// For `set_flag`: the value it sets.
    pub value: Option<bool>,
}

/// `name` as a snake_case ASCII identifier starting with a letter, or `None` when nothing of
/// it is usable.
fn ident(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            if out.is_empty() && c.is_ascii_digit() {
                out.push('n');
            }
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
        if out.len() >= NAME_MAX {
            break;
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    (!out.is_empty()).then_some(out)
}

fn field(name: &str, kind: Kind) -> Field {
    let mut field = Field {
        name: name.to_owned(),
        kind,
        required: false,
        unique: false,
        writable: !matches!(kind, Kind::DateList | Kind::Counter),
        default: match kind {
            Kind::DateList => json!([]),
            Kind::Counter => json!(0),
            _ => Value::Null,
        },
        choices: Vec::new(),
        max_length: match kind {
            Kind::String | Kind::StringList => Some(STRING_MAX),
            Kind::Text => Some(TEXT_MAX),
            Kind::Url => Some(URL_MAX),
            Kind::Email => Some(EMAIL_MAX),
            _ => None,
        },
        max_items: (kind == Kind::StringList).then_some(LIST_MAX_ITEMS),
        parent: None,
        parent_singular: None,
        bad: Vec::new(),
    };
    field.bad = bad_values(&field);
    field
}

/// Values of the wrong shape for `field`: each must be refused with a 4xx.
fn bad_values(field: &Field) -> Vec<Value> {
    let mut bad = match field.kind {
        Kind::String => vec![
            json!(12345),
            json!("x".repeat(STRING_MAX + 1)),
            json!("two\nlines"),
        ],
        Kind::Text => vec![json!(12345), json!("x".repeat(TEXT_MAX + 1))],
        Kind::Integer => vec![json!("three"), json!(1.5)],
        Kind::Number => vec![json!("abc"), json!([1])],
        Kind::Money => vec![json!(-5), json!(1.234), json!("abc")],
        Kind::Boolean => vec![json!("maybe"), json!(7)],
        Kind::Date => vec![
            json!("2024-13-01"),
            json!("05/03/2024"),
            json!("yesterday"),
            json!(20240305),
        ],
        Kind::Datetime => vec![
            json!("yesterday"),
            json!("2024-03-05T25:00:00Z"),
            json!(12345),
        ],
        Kind::Url => vec![
            json!("not a url"),
            json!("ftp://example.com/file"),
            json!("https://"),
            json!(5),
        ],
        Kind::Email => vec![
            json!("not-an-email"),
            json!("a@"),
            json!("@example.com"),
            json!(5),
        ],
        Kind::Enum => {
            let mut wrong = "not-a-choice".to_owned();
            while field.choices.contains(&wrong) {
                wrong.push('x');
            }
            vec![json!(wrong), json!(5)]
        }
        Kind::StringList => vec![
            json!("a,b"),
            json!([1, 2]),
            json!(["x".repeat(STRING_MAX + 1)]),
        ],
        Kind::Reference | Kind::DateList | Kind::Counter => Vec::new(),
    };
    if field.required && matches!(field.kind, Kind::String | Kind::Text) {
        bad.push(json!(""));
    }
    bad
}

/// Whether `value` is a good value of a `kind` field with `choices` (a `required` string or
/// text must not be blank).
fn fits(kind: Kind, choices: &[String], required: bool, value: &Value) -> bool {
    let text = value.as_str();
    if required
        && matches!(kind, Kind::String | Kind::Text)
        && text.is_some_and(|s| s.trim().is_empty())
    {
        return false;
    }
    let line = |s: &str, max: usize| s.chars().count() <= max && !s.contains(['\n', '\r']);
    match kind {
        Kind::String => text.is_some_and(|s| line(s.trim(), STRING_MAX)),
        Kind::Text => text.is_some_and(|s| s.chars().count() <= TEXT_MAX),
        Kind::Integer => value.is_i64() || value.is_u64(),
        Kind::Number => value.is_number(),
        Kind::Money => {
            value.as_f64().is_some_and(|n| n >= 0.0) && {
                let digits = value.to_string();
                !digits.contains(['e', 'E'])
                    && digits.split('.').nth(1).is_none_or(|d| d.len() <= 2)
            }
        }
        Kind::Boolean => value.is_boolean(),
        Kind::Date => text.is_some_and(|s| {
            s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
        }),
        Kind::Datetime => text.is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        Kind::Url => text.is_some_and(|s| {
            s.len() <= URL_MAX
                && s.chars().all(|c| c.is_ascii_graphic())
                && reqwest::Url::parse(s)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        }),
        Kind::Email => text.is_some_and(|s| {
            s.len() <= EMAIL_MAX
                && !s.chars().any(char::is_whitespace)
                && s.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.split('.').count() >= 2
                        && domain.split('.').all(|label| !label.is_empty())
                })
        }),
        Kind::Enum => text.is_some_and(|s| choices.iter().any(|c| c == s)),
        Kind::StringList => value.as_array().is_some_and(|items| {
            items.len() <= LIST_MAX_ITEMS
                && items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| line(s.trim(), STRING_MAX)))
        }),
        Kind::Reference | Kind::DateList | Kind::Counter => false,
    }
}

/// The spec's resources with usable, distinct names: (spec resource, plural, singular).
fn named_resources<'a>(
    spec: &'a Spec,
    notes: &mut Vec<String>,
) -> Vec<(&'a spec::Resource, String, String)> {
    let mut kept: Vec<(&spec::Resource, String, String)> = Vec::new();
    for resource in &spec.resources {
        let Some(plural) = ident(&resource.plural) else {
            notes.push(format!(
                "the resource {:?} has no usable name (snake_case ASCII): left out",
                resource.plural
            ));
            continue;
        };
        let singular = ident(&resource.singular).unwrap_or_else(|| plural.clone());
        if kept.iter().any(|(_, p, s)| *p == plural || *s == singular) {
            notes.push(format!(
                "a second resource named {plural:?} ({singular:?}) was left out"
            ));
            continue;
        }
        kept.push((resource, plural, singular));
    }
    kept
}

/// Each kept resource's parents (indices into `kept`), in `belongs_to` order.
fn relations(
    kept: &[(&spec::Resource, String, String)],
    notes: &mut Vec<String>,
) -> Vec<Vec<usize>> {
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); kept.len()];
    for (child, (resource, plural, _)) in kept.iter().enumerate() {
        for name in &resource.belongs_to {
            let wanted = ident(name);
            let Some(parent) = kept
                .iter()
                .position(|(_, p, s)| wanted.as_deref().is_some_and(|w| w == p || w == s))
            else {
                notes.push(format!(
                    "{plural} belong to {name:?}, which is not a resource: that relation was left out"
                ));
                continue;
            };
            if parent == child || reaches(&parents, parent, child) {
                notes.push(format!(
                    "{plural} belonging to {} would make a loop no first record could join: \
                     that relation was left out",
                    kept[parent].1
                ));
                continue;
            }
            if !parents[child].contains(&parent) {
                parents[child].push(parent);
            }
        }
    }
    parents
}

/// Whether `to` is an ancestor of `from` (or `from` itself).
fn reaches(parents: &[Vec<usize>], from: usize, to: usize) -> bool {
    from == to || parents[from].iter().any(|&p| reaches(parents, p, to))
}

/// The spec's own fields of `resource`, with usable names that shadow nothing.
fn own_fields(
    resource: &spec::Resource,
    plural: &str,
    references: &[Field],
    notes: &mut Vec<String>,
) -> Vec<Field> {
    let mut fields: Vec<Field> = Vec::new();
    for spec_field in &resource.fields {
        let Some(name) = ident(&spec_field.name) else {
            notes.push(format!(
                "{plural}: the field {:?} has no usable name: left out",
                spec_field.name
            ));
            continue;
        };
        if matches!(name.as_str(), "id" | "created_at" | "delete_token")
            || references.iter().any(|r| r.name == name)
            || fields.iter().any(|f| f.name == name)
        {
            notes.push(format!(
                "{plural}: the field {name:?} is already taken (by the service or another \
                 field): left out"
            ));
            continue;
        }
        let mut kind = Kind::from(spec_field.ty);
        let mut choices: Vec<String> = Vec::new();
        for choice in &spec_field.choices {
            let choice = choice.trim().to_owned();
            if !choice.is_empty() && !choices.contains(&choice) {
                choices.push(choice);
            }
        }
        if kind == Kind::Enum && choices.is_empty() {
            notes.push(format!(
                "{plural}.{name} is an enum without choices: it is a string instead"
            ));
            kind = Kind::String;
        }
        let mut made = field(&name, kind);
        made.choices = if kind == Kind::Enum {
            choices
        } else {
            Vec::new()
        };
        made.required = spec_field.required;
        made.unique = spec_field.unique;
        if made.unique && matches!(kind, Kind::Boolean | Kind::Enum) {
            notes.push(format!(
                "{plural}.{name} cannot be unique: a {} has too few values",
                spec_field.ty
            ));
            made.unique = false;
        }
        if let Some(default) = &spec_field.default {
            if fits(kind, &made.choices, false, default) {
                made.default = default.clone();
                made.required = false;
            } else {
                notes.push(format!(
                    "{plural}.{name}: the default {default} is not a {}: no default",
                    spec_field.ty
                ));
            }
        }
        made.bad = bad_values(&made);
        fields.push(made);
    }
    fields
}

/// Makes `fields` hold `name` as a `kind` field the way `action` needs it; a field of another
/// type is turned into one, with a note.
fn action_field(
    fields: &mut Vec<Field>,
    name: &str,
    kind: Kind,
    plural: &str,
    notes: &mut Vec<String>,
) {
    let wanted = {
        let mut f = field(name, kind);
        if kind == Kind::Boolean {
            f.default = json!(false);
        }
        if kind == Kind::Url {
            f.required = true;
            f.bad = bad_values(&f);
        }
        f
    };
    match fields.iter_mut().find(|f| f.name == name) {
        Some(existing) if existing.kind == kind => {}
        Some(existing) => {
            if !matches!(
                (existing.kind, kind),
                (Kind::StringList | Kind::Date, Kind::DateList)
            ) {
                notes.push(format!(
                    "{plural}.{name} is what an action works on: it is now a {} field",
                    kind.as_str()
                ));
            }
            *existing = wanted;
        }
        None => fields.push(wanted),
    }
}

/// The actions of `resource`, adding to `fields` what they work on; answers them and the
/// redirect field.
fn actions(
    resource: &spec::Resource,
    plural: &str,
    fields: &mut Vec<Field>,
    notes: &mut Vec<String>,
) -> (Vec<Action>, Option<String>) {
    let mut out: Vec<Action> = Vec::new();
    let mut redirect = None;
    for action in &resource.actions {
        let Some(name) = ident(&action.name) else {
            notes.push(format!(
                "{plural}: the action {:?} has no usable name: left out",
                action.name
            ));
            continue;
        };
        if out.iter().any(|a| a.name == name) {
            notes.push(format!("{plural}: a second action {name:?} was left out"));
            continue;
        }
        let fallback = match action.kind {
            ActionKind::SetFlag => "done",
            ActionKind::CheckIn => "days",
            ActionKind::Redirect => "url",
        };
        let target = ident(&action.field).unwrap_or_else(|| fallback.to_owned());
        if matches!(
            target.as_str(),
            "id" | "created_at" | "delete_token" | "hits"
        ) || fields
            .iter()
            .any(|f| f.name == target && f.kind == Kind::Reference)
        {
            notes.push(format!(
                "{plural}: the action {name:?} would change {target:?}, which the service \
                 keeps: left out"
            ));
            continue;
        }
        let kind = match action.kind {
            ActionKind::SetFlag => Kind::Boolean,
            ActionKind::CheckIn => Kind::DateList,
            ActionKind::Redirect => Kind::Url,
        };
        if action.kind == ActionKind::Redirect {
            if redirect.is_some() {
                notes.push(format!("{plural}: a second redirect {name:?} was left out"));
                continue;
            }
            redirect = Some(target.clone());
        }
        action_field(fields, &target, kind, plural, notes);
        out.push(Action {
            name,
            kind: action.kind,
            field: target,
            value: (action.kind == ActionKind::SetFlag).then(|| action.value.unwrap_or(true)),
        });
    }
    if redirect.is_some() {
        action_field(fields, "hits", Kind::Counter, plural, notes);
    }
    (out, redirect)
}

/// `names` that are fields of `fields` (or `extra`), deduplicated; the rest noted.
fn known(
    names: &[String],
    fields: &[Field],
    extra: Option<&str>,
    what: &str,
    plural: &str,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in names {
        match ident(raw) {
            Some(name) if fields.iter().any(|f| f.name == name) || extra == Some(name.as_str()) => {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            _ => notes.push(format!("{plural}: {what} {raw:?} names no field: left out")),
        }
    }
    out
}

impl Api {
    /// The API `spec` defines. The same spec always gives the same API.
    pub fn of(spec: &Spec) -> Self {
        let mut notes = Vec::new();
        let kept = named_resources(spec, &mut notes);
        let parents = relations(&kept, &mut notes);
        let mut resources: Vec<Resource> = Vec::with_capacity(kept.len());
        for (index, (resource, plural, singular)) in kept.iter().enumerate() {
            let references: Vec<Field> = parents[index]
                .iter()
                .map(|&p| {
                    let (_, parent_plural, parent_singular) = &kept[p];
                    Field {
                        required: true,
                        parent: Some(parent_plural.clone()),
                        parent_singular: Some(parent_singular.clone()),
                        ..field(&format!("{parent_singular}_id"), Kind::Reference)
                    }
                })
                .collect();
            let mut fields = own_fields(resource, plural, &references, &mut notes);
            let (actions, redirect) = actions(resource, plural, &mut fields, &mut notes);
            let mut all = references;
            all.append(&mut fields);
            let filters = known(
                &resource.filters,
                &all,
                None,
                "the filter",
                plural,
                &mut notes,
            );
            let search = known(
                &resource.search,
                &all,
                None,
                "the search field",
                plural,
                &mut notes,
            );
            let sort = known(
                &resource.sort,
                &all,
                Some("created_at"),
                "the sort field",
                plural,
                &mut notes,
            );
            resources.push(Resource {
                plural: plural.clone(),
                singular: singular.clone(),
                label: resource.label.clone(),
                parents: parents[index]
                    .iter()
                    .map(|&p| Link {
                        resource: kept[p].1.clone(),
                        field: format!("{}_id", kept[p].2),
                    })
                    .collect(),
                children: Vec::new(),
                fields: all,
                actions,
                redirect,
                filters,
                search,
                sort,
            });
        }
        for child in 0..resources.len() {
            for link in resources[child].parents.clone() {
                let plural = resources[child].plural.clone();
                if let Some(parent) = resources.iter_mut().find(|r| r.plural == link.resource) {
                    parent.children.push(Link {
                        resource: plural,
                        field: link.field,
                    });
                }
            }
        }
        let title = spec.title.trim();
        Self {
            title: if title.is_empty() { "Service" } else { title }.to_owned(),
            resources,
            notes,
        }
    }

    /// The resource whose plural is `plural`.
    pub fn resource(&self, plural: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.plural == plural)
    }

    /// The API as JSON, for the Python that serves or checks it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Resource {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A good value of `field`, the `n`th of a series that grows with `n` where the type is
/// ordered: what the generated service's own tests create records with.
pub fn sample(field: &Field, n: usize) -> Value {
    match field.kind {
        Kind::String => json!(format!("sample {n}")),
        Kind::Text => json!(format!("Sample text {n}\nsecond line")),
        Kind::Integer => json!(n + 1),
        Kind::Number => json!(n as f64 + 0.5),
        Kind::Money => json!(10.25 + 10.0 * n as f64),
        Kind::Boolean => json!(n % 2 == 1),
        Kind::Date => json!(format!("2024-01-{:02}", n % 28 + 1)),
        Kind::Datetime => json!(format!("2024-01-01T{:02}:00:00Z", (n + 9) % 24)),
        Kind::Url => json!(format!("https://example.com/{}/{n}", field.name)),
        Kind::Email => json!(format!("person{n}@example.com")),
        Kind::Enum => field
            .choices
            .get(n % field.choices.len().max(1))
            .map_or(Value::Null, |c| json!(c)),
        Kind::StringList => json!([format!("tag {n}"), "common"]),
        Kind::Reference | Kind::DateList | Kind::Counter => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::spec::{
        Action as SpecAction, Field as SpecField, Resource as SpecResource,
    };

    fn spec_field(name: &str, ty: FieldType) -> SpecField {
        SpecField {
            name: name.to_owned(),
            ty,
            required: false,
            unique: false,
            default: None,
            choices: Vec::new(),
        }
    }

    fn spec_resource(plural: &str, singular: &str, fields: Vec<SpecField>) -> SpecResource {
        SpecResource {
            plural: plural.to_owned(),
            singular: singular.to_owned(),
            label: None,
            fields,
            belongs_to: Vec::new(),
            actions: Vec::new(),
            filters: Vec::new(),
            search: Vec::new(),
            sort: Vec::new(),
        }
    }

    fn spec(resources: Vec<SpecResource>) -> Spec {
        Spec {
            version: 1,
            title: "Test".to_owned(),
            resources,
            ..Spec::default()
        }
    }

    fn kinds(resource: &Resource) -> Vec<(&str, Kind, bool)> {
        resource
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.writable))
            .collect()
    }

    #[test]
    fn relations_become_checked_references_and_children() {
        let mut pets = spec_resource("pets", "pet", vec![spec_field("name", FieldType::String)]);
        pets.belongs_to = vec!["owner".to_owned(), "owners".to_owned(), "vet".to_owned()];
        let mut visits = spec_resource("visits", "visit", Vec::new());
        visits.belongs_to = vec!["pets".to_owned(), "visit".to_owned()];
        let mut owners = spec_resource("owners", "owner", Vec::new());
        owners.belongs_to = vec!["visit".to_owned()];
        let api = Api::of(&spec(vec![pets, visits, owners]));

        let pets = api.resource("pets").unwrap();
        assert_eq!(
            pets.parents,
            [Link {
                resource: "owners".into(),
                field: "owner_id".into()
            }]
        );
        let reference = pets.field("owner_id").unwrap();
        assert_eq!(
            (
                reference.kind,
                reference.required,
                reference.parent.as_deref()
            ),
            (Kind::Reference, true, Some("owners"))
        );
        assert_eq!(pets.fields[0].name, "owner_id", "references come first");
        assert_eq!(
            api.resource("owners").unwrap().children,
            [Link {
                resource: "pets".into(),
                field: "owner_id".into()
            }]
        );
        assert_eq!(api.resource("visits").unwrap().parents.len(), 1);
        let notes = api.notes.join("\n");
        assert!(
            notes.contains("\"vet\", which is not a resource"),
            "{notes}"
        );
        assert!(
            notes.contains("visits belonging to visits would make a loop"),
            "{notes}"
        );
        assert!(
            notes.contains("owners belonging to visits would make a loop"),
            "{notes}"
        );
        assert_eq!(notes.lines().count(), 3, "{notes}");
        assert!(api.resource("owners").unwrap().parents.is_empty());
    }

    #[test]
    fn actions_bring_the_fields_they_work_on() {
        let mut habits = spec_resource(
            "habits",
            "habit",
            vec![
                spec_field("days", FieldType::StringList),
                spec_field("done", FieldType::String),
            ],
        );
        let action = |name: &str, kind, field: &str| SpecAction {
            name: name.to_owned(),
            kind,
            field: field.to_owned(),
            value: None,
        };
        habits.actions = vec![
            action("check_in", ActionKind::CheckIn, "days"),
            action("finish", ActionKind::SetFlag, ""),
            action("archive", ActionKind::SetFlag, "archived"),
            action("Archive", ActionKind::SetFlag, "x"),
            action("open", ActionKind::Redirect, "link"),
            action("id", ActionKind::SetFlag, "id"),
        ];
        let api = Api::of(&spec(vec![habits]));
        let habits = &api.resources[0];
        assert_eq!(
            kinds(habits),
            [
                ("days", Kind::DateList, false),
                ("done", Kind::Boolean, true),
                ("archived", Kind::Boolean, true),
                ("link", Kind::Url, true),
                ("hits", Kind::Counter, false),
            ]
        );
        assert_eq!(habits.field("archived").unwrap().default, json!(false));
        assert!(habits.field("link").unwrap().required);
        assert_eq!(habits.field("hits").unwrap().default, json!(0));
        assert_eq!(habits.redirect.as_deref(), Some("link"));
        let names: Vec<(&str, Option<bool>)> = habits
            .actions
            .iter()
            .map(|a| (a.name.as_str(), a.value))
            .collect();
        assert_eq!(
            names,
            [
                ("check_in", None),
                ("finish", Some(true)),
                ("archive", Some(true)),
                ("open", None)
            ]
        );
        let notes = api.notes.join("\n");
        assert!(
            notes.contains("habits.done is what an action works on"),
            "{notes}"
        );
        assert!(
            !notes.contains("habits.days"),
            "a list of days is a check-in's: {notes}"
        );
        assert!(notes.contains("a second action \"archive\""), "{notes}");
        assert!(notes.contains("\"id\", which the service keeps"), "{notes}");
    }

    #[test]
    fn fields_are_named_checked_and_told() {
        let mut weird = spec_resource(
            "Book Items",
            "Book-Item",
            vec![
                SpecField {
                    required: true,
                    default: Some(json!("x")),
                    ..spec_field("Title Text", FieldType::String)
                },
                spec_field("id", FieldType::String),
                spec_field("title_text", FieldType::Integer),
                spec_field("книга", FieldType::String),
                spec_field("status", FieldType::Enum),
                SpecField {
                    choices: vec!["a".into(), " a ".into(), "".into(), "b".into()],
                    unique: true,
                    ..spec_field("level", FieldType::Enum)
                },
                SpecField {
                    default: Some(json!(1.234)),
                    ..spec_field("price", FieldType::Money)
                },
                SpecField {
                    unique: true,
                    ..spec_field("9lives", FieldType::Boolean)
                },
            ],
        );
        weird.filters = vec!["status".into(), "nope".into(), "status".into()];
        weird.sort = vec!["created_at".into(), "price".into()];
        weird.search = vec!["created_at".into()];
        let api = Api::of(&spec(vec![
            weird,
            spec_resource("book_items", "other", Vec::new()),
            spec_resource("!!!", "x", Vec::new()),
        ]));
        assert_eq!(api.resources.len(), 1);
        let r = &api.resources[0];
        assert_eq!(
            (r.plural.as_str(), r.singular.as_str()),
            ("book_items", "book_item")
        );
        assert_eq!(
            kinds(r),
            [
                ("title_text", Kind::String, true),
                ("status", Kind::String, true),
                ("level", Kind::Enum, true),
                ("price", Kind::Money, true),
                ("n9lives", Kind::Boolean, true),
            ]
        );
        let title = r.field("title_text").unwrap();
        assert_eq!((title.required, &title.default), (false, &json!("x")));
        let level = r.field("level").unwrap();
        assert_eq!(
            (level.choices.clone(), level.unique),
            (vec!["a".to_owned(), "b".to_owned()], false)
        );
        assert!(r.field("price").unwrap().default.is_null());
        assert!(!r.field("n9lives").unwrap().unique);
        assert_eq!(r.filters, ["status"]);
        assert_eq!(r.sort, ["created_at", "price"]);
        assert!(r.search.is_empty());
        let notes = api.notes.join("\n");
        for told in [
            "\"id\" is already taken",
            "\"title_text\" is already taken",
            "\"книга\" has no usable name",
            "status is an enum without choices",
            "level cannot be unique",
            "the default 1.234 is not a money",
            "the filter \"nope\" names no field",
            "the search field \"created_at\" names no field",
            "a second resource named \"book_items\"",
            "the resource \"!!!\" has no usable name",
        ] {
            assert!(notes.contains(told), "{told:?} in {notes}");
        }
    }

    #[test]
    fn samples_fit_and_bad_values_do_not() {
        for ty in FieldType::ALL {
            let mut f = field("f", Kind::from(*ty));
            f.required = true;
            f.choices = vec!["red".into(), "green".into()];
            f.bad = bad_values(&f);
            assert!(!f.bad.is_empty(), "{ty}");
            for n in 0..SAMPLES_CHECKED {
                let good = sample(&f, n);
                assert!(fits(f.kind, &f.choices, true, &good), "{ty}: {good}");
            }
            for bad in &f.bad {
                assert!(!fits(f.kind, &f.choices, true, bad), "{ty}: {bad}");
            }
            assert_eq!(
                serde_json::to_value(f.kind).unwrap(),
                json!(f.kind.as_str())
            );
        }
    }

    const SAMPLES_CHECKED: usize = 8;
}
