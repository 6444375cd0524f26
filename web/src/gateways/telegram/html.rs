//! Telegram's HTML parse mode: escaping what artel says, and splitting what is too long.
//!
//! Every message goes out with `parse_mode = HTML`, so any `<`, `>` or `&` in a line (a spec
//! with `Vec<String>`, a test's output) must be escaped or Telegram rejects the message with
//! "can't parse entities". A message holds at most 4096 characters after entities are
//! parsed; longer text is split on line breaks where it can, never inside an escape.

/// The most characters one Telegram message may hold.
pub const MAX_CHARS: usize = 4096;

/// `text` with `&`, `<` and `>` escaped for HTML parse mode.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Plain `text` as escaped HTML messages of at most [`MAX_CHARS`] characters each (counted
/// as Telegram counts them, after unescaping): split at the last line break that fits, else
/// at the last space, else anywhere.
pub fn split_escaped(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + MAX_CHARS).min(chars.len());
        if end < chars.len() {
            let window = &chars[start..end];
            let cut = window
                .iter()
                .rposition(|c| *c == '\n')
                .or_else(|| window.iter().rposition(|c| *c == ' '))
                .filter(|i| *i > 0);
            if let Some(i) = cut {
                end = start + i + 1;
            }
        }
        let part: String = chars[start..end].iter().collect();
        let part = part.trim_end_matches('\n');
        if !part.is_empty() {
            parts.push(escape(part));
        }
        start = end;
    }
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Telegram counts of an HTML message: its text with entities decoded.
    fn unescaped_len(html: &str) -> usize {
        html.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
            .chars()
            .count()
    }

    #[test]
    fn escapes_the_three_characters_html_mode_reserves() {
        assert_eq!(
            escape("tags: Vec<String> & <b>bold</b>"),
            "tags: Vec&lt;String&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("Привет, мир"), "Привет, мир");
    }

    #[test]
    fn short_text_is_one_message() {
        assert_eq!(split_escaped("a < b"), vec!["a &lt; b".to_owned()]);
    }

    #[test]
    fn long_text_splits_on_line_breaks_and_never_inside_an_escape() {
        let line = format!("{}<>&\n", "x".repeat(96));
        let text = line.repeat(100); // 10,000 characters
        let parts = split_escaped(&text);
        assert!(parts.len() >= 3, "{}", parts.len());
        for part in &parts {
            assert!(unescaped_len(part) <= MAX_CHARS);
            assert!(part.ends_with("&lt;&gt;&amp;"), "split mid-line: {part:?}");
        }
        let joined: String = parts
            .iter()
            .map(|p| {
                p.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&")
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(joined, text.trim_end());
    }

    #[test]
    fn text_without_breaks_splits_by_characters_not_bytes() {
        let text = "я".repeat(MAX_CHARS + 10);
        let parts = split_escaped(&text);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].chars().count(), MAX_CHARS);
        assert_eq!(parts[1].chars().count(), 10);
    }
}
