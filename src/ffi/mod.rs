//! The C ABI: every `C_*` export, the function lists and the PKCS#11 3.0
//! interfaces. This is the only module with `unsafe` code. Raw pointers are
//! turned into borrowed Rust values exactly once, by the helpers below; each
//! export is a thin wrapper (via [`cryptoki_fn!`]) around an inner function
//! returning `Result`, which catches panics and maps errors to `CK_RV` through
//! [`crate::core::error::rv`].

#![allow(non_snake_case)]

use std::sync::{Arc, RwLock};

use cryptoki_sys::*;

use crate::core::{Error, Module, Out, OutSpec, Result};

mod crypto;
mod general;
mod object;
mod session;
mod slot;
mod unsupported;

/// Define an exported PKCS#11 function: logs the call, catches panics and
/// converts the body's `Result<()>` into a `CK_RV`.
macro_rules! cryptoki_fn {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// The caller passes pointers as the PKCS#11 specification requires:
        /// NULL where allowed, otherwise valid for the lengths given.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || -> $crate::core::Result<()> { $body },
            ));
            let rv = match result {
                Ok(Ok(())) => CKR_OK,
                Ok(Err(e)) => $crate::core::error::rv(&e),
                Err(_) => {
                    log::error!("{}: internal panic caught", stringify!($name));
                    CKR_GENERAL_ERROR
                }
            };
            log::debug!("{} -> {}", stringify!($name), $crate::core::error::rv_name(rv));
            rv
        }
    };
}
pub(crate) use cryptoki_fn;

/// The module instance, if initialised in this process.
static STATE: RwLock<Option<Arc<Module>>> = RwLock::new(None);

/// The initialised module, or `CKR_CRYPTOKI_NOT_INITIALIZED` (also in a
/// forked child that has not called `C_Initialize` itself).
fn module() -> Result<Arc<Module>> {
    let g = STATE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match g.as_ref() {
        Some(m) if m.pid == std::process::id() => Ok(m.clone()),
        _ => Err(Error::NotInitialized),
    }
}

/// Borrow `len` elements at `ptr` (NULL is allowed only for length 0).
///
/// # Safety
/// `ptr` must be NULL or valid for reads of `len` elements for `'a`.
unsafe fn slice<'a, T>(ptr: *const T, len: CK_ULONG) -> Result<&'a [T]> {
    let len = usize::try_from(len).map_err(|_| Error::ArgumentsBad("length"))?;
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::ArgumentsBad("NULL buffer with non-zero length"))
        };
    }
    if len > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::ArgumentsBad("length"));
    }
    // SAFETY: non-null, and the caller guarantees `len` readable elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrow an output location.
///
/// # Safety
/// `ptr` must be NULL or valid for writes of one `T` for `'a`.
unsafe fn out<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees a valid, exclusive location when non-null.
    unsafe { ptr.as_mut() }.ok_or(Error::ArgumentsBad("NULL output pointer"))
}

/// Deliver an operation's output with the PKCS#11 two-call convention
/// (PKCS#11 3.0 §5.2): NULL buffer → length; short buffer →
/// `CKR_BUFFER_TOO_SMALL` with the length; else the data.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `*len_ptr` bytes; `len_ptr` must
/// be valid for reads and writes.
unsafe fn deliver(
    buf: *mut CK_BYTE,
    len_ptr: *mut CK_ULONG,
    f: impl FnOnce(OutSpec) -> Result<Out>,
) -> Result<()> {
    // SAFETY: forwarded caller guarantee.
    let len = unsafe { out(len_ptr) }?;
    let spec = if buf.is_null() {
        OutSpec::Query
    } else {
        OutSpec::Buffer(usize::try_from(*len).unwrap_or(usize::MAX))
    };
    match f(spec) {
        Ok(Out::Len(n)) => {
            *len = n as CK_ULONG;
            Ok(())
        }
        Ok(Out::Data(d)) => {
            if d.len() > usize::try_from(*len).unwrap_or(usize::MAX) {
                *len = d.len() as CK_ULONG;
                return Err(Error::BufferTooSmall(d.len()));
            }
            // SAFETY: `buf` is non-null here and valid for `*len` >= d.len() bytes.
            unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), buf, d.len()) };
            *len = d.len() as CK_ULONG;
            Ok(())
        }
        Err(Error::BufferTooSmall(n)) => {
            *len = n as CK_ULONG;
            Err(Error::BufferTooSmall(n))
        }
        Err(e) => Err(e),
    }
}

/// Copy a string into a blank-padded fixed field (PKCS#11 text fields).
fn pad_field(dst: &mut [CK_UTF8CHAR], s: &str) {
    dst.fill(b' ');
    let mut end = s.len().min(dst.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    dst[..end].copy_from_slice(&s.as_bytes()[..end]);
}

/// Read a template of attribute types and values (for searches and new keys).
///
/// # Safety
/// `ptr` must be NULL (with `count` 0) or point to `count` attributes whose
/// `pValue` are valid for `ulValueLen` bytes.
unsafe fn template(
    ptr: *const CK_ATTRIBUTE,
    count: CK_ULONG,
) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    // SAFETY: forwarded caller guarantee.
    let attrs = unsafe { slice(ptr, count) }?;
    attrs
        .iter()
        .map(|a| {
            // SAFETY: the caller guarantees pValue/ulValueLen describe readable memory.
            let v = unsafe { slice(a.pValue as *const u8, a.ulValueLen) }?;
            Ok((a.type_, v.to_vec()))
        })
        .collect()
}
