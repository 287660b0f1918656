//! Progress for long work, on a terminal only: a spinner (what is being
//! done, for how long) or a byte bar on stderr, drawn by `indicatif`. When
//! stderr is not a terminal, `TERM` is `dumb`, or the output is JSON
//! (`-o json`), nothing is drawn and no escape code is written: the steps
//! are plain `[what] step` lines on stderr instead, as before, so logs and
//! scripts read the same text.
//!
//! One bar at a time per process: [`line`] writes a step line above the
//! bar that is showing (or plainly, without one), so code that reports
//! steps need not hold the bar.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar showing now, if any (so [`line`] writes above it).
static SHOWING: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How often a spinner redraws (its elapsed time moves on).
const TICK: Duration = Duration::from_millis(120);

/// Whether progress may be drawn: stderr is a terminal that can take
/// escape codes, and the output is not JSON.
pub fn drawable(json: bool) -> bool {
    !json && std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// A bar on stderr while it lives (cleared when dropped), or nothing off a
/// terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A spinner with `what` and the elapsed time, when [`drawable`].
    pub fn spinner(what: &str, json: bool) -> Progress {
        Progress::show(drawable(json), || {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(style("{spinner} {prefix} {msg} ({elapsed})"));
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(TICK);
            bar
        })
    }

    /// A bar of `total_bytes` (bytes done, rate, time left), when
    /// [`drawable`].
    pub fn bytes(what: &str, total_bytes: u64, json: bool) -> Progress {
        Progress::show(drawable(json), || {
            let bar =
                ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            bar.set_style(style(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            ));
            bar.set_prefix(what.to_string());
            bar
        })
    }

    /// Shows `make`'s bar unless not drawable or another bar shows (work
    /// inside work, e.g. the backup `certify` takes, draws no second bar).
    fn show(drawable: bool, make: impl FnOnce() -> ProgressBar) -> Progress {
        if !drawable {
            return Progress { bar: None };
        }
        let Ok(mut showing) = SHOWING.lock() else {
            return Progress { bar: None };
        };
        if showing.is_some() {
            return Progress { bar: None };
        }
        let bar = make();
        *showing = Some(bar.clone());
        Progress { bar: Some(bar) }
    }

    /// `bytes` more done.
    pub fn inc(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    /// What to tell of bytes done from elsewhere (an upload's chunks);
    /// `None` when nothing is drawn.
    pub fn teller(&self) -> Option<crate::cli::client::Sent> {
        let bar = self.bar.clone()?;
        Some(std::sync::Arc::new(move |bytes| bar.inc(bytes)))
    }

    /// Whether a bar is drawn.
    pub fn drawn(&self) -> bool {
        self.bar.is_some()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            if let Ok(mut showing) = SHOWING.lock() {
                *showing = None;
            }
        }
    }
}

/// A step line on stderr: above the bar showing (whose message it becomes),
/// or plainly without one.
pub fn line(text: impl Into<String>) {
    let text = text.into();
    let showing = SHOWING.lock().ok().and_then(|s| s.clone());
    match showing {
        Some(bar) => {
            bar.println(&text);
            bar.set_message(text);
        }
        None => eprintln!("{text}"),
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this file, checked by the test below,
    // so parsing them cannot fail at run time.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        for t in [
            "{spinner} {prefix} {msg} ({elapsed})",
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        ] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    /// JSON output never draws, whatever stderr is.
    #[test]
    fn json_output_draws_nothing() {
        assert!(!drawable(true));
        let p = Progress::spinner("test", true);
        assert!(p.bar.is_none());
        let p = Progress::bytes("test", 10, true);
        assert!(p.bar.is_none());
    }
}
