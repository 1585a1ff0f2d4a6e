//! The dcred back-end. It guards each derived credential's key-wrapping key
//! (KWK) and releases it only to a device that proves the key pair regenerated
//! from the PIN, over a TLS 1.3 channel the proof is bound to. Failures are
//! counted atomically and lock the record at the limit.
//!
//! Layers: [`cli`] (the `dcred-backend` command) → [`server`] (TLS accept
//! loop, one request per connection) → [`service`] (protocol logic) →
//! [`store`] (SQLite, versioned schema) and [`keys`] (master and MAC keys).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod enroll;
pub mod hsm;
pub mod keys;
pub mod server;
pub mod service;
pub mod store;

/// Errors of the back-end.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Database failure.
    Store(String),
    /// A key file is missing, malformed or unusable.
    Keys(String),
    /// TLS or network set-up failed.
    Tls(String),
    /// File system.
    Io(std::io::Error),
    /// Bad command-line or configuration input.
    Usage(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Store(e) => write!(f, "store: {e}"),
            Error::Keys(e) => write!(f, "keys: {e}"),
            Error::Tls(e) => write!(f, "TLS: {e}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Usage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Store(e.to_string())
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Write a file atomically (temp file, fsync, rename) with mode 0600.
pub fn write_private(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| Error::Usage("path without a directory".into()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
