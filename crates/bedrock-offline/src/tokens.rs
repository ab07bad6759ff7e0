//! The offline model's token model: one token = one whitespace-separated word.

/// Tokens in a text: its whitespace-separated words.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Why generation stopped (Bedrock's `stopReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    /// The guardrail blocked the input or the output.
    GuardrailIntervened,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::GuardrailIntervened => "guardrail_intervened",
        }
    }
}

/// The words the model emits for one request, already cut at `maxTokens`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    words: Vec<String>,
    pub stop_reason: StopReason,
}

impl Reply {
    /// Cuts `words` at `max_tokens` words, if given and shorter.
    pub fn new(mut words: Vec<String>, max_tokens: Option<u32>) -> Self {
        let limit = max_tokens.map_or(usize::MAX, |m| m as usize);
        let stop_reason = if words.len() > limit {
            words.truncate(limit);
            StopReason::MaxTokens
        } else {
            StopReason::EndTurn
        };
        Self { words, stop_reason }
    }

    /// The words, one per token.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The text of tokens `0..=last`, as the deltas up to `last` concatenate (without the
    /// trailing space of the last one).
    pub fn text_through(&self, last: usize) -> String {
        if self.words.is_empty() {
            return String::new();
        }
        self.words[..=last.min(self.words.len().saturating_sub(1))].join(" ")
    }

    pub fn output_tokens(&self) -> u64 {
        self.words.len() as u64
    }

    /// The `contentBlockDelta` text of token `i`: the word plus the space that follows it
    /// (the last word has none), so the deltas concatenate to [`Reply::text`].
    pub fn delta(&self, i: usize) -> String {
        let word = &self.words[i];
        if i + 1 < self.words.len() {
            format!("{word} ")
        } else {
            word.clone()
        }
    }

    /// The whole reply, as a buffered Converse returns it.
    pub fn text(&self) -> String {
        self.words.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn deltas_concatenate_to_text_and_max_tokens_cuts() {
        assert_eq!(count_tokens("  a b\n\tc  "), 3);
        let r = Reply::new(words("one two three"), None);
        assert_eq!(r.stop_reason, StopReason::EndTurn);
        let joined: String = (0..3).map(|i| r.delta(i)).collect();
        assert_eq!(joined, r.text());
        assert_eq!(r.text(), "one two three");
        assert_eq!(r.text_through(1), "one two");
        assert_eq!(r.text_through(9), "one two three");
        assert_eq!(r.words().len(), 3);

        let r = Reply::new(words("one two three"), Some(2));
        assert_eq!(r.stop_reason, StopReason::MaxTokens);
        assert_eq!(r.output_tokens(), 2);
        assert_eq!(r.text(), "one two");
        assert_eq!(
            Reply::new(words("a b"), Some(2)).stop_reason,
            StopReason::EndTurn
        );
    }
}
