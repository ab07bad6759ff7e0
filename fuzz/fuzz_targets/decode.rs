//! The request decoder and the validation rules on arbitrary bytes: no input may panic them,
//! and whatever validation accepts must satisfy the rules it claims to enforce. Run with
//! `cargo fuzz run decode` (see docs/reliability.md).
#![no_main]

use chatbot_service::config::ServiceConfig;
use chatbot_service::error::ApiError;
use chatbot_service::request::{Role, decode};
use chatbot_service::validation::{Limits, validate};
use libfuzzer_sys::fuzz_target;

/// Small limits too, so the fuzzer reaches the limit checks with short inputs.
const TIGHT: Limits = Limits {
    max_messages: 3,
    max_message_chars: 8,
    max_total_chars: 12,
};

fuzz_target!(|data: &[u8]| {
    let body = match decode(data) {
        Ok(body) => body,
        Err(ApiError::InvalidRequest(message)) => {
            assert!(!message.is_empty());
            return;
        }
        Err(other) => panic!("decode failed with {other:?}, not invalid_request"),
    };
    for limits in [ServiceConfig::defaults().limits(), TIGHT] {
        match validate(body.clone(), &limits) {
            Ok(req) => {
                let n = req.messages.len();
                assert!(n % 2 == 1 && n <= limits.max_messages, "{n} messages");
                let mut total = 0;
                for (i, m) in req.messages.iter().enumerate() {
                    let chars = m.content.chars().count();
                    assert!(chars > 0 && chars <= limits.max_message_chars);
                    assert_eq!(m.content.trim(), m.content, "trimmed");
                    assert!(
                        !m.content
                            .chars()
                            .any(|c| c.is_control() && c != '\n' && c != '\t'),
                        "control characters removed"
                    );
                    let expected = if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    };
                    assert_eq!(m.role, expected);
                    total += chars;
                }
                assert!(total <= limits.max_total_chars);
            }
            Err(ApiError::InvalidRequest(message)) => assert!(!message.is_empty()),
            Err(other) => panic!("validate failed with {other:?}, not invalid_request"),
        }
    }
});
