//! What the model sees of a tool's output: secrets masked, long output cut to head and tail.
//!
//! Both happen before an observation reaches the model *or* the journal: a secret value a
//! command printed (an `env` dump, a config file) is replaced by `***`, and an output longer
//! than the observation budget keeps its first and last parts with the count of what was
//! elided in between — the end of a test run is usually what matters, the start says what ran.

/// Secret values shorter than this are not masked: replacing every "1" or "ok" in an output
/// would make it unreadable and hide nothing worth hiding.
pub const MIN_MASKED_LEN: usize = 4;

/// Replaces known secret values with `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Longest first, so a value containing another is masked whole.
    values: Vec<String>,
}

impl Masker {
    /// A masker for `values` (the project's resolved secrets, the provider key).
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_MASKED_LEN)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// A masker for every resolved secret of `project`, and `extra` values (a provider key).
    pub async fn for_project(
        store: &crate::store::Store,
        project: artel_messages::ProjectId,
        extra: impl IntoIterator<Item = String>,
    ) -> Result<Self, artel_messages::Failure> {
        use artel_messages::Classify;
        let mut values: Vec<String> = extra.into_iter().collect();
        let names = store
            .secret_names(project)
            .await
            .map_err(|e| e.to_failure())?;
        for name in names {
            let value = store
                .reveal_secret(project, &name)
                .await
                .map_err(|e| e.to_failure())?;
            values.push(value.expose().to_owned());
        }
        Ok(Self::new(values))
    }

    /// `text` with every known value replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), "***");
            }
        }
        text
    }
}

/// `text` cut to at most about `max_chars` characters: head and tail kept, the middle replaced
/// by a line saying how many characters and lines were elided.
pub fn truncate(text: &str, max_chars: usize) -> String {
    let total = text.chars().count();
    if total <= max_chars {
        return text.to_owned();
    }
    let head_chars = max_chars / 2;
    let tail_chars = max_chars - head_chars;
    let head_end = text
        .char_indices()
        .nth(head_chars)
        .map_or(text.len(), |(i, _)| i);
    let tail_start = text
        .char_indices()
        .nth(total - tail_chars)
        .map_or(text.len(), |(i, _)| i);
    let elided = &text[head_end..tail_start];
    format!(
        "{}\n[… {} characters ({} lines) elided …]\n{}",
        &text[..head_end],
        elided.chars().count(),
        elided.matches('\n').count(),
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_longest_first_and_short_values_left() {
        let masker = Masker::new([
            "hunter22".to_owned(),
            "hunter22-extra".to_owned(),
            "ok".into(),
        ]);
        assert_eq!(
            masker.mask("a=hunter22-extra b=hunter22 c=ok"),
            "a=*** b=*** c=ok"
        );
        assert_eq!(Masker::default().mask("hunter22"), "hunter22");
    }

    #[test]
    fn short_output_is_untouched() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_counts_the_middle() {
        let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let cut = truncate(&text, 40);
        assert!(cut.starts_with("line 000\nline 001\n"), "{cut}");
        assert!(cut.ends_with("line 098\nline 099\n"), "{cut}");
        let elided = text.chars().count() - 40;
        assert!(cut.contains(&format!("[… {elided} characters (")), "{cut}");
        assert!(!cut.contains("line 050"));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let text = "ж".repeat(50);
        let cut = truncate(&text, 10);
        assert!(cut.starts_with("жжжжж\n[… 40 characters (0 lines) elided …]\nжжжжж"));
    }
}
