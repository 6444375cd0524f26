//! The offline intent parser: what a user's line asks for, without an LLM.
//!
//! The ProductOwner must understand its users even when no model is configured, and it must
//! do so the same way every time (a session answers a journaled line again after a crash). So
//! [`parse`] is a small deterministic parser over the words of a line, in English and in
//! Russian (the users of the systems artel replaces wrote Russian), case-insensitively.
//!
//! It tries, in order, and the first that fits wins:
//! 1. a **secret**: `NAME=value`, `NAME: value`, `my NAME is value`, `set NAME to value`;
//! 2. a bare **yes** / **no** (`ok`, `go ahead`, `да` / `nope`, `нет`) or **cancel**
//!    (`stop`, `abort`, `отмена`);
//! 3. **deploy** `<project>` (`ship notes`, `задеплой notes`);
//! 4. **build**, led by a verb or a need (`make me …`, `I need …`, `сделай …`, `хочу …`) and
//!    followed by a thing to build;
//! 5. **list projects** (`my projects`, `what have I built`, `мои проекты`);
//! 6. **status** (`how is it going?`, `what's the progress`, `как дела с задачей`);
//! 7. a **bare description** of a thing to build (`A URL shortener with a REST API`).
//!
//! Anything else is [`Intent::Unknown`]: while a task waits for the user, the session takes
//! such a line as guidance for the Developer, so the parser is careful not to read guidance
//! (`add an API endpoint for deletion`, `make it faster`) as a new project.
//!
//! [`redact`] gives the line to journal: a line that carried a secret keeps its shape and its
//! name, and loses its value.

use artel_messages::product_owner::Intent;
use artel_messages::secret::SecretValue;
use std::ops::Range;

/// What replaces a secret's value in a journaled line.
pub const REDACTED: &str = "«redacted»";

/// What `text` asks for. Never fails: a line it does not understand is [`Intent::Unknown`].
pub fn parse(text: &str) -> Intent {
    if let Some(found) = find_secret(text) {
        let value = &text[found.value];
        if value.is_empty() {
            return Intent::Unknown;
        }
        return Intent::ProvideSecret {
            name: found.name.to_owned(),
            value: SecretValue::new(value),
        };
    }
    let words = words(text);
    if words.is_empty() {
        return Intent::Unknown;
    }
    let norms: Vec<&str> = words.iter().map(|w| w.norm.as_str()).collect();
    if is_approval(&norms) {
        return Intent::Approve;
    }
    if is_rejection(&norms) {
        return Intent::Reject;
    }
    if is_cancel(&norms) {
        return Intent::Cancel;
    }
    if let Some(project) = deploy_target(&norms) {
        return Intent::Deploy { project };
    }
    if let Some(description) = build_request(&words) {
        return Intent::BuildNew { description };
    }
    if is_list_projects(&norms) {
        return Intent::ListProjects;
    }
    if is_status(&norms) {
        return Intent::Status;
    }
    if is_bare_description(text, &norms) || is_resource_description(text, &norms) {
        return Intent::BuildNew {
            description: clean_description(text),
        };
    }
    Intent::Unknown
}

/// The line to journal for `text`, once parsed as `intent`: when the intent carries a secret,
/// the value is replaced by [`REDACTED`] and the name kept (`my API_KEY is «redacted»`);
/// otherwise `text` unchanged.
///
/// A value that is part of the name or of the marker itself (a few characters at most) cannot
/// be hidden in a line that keeps both; the line is then the bare marker.
pub fn redact(text: &str, intent: &Intent) -> String {
    let Intent::ProvideSecret { name, value } = intent else {
        return text.to_owned();
    };
    let secret = value.expose();
    let line = match find_secret(text) {
        Some(found) if &text[found.value.clone()] == secret => format!(
            "{}{REDACTED}{}",
            &text[..found.value.start],
            &text[found.value.end..]
        ),
        _ => format!("{name}={REDACTED}"),
    };
    if secret.is_empty() || !line.contains(secret) {
        line
    } else {
        REDACTED.to_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

/// A secret found in a line: its name, and where its value is (quotes excluded).
struct FoundSecret<'a> {
    name: &'a str,
    value: Range<usize>,
}

/// Words that may precede `NAME=value` (`export API_KEY=…`).
const ASSIGNMENT_LEADS: &[&str] = &["set", "export", "my", "our", "the"];
/// Words that join a name to its value in `my NAME is value`.
const SPOKEN_JOINS: &[&str] = &["is", "=", "это", "—", "-", "равен", "равно"];
/// Name endings that make an all-caps word look like a secret's name.
const SECRET_NAME_ENDINGS: &[&str] = &[
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "DSN", "URL", "URI", "ID",
    "AUTH",
];

fn find_secret(text: &str) -> Option<FoundSecret<'_>> {
    assignment(text).or_else(|| spoken(text))
}

