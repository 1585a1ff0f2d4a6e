//! The dcred wire protocol: messages exchanged between the device (module,
//! CLI) and the back-end, their framing, the channel-bound challenge, and the
//! device-authentication key regenerated from the PIN (the Pomcor design,
//! adapted to P-256). Shared by every party so they cannot disagree.
//!
//! Transport: TLS 1.3 only, ALPN [`ALPN`]; one request and one response per
//! frame, each a 4-byte big-endian length and a JSON body of at most
//! [`MAX_FRAME`] bytes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod challenge;
#[cfg(feature = "client")]
pub mod client;
pub mod credential;
pub mod devicekey;
pub mod frame;
pub mod messages;

pub use challenge::challenge;
pub use devicekey::DeviceKey;
pub use messages::{Request, Response};

/// ALPN protocol identifier.
pub const ALPN: &[u8] = b"dcred/1";

/// Protocol version carried in every message.
pub const VERSION: u16 = 1;

/// Largest frame body accepted, in bytes.
pub const MAX_FRAME: usize = 256 * 1024;
