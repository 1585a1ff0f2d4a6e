//! General-purpose functions (PKCS#11 3.0 §5.4) and the function lists and
//! interfaces (§5.4.3–5.4.5).

use std::ffi::c_void;
use std::sync::Arc;

use cryptoki_sys::*;

use super::crypto::*;
use super::object::*;
use super::session::*;
use super::slot::*;
use super::unsupported::*;
use super::{cryptoki_fn, module, out, pad_field, STATE};
use crate::core::{Error, Module, Result};

fn initialize(args: Option<&CK_C_INITIALIZE_ARGS>) -> Result<()> {
    crate::logging::init();
    let mut config = crate::config::Config::load();
    if let Some(a) = args {
        if !a.pReserved.is_null() {
            return Err(Error::ArgumentsBad("pReserved must be NULL"));
        }
        let given = [
            a.CreateMutex.is_some(),
            a.DestroyMutex.is_some(),
            a.LockMutex.is_some(),
            a.UnlockMutex.is_some(),
        ];
        if given.iter().any(|&g| g) && !given.iter().all(|&g| g) {
            return Err(Error::ArgumentsBad("mutex callbacks must be all or none"));
        }
        // PKCS#11 3.0 §5.4.1: callbacks without CKF_OS_LOCKING_OK must be used
        // or refused. The module locks with OS primitives only.
        if given.iter().all(|&g| g) && a.flags & CKF_OS_LOCKING_OK == 0 {
            return Err(Error::CantLock);
        }
        if a.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS != 0 {
            log::info!("application forbids library threads: card calls run without a timeout");
            config.no_threads = true;
        }
    }
    let mut g = STATE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(m) = g.as_ref() {
        if m.pid == std::process::id() {
            return Err(Error::AlreadyInitialized);
        }
        // A forked child inherits the parent's state: its PC/SC handles belong
        // to the parent, so they are abandoned, not closed.
        if let Some(old) = g.take() {
            std::mem::forget(old);
        }
    }
    let config = Arc::new(config);
    let pcsc = Box::new(crate::piv::reader::PcscProvider::new(config.clone()));
    let soft = Box::new(crate::soft::SoftProvider::new(config));
    *g = Some(Arc::new(Module::new(vec![pcsc, soft])));
    log::info!("initialised (dcred {})", env!("CARGO_PKG_VERSION"));
    Ok(())
}

cryptoki_fn!(
    /// `C_Initialize` (PKCS#11 3.0 §5.4.1).
    fn C_Initialize(pInitArgs: CK_VOID_PTR) {
        // SAFETY: pInitArgs is NULL or points to CK_C_INITIALIZE_ARGS (spec).
        let args = unsafe { (pInitArgs as *const CK_C_INITIALIZE_ARGS).as_ref() };
        initialize(args)
    }
);

cryptoki_fn!(
    /// `C_Finalize` (PKCS#11 3.0 §5.4.2).
    fn C_Finalize(pReserved: CK_VOID_PTR) {
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad("pReserved must be NULL"));
        }
        module()?;
        let m = STATE
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(m) = m {
            m.finalize();
        }
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetInfo` (PKCS#11 3.0 §5.4.3).
    fn C_GetInfo(pInfo: CK_INFO_PTR) {
        module()?;
        // SAFETY: pInfo is NULL or a valid CK_INFO (spec).
        let info = unsafe { out(pInfo) }?;
        info.cryptokiVersion = CK_VERSION { major: 3, minor: 0 };
        pad_field(&mut info.manufacturerID, "dcred project");
        info.flags = 0;
        pad_field(
            &mut info.libraryDescription,
            "dcred PIV and derived credentials",
        );
        info.libraryVersion = CK_VERSION {
            major: env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0),
            minor: env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0),
        };
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetFunctionList` (PKCS#11 3.0 §5.4.4).
    fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) {
        // SAFETY: valid out pointer or NULL (spec).
        let p = unsafe { out(ppFunctionList) }?;
        // Callers never write through it; the C type is merely not const.
        *p = &FUNCTION_LIST_240 as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST;
        Ok(())
    }
);

const INTERFACE_NAME: &[u8] = b"PKCS 11\0";

/// A `CK_INTERFACE` in a static (its raw pointers make it `!Sync`).
struct Interface(CK_INTERFACE);
// SAFETY: the pointers refer to immutable statics that are never written.
unsafe impl Sync for Interface {}

