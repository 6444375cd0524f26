//! The reader: a request becomes a [`Spec`].
//!
//! It works in passes over the request's [`words`](super::words): what kind of request it is
//! (a resource API or something else), which records it names (by noun, or by a domain
//! phrase like "a blog"), what each record has ("books *with* author and ISBN", «книги *с*
//! автором»), how the records relate, which actions, filters, searches and orders it asks
//! for — and what it said that none of these place.

use super::lexicon::{self, DOMAINS, FIELDS, LIST_WORDS, NOUNS, Noun, OUT_OF_RANGE, UNPLACEABLE};
use super::russian;
use super::words::{Word, plural, singular, snake, words};
use artel_messages::spec::{Action, ActionKind, Field, FieldType, Resource, Spec};
use serde_json::json;

/// Words that start a list of what a record has.
const WITH: &[&str] = &[
    "with",
    "having",
    "containing",
    "including",
    "has",
    "have",
    "с",
    "со",
    "содержащ",
];

/// Words that end such a list.
const STOP: &[&str] = &[
    "where",
    "that",
    "which",
    "who",
    "so",
    "to",
    "for",
    "in",
    "on",
    "by",
    "mark",
    "search",
    "sort",
    "sorted",
    "filter",
    "and then",
    "plus",
    "где",
    "которые",
    "который",
    "чтобы",
    "для",
    "по",
    "в",
    "на",
    "и",
    "also",
    "i",
    "я",
    "can",
    "можно",
    "want",
    "need",
];

/// Words that are never a field or a record.
const FILLER: &[&str] = &[
    "a",
    "an",
    "the",
    "its",
    "their",
    "his",
    "her",
    "my",
    "our",
    "each",
    "every",
    "some",
    "optional",
    "required",
    "unique",
    "own",
    "of",
    "один",
    "свой",
    "своим",
    "их",
    "его",
    "её",
    "list",
    "список",
    "списком",
    "lists",
    "also",
    "and",
    "или",
    "or",
    "и",
];

/// Nouns that name the service, not what it keeps.
const SERVICE_WORDS: &[&str] = &[
    "service",
    "api",
    "app",
    "application",
    "server",
    "backend",
    "tracker",
    "manager",
    "system",
    "catalog",
    "catalogue",
    "registry",
    "database",
    "log",
    "journal",
    "box",
    "board",
    "site",
    "website",
    "tool",
    "platform",
    "сервис",
    "апи",
    "api",
    "приложение",
    "систем",
    "бэкенд",
    "сайт",
    "трекер",
    "каталог",
    "журнал",
    "реестр",
    "учёт",
    "учет",
    "учёта",
    "учета",
];

/// Words that are not what a service keeps, before a service word ("a simple REST API").
const NOT_RECORDS: &[&str] = &[
    "simple",
    "small",
    "tiny",
    "rest",
    "restful",
    "json",
    "http",
    "web",
    "new",
    "my",
    "our",
    "basic",
    "little",
    "quick",
    "python",
    "crud",
    "hello",
    "test",
    "demo",
    "nice",
    "good",
    "нужен",
    "нужно",
    "сделай",
    "простой",
    "простое",
    "маленький",
    "мой",
];

/// A record the request names, and where.
struct Mention {
    noun: Option<&'static Noun>,
    singular: String,
    plural: String,
    label: Option<String>,
    at: usize,
    /// Every position of the request that names it.
    positions: Vec<usize>,
    /// The record whose with-list named it ("decks with *cards*"): its parent.
    parent: Option<String>,
}

/// What the reader collected about one record.
struct Draft {
    mention: Mention,
    fields: Vec<Field>,
    belongs_to: Vec<String>,
    actions: Vec<Action>,
    filters: Vec<String>,
    search: Vec<String>,
    sort: Vec<String>,
}

/// Reads `request` into version 1 of its spec.
pub fn read(request: &str) -> Spec {
    let without_secrets = strip_secret_names(request);
    let text = without_secrets.to_lowercase();
    let ws = words(&without_secrets);
    let language = if russian::is_mostly_cyrillic(request) {
        "ru"
    } else {
        "en"
    };
    let out_of_range = out_of_range(&text, &ws);
    let (mut mentions, title) = records(&ws);
    mentions.sort_by_key(|m| m.at);
    let mut drafts: Vec<Draft> = mentions
        .into_iter()
        .map(|mention| Draft {
            mention,
            fields: Vec::new(),
            belongs_to: Vec::new(),
            actions: Vec::new(),
            filters: Vec::new(),
            search: Vec::new(),
            sort: Vec::new(),
        })
        .collect();
    let mut unplaced = Vec::new();
    with_lists(&ws, &mut drafts);
    relations(&mut drafts);
    defaults(&mut drafts);
    actions(&text, &ws, &mut drafts);
    by_phrases(&ws, &mut drafts);
    unplaceable(request, &mut unplaced);
    let resources: Vec<Resource> = drafts.into_iter().map(finish).collect();
    let title = title.unwrap_or_else(|| default_title(&resources, language));
    Spec {
        version: 1,
        title,
        language: language.to_owned(),
        resources,
        unplaced,
        out_of_range,
    }
}

