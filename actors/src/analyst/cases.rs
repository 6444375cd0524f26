//! The fixed list of requests (English and Russian, single- and multi-resource, and some
//! outside the offline range) with what each must produce. The table test below checks the
//! reader against it; `benches/drivers/fidelity.rs` builds and checks each service.
//!
//! A case lists what the *request names*: the resources (exactly), and for each the fields,
//! relations and actions the words ask for (the spec may add usual ones, like a book's
//! title). A request outside the range lists none and is marked so.

use artel_messages::spec::FieldType::{self, *};
use artel_messages::spec::Spec;

/// One request and what its spec must hold.
pub struct Case {
    /// The request, as a user would type it.
    pub request: &'static str,
    /// Each resource's plural, with the fields (name, type) the request names.
    pub resources: &'static [(&'static str, &'static [(&'static str, FieldType)])],
    /// `(child plural, parent singular)` pairs.
    pub relations: &'static [(&'static str, &'static str)],
    /// `(plural, action name)` pairs.
    pub actions: &'static [(&'static str, &'static str)],
    /// True when it is not a resource API (declined offline).
    pub out_of_range: bool,
}

const fn case(
    request: &'static str,
    resources: &'static [(&'static str, &'static [(&'static str, FieldType)])],
    relations: &'static [(&'static str, &'static str)],
    actions: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        request,
        resources,
        relations,
        actions,
        out_of_range: false,
    }
}

const fn outside(request: &'static str) -> Case {
    Case {
        request,
        resources: &[],
        relations: &[],
        actions: &[],
        out_of_range: true,
    }
}