/// `NAME=value`, `NAME: value`, `export NAME=value`.
fn assignment(text: &str) -> Option<FoundSecret<'_>> {
    let sep = text.find(['=', ':'])?;
    let mut left = text[..sep].trim();
    if let Some((lead, rest)) = left.split_once(char::is_whitespace)
        && ASSIGNMENT_LEADS.contains(&lead.to_lowercase().as_str())
    {
        left = rest.trim();
    }
    let named = if text[sep..].starts_with('=') {
        is_env_name(left)
    } else {
        looks_like_secret_name(left)
    };
    named.then(|| FoundSecret {
        name: left,
        value: value_range(text, sep + 1),
    })
}

/// `my NAME is value`, `NAME is value`, `set NAME to value`, `мой NAME это value`.
fn spoken(text: &str) -> Option<FoundSecret<'_>> {
    let spans = word_spans(text);
    let lower = |i: usize| spans.get(i).map(|&(_, w)| w.to_lowercase());
    let first = lower(0)?;
    if first == "set" {
        let name = spans.get(1)?.1;
        let join = lower(2)?;
        if is_env_name(name) && ["to", "as", "="].contains(&join.as_str()) {
            let start = spans.get(3).map_or(text.len(), |&(at, _)| at);
            return Some(FoundSecret {
                name,
                value: value_range(text, start),
            });
        }
        return None;
    }
    let at = usize::from(["my", "our", "the", "мой", "наш"].contains(&first.as_str()));
    let name = spans.get(at)?.1;
    let join = lower(at + 1)?;
    if !looks_like_secret_name(name) || !SPOKEN_JOINS.contains(&join.as_str()) {
        return None;
    }
    let start = spans.get(at + 2).map_or(text.len(), |&(at, _)| at);
    Some(FoundSecret {
        name,
        value: value_range(text, start),
    })
}

/// `^[A-Z_][A-Z0-9_]*$`: the shape of an environment variable's name.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// An env name that also looks like a secret's, for the forms that prose shares
/// (`TODO: …`, `the API is slow`): it has `_` or a digit, or ends like `KEY`, `TOKEN`, ….
fn looks_like_secret_name(name: &str) -> bool {
    is_env_name(name)
        && (name.contains('_')
            || name.contains(|c: char| c.is_ascii_digit())
            || SECRET_NAME_ENDINGS.iter().any(|end| name.ends_with(end)))
}

/// The value from byte `from` to the end: trimmed, one pair of surrounding quotes removed.
fn value_range(text: &str, from: usize) -> Range<usize> {
    let rest = &text[from..];
    let value = rest.trim();
    let start = from + (rest.len() - rest.trim_start().len());
    let end = start + value.len();
    const QUOTES: &[(char, char)] = &[
        ('"', '"'),
        ('\'', '\''),
        ('`', '`'),
        ('«', '»'),
        ('“', '”'),
        ('‘', '’'),
    ];
    for &(open, close) in QUOTES {
        if value.chars().count() >= 2 && value.starts_with(open) && value.ends_with(close) {
            return start + open.len_utf8()..end - close.len_utf8();
        }
    }
    start..end
}

/// Each whitespace-separated word with its byte offset.
fn word_spans(text: &str) -> Vec<(usize, &str)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, &text[s..at]));
                start = None;
            }
            (false, None) => start = Some(at),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, &text[s..]));
    }
    spans
}

// ---------------------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------------------

/// A word of the line: as typed, and normalized for matching.
struct Word<'a> {
    /// As typed (for the description, which keeps the user's case).
    raw: &'a str,
    /// Lowercased, punctuation trimmed, `’` as `'`, `ё` as `е`.
    norm: String,
}

/// Punctuation trimmed from both ends of a word.
const PUNCTUATION: &[char] = &[
    '.', ',', '!', '?', ';', ':', '"', '\'', '`', '«', '»', '“', '”', '‘', '’', '(', ')', '[', ']',
    '{', '}', '…', '/', '—', '–', '-', '*', '_', '~',
];

fn words(text: &str) -> Vec<Word<'_>> {
    text.split_whitespace()
        .filter_map(|raw| {
            let norm = raw
                .trim_matches(PUNCTUATION)
                .to_lowercase()
                .replace('’', "'")
                .replace('ё', "е");
            (!norm.is_empty()).then_some(Word { raw, norm })
        })
        .collect()
}

/// True when every word is in `vocabulary` and at least one is in `strong`.
fn only_words(norms: &[&str], vocabulary: &[&str], strong: &[&str]) -> bool {
    norms
        .iter()
        .all(|w| vocabulary.contains(w) || strong.contains(w))
        && norms.iter().any(|w| strong.contains(w))
}

fn starts_with(norms: &[&str], phrase: &[&str]) -> bool {
    norms.len() >= phrase.len() && norms.iter().zip(phrase).all(|(w, p)| w == p)
}