/// The request without the environment variable names it mentions (`WEATHER_API_KEY`): they
/// are secrets the deploy asks for, not fields.
fn strip_secret_names(request: &str) -> String {
    request
        .split_whitespace()
        .filter(|w| {
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
            !(w.len() > 3
                && w.contains('_')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when a word of `ws` (or the text, for a phrase) is `key`.
fn mentions(text: &str, ws: &[Word], key: &str) -> bool {
    if key.contains(' ') {
        return text.contains(key);
    }
    if key.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)) {
        return ws.iter().any(|w| w.russian && w.text.starts_with(key));
    }
    ws.iter().any(|w| w.is(key))
}

fn out_of_range(text: &str, ws: &[Word]) -> Option<String> {
    OUT_OF_RANGE
        .iter()
        .find(|(keys, _)| keys.iter().any(|k| mentions(text, ws, k)))
        .map(|(_, what)| (*what).to_owned())
}

fn russian_match(noun_forms: &[&str], w: &Word) -> bool {
    w.russian
        && noun_forms
            .iter()
            .any(|form| russian::stem(form) == w.key || *form == w.text)
}

/// The noun `w` is, if any.
pub(super) fn noun_of(w: &Word) -> Option<&'static Noun> {
    if w.separator.is_some() {
        return None;
    }
    NOUNS.iter().find(|n| {
        if w.russian {
            russian_match(n.russian, w)
        } else {
            w.key == n.singular || w.text == n.plural || w.text == n.singular
        }
    })
}

fn is_list_word(w: &Word) -> Option<&'static str> {
    LIST_WORDS
        .iter()
        .find(|(name, forms)| {
            if w.russian {
                russian_match(forms, w)
            } else {
                w.text == *name || plural(&w.key) == *name
            }
        })
        .map(|(name, _)| *name)
}

/// Whether a Russian word is plural as written (a listed plural form, or a plural ending).
fn russian_plural(w: &Word, noun: &Noun) -> bool {
    let listed = noun.russian.iter().skip(1).any(|form| *form == w.text);
    listed
        || ["ами", "ями", "ах", "ях", "ов", "ев", "ей", "ы", "и"]
            .iter()
            .any(|e| w.text.ends_with(e))
}

/// The records the request names, and the domain's title when a phrase names one.
fn records(ws: &[Word]) -> (Vec<Mention>, Option<String>) {
    let mut found: Vec<Mention> = Vec::new();
    let push = |found: &mut Vec<Mention>, m: Mention| match found
        .iter_mut()
        .find(|f| f.plural == m.plural)
    {
        Some(f) => f.positions.extend(m.positions),
        None => found.push(m),
    };
    let mut consumed: Vec<usize> = Vec::new();
    let mut title = None;
    let text: String = ws
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for domain in DOMAINS {
        let at = domain
            .words
            .iter()
            .map(|d| {
                ws.iter().position(|w| {
                    if d.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)) {
                        w.russian && w.text.starts_with(d)
                    } else {
                        w.text == *d || w.key == *d || w.text.starts_with(&format!("{d}-"))
                    }
                })
            })
            .collect::<Option<Vec<usize>>>();
        let Some(at) = at else { continue };
        if domain.words.len() > 1 && !contiguous(&at) && !text.is_empty() {
            continue;
        }
        title.get_or_insert_with(|| domain.title.to_owned());
        consumed.extend(at.iter().copied());
        let at = at.iter().copied().min().unwrap_or(0);
        for keep in domain.keeps {
            if let Some(noun) = NOUNS.iter().find(|n| n.plural == *keep) {
                push(
                    &mut found,
                    Mention {
                        noun: Some(noun),
                        singular: noun.singular.to_owned(),
                        plural: noun.plural.to_owned(),
                        label: None,
                        at,
                        positions: vec![at],
                        parent: None,
                    },
                );
            }
        }
        break;
    }
    // Nouns: a singular one inside another record's "with" list is that record's field
    // (books with an *author*); a plural one is a record of its own (posts with *comments*).
    let mut in_with = false;
    let mut with_owner: Option<String> = None;
    for (i, w) in ws.iter().enumerate() {
        if w.separator.is_some_and(|c| c == '.' || c == ';') {
            in_with = false;
            with_owner = None;
        }
        if WITH
            .iter()
            .any(|k| w.is(k) || (w.russian && w.text.starts_with(k) && k.len() > 4))
        {
            in_with = !found.is_empty();
            with_owner = found
                .iter()
                .filter_map(|m| {
                    m.positions
                        .iter()
                        .filter(|&&p| p < i)
                        .max()
                        .map(|&p| (p, m))
                })
                .max_by_key(|&(p, _)| p)
                .map(|(_, m)| m.singular.clone());
            continue;
        }
        if consumed.contains(&i) {
            continue;
        }
        let Some(noun) = noun_of(w) else {
            if let Some(mut m) = unknown_plural(ws, i, in_with) {
                m.parent = if in_with { with_owner.clone() } else { None };
                push(&mut found, m);
            }
            continue;
        };
        let is_plural = if w.russian {
            russian_plural(w, noun)
        } else {
            w.text == noun.plural && noun.plural != noun.singular
        };
        if in_with && !is_plural {
            continue;
        }
        if is_list_word(w).is_some() && in_with {
            continue;
        }
        // A field word that is also a noun ("category", "author") names a record only as a
        // plural outside a with-list, or when nothing else was named.
        let field_word = FIELDS.iter().any(|f| f.name == noun.singular);
        if field_word && (!is_plural || in_with) && !found.is_empty() {
            continue;
        }
        if preceded_by_by(ws, i) {
            continue;
        }
        push(
            &mut found,
            Mention {
                noun: Some(noun),
                singular: noun.singular.to_owned(),
                plural: noun.plural.to_owned(),
                label: w.russian.then(|| w.text.clone()),
                at: i,
                positions: vec![i],
                parent: None,
            },
        );
    }
    // Labels for records a Russian domain phrase named.
    for m in &mut found {
        if m.label.is_none()
            && let Some(noun) = m.noun
            && let Some(w) = ws.iter().find(|w| russian_match(noun.russian, w))
        {
            m.label = Some(w.text.clone());
        }
    }
    if found.is_empty()
        && let Some(m) = unknown_record(ws)
    {
        found.push(m);
    }
    (found, title)
}

