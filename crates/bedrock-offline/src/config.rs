//! Settings of the offline model: latency, random faults, prompt caching and the simulated
//! guardrail.
//!
//! Two sets of defaults on purpose:
//! - the clap defaults (`CLI_DEFAULT_*`: 250 ms to first token, 40 tokens/s, a 1,000-token
//!   cache minimum) make `cargo run` feel like a real model to a human watching the page;
//! - [`OfflineConfig::default()`] is zero latency, no faults and a 20-token cache minimum,
//!   which is what tests and load tests want.

use std::time::Duration;

use clap::builder::BoolishValueParser;

/// Time to first token used when the CLI flag is not given (for humans running `cargo run`).
pub const CLI_DEFAULT_TTFT_MS: u64 = 250;
/// Generation speed used when the CLI flag is not given (for humans running `cargo run`).
pub const CLI_DEFAULT_TOKENS_PER_SEC: f64 = 40.0;
/// Smallest cacheable prefix when the CLI flag is not given: Bedrock's Nova minimum (1,000).
pub const CLI_DEFAULT_CACHE_MIN_TOKENS: u64 = 1000;
/// Smallest cacheable prefix of [`OfflineConfig::default()`]: small, so tests stay cheap.
pub const DEFAULT_CACHE_MIN_TOKENS: u64 = 20;
/// Bedrock's default blocked-input and blocked-output messaging.
pub const DEFAULT_GUARDRAIL_BLOCKED_MESSAGE: &str = "Sorry, the model cannot answer this question.";

/// Latency and fault settings of the offline Bedrock-compatible model.
///
/// Flattened by the `chatbot` CLI into its `serve` and `offline-model` subcommands; every flag
/// also reads an environment variable.
#[derive(clap::Args, Clone, Debug, PartialEq)]
#[command(next_help_heading = "Offline model")]
pub struct OfflineConfig {
    /// Offline model: delay before the first token, in milliseconds.
    #[arg(
        long = "offline-ttft-ms",
        env = "CHATBOT_OFFLINE_TTFT_MS",
        value_name = "MS",
        default_value_t = CLI_DEFAULT_TTFT_MS
    )]
    pub ttft_ms: u64,

    /// Offline model: generation speed in tokens (words) per second; 0 = instant. A buffered
    /// Converse call waits as long as the same reply would take to stream.
    #[arg(
        long = "offline-tokens-per-sec",
        env = "CHATBOT_OFFLINE_TOKENS_PER_SEC",
        value_name = "RATE",
        default_value_t = CLI_DEFAULT_TOKENS_PER_SEC,
        value_parser = parse_rate
    )]
    pub tokens_per_sec: f64,

    /// Offline model: percent of attempts (0-100) answered with 429 ThrottlingException.
    #[arg(
        long = "offline-throttle-percent",
        env = "CHATBOT_OFFLINE_THROTTLE_PERCENT",
        value_name = "PERCENT",
        default_value_t = 0.0,
        value_parser = parse_percent
    )]
    pub throttle_percent: f64,

    /// Offline model: percent of attempts (0-100) answered with a 5xx error
    /// (InternalServerException 500 or ServiceUnavailableException 503, half each).
    #[arg(
        long = "offline-error-percent",
        env = "CHATBOT_OFFLINE_ERROR_PERCENT",
        value_name = "PERCENT",
        default_value_t = 0.0,
        value_parser = parse_percent
    )]
    pub error_percent: f64,

    /// Offline model: never answer any request (hold the connection open), to test timeouts.
    #[arg(
        long = "offline-hang",
        env = "CHATBOT_OFFLINE_HANG",
        action = clap::ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub hang: bool,

    /// Offline model: seed of the random fault sampler, for reproducible fault sequences.
    #[arg(
        long = "offline-seed",
        env = "CHATBOT_OFFLINE_SEED",
        value_name = "SEED"
    )]
    pub seed: Option<u64>,

    /// Offline model: fewest tokens (words) a prompt prefix must hold for its cachePoint to
    /// cache anything (a smaller checkpoint silently caches nothing, like Bedrock).
    #[arg(
        long = "offline-cache-min-tokens",
        env = "CHATBOT_OFFLINE_CACHE_MIN_TOKENS",
        value_name = "TOKENS",
        default_value_t = CLI_DEFAULT_CACHE_MIN_TOKENS
    )]
    pub cache_min_tokens: u64,

    /// Offline model: words the simulated guardrail blocks in input and output
    /// (comma-separated, case-insensitive whole words). Applies to requests with
    /// guardrailConfig only.
    #[arg(
        long = "offline-guardrail-blocked-words",
        env = "CHATBOT_OFFLINE_GUARDRAIL_BLOCKED_WORDS",
        value_name = "WORDS",
        value_delimiter = ','
    )]
    pub guardrail_blocked_words: Vec<String>,

    /// Offline model: words the simulated guardrail blocks in the model's output only
    /// (comma-separated): a user message quoting one passes the input check, and the echoed
    /// reply is blocked mid-way.
    #[arg(
        long = "offline-guardrail-blocked-output-words",
        env = "CHATBOT_OFFLINE_GUARDRAIL_BLOCKED_OUTPUT_WORDS",
        value_name = "WORDS",
        value_delimiter = ','
    )]
    pub guardrail_blocked_output_words: Vec<String>,

    /// Offline model: the reply when the guardrail blocks the input.
    #[arg(
        long = "offline-guardrail-blocked-input-message",
        env = "CHATBOT_OFFLINE_GUARDRAIL_BLOCKED_INPUT_MESSAGE",
        value_name = "TEXT",
        default_value = DEFAULT_GUARDRAIL_BLOCKED_MESSAGE
    )]
    pub guardrail_blocked_input_message: String,

    /// Offline model: the text sent when the guardrail blocks the output.
    #[arg(
        long = "offline-guardrail-blocked-output-message",
        env = "CHATBOT_OFFLINE_GUARDRAIL_BLOCKED_OUTPUT_MESSAGE",
        value_name = "TEXT",
        default_value = DEFAULT_GUARDRAIL_BLOCKED_MESSAGE
    )]
    pub guardrail_blocked_output_message: String,
}

