//! One deadline per request, fixed when it starts: every model attempt, the fallback and the
//! stream's reads get only what remains of it.
//!
//! It is the configured model deadline (`CHATBOT_MODEL_TIMEOUT_MS` from the request's start),
//! capped in Lambda by the invocation's own deadline (`Lambda-Runtime-Deadline-Ms`) minus the
//! answer margin (`CHATBOT_ANSWER_MARGIN_MS`), which is kept for what follows the model: storing
//! the turn, settling the budget, the answer and its telemetry. So whatever the model does, the
//! service answers — with its request id and evidence — before the function's timeout.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The least time worth giving the fallback model: with less left, it is skipped (and the
/// primary's error answered) rather than started only to time out.
pub const FALLBACK_MIN_TIME: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When the model work must be over.
    at: Instant,
    /// When the answer must be out: `at` plus the margin.
    answer_by: Instant,
    /// The Lambda invocation's deadline, not the configured model deadline, set `at`.
    pub lambda_bound: bool,
}

impl Deadline {
    /// The deadline of a request that started at `start`, with `lambda` the invocation's own
    /// deadline when there is one.
    pub fn new(
        start: Instant,
        model_timeout: Duration,
        margin: Duration,
        lambda: Option<SystemTime>,
    ) -> Self {
        let configured = start + model_timeout;
        // The wall-clock deadline as a monotonic instant: time left now, from now.
        let lambda_at = lambda.map(|d| {
            let left = d.duration_since(SystemTime::now()).unwrap_or_default();
            Instant::now() + left.saturating_sub(margin)
        });
        match lambda_at {
            Some(l) if l < configured => Deadline {
                at: l,
                answer_by: l + margin,
                lambda_bound: true,
            },
            _ => Deadline {
                at: configured,
                answer_by: configured + margin,
                lambda_bound: false,
            },
        }
    }

    /// When the model work must be over.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Time left for model work.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Time left until the answer must be out (model deadline plus the margin): how long a
    /// conversation lease or a worst-case compute estimate must cover.
    pub fn answer_time_left(&self) -> Duration {
        self.answer_by.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test]
    async fn the_earlier_of_model_timeout_and_lambda_deadline_minus_margin() {
        let now = Instant::now();
        // No Lambda deadline: the model timeout.
        let d = Deadline::new(now, S(25), S(2), None);
        assert_eq!((d.at(), d.lambda_bound), (now + S(25), false));
        // A 10 s invocation: 8 s for the model, 2 s to answer.
        let d = Deadline::new(now, S(25), S(2), Some(SystemTime::now() + S(10)));
        assert!(d.lambda_bound);
        assert!(d.remaining() <= S(8) && d.remaining() > S(7));
        assert!(d.answer_time_left() <= S(10) && d.answer_time_left() > S(9));
        // A long invocation: the model timeout still rules.
        let d = Deadline::new(now, S(25), S(2), Some(SystemTime::now() + S(60)));
        assert!(!d.lambda_bound);
        // Already past: nothing left.
        let d = Deadline::new(now, S(25), S(2), Some(SystemTime::now() - S(1)));
        assert_eq!(d.remaining(), Duration::ZERO);
    }
}
