//! Functions the module offers no implementation for: each checks that the
//! module is initialised and the session exists, then returns
//! `CKR_FUNCTION_NOT_SUPPORTED` (PKCS#11 3.0 §5.1: every function in the
//! list must be present).

use std::ffi::c_void;

use cryptoki_sys::*;

use super::{cryptoki_fn, module};
use crate::core::Error;

macro_rules! unsupported {
    ($($name:ident($session:ident: CK_SESSION_HANDLE $(, $arg:ident: $ty:ty)*);)*) => {
        $(
            cryptoki_fn!(
                /// Not supported by this module.
                fn $name($session: CK_SESSION_HANDLE $(, $arg: $ty)*) {
                    module()?.session($session)?;
                    $(let _ = $arg;)*
                    Err(Error::FunctionNotSupported)
                }
            );
        )*
    };
}

unsupported! {
    C_DigestKey(session: CK_SESSION_HANDLE, arg2: CK_OBJECT_HANDLE);
    C_SignRecoverInit(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_SignRecover(session: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_VerifyRecoverInit(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_VerifyRecover(session: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DigestEncryptUpdate(session: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DecryptDigestUpdate(session: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_SignEncryptUpdate(session: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_DecryptVerifyUpdate(session: CK_SESSION_HANDLE, arg2: *mut CK_BYTE, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: *mut CK_ULONG);
    C_GenerateKey(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG, arg5: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: *mut CK_ATTRIBUTE, arg4: CK_ULONG, arg5: *mut CK_ATTRIBUTE, arg6: CK_ULONG, arg7: *mut CK_OBJECT_HANDLE, arg8: *mut CK_OBJECT_HANDLE);
    C_WrapKey(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE, arg4: CK_OBJECT_HANDLE, arg5: *mut CK_BYTE, arg6: *mut CK_ULONG);
    C_MessageEncryptInit(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_EncryptMessage(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: CK_ULONG, arg8: *mut CK_BYTE, arg9: *mut CK_ULONG);
    C_EncryptMessageBegin(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG);
    C_EncryptMessageNext(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: *mut CK_ULONG, arg8: CK_FLAGS);
    C_MessageEncryptFinal(session: CK_SESSION_HANDLE);
    C_MessageDecryptInit(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_DecryptMessage(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: CK_ULONG, arg8: *mut CK_BYTE, arg9: *mut CK_ULONG);
    C_DecryptMessageBegin(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG);
    C_DecryptMessageNext(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: *mut CK_ULONG, arg8: CK_FLAGS);
    C_MessageDecryptFinal(session: CK_SESSION_HANDLE);
    C_MessageSignInit(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_SignMessage(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: *mut CK_ULONG);
    C_SignMessageBegin(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG);
    C_SignMessageNext(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: *mut CK_ULONG);
    C_MessageSignFinal(session: CK_SESSION_HANDLE);
    C_MessageVerifyInit(session: CK_SESSION_HANDLE, arg2: *mut CK_MECHANISM, arg3: CK_OBJECT_HANDLE);
    C_VerifyMessage(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: CK_ULONG);
    C_VerifyMessageBegin(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG);
    C_VerifyMessageNext(session: CK_SESSION_HANDLE, arg2: *mut c_void, arg3: CK_ULONG, arg4: *mut CK_BYTE, arg5: CK_ULONG, arg6: *mut CK_BYTE, arg7: CK_ULONG);
    C_MessageVerifyFinal(session: CK_SESSION_HANDLE);
}

cryptoki_fn!(
    /// `C_GetFunctionStatus` (§5.19.1): legacy, always "not parallel".
    fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) {
        module()?.session(hSession)?;
        Err(Error::FunctionNotParallel)
    }
);

cryptoki_fn!(
    /// `C_CancelFunction` (§5.19.2): legacy, always "not parallel".
    fn C_CancelFunction(hSession: CK_SESSION_HANDLE) {
        module()?.session(hSession)?;
        Err(Error::FunctionNotParallel)
    }
);