/// The list.
pub const CASES: &[Case] = &[
    case(
        "A library catalog where I can add books with author and ISBN, and mark a book as borrowed",
        &[(
            "books",
            &[
                ("title", String),
                ("author", String),
                ("isbn", String),
                ("borrowed", Boolean),
            ],
        )],
        &[],
        &[("books", "borrow"), ("books", "return")],
    ),
    case(
        "a blog with posts and comments",
        &[
            ("posts", &[("title", String), ("body", Text)]),
            ("comments", &[("body", Text)]),
        ],
        &[("comments", "post")],
        &[],
    ),
    case(
        "A pet clinic with owners, pets and visits",
        &[
            ("owners", &[("name", String)]),
            ("pets", &[("name", String)]),
            ("visits", &[("date", Date)]),
        ],
        &[("pets", "owner"), ("visits", "pet")],
        &[],
    ),
    case(
        "an expense tracker by category",
        &[("expenses", &[("amount", Money), ("category", String)])],
        &[],
        &[],
    ),
    case(
        "a habit tracker where I check off each habit once a day",
        &[("habits", &[("name", String)])],
        &[],
        &[("habits", "check_in")],
    ),
    case(
        "A recipe box: recipes with ingredients and steps",
        &[(
            "recipes",
            &[
                ("title", String),
                ("ingredients", StringList),
                ("steps", StringList),
            ],
        )],
        &[],
        &[],
    ),
    case(
        "Нужен API для учёта расходов по категориям",
        &[("expenses", &[("amount", Money), ("category", String)])],
        &[],
        &[],
    ),
    case(
        "сделай сервис коротких ссылок",
        &[("links", &[("url", Url)])],
        &[],
        &[("links", "redirect")],
    ),
    case(
        "A URL shortener with a REST API",
        &[("links", &[("url", Url)])],
        &[],
        &[("links", "redirect")],
    ),
    case(
        "make me a todo list API",
        &[("todos", &[("title", String), ("done", Boolean)])],
        &[],
        &[("todos", "done")],
    ),
    case(
        "a todo list with a due date and a priority (low, normal, high), sorted by due date",
        &[(
            "todos",
            &[("title", String), ("due_date", Date), ("priority", Enum)],
        )],
        &[],
        &[("todos", "done")],
    ),
    case(
        "build a notes service",
        &[("notes", &[("title", String), ("body", Text)])],
        &[],
        &[],
    ),
    case(
        "a notes service that needs WEATHER_API_KEY",
        &[("notes", &[("title", String)])],
        &[],
        &[],
    ),
    case(
        "a guestbook service",
        &[("entries", &[("name", String), ("message", Text)])],
        &[],
        &[],
    ),
    case(
        "a bookmark manager with tags and search by title",
        &[(
            "bookmarks",
            &[("url", Url), ("title", String), ("tags", StringList)],
        )],
        &[],
        &[],
    ),
    case(
        "an address book of contacts with name, email and phone",
        &[(
            "contacts",
            &[("name", String), ("email", Email), ("phone", String)],
        )],
        &[],
        &[],
    ),
    case(
        "a shop with products that have a name and a price, and orders",
        &[
            ("products", &[("name", String), ("price", Money)]),
            ("orders", &[]),
        ],
        &[("orders", "product")],
        &[],
    ),
    case(
        "a task tracker with projects and tasks; mark a task done",
        &[
            ("projects", &[("name", String)]),
            ("tasks", &[("title", String), ("done", Boolean)]),
        ],
        &[("tasks", "project")],
        &[("tasks", "done")],
    ),
    case(
        "an API for movies with title, year and rating, and reviews",
        &[
            (
                "movies",
                &[("title", String), ("year", Integer), ("rating", Integer)],
            ),
            ("reviews", &[("rating", Integer)]),
        ],
        &[("reviews", "movie")],
        &[],
    ),
    case(
        "students and courses",
        &[
            ("students", &[("name", String)]),
            ("courses", &[("title", String)]),
        ],
        &[],
        &[],
    ),
    case(
        "a helpdesk with tickets that have a title, a description and a status",
        &[(
            "tickets",
            &[("title", String), ("description", Text), ("status", Enum)],
        )],
        &[],
        &[],
    ),
    case(
        "an inventory of items with name and quantity",
        &[("items", &[("name", String), ("quantity", Integer)])],
        &[],
        &[],
    ),
    case(
        "a workout log with workouts and exercises with sets and reps",
        &[
            ("workouts", &[("date", Date)]),
            ("exercises", &[("sets", Integer), ("reps", Integer)]),
        ],
        &[("exercises", "workout")],
        &[],
    ),
    case(
        "a photo album service: albums and photos with a caption",
        &[
            ("albums", &[("title", String)]),
            ("photos", &[("caption", String)]),
        ],
        &[("photos", "album")],
        &[],
    ),
    case(
        "a plant tracker with name, species and a watering date",
        &[(
            "plants",
            &[
                ("name", String),
                ("species", String),
                ("watering_date", Date),
            ],
        )],
        &[],
        &[],
    ),
    case(
        "a Q&A site with questions and answers",
        &[
            ("questions", &[("title", String)]),
            ("answers", &[("body", Text)]),
        ],
        &[("answers", "question")],
        &[],
    ),
    case(
        "a subscriptions tracker with name, price and renewal date",
        &[(
            "subscriptions",
            &[("name", String), ("price", Money), ("renewal_date", Date)],
        )],
        &[],
        &[],
    ),
    case(
        "blog posts with tags, publish a post, search posts",
        &[(
            "posts",
            &[
                ("title", String),
                ("tags", StringList),
                ("published", Boolean),
            ],
        )],
        &[],
        &[("posts", "publish")],
    ),
    case(
        "Сделай список дел",
        &[("tasks", &[("title", String), ("done", Boolean)])],
        &[],
        &[("tasks", "done")],
    ),
    case(
        "Каталог книг с автором и ISBN",
        &[(
            "books",
            &[("title", String), ("author", String), ("isbn", String)],
        )],
        &[],
        &[],
    ),
    case(
        "сервис заметок",
        &[("notes", &[("title", String), ("body", Text)])],
        &[],
        &[],
    ),
    case(
        "Блог с постами и комментариями",
        &[
            ("posts", &[("title", String)]),
            ("comments", &[("body", Text)]),
        ],
        &[("comments", "post")],
        &[],
    ),
    case(
        "трекер привычек",
        &[("habits", &[("name", String)])],
        &[],
        &[("habits", "check_in")],
    ),
    case(
        "API для рецептов с ингредиентами и шагами",
        &[(
            "recipes",
            &[
                ("title", String),
                ("ingredients", StringList),
                ("steps", StringList),
            ],
        )],
        &[],
        &[],
    ),
    case(
        "ветеринарная клиника: владельцы, питомцы и визиты",
        &[
            ("owners", &[("name", String)]),
            ("pets", &[("name", String)]),
            ("visits", &[("date", Date)]),
        ],
        &[("pets", "owner"), ("visits", "pet")],
        &[],
    ),
    case(
        "контакты с именем, почтой и телефоном",
        &[(
            "contacts",
            &[("name", String), ("email", Email), ("phone", String)],
        )],
        &[],
        &[],
    ),
    outside("a CSV-to-JSON converter"),
    outside("a Telegram reminder bot"),
    outside("a Discord bot that posts memes"),
    outside("a snake game in the browser"),
    outside("телеграм бот для напоминаний"),
    outside("a calculator service"),
];

