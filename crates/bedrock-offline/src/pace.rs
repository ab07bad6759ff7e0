//! When each token is due: the first after the time to first token, then one per interval.

use std::time::Duration;

use crate::config::OfflineConfig;

/// Interval of the `slow` fault: 1 token per second.
const SLOW_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    pub ttft: Duration,
    pub interval: Duration,
}

impl Pace {
    pub fn from_config(config: &OfflineConfig) -> Self {
        Self {
            ttft: config.ttft(),
            interval: config.token_interval(),
        }
    }

    /// The same time to first token, then a 1 token/s trickle.
    pub fn slow(self) -> Self {
        Self {
            interval: SLOW_INTERVAL,
            ..self
        }
    }

    /// When token `i` (0-based) is due, after the request arrived.
    pub fn token_at(self, i: usize) -> Duration {
        self.ttft
            + self
                .interval
                .saturating_mul(u32::try_from(i).unwrap_or(u32::MAX))
    }

    /// When the last of `n` tokens is due: how long generating the whole reply takes.
    pub fn total(self, n: usize) -> Duration {
        self.token_at(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_spaced_by_the_interval() {
        let p = Pace {
            ttft: Duration::from_millis(200),
            interval: Duration::from_millis(50),
        };
        assert_eq!(p.token_at(0), Duration::from_millis(200));
        assert_eq!(p.token_at(3), Duration::from_millis(350));
        assert_eq!(p.total(41), Duration::from_millis(2200));
        assert_eq!(p.slow().token_at(2), Duration::from_millis(2200));
        let instant = Pace::from_config(&OfflineConfig::default());
        assert_eq!(instant.total(80), Duration::ZERO);
    }
}
