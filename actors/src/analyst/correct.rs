//! Corrections in words: the user reads the spec and says what to change ("add a due date",
//! "rename notes to memos", "tags are a list", «добавь поле срок»). Each sentence is one
//! edit; a sentence no rule understands is returned as written, never guessed at.

use super::read::{field_of, noun_of, read, type_by_name};
use super::words::{Word, plural, singular, snake, words};
use super::{Corrected, russian};
use artel_messages::spec::{FieldType, Resource, Spec};

/// Applies `correction` to `spec`.
pub fn correct(spec: &Spec, correction: &str) -> Corrected {
    let mut next = spec.clone();
    let mut not_applied = Vec::new();
    for sentence in correction.split(['.', ';', '\n', '!']) {
        let sentence = sentence.trim();
        if sentence.is_empty() {
            continue;
        }
        if !apply(&mut next, sentence) {
            not_applied.push(sentence.to_owned());
        }
    }
    if next != *spec {
        next.version = spec.version.saturating_add(1);
    }
    Corrected {
        spec: next,
        not_applied,
    }
}

fn is(w: &Word, keys: &[&str]) -> bool {
    w.separator.is_none()
        && keys
            .iter()
            .any(|k| w.text == *k || (w.russian && k.chars().count() > 3 && w.text.starts_with(k)))
}

const ADD: &[&str] = &[
    "add",
    "include",
    "also",
    "plus",
    "добавь",
    "добавить",
    "добавьте",
    "нужно",
    "нужен",
    "нужна",
];
const REMOVE: &[&str] = &[
    "remove",
    "drop",
    "delete",
    "without",
    "удали",
    "удалить",
    "убери",
    "убрать",
    "без",
];
const RENAME: &[&str] = &["rename", "переименуй", "переименовать", "переименуйте"];
const TO: &[&str] = &["to", "into", "as", "в", "во", "на", "к"];

/// Applies one sentence; false when no rule understood it.
fn apply(spec: &mut Spec, sentence: &str) -> bool {
    let ws: Vec<Word> = words(sentence)
        .into_iter()
        .filter(|w| w.separator.is_none())
        .filter(|w| {
            ![
                "a",
                "an",
                "the",
                "field",
                "поле",
                "поля",
                "please",
                "пожалуйста",
            ]
            .contains(&w.text.as_str())
        })
        .collect();
    let Some(first) = ws.first() else {
        return false;
    };
    if is(first, RENAME) {
        return rename(spec, &ws[1..]);
    }
    if is(first, REMOVE) {
        return remove(spec, &ws[1..]);
    }
    if is(first, ADD) {
        return add(spec, &ws[1..], sentence);
    }
    if let Some(at) = ws
        .iter()
        .position(|w| is(w, &["belong", "belongs", "принадлеж", "относ"]))
    {
        return belong(spec, &ws[..at], &ws[at + 1..]);
    }
    if let Some(at) = ws
        .iter()
        .position(|w| is(w, &["is", "are", "should", "must", "это", "—", "будет"]))
    {
        return retype(spec, &ws[..at], &ws[at + 1..]);
    }
    // «теги — список»: the dash is a separator, so the two halves are adjacent words.
    if ws.len() >= 2
        && is(
            &ws[ws.len() - 1],
            &[
                "список",
                "list",
                "обязательное",
                "обязательно",
                "required",
                "unique",
                "уникальное",
            ],
        )
    {
        return retype(spec, &ws[..ws.len() - 1], &ws[ws.len() - 1..]);
    }
    false
}

