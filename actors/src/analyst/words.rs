//! A request as the reader sees it: lowercase words (each with the key it is matched by),
//! and the separators between them.
//!
//! English words are matched by their singular (`books` → `book`), Russian ones by their
//! Snowball stem, so the lexicon lists each word once and any form of it matches.

use super::russian;

/// One token of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as written, lowercased (`ё` kept).
    pub text: String,
    /// What it is matched by: the English singular, or the Russian stem.
    pub key: String,
    /// Whether it is Cyrillic.
    pub russian: bool,
    /// A separator (`,` `.` `;` `:` `(` `)`) rather than a word.
    pub separator: Option<char>,
}

impl Word {
    /// True for a word (not a separator) whose text or key is `what`.
    pub fn is(&self, what: &str) -> bool {
        self.separator.is_none() && (self.text == what || self.key == what)
    }
}

/// The English singular of a lowercase word.
pub fn singular(word: &str) -> String {
    const SAME: &[&str] = &[
        "news", "series", "species", "status", "address", "business", "class", "glass", "process",
        "access", "bus", "campus", "isbn", "notes", "data", "sms",
    ];
    if SAME.contains(&word) || word.len() <= 3 {
        return word.to_owned();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for suffix in ["sses", "shes", "ches", "xes", "zes"] {
        if word.ends_with(suffix) {
            return word[..word.len() - 2].to_owned();
        }
    }
    if let Some(stem) = word.strip_suffix('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
    {
        return stem.to_owned();
    }
    word.to_owned()
}

/// The English plural of a singular word.
pub fn plural(word: &str) -> String {
    if let Some(stem) = word.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if word.ends_with('s') || word.ends_with('x') || word.ends_with("ch") || word.ends_with("sh") {
        return format!("{word}es");
    }
    format!("{word}s")
}

fn cyrillic(c: char) -> bool {
    ('\u{400}'..='\u{4ff}').contains(&c)
}

/// The words and separators of `text`.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, out: &mut Vec<Word>| {
        let text = current.trim_matches(['-', '\'', '_']).to_owned();
        current.clear();
        if text.is_empty() {
            return;
        }
        let russian = text.chars().any(cyrillic);
        let key = if russian {
            russian::stem(&text)
        } else {
            singular(&text)
        };
        out.push(Word {
            text,
            key,
            russian,
            separator: None,
        });
    };
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || matches!(c, '-' | '\'' | '_') {
            current.push(c);
            continue;
        }
        flush(&mut current, &mut out);
        if matches!(
            c,
            ',' | '.' | ';' | ':' | '(' | ')' | '!' | '?' | '\n' | '—' | '–'
        ) {
            let c = match c {
                '!' | '?' | '\n' => '.',
                '—' | '–' => ':',
                other => other,
            };
            out.push(Word {
                text: c.to_string(),
                key: c.to_string(),
                russian: false,
                separator: Some(c),
            });
        }
    }
    flush(&mut current, &mut out);
    out
}

/// `text` as a snake_case ASCII name (Cyrillic transliterated), or `None` when nothing is
/// left.
pub fn snake(text: &str) -> Option<String> {
    let ascii = russian::transliterate(text);
    let mut out = String::new();
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').chars().take(40).collect::<String>();
    let out = out.trim_matches('_').to_owned();
    if out.is_empty() {
        return None;
    }
    Some(if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("f_{out}")
    } else {
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_words_are_matched_by_their_singular() {
        assert_eq!(singular("books"), "book");
        assert_eq!(singular("categories"), "category");
        assert_eq!(singular("boxes"), "box");
        assert_eq!(singular("status"), "status");
        assert_eq!(plural("category"), "categories");
        assert_eq!(plural("entry"), "entries");
        assert_eq!(plural("day"), "days");
    }

    #[test]
    fn requests_split_into_words_and_separators() {
        let got: Vec<String> = words("Books, with ISBN; «ссылок»!")
            .into_iter()
            .map(|w| w.key)
            .collect();
        assert_eq!(got, ["book", ",", "with", "isbn", ";", "ссылок", "."]);
        assert_eq!(snake("Due date").as_deref(), Some("due_date"));
        assert_eq!(snake("срок сдачи").as_deref(), Some("srok_sdachi"));
        assert_eq!(snake("2nd").as_deref(), Some("f_2nd"));
        assert_eq!(snake("«»"), None);
    }
}