fn contiguous(at: &[usize]) -> bool {
    let (lo, hi) = (
        at.iter().copied().min().unwrap_or(0),
        at.iter().copied().max().unwrap_or(0),
    );
    hi - lo < at.len() + 2
}

/// An English plural no table knows, named in a list of records ("talks, speakers and
/// rooms") or in a record's with-list ("decks with cards"): a record of its own.
fn unknown_plural(ws: &[Word], i: usize, in_with: bool) -> Option<Mention> {
    let w = &ws[i];
    let skip = |t: &str| {
        FILLER.contains(&t)
            || STOP.contains(&t)
            || NOT_RECORDS.contains(&t)
            || WITH.contains(&t)
            || SERVICE_WORDS.contains(&t)
    };
    if w.russian
        || w.separator.is_some()
        || w.key == w.text
        || w.text.len() < 4
        || !w.text.chars().all(|c| c.is_ascii_alphabetic())
        || skip(&w.text)
        || skip(&w.key)
        || FIELDS
            .iter()
            .any(|f| f.english.contains(&w.text.as_str()) || f.english.contains(&w.key.as_str()))
        || is_list_word(w).is_some()
        || preceded_by_by(ws, i)
    {
        return None;
    }
    let joins = |j: usize| {
        ws.get(j).is_some_and(|n| {
            n.separator == Some(',') || n.is("and") || n.is("with") || n.separator == Some(':')
        })
    };
    let listed = in_with || joins(i + 1) || (i > 0 && joins(i - 1)) || ws.get(i + 1).is_none();
    if !listed {
        return None;
    }
    let singular = snake(&w.key)?;
    Some(Mention {
        noun: None,
        plural: plural(&singular),
        singular,
        label: None,
        at: i,
        positions: vec![i],
        parent: None,
    })
}

/// "by category", «по категориям»: a field to filter by, not a record.
fn preceded_by_by(ws: &[Word], i: usize) -> bool {
    i > 0 && (ws[i - 1].is("by") || ws[i - 1].is("по") || ws[i - 1].is("per"))
}

/// A record no table knows: the noun before a service word ("a plant tracker"), or after a
/// verb of keeping ("track my plants", «учёт растений»).
fn unknown_record(ws: &[Word]) -> Option<Mention> {
    let service = |w: &Word| {
        SERVICE_WORDS
            .iter()
            .any(|s| w.is(s) || w.text.starts_with(s))
    };
    let candidate = |w: &Word| {
        w.separator.is_none()
            && !service(w)
            && !NOT_RECORDS.contains(&w.text.as_str())
            && !FILLER.contains(&w.text.as_str())
            && !STOP.contains(&w.text.as_str())
            && !WITH.contains(&w.text.as_str())
            && w.text.chars().all(|c| c.is_alphabetic() || c == '-')
            && w.text.chars().count() > 2
    };
    let mut pick = None;
    for (i, w) in ws.iter().enumerate() {
        if service(w) && i > 0 && candidate(&ws[i - 1]) && !ws[i - 1].russian {
            pick = Some(i - 1);
            break;
        }
        let keeps = [
            "track",
            "manage",
            "store",
            "keep",
            "catalog",
            "catalogue",
            "record",
            "log",
        ];
        if (keeps.iter().any(|k| w.is(k))
            || (w.russian && (w.text.starts_with("учёт") || w.text.starts_with("учет"))))
            && let Some(j) = (i + 1..ws.len().min(i + 4)).find(|&j| candidate(&ws[j]))
        {
            pick = Some(j);
            break;
        }
    }
    let w = &ws[pick?];
    let (singular_name, plural_name) = if w.russian {
        let plural_name = snake(&w.text)?;
        (format!("{plural_name}_item"), plural_name)
    } else {
        let one = snake(&singular(&w.text))?;
        let many = plural(&one);
        (one, many)
    };
    Some(Mention {
        noun: None,
        singular: singular_name,
        plural: plural_name,
        label: w.russian.then(|| w.text.clone()),
        at: pick?,
        positions: vec![pick?],
        parent: None,
    })
}

