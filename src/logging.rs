//! An environment-configured logger for the `log` facade.
//!
//! `DCRED_LOG` sets the level (`off`, `error`, `warn` (default), `info`,
//! `debug`, `trace`); `DCRED_LOG_FILE` sends lines to a file (appended, mode
//! 0600) instead of standard error. Nothing is ever written to standard
//! output, which belongs to the host application. Log lines never contain a
//! PIN, key material or a secret: the code logs lengths and names, not data.

use std::io::Write;
use std::sync::Mutex;

use log::{LevelFilter, Log, Metadata, Record};

struct Logger {
    file: Option<Mutex<std::fs::File>>,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!(
            "dcred[{}] {:5} {}: {}\n",
            std::process::id(),
            r.level(),
            r.target(),
            r.args()
        );
        match &self.file {
            Some(f) => {
                let _ = crate::core::lock(f).write_all(line.as_bytes());
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

fn level_from_env() -> LevelFilter {
    std::env::var("DCRED_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LevelFilter::Warn)
}

/// Install the logger (once per process) and apply the level from the environment.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let file = std::env::var_os("DCRED_LOG_FILE").and_then(|p| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(p)
                .ok()
                .map(Mutex::new)
        });
        // Fails only if the host already installed a logger: then we use theirs.
        let _ = log::set_boxed_logger(Box::new(Logger { file }));
    });
    log::set_max_level(level_from_env());
}