static INTERFACES: [Interface; 2] = [
    Interface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST_300 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
        flags: CKF_INTERFACE_FORK_SAFE,
    }),
    Interface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr() as *mut CK_UTF8CHAR,
        pFunctionList: &FUNCTION_LIST_240 as *const CK_FUNCTION_LIST as *mut c_void,
        flags: CKF_INTERFACE_FORK_SAFE,
    }),
];

fn interface_version(i: &Interface) -> CK_VERSION {
    if std::ptr::eq(i, &INTERFACES[0]) {
        FUNCTION_LIST_300.version
    } else {
        FUNCTION_LIST_240.version
    }
}

cryptoki_fn!(
    /// `C_GetInterfaceList` (PKCS#11 3.0 §5.4.5).
    fn C_GetInterfaceList(pInterfacesList: CK_INTERFACE_PTR, pulCount: CK_ULONG_PTR) {
        // SAFETY: valid out pointer or NULL (spec).
        let count = unsafe { out(pulCount) }?;
        let n = INTERFACES.len();
        if pInterfacesList.is_null() {
            *count = n as CK_ULONG;
            return Ok(());
        }
        if (*count as usize) < n {
            *count = n as CK_ULONG;
            return Err(Error::BufferTooSmall(n));
        }
        for (i, iface) in INTERFACES.iter().enumerate() {
            // SAFETY: the caller's array holds *count >= n entries.
            unsafe { pInterfacesList.add(i).write(CK_INTERFACE { ..iface.0 }) };
        }
        *count = n as CK_ULONG;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetInterface` (PKCS#11 3.0 §5.4.6).
    fn C_GetInterface(
        pInterfaceName: CK_UTF8CHAR_PTR,
        pVersion: CK_VERSION_PTR,
        ppInterface: CK_INTERFACE_PTR_PTR,
        flags: CK_FLAGS,
    ) {
        // SAFETY: valid out pointer or NULL (spec).
        let dst = unsafe { out(ppInterface) }?;
        if !pInterfaceName.is_null() {
            // SAFETY: a NUL-terminated string per the spec.
            let name =
                unsafe { std::ffi::CStr::from_ptr(pInterfaceName as *const std::ffi::c_char) };
            if name.to_bytes() != &INTERFACE_NAME[..INTERFACE_NAME.len() - 1] {
                return Err(Error::ArgumentsBad("unknown interface name"));
            }
        }
        // SAFETY: NULL or a valid CK_VERSION.
        let want = unsafe { pVersion.as_ref() };
        let found = INTERFACES.iter().find(|i| {
            let v = interface_version(i);
            want.is_none_or(|w| w.major == v.major && w.minor == v.minor)
                && i.0.flags & flags == flags
        });
        let i = found.ok_or(Error::ArgumentsBad(
            "no interface with that version and flags",
        ))?;
        *dst = &i.0 as *const CK_INTERFACE as *mut CK_INTERFACE;
        Ok(())
    }
);

macro_rules! fn_list {
    ($ty:ident, $major:expr, $minor:expr, { $($extra:ident),* }) => {
        $ty {
            version: CK_VERSION { major: $major, minor: $minor },
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

/// The PKCS#11 2.40 function list.
pub static FUNCTION_LIST_240: CK_FUNCTION_LIST = fn_list!(CK_FUNCTION_LIST, 2, 40, {});

/// The PKCS#11 3.0 function list.
pub static FUNCTION_LIST_300: CK_FUNCTION_LIST_3_0 = fn_list!(CK_FUNCTION_LIST_3_0, 3, 0, {
    C_GetInterfaceList, C_GetInterface, C_LoginUser, C_SessionCancel,
    C_MessageEncryptInit, C_EncryptMessage, C_EncryptMessageBegin, C_EncryptMessageNext,
    C_MessageEncryptFinal, C_MessageDecryptInit, C_DecryptMessage, C_DecryptMessageBegin,
    C_DecryptMessageNext, C_MessageDecryptFinal, C_MessageSignInit, C_SignMessage,
    C_SignMessageBegin, C_SignMessageNext, C_MessageSignFinal, C_MessageVerifyInit,
    C_VerifyMessage, C_VerifyMessageBegin, C_VerifyMessageNext, C_MessageVerifyFinal
});
