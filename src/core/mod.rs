//! The PKCS#11 core: slots, tokens, sessions, objects, mechanisms and the
//! error type. Nothing here touches raw pointers; the FFI layer hands typed
//! values in and gets typed values back.

pub mod error;
pub mod keyobjects;
pub mod mechanism;
pub mod module;
pub mod object;
mod ops;
pub mod session;
pub mod slots;
pub mod token;

use std::sync::{Mutex, MutexGuard};

pub use error::{Error, Result};
pub use mechanism::{Mech, MechParam};
pub use module::Module;
pub use object::{KeyInfo, Object};
pub use ops::{Out, OutSpec};
pub use token::{Token, TokenInfo};

/// Lock a mutex, ignoring poisoning: a panic in another thread was already
/// reported as `CKR_GENERAL_ERROR`, and the data it guards stays consistent
/// at every await-free step of the core.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
