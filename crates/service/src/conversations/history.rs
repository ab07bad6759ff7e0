//! The model's input for a turn: the stored history and the new message, trimmed oldest turn
//! first to the request limits (`CHATBOT_MAX_MESSAGES`, `CHATBOT_MAX_TOTAL_CHARS`), as the page
//! trims its own history in the stateless mode.

use crate::request::Role;
use crate::store::StoredTurn;
use crate::validation::{Limits, Message};

/// What goes to the model, and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    pub messages: Vec<Message>,
    /// Stored turns sent with the new message.
    pub history_turns: usize,
    /// Stored turns left out, oldest first, to stay within the limits.
    pub dropped_turns: usize,
    /// Characters of the history sent (for the summary line's token estimate).
    pub history_chars: usize,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `message` (already validated) after as many of the newest `history` turns as fit.
pub fn assemble(history: &[StoredTurn], message: &str, limits: &Limits) -> Assembled {
    let mut total = chars(message);
    let mut count = 1;
    // Newest first: take turns while both limits hold.
    let mut kept = 0;
    for turn in history.iter().rev() {
        let size = chars(&turn.user) + chars(&turn.assistant);
        if count + 2 > limits.max_messages || total + size > limits.max_total_chars {
            break;
        }
        count += 2;
        total += size;
        kept += 1;
    }
    let sent = &history[history.len() - kept..];
    let mut messages = Vec::with_capacity(kept * 2 + 1);
    for turn in sent {
        messages.push(Message {
            role: Role::User,
            content: turn.user.clone(),
        });
        messages.push(Message {
            role: Role::Assistant,
            content: turn.assistant.clone(),
        });
    }
    messages.push(Message {
        role: Role::User,
        content: message.to_owned(),
    });
    Assembled {
        messages,
        history_turns: kept,
        dropped_turns: history.len() - kept,
        history_chars: total - chars(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(u: &str, a: &str) -> StoredTurn {
        StoredTurn {
            user: u.into(),
            assistant: a.into(),
            at: 0,
        }
    }

    fn limits(max_messages: usize, max_total_chars: usize) -> Limits {
        Limits {
            max_messages,
            max_message_chars: 1000,
            max_total_chars,
        }
    }

    #[test]
    fn everything_fits() {
        let h = [turn("q1", "a1"), turn("q2", "a2")];
        let a = assemble(&h, "q3", &limits(40, 1000));
        let texts: Vec<&str> = a.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["q1", "a1", "q2", "a2", "q3"]);
        assert_eq!(
            (a.history_turns, a.dropped_turns, a.history_chars),
            (2, 0, 8)
        );
        assert_eq!(a.messages[1].role, Role::Assistant);
    }

    #[test]
    fn the_oldest_turns_go_first() {
        let h = [turn("q1", "a1"), turn("q2", "a2"), turn("q3", "a3")];
        // Three messages at most: one turn and the new message.
        let a = assemble(&h, "q4", &limits(3, 1000));
        let texts: Vec<&str> = a.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["q3", "a3", "q4"]);
        assert_eq!(a.dropped_turns, 2);
        // 11 characters at most: the new message (2) and two turns of 4 each (10), not three.
        let a = assemble(&h, "q4", &limits(40, 11));
        assert_eq!((a.history_turns, a.dropped_turns), (2, 1));
        assert_eq!(a.messages[0].content, "q2");
    }
}
