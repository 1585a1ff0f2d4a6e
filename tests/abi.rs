//! The hostile-input contract of the module, through the raw C ABI.
//!
//! The built `libdcred_pkcs11.so` is loaded with libloading and driven only
//! through the function lists it hands out (`C_GetInterface` for 3.0,
//! `C_GetFunctionList` for 2.40): NULL pointers, invalid slot, session and
//! object handles, short buffers and wrong operation states, on every
//! function. Each call must return the right `CK_RV` and the process must
//! survive it.
//!
//! - `nocard::*` needs no card and always runs (a few checks need a PC/SC
//!   reader and say so when there is none).
//! - `card::*` is `#[ignore]`d: scripts/test.sh runs it with
//!   `--include-ignored` against the provisioned virtual PIV card in reader 0.
//! - `*::regression_*` tests pin down departures from PKCS#11 3.0 this suite
//!   found and the module fixed (session errors before argument errors,
//!   argument errors ending operations, private handles dying at logout,
//!   overflow-proof counts and salt lengths, bounded derived-key sizes).
//!
//! PKCS#11 state is per process and Rust runs tests on threads: every test
//! holds [`LOCK`] and runs from `C_Initialize` to `C_Finalize`. All `unsafe`
//! code is in [`ffi`].

#![deny(unsafe_code)]

// The crate root is tests/abi.rs, so its modules are found relative to tests/.
#[path = "abi/card.rs"]
mod card;
#[path = "abi/ffi.rs"]
mod ffi;
#[path = "abi/nocard.rs"]
mod nocard;

use std::fmt::Display;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cryptoki_sys::*;
use ffi::{Init, Module};

/// The virtual card's PIN (scripts/test.sh provisions it).
pub const PIN: &[u8] = b"123456";

/// Functions that take no session handle (PKCS#11 3.0 §5.1.2 lists them,
/// plus the 3.0 interface functions).
pub const NON_SESSION: &[&str] = &[
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetFunctionList",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_OpenSession",
    "C_CloseAllSessions",
    "C_WaitForSlotEvent",
    "C_GetInterfaceList",
    "C_GetInterface",
];

/// The functions of the 3.0 list that take a session handle first.
pub fn session_functions(m: &Module) -> Vec<&'static str> {
    m.funcs()
        .iter()
        .map(|f| f.name)
        .filter(|n| !NON_SESSION.contains(n))
        .collect()
}

/// PKCS#11 state is per process: every test holds this lock.
static LOCK: Mutex<()> = Mutex::new(());

/// A serialised test: the lock, and `C_Finalize` on the way out.
pub struct Fixture {
    pub m: &'static Module,
    finished: bool,
    _serial: MutexGuard<'static, ()>,
}

impl Fixture {
    /// Take the lock, with the module not initialised.
    pub fn uninitialized() -> Fixture {
        let serial = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let m = ffi::module();
        // Every test finalises, also when it fails (Drop); this only makes
        // sure a test starts from the state it expects.
        let _ = m.finalize(false);
        Fixture {
            m,
            finished: false,
            _serial: serial,
        }
    }

    /// Take the lock and `C_Initialize(NULL)`.
    pub fn initialized() -> Fixture {
        let fx = Fixture::uninitialized();
        expect(fx.m.initialize(Init::Null), CKR_OK, "C_Initialize(NULL)");
        fx
    }

    /// `C_Finalize`, which must succeed whatever the test left open.
    pub fn finish(mut self) {
        self.finished = true;
        expect(
            self.m.finalize(false),
            CKR_OK,
            "C_Finalize at the end of the test",
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.m.finalize(false);
        }
    }
}

macro_rules! rv_names {
    ($($c:ident),* $(,)?) => {
        /// A return value's name, for messages.
        pub fn rv_name(rv: CK_RV) -> String {
            match rv {
                $($c => stringify!($c).to_string(),)*
                other => format!("CKR_{other:#x}"),
            }
        }
    };
}

rv_names!(
    CKR_OK,
    CKR_SLOT_ID_INVALID,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_NO_EVENT,
    CKR_NEED_TO_CREATE_THREADS,
    CKR_CANT_LOCK,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ACTION_PROHIBITED,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_REMOVED,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_FUNCTION_NOT_PARALLEL,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_PIN_INCORRECT,
    CKR_PIN_LEN_RANGE,
    CKR_PIN_LOCKED,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    CKR_SESSION_READ_ONLY,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TOKEN_NOT_PRESENT,
    CKR_TOKEN_WRITE_PROTECTED,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_TYPE_INVALID,
    CKR_RANDOM_SEED_NOT_SUPPORTED,
    CKR_BUFFER_TOO_SMALL,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_CRYPTOKI_ALREADY_INITIALIZED,
    CKR_MUTEX_BAD,
    CKR_KEY_SIZE_RANGE,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_HOST_MEMORY,
);

/// Assert a return value, naming both sides.
#[track_caller]
pub fn expect(rv: CK_RV, want: CK_RV, what: impl Display) {
    assert!(
        rv == want,
        "{what}: got {}, expected {}",
        rv_name(rv),
        rv_name(want)
    );
}

/// Collects the mismatches of a sweep, to report them all at once.
#[derive(Default)]
pub struct Sweep {
    calls: usize,
    bad: Vec<String>,
}

impl Sweep {
    /// Record one call's result against the expected one.
    pub fn check(&mut self, what: impl Display, rv: CK_RV, want: CK_RV) {
        self.calls += 1;
        if rv != want {
            self.bad.push(format!(
                "{what}: got {}, expected {}",
                rv_name(rv),
                rv_name(want)
            ));
        }
    }

    /// Record one call's result against a set of acceptable ones.
    pub fn check_any(&mut self, what: impl Display, rv: CK_RV, allowed: &[CK_RV]) {
        self.calls += 1;
        if !allowed.contains(&rv) {
            let names: Vec<String> = allowed.iter().map(|&r| rv_name(r)).collect();
            self.bad.push(format!(
                "{what}: got {}, expected one of {}",
                rv_name(rv),
                names.join(", ")
            ));
        }
    }

    /// Fail with every mismatch; returns the number of calls checked.
    #[track_caller]
    pub fn done(self) -> usize {
        assert!(
            self.bad.is_empty(),
            "{} of {} calls wrong:\n  {}",
            self.bad.len(),
            self.calls,
            self.bad.join("\n  ")
        );
        self.calls
    }
}

/// A blank-padded PKCS#11 text field: UTF-8, no NUL or control character,
/// only blanks after the text, and some text. Returns the text.
#[track_caller]
pub fn check_padded(field: &[u8], what: &str) -> String {
    let s = std::str::from_utf8(field).unwrap_or_else(|_| panic!("{what} is not UTF-8: {field:?}"));
    assert!(
        !s.contains('\0'),
        "{what} has a NUL (not blank-padded): {s:?}"
    );
    let text = s.trim_end_matches(' ');
    assert!(!text.is_empty(), "{what} is blank");
    assert!(
        !text.chars().any(char::is_control),
        "{what} has control characters: {text:?}"
    );
    text.to_string()
}

/// A `CK_ULONG` attribute value as the module encodes it.
pub fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}
