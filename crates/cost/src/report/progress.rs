//! A progress indicator on stderr while the report waits on AWS.
//!
//! On a terminal: one line rewritten in place (spinner, message, seconds elapsed). Otherwise
//! (piped, CI logs): each new message once, so logs stay readable. Hand-written because it is
//! this one line; indicatif would bring a terminal stack for it.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

const SPINNER: &[char] = &['|', '/', '-', '\\'];

pub struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tick: usize,
    last: String,
    drawn: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// Shows `message` (replacing the previous one on a terminal).
    pub fn update(&self, message: &str) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        // A closed stderr must not fail the report: write errors are ignored.
        if self.tty {
            state.tick += 1;
            let spin = SPINNER[state.tick % SPINNER.len()];
            let secs = self.started.elapsed().as_secs_f64();
            let _ = write!(err, "\r\x1b[2K{spin} {message} ({secs:.1} s)");
            let _ = err.flush();
            state.drawn = true;
        } else if state.last != message {
            let _ = writeln!(err, "cost-report: {message}");
        }
        state.last = message.to_owned();
    }

    /// Clears the terminal line (so the report starts on a clean line).
    pub fn finish(&self) {
        if !self.enabled || !self.tty {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            state.drawn = false;
        }
    }
}