/// What `spec` lacks of what `case` names, as readable lines (empty: it has it all).
pub fn problems(case: &Case, spec: &Spec) -> Vec<std::string::String> {
    let mut out = Vec::new();
    if case.out_of_range {
        if spec.out_of_range.is_none() {
            out.push("not recognised as out of the offline range".to_owned());
        }
        return out;
    }
    if let Some(what) = &spec.out_of_range {
        out.push(format!("wrongly out of range: {what}"));
    }
    let mut got: Vec<&str> = spec.resources.iter().map(|r| r.plural.as_str()).collect();
    let mut want: Vec<&str> = case.resources.iter().map(|(p, _)| *p).collect();
    got.sort_unstable();
    want.sort_unstable();
    if got != want {
        out.push(format!("resources {got:?}, wanted {want:?}"));
    }
    for (plural, fields) in case.resources {
        let Some(r) = spec.resource(plural) else {
            continue;
        };
        for (name, ty) in *fields {
            match r.field(name) {
                Some(f) if f.ty == *ty => {}
                Some(f) => out.push(format!("{plural}.{name} is {}, wanted {}", f.ty, ty)),
                None => out.push(format!(
                    "{plural} has no {name} ({:?})",
                    r.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>()
                )),
            }
        }
    }
    for (child, parent) in case.relations {
        if !spec
            .resource(child)
            .is_some_and(|r| r.belongs_to.iter().any(|p| p == parent))
        {
            out.push(format!("{child} does not belong to {parent}"));
        }
    }
    for (plural, action) in case.actions {
        if !spec
            .resource(plural)
            .is_some_and(|r| r.actions.iter().any(|a| a.name == *action))
        {
            out.push(format!("{plural} has no action {action}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyst::read;

    #[test]
    fn every_case_reads_as_its_table_says() {
        let mut failures = Vec::new();
        for case in CASES {
            let problems = problems(case, &read(case.request));
            if !problems.is_empty() {
                failures.push(format!(
                    "{:?}:\n  {}\n  spec: {}",
                    case.request,
                    problems.join("\n  "),
                    crate::analyst::summary(&read(case.request)).replace('\n', "\n        ")
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases:\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn there_are_enough_cases_in_both_languages() {
        assert!(CASES.len() >= 40);
        let russian = CASES
            .iter()
            .filter(|c| crate::analyst::russian::is_mostly_cyrillic(c.request))
            .count();
        assert!(russian >= 8, "{russian} Russian cases");
    }
}
