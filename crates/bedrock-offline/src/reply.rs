//! The canned reply: a deterministic function of the model id, the last user message and how
//! many user messages the conversation holds (so a test can see the history was sent).

use crate::{faults, tier};

/// Whether a word is a test directive (`#fault=…`, `#served-…=…`), kept out of the quote.
fn is_directive_word(word: &str) -> bool {
    faults::is_directive_word(word) || tier::is_directive_word(word)
}

/// Longest quote of the user's message, in characters.
const MAX_QUOTE_CHARS: usize = 200;

/// The words of the canned reply (before any `maxTokens` cut). About 40 words plus the quote.
pub fn canned_words(model_id: &str, last_user_text: &str, user_messages: usize) -> Vec<String> {
    let quote = quote(last_user_text);
    let quoted = if quote.is_empty() {
        "nothing but a test directive.".to_owned()
    } else {
        format!("\"{quote}\".")
    };
    let position = match user_messages {
        0 | 1 => String::new(),
        n => format!(" It is your message {n} in this conversation."),
    };
    let text = format!(
        "Offline model ({model_id}): this is a canned answer, no AWS call was made. \
         You said: {quoted}{position} It echoes your last message so streaming, token counts \
         and cost can be tested locally, one token per word. For real answers run with \
         --backend bedrock."
    );
    text.split_whitespace().map(str::to_owned).collect()
}

/// The user's words without `#fault=` / `#served-…=` directives, cut at a word boundary to at most
/// [`MAX_QUOTE_CHARS`] characters (plus an ellipsis when cut).
fn quote(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace().filter(|w| !is_directive_word(w)) {
        let len = word.chars().count();
        let sep = usize::from(!out.is_empty());
        if chars + sep + len > MAX_QUOTE_CHARS {
            if out.is_empty() {
                // One giant word: cut inside it.
                out.extend(word.chars().take(MAX_QUOTE_CHARS));
            }
            out.push('…');
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(word);
        chars += sep + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_deterministic_echoes_and_hides_directives() {
        let a = canned_words(
            "m:0",
            "What is   Rust? #fault=throttle:2 #served-tier=flex",
            1,
        );
        assert_eq!(
            a,
            canned_words(
                "m:0",
                "What is   Rust? #fault=throttle:2 #served-tier=flex",
                1
            )
        );
        let text = a.join(" ");
        assert!(text.contains("You said: \"What is Rust?\"."), "{text}");
        assert!(!text.contains("#fault"));
        assert!(!text.contains("#served"));
        assert!(text.contains("no AWS call was made"));
        assert!(text.contains("--backend bedrock"));
        assert!((40..=80).contains(&a.len()), "{}", a.len());

        let only = canned_words("m", "#fault=slow", 1).join(" ");
        assert!(only.contains("nothing but a test directive."));
    }

    #[test]
    fn a_longer_conversation_says_how_long_it_is() {
        let first = canned_words("m", "hi", 1).join(" ");
        assert!(!first.contains("in this conversation"), "{first}");
        let third = canned_words("m", "hi", 3).join(" ");
        assert!(
            third.contains("It is your message 3 in this conversation."),
            "{third}"
        );
    }

    #[test]
    fn long_messages_are_quoted_at_most_200_chars() {
        let long = "word ".repeat(100);
        let q = quote(&long);
        assert!(q.chars().count() <= MAX_QUOTE_CHARS + 1);
        assert!(q.ends_with("word…"));
        let words = canned_words("m", &long, 1);
        assert!((40..=85).contains(&words.len()), "{}", words.len());

        let giant = "é".repeat(500);
        assert_eq!(quote(&giant).chars().count(), MAX_QUOTE_CHARS + 1);
    }
}