/// The words after the leading ones found in `skippable`.
fn skip_leading<'a, 'b>(norms: &'a [&'b str], skippable: &[&str]) -> &'a [&'b str] {
    let at = norms
        .iter()
        .position(|w| !skippable.contains(w))
        .unwrap_or(norms.len());
    &norms[at..]
}

// ---------------------------------------------------------------------------------------
// Yes, no, cancel
// ---------------------------------------------------------------------------------------

const YES: &[&str] = &[
    "yes",
    "y",
    "yep",
    "yeah",
    "yup",
    "ya",
    "sure",
    "ok",
    "okay",
    "k",
    "approve",
    "approved",
    "confirm",
    "confirmed",
    "lgtm",
    "proceed",
    "continue",
    "retry",
    "good",
    "great",
    "fine",
    "perfect",
    "да",
    "ага",
    "угу",
    "давай",
    "ок",
    "окей",
    "хорошо",
    "ладно",
    "конечно",
    "подтверждаю",
    "согласен",
    "согласна",
    "одобряю",
    "продолжай",
    "вперед",
    "поехали",
];
const YES_FILLERS: &[&str] = &[
    "go",
    "ahead",
    "do",
    "it",
    "please",
    "sounds",
    "looks",
    "thanks",
    "thank",
    "you",
    "that's",
    "thats",
    "let's",
    "lets",
    "it's",
    "its",
    "all",
    "right",
    "alright",
    "again",
    "so",
    "then",
    "try",
    "пожалуйста",
    "спасибо",
    "так",
    "и",
    "еще",
    "раз",
    "попробуй",
];
/// `go ahead` and `do it` on their own are a yes, though each word alone is a filler.
const YES_PHRASES: &[&[&str]] = &[
    &["go", "ahead"],
    &["do", "it"],
    &["go", "for", "it"],
    &["ship", "it"],
    &["sounds", "good"],
    &["try", "again"],
];

fn is_approval(norms: &[&str]) -> bool {
    YES_PHRASES.contains(&norms) || only_words(norms, YES_FILLERS, YES)
}

const NO: &[&str] = &[
    "no",
    "n",
    "nope",
    "nah",
    "reject",
    "rejected",
    "decline",
    "declined",
    "don't",
    "dont",
    "not",
    "нет",
    "неа",
    "не",
    "отклоняю",
    "отклонить",
    "отказ",
];
const NO_FILLERS: &[&str] = &[
    "thanks",
    "thank",
    "you",
    "please",
    "do",
    "that",
    "it",
    "now",
    "way",
    "надо",
    "нужно",
    "спасибо",
    "пожалуйста",
    "так",
    "это",
];

fn is_rejection(norms: &[&str]) -> bool {
    only_words(norms, NO_FILLERS, NO)
}

const CANCEL: &[&str] = &[
    "cancel",
    "stop",
    "abort",
    "halt",
    "kill",
    "terminate",
    "отмена",
    "отмени",
    "отменить",
    "отменяй",
    "стоп",
    "останови",
    "остановить",
    "остановись",
    "хватит",
    "прекрати",
];
const CANCEL_LEADS: &[&str] = &[
    "please",
    "pls",
    "just",
    "no",
    "ok",
    "нет",
    "пожалуйста",
    "ну",
];

fn is_cancel(norms: &[&str]) -> bool {
    let rest = skip_leading(norms, CANCEL_LEADS);
    norms.len() <= 5 && rest.first().is_some_and(|w| CANCEL.contains(w))
}

// ---------------------------------------------------------------------------------------
// Deploy
// ---------------------------------------------------------------------------------------

const DEPLOY: &[&str] = &[
    "deploy",
    "redeploy",
    "ship",
    "release",
    "publish",
    "задеплой",
    "задеплойте",
    "задеплоить",
    "деплой",
    "деплойни",
    "разверни",
    "разверните",
    "развернуть",
    "выкати",
    "выкатить",
    "опубликуй",
];
/// Politeness and wanting before a verb: `can you please …`, `I want to …`, `давай …`.
const POLITE: &[&str] = &[
    "please",
    "pls",
    "plz",
    "kindly",
    "hey",
    "hi",
    "hello",
    "ok",
    "okay",
    "so",
    "now",
    "then",
    "and",
    "also",
    "just",
    "can",
    "could",
    "would",
    "will",
    "you",
    "u",
    "i",
    "we",
    "i'd",
    "id",
    "i'll",
    "we'd",
    "let's",
    "lets",
    "like",
    "love",
    "want",
    "wanna",
    "need",
    "to",
    "go",
    "ahead",
    "пожалуйста",
    "привет",
    "теперь",
    "можешь",
    "можете",
    "можно",
    "а",
    "ну",
    "давай",
    "давайте",
    "и",
    "я",
    "мы",
    "хочу",
    "хотим",
    "надо",
    "нужно",
    "мне",
    "нам",
];
/// Words around a project's name that are not part of it.
const NOT_THE_NAME: &[&str] = &[
    "the",
    "my",
    "our",
    "project",
    "app",
    "it",
    "this",
    "that",
    "проект",
    "мой",
    "наш",
    "его",
    "это",
];
/// A word after which the name has ended: `deploy notes to production`.
const AFTER_THE_NAME: &[&str] = &[
    "to",
    "on",
    "onto",
    "in",
    "into",
    "at",
    "for",
    "please",
    "now",
    "again",
    "project",
    "проект",
    "в",
    "на",
    "пожалуйста",
    "сейчас",
    "снова",
    "еще",
];