/// The resource and field a phrase names: `(resource index, Some(field index))`, or the
/// resource itself with `None`.
fn find(spec: &Spec, phrase: &[Word]) -> Option<(usize, Option<usize>)> {
    let text: Vec<&str> = phrase.iter().map(|w| w.text.as_str()).collect();
    let name = snake(&text.join(" "))?;
    let singular_name = snake(&singular(&text.join(" "))).unwrap_or_default();
    let stems: Vec<String> = phrase.iter().map(|w| w.key.clone()).collect();
    for (r, res) in spec.resources.iter().enumerate() {
        if let Some(f) = res
            .fields
            .iter()
            .position(|f| f.name == name || f.name == singular_name || f.name == format!("{name}s"))
        {
            return Some((r, Some(f)));
        }
    }
    for (r, res) in spec.resources.iter().enumerate() {
        let label_matches = phrase.len() == 1
            && phrase[0].russian
            && (res
                .label
                .as_deref()
                .is_some_and(|l| russian::stem(&l.to_lowercase()) == stems[0])
                || noun_of(&phrase[0]).is_some_and(|n| n.plural == res.plural));
        if res.plural == name
            || res.singular == name
            || res.singular == singular_name
            || label_matches
        {
            return Some((r, None));
        }
    }
    // A Russian word for a field the spec holds under its English name.
    if phrase.len() == 1
        && let Some(field) = field_of(&[&phrase[0]], &[])
    {
        for (r, res) in spec.resources.iter().enumerate() {
            if let Some(f) = res.fields.iter().position(|f| f.name == field.name) {
                return Some((r, Some(f)));
            }
        }
    }
    None
}

