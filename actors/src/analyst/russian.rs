//! Russian morphology for the Analyst: the Snowball Russian stemmer, so that «ссылок»,
//! «ссылки» and «ссылками» are one word, and a transliteration for nouns no table knows.
//!
//! A prefix list breaks on fleeting vowels and short stems (the stem «ссылк» is not a prefix
//! of «ссылок»); the stemmer plus the lexicon's few listed forms per word (nominative and
//! genitive plural) does not.

const VOWELS: &[char] = &['а', 'е', 'и', 'о', 'у', 'ы', 'э', 'ю', 'я'];

const PERFECTIVE_GERUND_1: &[&str] = &["вшись", "вши", "в"];
const PERFECTIVE_GERUND_2: &[&str] = &["ившись", "ывшись", "ивши", "ывши", "ив", "ыв"];
const ADJECTIVE: &[&str] = &[
    "ими", "ыми", "его", "ого", "ему", "ому", "ее", "ие", "ые", "ое", "ей", "ий", "ый", "ой", "ем",
    "им", "ым", "ом", "их", "ых", "ую", "юю", "ая", "яя", "ою", "ею",
];
const PARTICIPLE_1: &[&str] = &["ем", "нн", "вш", "ющ", "щ"];
const PARTICIPLE_2: &[&str] = &["ивш", "ывш", "ующ"];
const REFLEXIVE: &[&str] = &["ся", "сь"];
const VERB_1: &[&str] = &[
    "ете", "йте", "ешь", "нно", "ла", "на", "ли", "ем", "ло", "но", "ет", "ют", "ны", "ть", "й",
    "л", "н",
];
const VERB_2: &[&str] = &[
    "ейте", "уйте", "ила", "ыла", "ена", "ите", "или", "ыли", "ило", "ыло", "ено", "ует", "уют",
    "ены", "ить", "ыть", "ишь", "ей", "уй", "ил", "ыл", "им", "ым", "ен", "ят", "ит", "ыт", "ую",
    "ю",
];
const NOUN: &[&str] = &[
    "иями", "ями", "ами", "ией", "иям", "ием", "иях", "ев", "ов", "ие", "ье", "еи", "ии", "ей",
    "ой", "ий", "ям", "ем", "ам", "ом", "ах", "ях", "ию", "ью", "ия", "ья", "а", "е", "и", "й",
    "о", "у", "ы", "ь", "ю", "я",
];
const SUPERLATIVE: &[&str] = &["ейше", "ейш"];
const DERIVATIONAL: &[&str] = &["ость", "ост"];

fn is_vowel(c: char) -> bool {
    VOWELS.contains(&c)
}

/// The longest of `endings` that `word[from..]` ends with, as a char count; with `after_a`,
/// only when the char before it is `а` or `я` (and inside the region).
fn ending(word: &[char], from: usize, endings: &[&str], after_a: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for e in endings {
        let e: Vec<char> = e.chars().collect();
        if e.len() > word.len().saturating_sub(from) || !word.ends_with(&e) {
            continue;
        }
        if after_a {
            let before = word.len() - e.len();
            if before <= from || !matches!(word[before - 1], 'а' | 'я') {
                continue;
            }
        }
        if best.is_none_or(|b| e.len() > b) {
            best = Some(e.len());
        }
    }
    best
}

/// Either group of a two-group ending (the first needs a preceding `а`/`я`).
fn either(word: &[char], from: usize, one: &[&str], two: &[&str]) -> Option<usize> {
    match (
        ending(word, from, one, true),
        ending(word, from, two, false),
    ) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The Snowball Russian stem of one lowercase word (`ё` read as `е`).
pub fn stem(word: &str) -> String {
    let mut w: Vec<char> = word
        .chars()
        .map(|c| if c == 'ё' { 'е' } else { c })
        .collect();
    let Some(first_vowel) = w.iter().position(|&c| is_vowel(c)) else {
        return w.into_iter().collect();
    };
    let rv = first_vowel + 1;
    // R2: after the first non-vowel following a vowel, twice.
    let region = |start: usize| {
        (start..w.len())
            .find(|&i| i > 0 && !is_vowel(w[i]) && is_vowel(w[i - 1]))
            .map_or(w.len(), |i| i + 1)
    };
    let r1 = region(0);
    let r2 = region(r1).max(r1);
    let cut = |w: &mut Vec<char>, n: usize| {
        let keep = w.len() - n;
        w.truncate(keep);
    };
    // Step 1.
    if let Some(n) = either(&w, rv, PERFECTIVE_GERUND_1, PERFECTIVE_GERUND_2) {
        cut(&mut w, n);
    } else {
        if let Some(n) = ending(&w, rv, REFLEXIVE, false) {
            cut(&mut w, n);
        }
        if let Some(n) = ending(&w, rv, ADJECTIVE, false) {
            cut(&mut w, n);
            if let Some(p) = either(&w, rv, PARTICIPLE_1, PARTICIPLE_2) {
                cut(&mut w, p);
            }
        } else if let Some(n) = either(&w, rv, VERB_1, VERB_2) {
            cut(&mut w, n);
        } else if let Some(n) = ending(&w, rv, NOUN, false) {
            cut(&mut w, n);
        }
    }
    // Step 2.
    if w.len() > rv && w.last() == Some(&'и') {
        w.pop();
    }
    // Step 3.
    if let Some(n) = ending(&w, r2.min(w.len()), DERIVATIONAL, false) {
        cut(&mut w, n);
    }
    // Step 4.
    if w.len() > rv + 1 && w.ends_with(&['н', 'н']) {
        w.pop();
    } else {
        if let Some(n) = ending(&w, rv, SUPERLATIVE, false) {
            cut(&mut w, n);
        }
        let double_n = w.len() > rv + 1 && w.ends_with(&['н', 'н']);
        if double_n || (w.len() > rv && w.last() == Some(&'ь')) {
            w.pop();
        }
    }
    w.into_iter().collect()
}

/// `word` in ASCII letters (GOST-like), for a noun no table knows.
pub fn transliterate(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars().flat_map(char::to_lowercase) {
        let latin = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'ё' | 'э' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' | 'й' => "i",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ы' => "y",
            'ю' => "yu",
            'я' => "ya",
            'ъ' | 'ь' => "",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "_",
        };
        out.push_str(latin);
    }
    out
}

/// Whether the text is mostly Cyrillic (by letters).
pub fn is_mostly_cyrillic(text: &str) -> bool {
    let (mut cyr, mut lat) = (0usize, 0usize);
    for c in text.chars() {
        if ('\u{400}'..='\u{4ff}').contains(&c) {
            cyr += 1;
        } else if c.is_ascii_alphabetic() {
            lat += 1;
        }
    }
    cyr > lat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_of_one_noun_share_a_stem() {
        assert_eq!(stem("ссылки"), "ссылк");
        assert_eq!(stem("ссылками"), "ссылк");
        assert_eq!(stem("ссылка"), "ссылк");
        assert_eq!(stem("расходов"), "расход");
        assert_eq!(stem("категориям"), stem("категория"));
        assert_eq!(stem("книги"), stem("книга"));
    }

    #[test]
    fn transliteration_is_ascii() {
        assert_eq!(transliterate("Щётка"), "shchetka");
        assert_eq!(transliterate("объявления"), "obyavleniya");
    }
}