/// The project a deploy request names (lowercased, as given; words of a spaced name joined by
/// `-`); `Some("")` when the user named none (`deploy it`) — the session then shows the
/// user's projects.
fn deploy_target(norms: &[&str]) -> Option<String> {
    let rest = skip_leading(norms, POLITE);
    let (verb, after) = rest.split_first()?;
    if !DEPLOY.contains(verb) {
        return None;
    }
    let after = skip_leading(after, NOT_THE_NAME);
    let end = after
        .iter()
        .position(|w| AFTER_THE_NAME.contains(w))
        .unwrap_or(after.len());
    let name: Vec<&str> = after[..end]
        .iter()
        .copied()
        .filter(|w| !NOT_THE_NAME.contains(w))
        .collect();
    Some(name.join("-"))
}

// ---------------------------------------------------------------------------------------
// Build
// ---------------------------------------------------------------------------------------

/// Words that, leading a line, ask for something to be built.
const BUILD_TRIGGERS: &[&str] = &[
    "make",
    "build",
    "create",
    "write",
    "develop",
    "code",
    "implement",
    "generate",
    "scaffold",
    "setup",
    "set",
    "spin",
    "design",
    "craft",
    "give",
    "want",
    "wanna",
    "need",
    "like",
    "сделай",
    "сделайте",
    "сделать",
    "создай",
    "создайте",
    "создать",
    "напиши",
    "напишите",
    "написать",
    "разработай",
    "разработать",
    "построй",
    "построить",
    "собери",
    "собрать",
    "запили",
    "запилить",
    "сгенерируй",
    "хочу",
    "хотим",
    "хотел",
    "хотела",
    "нужен",
    "нужна",
    "нужно",
    "нужны",
    "надо",
];
/// Words that may sit between the trigger and the thing: `make me`, `spin up`, `мне бы`.
const BUILD_FILLERS: &[&str] = &[
    "me",
    "us",
    "for",
    "up",
    "you",
    "to",
    "bot",
    "please",
    "мне",
    "нам",
    "бы",
    "для",
    "меня",
    "нас",
    "пожалуйста",
];
/// Words that cannot start the description of a new thing: pronouns that point back at the
/// current one, questions, and the verbs of guidance (`add …`, `use …`, `исправь …`).
const NOT_A_THING: &[&str] = &[
    "the",
    "it",
    "its",
    "it's",
    "this",
    "that",
    "these",
    "those",
    "them",
    "they",
    "he",
    "she",
    "we",
    "you",
    "i",
    "i'm",
    "my",
    "your",
    "our",
    "his",
    "her",
    "there",
    "here",
    "what",
    "what's",
    "why",
    "how",
    "how's",
    "when",
    "where",
    "who",
    "which",
    "can",
    "could",
    "should",
    "would",
    "will",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "don't",
    "doesn't",
    "not",
    "no",
    "yes",
    "sure",
    "use",
    "add",
    "fix",
    "change",
    "remove",
    "delete",
    "rename",
    "update",
    "return",
    "handle",
    "support",
    "store",
    "save",
    "keep",
    "move",
    "switch",
    "replace",
    "test",
    "check",
    "make",
    "also",
    "and",
    "but",
    "just",
    "try",
    "run",
    "call",
    "send",
    "show",
    "let",
    "allow",
    "put",
    "set",
    "get",
    "need",
    "want",
    "if",
    "then",
    "so",
    "instead",
    "maybe",
    "thanks",
    "thank",
    "only",
    "please",
    "it'll",
    "one",
    "это",
    "его",
    "ее",
    "их",
    "он",
    "она",
    "оно",
    "они",
    "мы",
    "я",
    "ты",
    "вы",
    "мой",
    "моя",
    "мои",
    "наш",
    "что",
    "почему",
    "как",
    "когда",
    "где",
    "кто",
    "какой",
    "можно",
    "не",
    "да",
    "нет",
    "используй",
    "добавь",
    "исправь",
    "почини",
    "поправь",
    "убери",
    "удали",
    "переименуй",
    "измени",
    "обнови",
    "замени",
    "проверь",
    "пусть",
    "чтобы",
    "и",
    "но",
    "а",
    "также",
    "тоже",
    "еще",
    "спасибо",
    "только",
    "сохрани",
    "храни",
    "верни",
    "сделай",
    "так",
];
/// English nouns of things artel builds (plural `s` is accepted too).
const THINGS: &[&str] = &[
    "service",
    "microservice",
    "api",
    "app",
    "application",
    "webapp",
    "bot",
    "site",
    "website",
    "page",
    "shortener",
    "list",
    "tracker",
    "manager",
    "server",
    "backend",
    "dashboard",
    "blog",
    "shop",
    "store",
    "chat",
    "board",
    "counter",
    "calculator",
    "converter",
    "generator",
    "scraper",
    "planner",
    "calendar",
    "note",
    "wiki",
    "portal",
    "platform",
    "tool",
    "game",
    "forum",
    "timer",
    "journal",
    "diary",
    "catalog",
    "catalogue",
    "inventory",
    "crud",
    "system",
    "engine",
    "feed",
    "aggregator",
    "monitor",
    "proxy",
    "gateway",
    "webhook",
    "cli",
    "utility",
    "widget",
    "registry",
    "scheduler",
    "reminder",
    "poll",
    "quiz",
    "survey",
    "guestbook",
    "pastebin",
    "script",
    "program",
    "portfolio",
    "landing",
    "cms",
    "crm",
    "bookmark",
];
/// Russian stems of the same nouns (matched as word prefixes, to cover the cases).
const THING_STEMS: &[&str] = &[
    "сервис",
    "микросервис",
    "апи",
    "приложени",
    "бот",
    "сайт",
    "страниц",
    "сокращател",
    "спис",
    "трекер",
    "менеджер",
    "сервер",
    "бэкенд",
    "бекенд",
    "дашборд",
    "панел",
    "блог",
    "магазин",
    "чат",
    "доск",
    "счетчик",
    "калькулятор",
    "конвертер",
    "генератор",
    "парсер",
    "планировщик",
    "календар",
    "заметк",
    "заметок",
    "вики",
    "портал",
    "платформ",
    "инструмент",
    "игр",
    "форум",
    "таймер",
    "дневник",
    "каталог",
    "напоминал",
    "опрос",
    "викторин",
    "систем",
    "утилит",
];

