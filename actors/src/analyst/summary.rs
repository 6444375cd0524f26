//! The spec as the user reads it before confirming: a few plain lines in the request's
//! language.

use artel_messages::spec::{ActionKind, Field, FieldType, Spec};

/// `spec` in words.
pub fn summary(spec: &Spec) -> String {
    let ru = spec.language == "ru";
    let mut lines = vec![if ru {
        format!("{} (версия {})", spec.title, spec.version)
    } else {
        format!("{} (version {})", spec.title, spec.version)
    }];
    if let Some(what) = &spec.out_of_range {
        lines.push(if ru {
            format!("Это не API с записями: {what}.")
        } else {
            format!("This is not a resource API: {what}.")
        });
    }
    for r in &spec.resources {
        let mut line = format!("- /api/{}", r.plural);
        if let Some(label) = &r.label {
            line.push_str(&format!(" («{label}»)"));
        }
        let fields: Vec<String> = r.fields.iter().map(field).collect();
        line.push_str(": ");
        line.push_str(&fields.join(", "));
        lines.push(line);
        if !r.belongs_to.is_empty() {
            lines.push(format!(
                "  {} {}",
                if ru {
                    "принадлежит:"
                } else {
                    "each belongs to a"
                },
                r.belongs_to.join(", ")
            ));
        }
        let actions: Vec<String> = r
            .actions
            .iter()
            .map(|a| match a.kind {
                ActionKind::Redirect => {
                    format!("GET /r/<id> redirects to {} and counts hits", a.field)
                }
                ActionKind::CheckIn => format!("{} (once a day, into {})", a.name, a.field),
                ActionKind::SetFlag => format!(
                    "{} (sets {} to {})",
                    a.name,
                    a.field,
                    a.value.unwrap_or(true)
                ),
            })
            .collect();
        if !actions.is_empty() {
            lines.push(format!(
                "  {} {}",
                if ru { "действия:" } else { "actions:" },
                actions.join("; ")
            ));
        }
        for (word_en, word_ru, list) in [
            ("filter by", "фильтры:", &r.filters),
            ("search in", "поиск:", &r.search),
            ("sort by", "сортировка:", &r.sort),
        ] {
            if !list.is_empty() {
                lines.push(format!(
                    "  {} {}",
                    if ru { word_ru } else { word_en },
                    list.join(", ")
                ));
            }
        }
    }
    if !spec.unplaced.is_empty() {
        lines.push(format!(
            "{} {}",
            if ru {
                "Не удалось разместить:"
            } else {
                "Could not place:"
            },
            spec.unplaced.join("; ")
        ));
    }
    lines.join("\n")
}

fn field(f: &Field) -> String {
    let mut notes = vec![match f.ty {
        FieldType::Enum => format!("enum: {}", f.choices.join("|")),
        FieldType::StringList => "list of strings".to_owned(),
        other => other.as_str().to_owned(),
    }];
    if f.required {
        notes.push("required".to_owned());
    }
    if f.unique {
        notes.push("unique".to_owned());
    }
    if let Some(default) = &f.default {
        notes.push(format!("default {default}"));
    }
    format!("{} ({})", f.name, notes.join(", "))
}