/// The draft a position in the request belongs to: the nearest record named before it, or
/// the first.
fn owner_at(drafts: &[Draft], at: usize) -> Option<usize> {
    drafts
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.mention
                .positions
                .iter()
                .filter(|&&p| p <= at)
                .max()
                .map(|&p| (i, p))
        })
        .max_by_key(|&(_, p)| p)
        .map(|(i, _)| i)
        .or(if drafts.is_empty() { None } else { Some(0) })
}

/// The fields of "X with a, b and c" lists.
fn with_lists(ws: &[Word], drafts: &mut [Draft]) {
    let mut i = 0;
    while i < ws.len() {
        let w = &ws[i];
        let opens = WITH.iter().any(|k| w.is(k)) || (w.russian && w.text.starts_with("содержащ"));
        let colon = w.separator == Some(':');
        if !(opens || colon) {
            i += 1;
            continue;
        }
        let Some(owner) = owner_at(drafts, i) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        let mut item: Vec<&Word> = Vec::new();
        let mut items: Vec<(Vec<&Word>, Vec<String>)> = Vec::new();
        let mut choices: Vec<String> = Vec::new();
        while j < ws.len() {
            let w = &ws[j];
            match w.separator {
                Some('(') => {
                    // "(low, medium, high)": the choices of the item before it.
                    let mut k = j + 1;
                    while k < ws.len() && ws[k].separator != Some(')') {
                        if ws[k].separator.is_none()
                            && !["or", "and", "или", "и"].contains(&ws[k].text.as_str())
                            && let Some(c) = snake(&ws[k].text)
                        {
                            choices.push(c);
                        }
                        k += 1;
                    }
                    j = k + 1;
                    continue;
                }
                Some(',') => {
                    items.push((std::mem::take(&mut item), std::mem::take(&mut choices)));
                    j += 1;
                    continue;
                }
                Some(_) => break,
                None => {}
            }
            if ["and", "or", "и", "или", "а", "plus"].contains(&w.text.as_str()) {
                items.push((std::mem::take(&mut item), std::mem::take(&mut choices)));
                j += 1;
                continue;
            }
            if STOP.contains(&w.text.as_str()) || WITH.iter().any(|k| w.is(k)) {
                break;
            }
            // A record named in the list (posts with comments) ends the list: it is a child.
            if drafts.iter().any(|d| d.mention.positions.contains(&j))
                || noun_of(w).is_some_and(|n| {
                    drafts.iter().any(|d| d.mention.plural == n.plural)
                        && (w.text == n.plural || (w.russian && russian_plural(w, n)))
                })
            {
                items.push((std::mem::take(&mut item), std::mem::take(&mut choices)));
                j += 1;
                continue;
            }
            item.push(w);
            j += 1;
        }
        items.push((item, choices));
        for (words, choices) in items {
            if let Some(field) = field_of(&words, &choices) {
                add_field(&mut drafts[owner], field);
            }
        }
        i = j.max(i + 1);
    }
}

