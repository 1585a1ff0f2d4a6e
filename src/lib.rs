//! dcred: a PKCS#11 module that shows PIV smart cards (over PC/SC) and the
//! derived credentials issued from them side by side, one slot each.
//!
//! Layers, top to bottom (dependencies point down only):
//! - [`ffi`](crate) — the C ABI, the only `unsafe` code;
//! - [`core`] — slots, sessions, objects, mechanisms, errors → `CK_RV`;
//! - [`piv`] — the PIV card driver and its PC/SC transport;
//! - [`soft`] — derived-credential tokens (activation with the back-end);
//! - [`crypto`] — hashing, RSA padding, public-key operations.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod config;
pub mod core;
pub mod crypto;
pub mod logging;
pub mod piv;
pub mod soft;

#[allow(unsafe_code)]
mod ffi;
