//! Logging: multiproc reports through the [`log`] facade; [`log_to_stderr`]
//! turns it on without another crate (Python's `multiprocessing.log_to_stderr`).
//!
//! What is logged, under the target `multiproc`: process starts and exits
//! (pid, exit status) and fork-server restarts at `debug`/`info`, a worker lost
//! or replaced and a retry at `warn`, and per-task detail at `trace`. Any
//! logger works (`env_logger`, `tracing-log`, …); this one is for when you
//! have none.

use std::io::Write;
use std::sync::OnceLock;

use log::{LevelFilter, Log, Metadata, Record};

/// Writes records to stderr as `[LEVEL/pid] target: message`, the shape of
/// Python's `[INFO/MainProcess] message`, one `write` per record so that lines
/// of several processes do not interleave.
struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!("[{}/{}] {}: {}\n", record.level(), std::process::id(), record.target(), record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Sends multiproc's log records (and every other crate's) at `level` and
/// above to stderr — Python's `log_to_stderr(level)`.
///
/// If the program already installed a logger, that one stays and only the
/// maximum level changes; the return value says which happened (`true`: the
/// stderr logger is in place). Children inherit the setting under the fork
/// start method; spawned children call it again if they want it (e.g. in a
/// pool initializer).
///
/// ```
/// assert!(multiproc::log_to_stderr(multiproc::LevelFilter::Info));
/// ```
pub fn log_to_stderr(level: LevelFilter) -> bool {
    let ours = *INSTALLED.get_or_init(|| {
        static LOGGER: StderrLogger = StderrLogger;
        log::set_logger(&LOGGER).is_ok()
    });
    log::set_max_level(level);
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_is_set_whichever_logger_is_in_place() {
        let ours = log_to_stderr(LevelFilter::Debug);
        assert_eq!(log::max_level(), LevelFilter::Debug);
        assert_eq!(log_to_stderr(LevelFilter::Warn), ours, "the answer does not change");
        assert_eq!(log::max_level(), LevelFilter::Warn);
        assert!(log::log_enabled!(log::Level::Warn));
        assert!(!log::log_enabled!(log::Level::Info));
    }
}