/// The field a phrase from a with-list names, if any.
pub(super) fn field_of(words: &[&Word], choices: &[String]) -> Option<Field> {
    let mut required = false;
    let mut unique = false;
    let mut list = false;
    let mut kept: Vec<&Word> = Vec::new();
    for w in words {
        match w.text.as_str() {
            "required" | "mandatory" | "обязательн" | "обязательным" | "обязательное" => {
                required = true
            }
            "unique" | "уникальный" | "уникальным" | "уникальное" => {
                unique = true
            }
            "list" | "lists" | "список" | "списком" | "multiple" | "several" => {
                list = true
            }
            t if FILLER.contains(&t) || t.starts_with("обязательн") => {}
            _ => kept.push(w),
        }
    }
    // "a REST API", "a JSON interface": how it is served, not what it keeps.
    if kept.iter().all(|w| {
        NOT_RECORDS.contains(&w.text.as_str())
            || SERVICE_WORDS.contains(&w.text.as_str())
            || ["interface", "endpoint", "endpoints", "frontend", "ui"].contains(&w.text.as_str())
    }) {
        return None;
    }
    let phrase: String = kept
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let last = kept[kept.len() - 1];
    let exact = FIELDS
        .iter()
        .find(|f| f.english.contains(&phrase.as_str()) || f.russian.iter().any(|r| *r == phrase));
    let by_last = FIELDS.iter().find(|f| {
        f.english.iter().any(|e| *e == last.text || *e == last.key)
            || (last.russian && f.russian.iter().any(|r| russian::stem(r) == last.key))
    });
    let known = match (exact, by_last) {
        (Some(word), _) => Some(word),
        // "a watering date": a date of its own name.
        (None, Some(word)) if kept.len() > 1 && !last.russian => {
            let name = snake(&phrase)?;
            let mut field = plain(&name, word.ty);
            if field.ty == FieldType::Enum {
                field.ty = FieldType::String;
            }
            field.required |= required;
            field.unique |= unique;
            return Some(field);
        }
        (None, by_last) => by_last.filter(|_| kept.len() <= 2),
    };
    let list_word = is_list_word(last);
    let mut field = match (known, list_word) {
        (_, Some(name)) => plain(name, FieldType::StringList),
        (Some(word), None) => {
            let mut f = plain(word.name, word.ty);
            f.unique = word.unique;
            f.choices = lexicon::choices_of(word.name)
                .iter()
                .map(|c| (*c).to_owned())
                .collect();
            f
        }
        (None, None) => {
            let name = snake(&phrase)?;
            let ty = type_by_name(&name);
            plain(&name, ty)
        }
    };
    if list && field.ty != FieldType::StringList {
        field.ty = FieldType::StringList;
    }
    if !choices.is_empty() {
        field.ty = FieldType::Enum;
        field.choices = choices.to_vec();
    }
    if field.ty == FieldType::Enum && field.choices.is_empty() {
        field.ty = FieldType::String;
    }
    if field.ty == FieldType::Enum {
        field.default = field.choices.first().map(|c| json!(c));
    }
    field.required |= required;
    field.unique |= unique;
    Some(field)
}

/// A field's type from its name alone.
pub fn type_by_name(name: &str) -> FieldType {
    let has = |parts: &[&str]| parts.iter().any(|p| name.split('_').any(|w| w == *p));
    if has(&["date", "birthday", "deadline", "due"]) {
        FieldType::Date
    } else if name.ends_with("_at") || has(&["time", "timestamp"]) {
        FieldType::Datetime
    } else if has(&[
        "price", "cost", "amount", "salary", "fee", "budget", "total",
    ]) {
        FieldType::Money
    } else if has(&["email"]) {
        FieldType::Email
    } else if has(&["url", "link", "website", "homepage"]) {
        FieldType::Url
    } else if has(&[
        "count",
        "quantity",
        "age",
        "year",
        "number_of",
        "rating",
        "pages",
    ]) {
        FieldType::Integer
    } else if has(&[
        "weight",
        "height",
        "score",
        "percent",
        "latitude",
        "longitude",
    ]) {
        FieldType::Number
    } else if name.starts_with("is_") || name.starts_with("has_") || has(&["done", "active"]) {
        FieldType::Boolean
    } else if has(&[
        "notes",
        "description",
        "body",
        "text",
        "content",
        "bio",
        "summary",
    ]) {
        FieldType::Text
    } else if has(&["tags", "labels"]) {
        FieldType::StringList
    } else {
        FieldType::String
    }
}

/// A field of `ty` with no constraints.
pub fn plain(name: &str, ty: FieldType) -> Field {
    Field {
        name: name.to_owned(),
        ty,
        required: false,
        unique: false,
        default: match ty {
            FieldType::Boolean => Some(json!(false)),
            _ => None,
        },
        choices: Vec::new(),
    }
}

fn add_field(draft: &mut Draft, field: Field) {
    if matches!(
        field.name.as_str(),
        "id" | "created_at" | "delete_token" | "hits"
    ) {
        return;
    }
    if let Some(existing) = draft.fields.iter_mut().find(|f| f.name == field.name) {
        existing.required |= field.required;
        existing.unique |= field.unique;
        return;
    }
    draft.fields.push(field);
}