impl Default for OfflineConfig {
    /// Zero latency, no faults, a 20-token cache minimum, no blocked words: the setting for
    /// tests and load tests.
    fn default() -> Self {
        Self {
            ttft_ms: 0,
            tokens_per_sec: 0.0,
            throttle_percent: 0.0,
            error_percent: 0.0,
            hang: false,
            seed: None,
            cache_min_tokens: DEFAULT_CACHE_MIN_TOKENS,
            guardrail_blocked_words: Vec::new(),
            guardrail_blocked_output_words: Vec::new(),
            guardrail_blocked_input_message: DEFAULT_GUARDRAIL_BLOCKED_MESSAGE.to_owned(),
            guardrail_blocked_output_message: DEFAULT_GUARDRAIL_BLOCKED_MESSAGE.to_owned(),
        }
    }
}

impl OfflineConfig {
    /// What the CLI uses when no flag is given: human-paced latency (250 ms, 40 tokens/s) and
    /// Bedrock's 1,000-token cache minimum.
    pub fn cli_defaults() -> Self {
        Self {
            ttft_ms: CLI_DEFAULT_TTFT_MS,
            tokens_per_sec: CLI_DEFAULT_TOKENS_PER_SEC,
            cache_min_tokens: CLI_DEFAULT_CACHE_MIN_TOKENS,
            ..Self::default()
        }
    }

    /// Delay before the first token.
    pub fn ttft(&self) -> Duration {
        Duration::from_millis(self.ttft_ms)
    }

    /// Time between two tokens; zero when generation is instant.
    pub fn token_interval(&self) -> Duration {
        interval_for_rate(self.tokens_per_sec)
    }
}

/// Seconds per token for a rate in tokens per second; 0 (or less) means instant.
pub(crate) fn interval_for_rate(tokens_per_sec: f64) -> Duration {
    if tokens_per_sec > 0.0 && tokens_per_sec.is_finite() {
        Duration::from_secs_f64(1.0 / tokens_per_sec)
    } else {
        Duration::ZERO
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err("must be a number >= 0".into())
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be a number from 0 to 100".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        offline: OfflineConfig,
    }

    #[test]
    fn default_is_zero_latency_and_cli_default_is_human_paced() {
        let d = OfflineConfig::default();
        assert_eq!(d.cache_min_tokens, DEFAULT_CACHE_MIN_TOKENS);
        assert!(d.guardrail_blocked_words.is_empty());
        assert_eq!(d.ttft(), Duration::ZERO);
        assert_eq!(d.token_interval(), Duration::ZERO);
        assert!(!d.hang);

        // Env vars could leak in from the shell running the tests; the parse below would then
        // not show the clap defaults.
        let cli = Cli::try_parse_from(["x"]).unwrap();
        if std::env::vars().all(|(k, _)| !k.starts_with("CHATBOT_OFFLINE_")) {
            assert_eq!(cli.offline, OfflineConfig::cli_defaults());
            assert_eq!(cli.offline.token_interval(), Duration::from_millis(25));
        }
    }

    #[test]
    fn flags_parse_and_are_validated() {
        let cli = Cli::try_parse_from([
            "x",
            "--offline-ttft-ms",
            "10",
            "--offline-tokens-per-sec",
            "0",
            "--offline-throttle-percent",
            "12.5",
            "--offline-error-percent",
            "100",
            "--offline-hang",
            "--offline-seed",
            "7",
            "--offline-cache-min-tokens",
            "50",
            "--offline-guardrail-blocked-words",
            "kraken,ice cream",
            "--offline-guardrail-blocked-output-words",
            "squid",
            "--offline-guardrail-blocked-input-message",
            "No.",
            "--offline-guardrail-blocked-output-message",
            "Stop.",
        ])
        .unwrap();
        assert_eq!(
            cli.offline,
            OfflineConfig {
                ttft_ms: 10,
                tokens_per_sec: 0.0,
                throttle_percent: 12.5,
                error_percent: 100.0,
                hang: true,
                seed: Some(7),
                cache_min_tokens: 50,
                guardrail_blocked_words: vec!["kraken".into(), "ice cream".into()],
                guardrail_blocked_output_words: vec!["squid".into()],
                guardrail_blocked_input_message: "No.".into(),
                guardrail_blocked_output_message: "Stop.".into(),
            }
        );
        assert!(Cli::try_parse_from(["x", "--offline-throttle-percent", "101"]).is_err());
        assert!(Cli::try_parse_from(["x", "--offline-tokens-per-sec", "-1"]).is_err());
    }
}