fn rename(spec: &mut Spec, rest: &[Word]) -> bool {
    let Some(at) = rest.iter().position(|w| is(w, TO)) else {
        return false;
    };
    let (from, to) = (&rest[..at], &rest[at + 1..]);
    let Some(new) = snake(
        &to.iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    ) else {
        return false;
    };
    match find(spec, from) {
        Some((r, Some(f))) => {
            let old = spec.resources[r].fields[f].name.clone();
            if spec.resources[r].fields.iter().any(|x| x.name == new) {
                return false;
            }
            let res = &mut spec.resources[r];
            res.fields[f].name = new.clone();
            for list in [&mut res.filters, &mut res.search, &mut res.sort] {
                for name in list.iter_mut() {
                    if *name == old {
                        *name = new.clone();
                    }
                }
            }
            for action in &mut res.actions {
                if action.field == old {
                    action.field = new.clone();
                }
            }
            true
        }
        Some((r, None)) => {
            let to_russian = to.iter().any(|w| w.russian);
            let known = (to.len() == 1).then(|| noun_of(&to[0])).flatten();
            let (one, many) = if let Some(noun) = known {
                (noun.singular.to_owned(), noun.plural.to_owned())
            } else if to_russian {
                (format!("{new}_item"), new.clone())
            } else {
                let one = snake(&singular(&new)).unwrap_or(new.clone());
                (one.clone(), plural(&one))
            };
            if spec.resources.iter().any(|x| x.plural == many) {
                return false;
            }
            let old = spec.resources[r].singular.clone();
            spec.resources[r].plural = many;
            spec.resources[r].singular = one.clone();
            if to_russian {
                spec.resources[r].label = Some(
                    to.iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            for res in &mut spec.resources {
                for parent in &mut res.belongs_to {
                    if *parent == old {
                        *parent = one.clone();
                    }
                }
            }
            true
        }
        None => false,
    }
}

fn remove(spec: &mut Spec, rest: &[Word]) -> bool {
    match find(spec, rest) {
        Some((r, Some(f))) => {
            let res = &mut spec.resources[r];
            let name = res.fields.remove(f).name;
            res.filters.retain(|x| *x != name);
            res.search.retain(|x| *x != name);
            res.sort.retain(|x| *x != name);
            res.actions.retain(|a| a.field != name);
            true
        }
        Some((r, None)) => {
            let gone = spec.resources.remove(r).singular;
            for res in &mut spec.resources {
                res.belongs_to.retain(|p| *p != gone);
            }
            true
        }
        None => false,
    }
}

fn belong(spec: &mut Spec, child: &[Word], parent: &[Word]) -> bool {
    let parent: Vec<Word> = parent.iter().filter(|w| !is(w, TO)).cloned().collect();
    match (find(spec, child), find(spec, &parent)) {
        (Some((c, None)), Some((p, None))) if c != p => {
            let name = spec.resources[p].singular.clone();
            let res = &mut spec.resources[c];
            if !res.belongs_to.contains(&name) {
                res.belongs_to.push(name.clone());
            }
            res.fields.retain(|f| f.name != name);
            true
        }
        _ => false,
    }
}

fn retype(spec: &mut Spec, subject: &[Word], predicate: &[Word]) -> bool {
    let Some((r, Some(f))) = find(spec, subject) else {
        return false;
    };
    let field = &mut spec.resources[r].fields[f];
    let mut changed = false;
    for w in predicate {
        let t = w.text.as_str();
        let ty = match t {
            "list" | "lists" | "список" | "списком" => Some(FieldType::StringList),
            "number" | "decimal" | "float" | "число" | "числом" => {
                Some(FieldType::Number)
            }
            "integer" | "int" | "count" | "целое" => Some(FieldType::Integer),
            "money" | "price" | "деньги" => Some(FieldType::Money),
            "date" | "дата" | "датой" => Some(FieldType::Date),
            "datetime" | "timestamp" | "time" | "время" => Some(FieldType::Datetime),
            "text" | "текст" | "long" => Some(FieldType::Text),
            "string" | "строка" | "строкой" => Some(FieldType::String),
            "boolean" | "bool" | "flag" | "флаг" => Some(FieldType::Boolean),
            "url" | "link" | "ссылка" => Some(FieldType::Url),
            "email" | "почта" => Some(FieldType::Email),
            _ => None,
        };
        if let Some(ty) = ty {
            field.ty = ty;
            field.default = None;
            field.choices.clear();
            changed = true;
        }
        if t.starts_with("required") || t.starts_with("mandatory") || t.starts_with("обязательн")
        {
            field.required = true;
            changed = true;
        }
        if t == "optional" || t.starts_with("необязательн") {
            field.required = false;
            changed = true;
        }
        if t == "unique" || t.starts_with("уникальн") {
            field.unique = true;
            changed = true;
        }
    }
    changed
}

fn add(spec: &mut Spec, rest: &[Word], sentence: &str) -> bool {
    if rest.is_empty() {
        return false;
    }
    // A new kind of record: "add a resource tags with name", "add comments".
    let resource_word = rest.iter().position(|w| {
        is(
            w,
            &[
                "resource",
                "collection",
                "table",
                "ресурс",
                "таблицу",
                "сущность",
            ],
        )
    });
    let starts_with_noun = {
        let probe = read(
            &rest
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        probe.resources.first().is_some_and(|r| {
            spec.resource(&r.plural).is_none() && rest[0].text.as_str() == r.plural.as_str()
        })
    };
    if resource_word.is_some() || starts_with_noun {
        let tail: Vec<&str> = rest[resource_word.map_or(0, |i| i + 1)..]
            .iter()
            .map(|w| w.text.as_str())
            .collect();
        let probe = read(&tail.join(" "));
        let mut added = false;
        for resource in probe.resources {
            if spec.resource(&resource.plural).is_none() {
                spec.resources.push(resource);
                added = true;
            }
        }
        relate_new(spec);
        return added;
    }
    // Fields: "a due date and a priority to tasks", «срок в задачи».
    let (phrases, target) = match rest.iter().rposition(|w| is(w, TO)) {
        Some(at) => match find(spec, &rest[at + 1..]) {
            Some((r, None)) => (&rest[..at], Some(r)),
            _ => (rest, None),
        },
        None => (rest, None),
    };
    let Some(target) = target.or(if spec.resources.is_empty() {
        None
    } else {
        Some(0)
    }) else {
        return false;
    };
    let mut added = false;
    let mut item: Vec<&Word> = Vec::new();
    let mut items: Vec<Vec<&Word>> = Vec::new();
    for w in phrases {
        if ["and", "or", "и", "или"].contains(&w.text.as_str()) {
            items.push(std::mem::take(&mut item));
        } else {
            item.push(w);
        }
    }
    items.push(item);
    for phrase in items {
        let Some(mut field) = field_of(&phrase, &[]) else {
            continue;
        };
        if field.ty == FieldType::String {
            field.ty = type_by_name(&field.name);
        }
        let res: &mut Resource = &mut spec.resources[target];
        if res.fields.iter().any(|f| f.name == field.name) {
            continue;
        }
        res.fields.push(field);
        added = true;
    }
    let _ = sentence;
    added
}

/// Relations for records a correction added (comments added to a blog belong to posts).
fn relate_new(spec: &mut Spec) {
    let request: Vec<&str> = spec.resources.iter().map(|r| r.plural.as_str()).collect();
    let rebuilt = read(&request.join(" and "));
    for resource in &mut spec.resources {
        if resource.belongs_to.is_empty()
            && let Some(again) = rebuilt.resource(&resource.plural)
        {
            resource.belongs_to = again.belongs_to.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_messages::spec::FieldType;

    fn todo() -> Spec {
        read("a todo list with notes and tags")
    }

    #[test]
    fn corrections_in_english_edit_the_spec_and_move_its_version() {
        let spec = todo();
        let got = correct(&spec, "add a due date");
        assert_eq!(got.spec.version, 2);
        assert_eq!(got.not_applied, Vec::<std::string::String>::new());
        let todos = got.spec.resource("todos").expect("todos");
        assert_eq!(todos.field("due_date").map(|f| f.ty), Some(FieldType::Date));

        let got = correct(&spec, "rename notes to memos");
        let todos = got.spec.resource("todos").expect("todos");
        assert!(
            todos.field("memos").is_some() && todos.field("notes").is_none(),
            "{todos:?}"
        );

        let got = correct(&spec, "notes are a list");
        let notes = got.spec.resource("todos").and_then(|r| r.field("notes"));
        assert_eq!(notes.map(|f| f.ty), Some(FieldType::StringList));

        let got = correct(&spec, "title is unique; remove tags");
        let todos = got.spec.resource("todos").expect("todos");
        assert!(todos.field("title").is_some_and(|f| f.unique));
        assert!(todos.field("tags").is_none());

        let got = correct(
            &spec,
            "add a resource projects with a name. tasks belong to projects",
        );
        assert!(got.spec.resource("projects").is_some(), "{:?}", got.spec);
        assert_eq!(
            got.not_applied,
            ["tasks belong to projects"],
            "todos, not tasks"
        );

        let got = correct(&spec, "make it purple");
        assert_eq!(got.spec, spec, "nothing understood, nothing changed");
        assert_eq!(got.not_applied, ["make it purple"]);
    }

    #[test]
    fn corrections_in_russian_edit_the_spec() {
        let spec = read("сервис заметок");
        let got = correct(&spec, "добавь поле срок");
        let notes = got.spec.resource("notes").expect("notes");
        assert_eq!(
            notes.field("due_date").map(|f| f.ty),
            Some(FieldType::Date),
            "{notes:?}"
        );
        let got = correct(&got.spec, "переименуй заметки в записи");
        let entries = got.spec.resource("entries").expect("«записи» are entries");
        assert_eq!(entries.label.as_deref(), Some("записи"));
        let spec = read("рецепты с тегами");
        let got = correct(&spec, "удали поле теги");
        assert!(
            got.spec
                .resource("recipes")
                .is_some_and(|r| r.field("tags").is_none()),
            "{:?}",
            got.spec
        );
    }

    #[test]
    fn relations_can_be_said() {
        let spec = read("posts and comments and authors");
        let got = correct(&spec, "posts belong to authors");
        let posts = got.spec.resource("posts").expect("posts");
        assert!(posts.belongs_to.contains(&"author".to_owned()), "{posts:?}");
    }
}