/// True when the word names a thing to build (`todo-list` counts by its parts).
fn is_thing(norm: &str) -> bool {
    norm.split(['-', '/', '_']).any(|part| {
        THINGS.contains(&part)
            || part
                .strip_suffix('s')
                .is_some_and(|singular| THINGS.contains(&singular))
            || THING_STEMS.iter().any(|stem| part.starts_with(stem))
    })
}

/// How far into a description the thing must be named (`a tiny little URL shortener`).
const THING_WITHIN: usize = 6;

/// True when `norms` describe a new thing: not pointing back at the current one, and naming
/// a thing early on.
fn names_a_thing(norms: &[&str]) -> bool {
    norms
        .first()
        .is_some_and(|first| !NOT_A_THING.contains(first))
        && norms.iter().take(THING_WITHIN).any(|w| is_thing(w))
}

/// The description of `make me …`, `I need …`, `сделай …`: the words after the leading verb
/// phrase, as typed.
fn build_request(words: &[Word<'_>]) -> Option<String> {
    let norms: Vec<&str> = words.iter().map(|w| w.norm.as_str()).collect();
    let mut at = 0;
    let mut triggered = false;
    while let Some(word) = norms.get(at) {
        if BUILD_TRIGGERS.contains(word) {
            triggered = true;
        } else if !(POLITE.contains(word) || BUILD_FILLERS.contains(word)) {
            break;
        }
        at += 1;
    }
    if !triggered || !names_a_thing(&norms[at..]) {
        return None;
    }
    let raw: Vec<&str> = words[at..].iter().map(|w| w.raw).collect();
    Some(clean_description(&raw.join(" ")))
}

/// A line that is nothing but a description (`A URL shortener with a REST API`, `todo API`).
fn is_bare_description(text: &str, norms: &[&str]) -> bool {
    norms.len() >= 2 && !text.trim_end().ends_with('?') && names_a_thing(norms)
}

/// A line the Analyst reads as resources (`A recipe box: recipes with ingredients and
/// steps`) that does not start like guidance (`add …`, `rename …`).
fn is_resource_description(text: &str, norms: &[&str]) -> bool {
    const GUIDANCE: &[&str] = &[
        "add",
        "rename",
        "remove",
        "drop",
        "delete",
        "change",
        "make",
        "fix",
        "update",
        "use",
        "put",
        "set",
        "mark",
        "добавь",
        "переименуй",
        "удали",
        "убери",
        "измени",
        "сделай",
    ];
    norms.len() >= 3
        && !text.trim_end().ends_with('?')
        && norms.first().is_some_and(|w| !GUIDANCE.contains(w))
        && crate::analyst::read(text).is_buildable_offline()
}

/// The description without leading separators and trailing punctuation or `please`.
fn clean_description(text: &str) -> String {
    let mut text = text
        .trim()
        .trim_start_matches([':', ',', '-', '—', '–'])
        .trim_start();
    loop {
        let before = text;
        text = text
            .trim_end_matches(['.', '!', '?', ',', ';', '…'])
            .trim_end();
        if let Some((rest, last)) = text.rsplit_once(char::is_whitespace)
            && ["please", "pls", "пожалуйста"].contains(&last.to_lowercase().as_str())
        {
            text = rest.trim_end();
        }
        if text == before {
            return text.to_owned();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Projects and status
// ---------------------------------------------------------------------------------------

const PROJECTS: &[&str] = &[
    "projects",
    "проекты",
    "проектов",
    "проектах",
    "проектами",
    "проекта",
];
const MINE: &[&str] = &["my", "list", "show", "мои", "покажи", "список"];
const PLURAL_THINGS: &[&str] = &[
    "apps",
    "services",
    "bots",
    "sites",
    "сервисы",
    "приложения",
    "боты",
    "сайты",
];

fn is_list_projects(norms: &[&str]) -> bool {
    let has = |set: &[&str]| norms.iter().any(|w| set.contains(w));
    let built_by_me = has(&["built", "build", "made", "created"]) && has(&["i", "we", "i've"]);
    let built_by_me_ru =
        has(&["сделал", "сделала", "создал", "создала", "построил"]) && has(&["я"]);
    (norms.len() <= 6 && has(PROJECTS))
        || (norms.len() <= 4 && has(MINE) && has(PLURAL_THINGS))
        || (norms.first() == Some(&"what") && built_by_me)
        || (norms.first() == Some(&"что") && built_by_me_ru)
}

const STATUS_WORDS: &[&str] = &["status", "progress", "статус", "статусе", "прогресс"];
const STATUS_PHRASES: &[&[&str]] = &[
    &["any", "news"],
    &["any", "update"],
    &["any", "updates"],
    &["are", "you", "done"],
    &["is", "it", "done"],
    &["is", "it", "ready"],
    &["where", "are", "we"],
    &["как", "дела"],
    &["как", "успехи"],
    &["как", "там"],
    &["как", "продвигается"],
    &["как", "идет"],
    &["как", "идут", "дела"],
    &["что", "с", "задачей"],
    &["что", "по", "задаче"],
    &["что", "там"],
    &["уже", "готово"],
    &["готово"],
];
/// Status words count in a short line only; in a long one they are guidance
/// (`the status endpoint returns 500 …`).
const STATUS_WITHIN: usize = 8;

fn is_status(norms: &[&str]) -> bool {
    let how_going = matches!(norms.first(), Some(&("how" | "how's" | "hows")))
        && norms
            .iter()
            .any(|w| ["going", "goes", "coming"].contains(w));
    (norms.len() <= STATUS_WITHIN && norms.iter().any(|w| STATUS_WORDS.contains(w)))
        || how_going
        || STATUS_PHRASES.iter().any(|p| starts_with(norms, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(description: &str) -> Intent {
        Intent::BuildNew {
            description: description.into(),
        }
    }

    fn deploy(project: &str) -> Intent {
        Intent::Deploy {
            project: project.into(),
        }
    }

    fn secret(name: &str, value: &str) -> Intent {
        Intent::ProvideSecret {
            name: name.into(),
            value: SecretValue::new(value),
        }
    }

    #[test]
    fn understands_a_table_of_phrasings() {
        use Intent::*;
        let table: Vec<(&str, Intent)> = vec![
            // Build, led by a verb or a need.
            (
                "make me a URL shortener with an API",
                build("a URL shortener with an API"),
            ),
            ("build a todo list service", build("a todo list service")),
            ("create a notes app", build("a notes app")),
            ("I need a bookmark manager", build("a bookmark manager")),
            ("сделай сервис заметок", build("сервис заметок")),
            ("создай сокращатель ссылок", build("сокращатель ссылок")),
            (
                "Can you please build me a Telegram bot that posts the weather?",
                build("a Telegram bot that posts the weather"),
            ),
            ("I want to build a simple blog.", build("a simple blog")),
            ("Make a todo-list API please", build("a todo-list API")),
            ("hi, build me a guestbook", build("a guestbook")),
            ("сделай мне бота для погоды", build("бота для погоды")),
            ("Мне нужен трекер привычек", build("трекер привычек")),
            ("хочу сайт-визитку", build("сайт-визитку")),
            (
                "напиши, пожалуйста, API для заметок",
                build("API для заметок"),
            ),
            ("set up a wiki for my team", build("a wiki for my team")),
            // Build, a bare description.
            (
                "A URL shortener with a REST API",
                build("A URL shortener with a REST API"),
            ),
            ("todo API", build("todo API")),
            (
                "Сервис заметок с поиском",
                build("Сервис заметок с поиском"),
            ),
            // Not a build: small talk and guidance.
            ("hi", Unknown),
            ("thanks", Unknown),
            ("hello there", Unknown),
            ("make it faster", Unknown),
            ("make the tests pass", Unknown),
            ("add an API endpoint for deletion", Unknown),
            ("I need you to add an API endpoint", Unknown),
            ("use sqlite instead of postgres", Unknown),
            ("why is the api returning 500?", Unknown),
            ("исправь ошибку в API", Unknown),
            ("", Unknown),
            ("   ", Unknown),
            // Status.
            ("status", Status),
            ("Status?", Status),
            ("how is it going?", Status),
            ("How's it going", Status),
            ("what's the progress", Status),
            ("what is the status of my todo app?", Status),
            ("any updates?", Status),
            ("build status", Status),
            ("статус", Status),
            ("как дела с задачей", Status),
            ("Как дела?", Status),
            // List projects.
            ("list projects", ListProjects),
            ("my projects", ListProjects),
            ("Show me my projects", ListProjects),
            ("what have I built", ListProjects),
            ("What did I build so far?", ListProjects),
            ("мои проекты", ListProjects),
            ("покажи список проектов", ListProjects),
            ("my apps", ListProjects),
            // Deploy.
            ("deploy url-shortener", deploy("url-shortener")),
            ("deploy the todo-list project", deploy("todo-list")),
            ("ship notes", deploy("notes")),
            ("задеплой notes", deploy("notes")),
            ("Deploy \"Notes\" to production", deploy("notes")),
            ("please deploy my project blog now", deploy("blog")),
            ("can you deploy url shortener?", deploy("url-shortener")),
            ("разверни проект заметки", deploy("заметки")),
            ("deploy it", deploy("")),
            // Secrets.
            (
                "WEATHER_API_KEY=abc123",
                secret("WEATHER_API_KEY", "abc123"),
            ),
            ("WEATHER_API_KEY: abc", secret("WEATHER_API_KEY", "abc")),
            (
                "my WEATHER_API_KEY is abc123",
                secret("WEATHER_API_KEY", "abc123"),
            ),
            (
                "set WEATHER_API_KEY to abc",
                secret("WEATHER_API_KEY", "abc"),
            ),
            (
                "  BOT_TOKEN = \"12:ab cd\"  ",
                secret("BOT_TOKEN", "12:ab cd"),
            ),
            (
                "export DATABASE_URL='postgres://u:p@h/db'",
                secret("DATABASE_URL", "postgres://u:p@h/db"),
            ),
            ("TOKEN: xyz", secret("TOKEN", "xyz")),
            ("SIGNING_SECRET=a=b==", secret("SIGNING_SECRET", "a=b==")),
            ("мой API_KEY это «qwerty»", secret("API_KEY", "qwerty")),
            ("WEATHER_API_KEY=", Unknown),
            ("WEATHER_API_KEY = \"\"", Unknown),
            ("set WEATHER_API_KEY to", Unknown),
            ("TODO: build a todo app", build("TODO: build a todo app")),
            ("weather_api_key=abc", Unknown),
            // Yes, no, cancel.
            ("yes", Approve),
            ("OK", Approve),
            ("ok!", Approve),
            ("go ahead", Approve),
            ("Yes, go ahead", Approve),
            ("approve", Approve),
            ("да", Approve),
            ("Да, давай", Approve),
            ("no", Reject),
            ("No thanks", Reject),
            ("reject", Reject),
            ("нет", Reject),
            ("не надо", Reject),
            ("cancel", Cancel),
            ("stop", Cancel),
            ("abort!", Cancel),
            ("please cancel the task", Cancel),
            ("no, cancel it", Cancel),
            ("отмена", Cancel),
            ("стоп", Cancel),
        ];
        assert!(table.len() >= 40);
        let mut wrong = Vec::new();
        for (text, expected) in &table {
            let got = parse(text);
            if &got != expected {
                wrong.push(format!("{text:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "misread lines:\n{}", wrong.join("\n"));
    }

    #[test]
    fn secret_values_are_exact() {
        let Intent::ProvideSecret { value, .. } = parse("my WEATHER_API_KEY is 'abc 123'") else {
            panic!("not a secret");
        };
        assert_eq!(value.expose(), "abc 123");
    }

    #[test]
    fn redact_keeps_the_shape_and_the_name() {
        let cases = [
            ("WEATHER_API_KEY=abc123", "WEATHER_API_KEY=«redacted»"),
            ("WEATHER_API_KEY: abc", "WEATHER_API_KEY: «redacted»"),
            (
                "my WEATHER_API_KEY is abc123",
                "my WEATHER_API_KEY is «redacted»",
            ),
            (
                "set WEATHER_API_KEY to abc",
                "set WEATHER_API_KEY to «redacted»",
            ),
            ("BOT_TOKEN=\"12:ab\"", "BOT_TOKEN=\"«redacted»\""),
        ];
        for (text, journaled) in cases {
            let intent = parse(text);
            assert!(intent.carries_secret(), "{text}");
            assert_eq!(redact(text, &intent), journaled);
            let again = parse(journaled);
            assert!(
                matches!(&again, Intent::ProvideSecret { name, .. } if text.contains(name.as_str())),
                "the journaled line still names the secret: {again:?}"
            );
        }
        assert_eq!(redact("status", &Intent::Status), "status");
        assert_eq!(
            redact("build a blog", &parse("build a blog")),
            "build a blog"
        );
    }

    #[test]
    fn redact_hides_a_value_the_line_does_not_match() {
        let intent = secret("API_KEY", "sk-live");
        assert_eq!(
            redact("something else entirely sk-live", &intent),
            "API_KEY=«redacted»"
        );
        let inside_name = secret("MY_KEY", "KEY");
        assert_eq!(redact("MY_KEY=KEY", &inside_name), REDACTED);
    }

    /// A small deterministic generator (xorshift), so the property tests need no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }

        fn string(&mut self, palette: &[char], max: usize) -> String {
            let len = self.below(max + 1);
            (0..len)
                .map(|_| palette[self.below(palette.len())])
                .collect()
        }
    }

    const PALETTE: &[char] = &[
        'a', 'b', 'z', 'A', 'K', 'E', 'Y', '_', '0', '9', ' ', ' ', '\t', '\n', '=', ':', '"',
        '\'', '`', '«', '»', '“', '”', '‘', '’', '.', ',', '!', '?', '-', '—', '/', 'я', 'ё', 'Ж',
        'ß', 'İ', '\u{301}', '🦀', '\u{feff}', '\u{a0}',
    ];

    #[test]
    fn parse_never_panics_on_arbitrary_lines() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let vocabulary = [
            "make",
            "me",
            "a",
            "deploy",
            "the",
            "project",
            "status",
            "my",
            "is",
            "set",
            "to",
            "API_KEY",
            "=",
            ":",
            "сделай",
            "нет",
            "yes",
            "stop",
            "list",
            "projects",
            "how",
            "going",
            "\"",
            "«",
            "»",
            "",
        ];
        for _ in 0..20_000 {
            let noise = rng.string(PALETTE, 24);
            let mut line = String::new();
            for _ in 0..rng.below(6) {
                line.push_str(rng.pick(&vocabulary));
                line.push(' ');
            }
            line.push_str(&noise);
            let intent = parse(&line);
            let _ = redact(&line, &intent);
            let intent = parse(&noise);
            let _ = redact(&noise, &intent);
        }
    }

    #[test]
    fn a_line_the_analyst_reads_as_resources_is_a_build_request() {
        assert_eq!(
            parse("A recipe box: recipes with ingredients and steps"),
            build("A recipe box: recipes with ingredients and steps")
        );
        assert_eq!(parse("rename notes to memos"), Intent::Unknown);
    }

    #[test]
    fn redact_never_contains_the_secret() {
        let mut rng = Rng(0x0dd_ba11_cafe_f00d);
        let forms = [
            "{N}={V}",
            "{N} = {V}",
            "{N}: {V}",
            "{N}:{V}",
            "export {N}={V}",
            "my {N} is {V}",
            "My {N} is {V}",
            "set {N} to {V}",
            "{N}=\"{V}\"",
            "my {N} is '{V}'",
            "мой {N} это «{V}»",
        ];
        let name_palette: Vec<char> = ('A'..='Z').chain('0'..='9').chain(['_']).collect();
        let value_palette: Vec<char> = PALETTE
            .iter()
            .copied()
            .filter(|c| !c.is_whitespace() && *c != '\u{feff}')
            .collect();
        let mut checked = 0;
        for _ in 0..20_000 {
            let name = format!("X_{}", rng.string(&name_palette, 10));
            // A mark that neither a name, the marker nor a form's words contain, so the value
            // cannot hide in what the journaled line keeps.
            let mark = rng.pick(&["#", "%", "+", "@", "&"]);
            let value = format!(
                "{}{mark}{}",
                rng.string(&value_palette, 8),
                rng.string(&value_palette, 8)
            );
            let text = rng
                .pick(&forms)
                .replace("{N}", &name)
                .replace("{V}", &value);
            let intent = parse(&text);
            let Intent::ProvideSecret {
                name: got,
                value: got_value,
            } = &intent
            else {
                panic!("{text:?} is a secret, parsed as {intent:?}");
            };
            assert_eq!(got, &name, "{text:?}");
            let line = redact(&text, &intent);
            assert!(
                !line.contains(got_value.expose()),
                "{text:?} journaled as {line:?}"
            );
            assert!(line.contains(&name), "{text:?} journaled as {line:?}");
            checked += 1;
        }
        assert_eq!(checked, 20_000);
    }
}