/// Which records belong to which: the lexicon's usual parents among the records named, and a
/// plural record in another's with-list.
fn relations(drafts: &mut [Draft]) {
    let names: Vec<String> = drafts.iter().map(|d| d.mention.singular.clone()).collect();
    for draft in drafts.iter_mut() {
        let Some(noun) = draft.mention.noun else {
            continue;
        };
        for parent in noun.parents {
            if *parent != draft.mention.singular
                && names.iter().any(|n| n == parent)
                && draft.belongs_to.len() < 2
                && !draft.belongs_to.iter().any(|b| b == parent)
            {
                draft.belongs_to.push((*parent).to_owned());
            }
        }
        // The reference replaces a field of the same name (a book's author).
        let parents = draft.belongs_to.clone();
        draft.fields.retain(|f| !parents.contains(&f.name));
    }
    // Only one parent per pair direction: a record does not belong to its own child.
    let pairs: Vec<(String, String)> = drafts
        .iter()
        .flat_map(|d| {
            d.belongs_to
                .iter()
                .map(|p| (d.mention.singular.clone(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for draft in drafts.iter_mut() {
        let me = draft.mention.singular.clone();
        draft
            .belongs_to
            .retain(|p| !pairs.iter().any(|(c, q)| c == p && *q == me) || me < *p);
    }
}

/// The fields a record has when the request named none of its usual ones.
fn defaults(drafts: &mut [Draft]) {
    for draft in drafts.iter_mut() {
        let usual: Vec<&str> = match draft.mention.noun {
            Some(noun) => noun.fields.to_vec(),
            None => vec!["name"],
        };
        let parents = draft.belongs_to.clone();
        let mut usual: Vec<Field> = usual
            .iter()
            .filter(|name| !parents.iter().any(|p| p == *name))
            .map(|name| match FIELDS.iter().find(|f| f.name == *name) {
                Some(word) => {
                    let mut f = plain(word.name, word.ty);
                    f.unique = word.unique;
                    f.choices = lexicon::choices_of(word.name)
                        .iter()
                        .map(|c| (*c).to_owned())
                        .collect();
                    if f.ty == FieldType::Enum {
                        f.default = f.choices.first().map(|c| json!(c));
                    }
                    f
                }
                None => plain(name, type_by_name(name)),
            })
            .collect();
        if let Some(first) = usual.first_mut() {
            first.required = true;
        }
        if draft.fields.is_empty() {
            draft.fields = usual;
        } else if let Some(key) = usual.first()
            && matches!(
                key.name.as_str(),
                "title" | "name" | "url" | "amount" | "body"
            )
            && !draft
                .fields
                .iter()
                .any(|f| matches!(f.name.as_str(), "title" | "name" | "url" | "body"))
        {
            // "books with author and ISBN": a book still has its title.
            draft.fields.insert(0, key.clone());
        }
        if !draft.fields.iter().any(|f| f.required)
            && let Some(key) = draft
                .fields
                .iter()
                .position(|f| {
                    matches!(
                        f.name.as_str(),
                        "title" | "name" | "url" | "amount" | "body"
                    )
                })
                .or(if draft.fields.is_empty() {
                    None
                } else {
                    Some(0)
                })
        {
            draft.fields[key].required = true;
        }
    }
}

fn set_flag(draft: &mut Draft, field: &str, actions: &[(&str, bool)]) {
    add_field(draft, plain(field, FieldType::Boolean));
    for (name, value) in actions {
        if !draft.actions.iter().any(|a| a.name == *name) {
            draft.actions.push(Action {
                name: (*name).to_owned(),
                kind: ActionKind::SetFlag,
                field: field.to_owned(),
                value: Some(*value),
            });
        }
    }
    if !draft.filters.iter().any(|f| f == field) {
        draft.filters.push(field.to_owned());
    }
}

/// The draft an action word at `at` applies to: the record named nearest before it, else
/// the first record of one of `kinds`, else the first.
fn target(drafts: &[Draft], at: Option<usize>, kinds: &[&str]) -> Option<usize> {
    drafts
        .iter()
        .position(|d| kinds.contains(&d.mention.singular.as_str()))
        .or_else(|| at.and_then(|at| owner_at(drafts, at)))
        .or(if drafts.is_empty() { None } else { Some(0) })
}

fn position(ws: &[Word], keys: &[&str]) -> Option<usize> {
    ws.iter().position(|w| {
        keys.iter().any(|k| {
            w.is(k)
                || (k.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c))
                    && w.text.starts_with(k))
        })
    })
}

/// Actions beyond CRUD the request names, and the ones a kind of record implies.
fn actions(text: &str, ws: &[Word], drafts: &mut [Draft]) {
    if drafts.is_empty() {
        return;
    }
    let borrow = position(
        ws,
        &[
            "borrow",
            "borrowed",
            "lend",
            "lent",
            "loan",
            "выда",
            "взят",
            "одолж",
        ],
    );
    if (borrow.is_some() || text.contains("checked out"))
        && let Some(i) = target(drafts, borrow, &["book", "item", "car"])
    {
        set_flag(
            &mut drafts[i],
            "borrowed",
            &[("borrow", true), ("return", false)],
        );
    }
    let done = position(
        ws,
        &[
            "done",
            "complete",
            "completed",
            "finish",
            "finished",
            "выполнен",
            "выполнить",
            "сделан",
        ],
    );
    let todo_like = ["todo", "task", "goal"];
    for i in 0..drafts.len() {
        let is_todo = todo_like.contains(&drafts[i].mention.singular.as_str());
        let named_here = done.is_some_and(|at| owner_at(drafts, at) == Some(i));
        if is_todo || named_here {
            set_flag(&mut drafts[i], "done", &[("done", true), ("reopen", false)]);
        }
    }
    for draft in drafts.iter_mut() {
        match draft.mention.singular.as_str() {
            "habit" if !draft.actions.iter().any(|a| a.kind == ActionKind::CheckIn) => {
                draft.actions.push(check_in());
            }
            "link" if !draft.actions.iter().any(|a| a.kind == ActionKind::Redirect) => {
                add_field(
                    draft,
                    Field {
                        required: true,
                        ..plain("url", FieldType::Url)
                    },
                );
                draft.actions.push(Action {
                    name: "redirect".to_owned(),
                    kind: ActionKind::Redirect,
                    field: "url".to_owned(),
                    value: None,
                });
            }
            _ => {}
        }
    }
    let check = position(ws, &["check", "checked", "отмеч", "отметить"]);
    if let Some(at) = check
        && !drafts.iter().any(|d| d.mention.singular == "habit")
        && let Some(i) = owner_at(drafts, at)
        && !drafts[i].actions.iter().any(|a| a.field == "done")
    {
        drafts[i].actions.push(check_in());
    }
    // "mark a book as read": a flag of its own.
    for i in ws
        .iter()
        .enumerate()
        .filter(|(_, w)| w.is("mark"))
        .map(|(i, _)| i)
    {
        let Some(as_at) = (i + 1..ws.len().min(i + 6)).find(|&j| ws[j].is("as")) else {
            continue;
        };
        let Some(w) = ws.get(as_at + 1).filter(|w| w.separator.is_none()) else {
            continue;
        };
        let taken = [
            "done",
            "complete",
            "completed",
            "finished",
            "borrowed",
            "a",
            "an",
            "the",
        ];
        if taken.contains(&w.text.as_str()) {
            continue;
        }
        if let (Some(name), Some(owner)) = (snake(&w.text), owner_at(drafts, as_at)) {
            let (on, off) = (format!("mark_{name}"), format!("unmark_{name}"));
            set_flag(&mut drafts[owner], &name, &[(&on, true), (&off, false)]);
        }
    }
    for (keys, field, on, off) in FLAG_VERBS {
        if let Some(at) = position(ws, keys)
            && let Some(i) = owner_at(drafts, at)
        {
            set_flag(&mut drafts[i], field, &[(on, true), (off, false)]);
        }
    }
}

/// Verbs that set a flag of the record they follow: the words, the flag, its two actions.
const FLAG_VERBS: &[(&[&str], &str, &str, &str)] = &[
    (
        &["publish", "published", "опублик"],
        "published",
        "publish",
        "unpublish",
    ),
    (
        &["archive", "archived", "архив"],
        "archived",
        "archive",
        "unarchive",
    ),
];

/// Once a day, into the record's list of days (`check off a habit`).
fn check_in() -> Action {
    Action {
        name: "check_in".to_owned(),
        kind: ActionKind::CheckIn,
        field: "days".to_owned(),
        value: None,
    }
}

/// The field a word names in a draft, or a new one when the phrase names a field word.
fn field_named(draft: &mut Draft, w: &Word, add: bool) -> Option<String> {
    let hit = draft.fields.iter().find(|f| {
        f.name == w.key
            || f.name == w.text
            || f.name.split('_').next() == Some(w.key.as_str())
            || FIELDS.iter().any(|word| {
                word.name == f.name
                    && (word.english.contains(&w.text.as_str())
                        || word.english.contains(&w.key.as_str())
                        || (w.russian && word.russian.iter().any(|r| russian::stem(r) == w.key)))
            })
    });
    if let Some(f) = hit {
        return Some(f.name.clone());
    }
    if !add || w.text == "created_at" {
        return None;
    }
    let field = field_of(&[w], &[])?;
    if FIELDS.iter().any(|f| f.name == field.name) || is_list_word(w).is_some() {
        let name = field.name.clone();
        add_field(draft, field);
        return Some(name);
    }
    None
}

/// "by category" (a filter), "search by title" / "search", "sorted by due date".
fn by_phrases(ws: &[Word], drafts: &mut [Draft]) {
    if drafts.is_empty() {
        return;
    }
    for (i, w) in ws.iter().enumerate() {
        let sorts = w.text.starts_with("sort")
            || w.text.starts_with("order")
            || w.text.starts_with("сортир");
        let searches = w.text.starts_with("search")
            || w.text.starts_with("find")
            || w.text.starts_with("поиск")
            || w.text.starts_with("искат")
            || w.text.starts_with("найт");
        let by = w.is("by") || w.is("по") || w.is("per");
        if !(sorts || searches || by) {
            continue;
        }
        let owner = owner_at(drafts, i).unwrap_or(0);
        // The words after it, up to the next separator, skipping "by", articles.
        let after: Vec<&Word> = ws[i + 1..]
            .iter()
            .take_while(|w| w.separator.is_none())
            .filter(|w| !(w.is("by") || w.is("по") || FILLER.contains(&w.text.as_str())))
            .take(3)
            .collect();
        if by
            && i > 0
            && (ws[i - 1].text.starts_with("sort")
                || ws[i - 1].text.starts_with("order")
                || ws[i - 1].text.starts_with("search")
                || ws[i - 1].text.starts_with("сортир")
                || ws[i - 1].text.starts_with("поиск"))
        {
            continue;
        }
        let named = after.first().and_then(|w| {
            // Two-word field names first ("due date").
            if let Some(next) = after.get(1) {
                let pair = Word {
                    text: format!("{} {}", w.text, next.text),
                    key: format!("{} {}", w.key, next.key),
                    russian: w.russian,
                    separator: None,
                };
                if let Some(name) = field_named(&mut drafts[owner], &pair, true) {
                    return Some(name);
                }
            }
            field_named(&mut drafts[owner], w, true)
        });
        let draft = &mut drafts[owner];
        if sorts {
            let descending = ws[i..].iter().take(8).any(|w| {
                ["newest", "latest", "descending", "desc", "убыван"]
                    .iter()
                    .any(|k| w.text.starts_with(k))
            });
            let field = named.unwrap_or_else(|| "created_at".to_owned());
            let _ = descending;
            if !draft.sort.contains(&field) {
                draft.sort.push(field);
            }
        } else if searches {
            match named {
                Some(field) => {
                    if !draft.search.contains(&field) {
                        draft.search.push(field);
                    }
                }
                None => {
                    let texts: Vec<String> = draft
                        .fields
                        .iter()
                        .filter(|f| matches!(f.ty, FieldType::String | FieldType::Text))
                        .map(|f| f.name.clone())
                        .collect();
                    for f in texts {
                        if !draft.search.contains(&f) {
                            draft.search.push(f);
                        }
                    }
                }
            }
        } else if let Some(field) = named
            && !draft.filters.contains(&field)
        {
            draft.filters.push(field);
        }
    }
    // Enum and category fields filter by default.
    for draft in drafts.iter_mut() {
        let more: Vec<String> = draft
            .fields
            .iter()
            .filter(|f| f.ty == FieldType::Enum || f.name == "category")
            .map(|f| f.name.clone())
            .collect();
        for f in more {
            if !draft.filters.contains(&f) {
                draft.filters.push(f);
            }
        }
    }
}

/// Fragments naming what the offline agent cannot build (accounts, e-mails, payments).
fn unplaceable(request: &str, unplaced: &mut Vec<String>) {
    for fragment in request.split([',', '.', ';', '\n']) {
        let lower = fragment.to_lowercase();
        if UNPLACEABLE.iter().any(|k| {
            lower
                .split(|c: char| !c.is_alphanumeric() && c != ' ')
                .any(|part| part.contains(k))
        }) {
            let fragment = fragment.trim();
            if !fragment.is_empty() && !unplaced.iter().any(|u| u == fragment) {
                unplaced.push(fragment.chars().take(200).collect());
            }
        }
    }
}

fn finish(draft: Draft) -> Resource {
    let mut fields: Vec<Field> = Vec::new();
    for field in draft.fields {
        if !fields.iter().any(|f| f.name == field.name)
            && !draft
                .belongs_to
                .iter()
                .any(|p| format!("{p}_id") == field.name)
        {
            fields.push(field);
        }
    }
    let known = |name: &String| fields.iter().any(|f| &f.name == name) || name == "created_at";
    Resource {
        plural: draft.mention.plural,
        singular: draft.mention.singular,
        label: draft.mention.label,
        filters: draft.filters.into_iter().filter(|f| known(f)).collect(),
        search: draft.search.into_iter().filter(|f| known(f)).collect(),
        sort: draft.sort.into_iter().filter(|f| known(f)).collect(),
        fields,
        belongs_to: draft.belongs_to,
        actions: draft.actions,
    }
}

fn default_title(resources: &[Resource], language: &str) -> String {
    let names: Vec<&str> = resources
        .iter()
        .map(|r| r.label.as_deref().unwrap_or(&r.plural))
        .collect();
    match (names.is_empty(), language) {
        (true, "ru") => "Сервис".to_owned(),
        (true, _) => "Service".to_owned(),
        (false, "ru") => format!("Сервис: {}", names.join(", ")),
        (false, _) => {
            let joined = names.join(" and ").replace('_', " ");
            let mut chars = joined.chars();
            match chars.next() {
                Some(c) => format!("{}{}", c.to_uppercase(), chars.as_str()),
                None => "Service".to_owned(),
            }
        }
    }
}
