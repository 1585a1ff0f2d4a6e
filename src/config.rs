//! The module's configuration file.
//!
//! Location: `$DCRED_CONFIG` if set, else `<config dir>/dcred/dcred.toml`
//! (`~/.config/dcred/dcred.toml` on Linux). A missing file means defaults; a
//! malformed one is reported in the log and defaults are used, so a typo can
//! never stop a browser from loading. Every key, with its default:
//!
//! ```toml
//! # Only readers whose name contains one of these strings get a slot
//! # (empty: every reader).
//! readers = []
//! # The card PIN's retry limit, to decide when to raise CKF_USER_PIN_COUNT_LOW.
//! pin_retries_hint = 3
//! # Longest a card transaction (a few APDUs) may take before the call fails
//! # with CKR_DEVICE_ERROR, in milliseconds.
//! card_timeout_ms = 15000
//! # Longest a derived-credential login may wait for the back-end, in milliseconds.
//! backend_timeout_ms = 5000
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// Parsed configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Reader-name filters (substring match); empty = all readers.
    pub readers: Vec<String>,
    /// The card PIN's retry limit.
    pub pin_retries_hint: u8,
    /// Card transaction timeout in milliseconds.
    pub card_timeout_ms: u64,
    /// Back-end timeout (connect, each read and write) in milliseconds.
    pub backend_timeout_ms: u64,
    /// The application forbade library threads (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`).
    #[serde(skip)]
    pub no_threads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            readers: Vec::new(),
            pin_retries_hint: 3,
            card_timeout_ms: 15_000,
            backend_timeout_ms: 5_000,
            no_threads: false,
        }
    }
}

impl Config {
    /// Where the configuration file is looked for.
    pub fn path() -> Option<PathBuf> {
        std::env::var_os("DCRED_CONFIG")
            .map(PathBuf::from)
            .or_else(|| dirs::config_dir().map(|d| d.join("dcred").join("dcred.toml")))
    }

    /// Load the configuration (defaults when absent or broken).
    pub fn load() -> Config {
        let Some(path) = Self::path() else {
            return Config::default();
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).unwrap_or_else(|e| {
                log::error!("{}: {e}; using defaults", path.display());
                Config::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => {
                log::error!("{}: {e}; using defaults", path.display());
                Config::default()
            }
        }
    }

    /// Parse configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Does a reader pass the filter?
    pub fn reader_allowed(&self, name: &str) -> bool {
        self.readers.is_empty() || self.readers.iter().any(|f| name.contains(f.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.pin_retries_hint, 3);
        assert_eq!(c.card_timeout_ms, 15_000);
        assert!(c.reader_allowed("anything"));
        let c = Config::parse("readers = [\"Virtual\"]\npin_retries_hint = 5").unwrap();
        assert!(c.reader_allowed("Virtual PCD 00 00"));
        assert!(!c.reader_allowed("Yubico YubiKey"));
        assert_eq!(c.pin_retries_hint, 5);
    }

    #[test]
    fn unknown_keys_are_rejected_clearly() {
        let e = Config::parse("pin_retry = 3").unwrap_err();
        assert!(e.contains("pin_retry"), "{e}");
    }
}
