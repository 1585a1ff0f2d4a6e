//! Session management (PKCS#11 3.0 §5.6).

use cryptoki_sys::*;

use super::{cryptoki_fn, module, out, slice};
use crate::core::Error;

cryptoki_fn!(
    /// `C_OpenSession` (§5.6.1). Notification callbacks are not used.
    fn C_OpenSession(
        slotID: CK_SLOT_ID,
        flags: CK_FLAGS,
        pApplication: CK_VOID_PTR,
        Notify: CK_NOTIFY,
        phSession: CK_SESSION_HANDLE_PTR,
    ) {
        let m = module()?;
        let _ = (pApplication, Notify);
        // SAFETY: per the spec.
        let h = unsafe { out(phSession) }?;
        m.refresh(false);
        *h = m.open_session(slotID, flags)?;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_CloseSession` (§5.6.2).
    fn C_CloseSession(hSession: CK_SESSION_HANDLE) {
        module()?.close_session(hSession)
    }
);

cryptoki_fn!(
    /// `C_CloseAllSessions` (§5.6.3).
    fn C_CloseAllSessions(slotID: CK_SLOT_ID) {
        module()?.close_all(slotID)
    }
);

cryptoki_fn!(
    /// `C_GetSessionInfo` (§5.6.4).
    fn C_GetSessionInfo(hSession: CK_SESSION_HANDLE, pInfo: CK_SESSION_INFO_PTR) {
        let m = module()?;
        let (slot, state, flags) = m.session_info(hSession)?;
        // SAFETY: per the spec.
        let info = unsafe { out(pInfo) }?;
        info.slotID = slot;
        info.state = state;
        info.flags = flags;
        info.ulDeviceError = 0;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetOperationState` (§5.6.7): card operations cannot be saved.
    fn C_GetOperationState(
        hSession: CK_SESSION_HANDLE,
        pOperationState: CK_BYTE_PTR,
        pulOperationStateLen: CK_ULONG_PTR,
    ) {
        module()?.session(hSession)?;
        let _ = (pOperationState, pulOperationStateLen);
        Err(Error::FunctionNotSupported)
    }
);

cryptoki_fn!(
    /// `C_SetOperationState` (§5.6.8).
    fn C_SetOperationState(
        hSession: CK_SESSION_HANDLE,
        pOperationState: CK_BYTE_PTR,
        ulOperationStateLen: CK_ULONG,
        hEncryptionKey: CK_OBJECT_HANDLE,
        hAuthenticationKey: CK_OBJECT_HANDLE,
    ) {
        module()?.session(hSession)?;
        let _ = (
            pOperationState,
            ulOperationStateLen,
            hEncryptionKey,
            hAuthenticationKey,
        );
        Err(Error::FunctionNotSupported)
    }
);

cryptoki_fn!(
    /// `C_Login` (§5.6.9): VERIFY on the card; `CKU_CONTEXT_SPECIFIC` for 9C.
    fn C_Login(
        hSession: CK_SESSION_HANDLE,
        userType: CK_USER_TYPE,
        pPin: CK_UTF8CHAR_PTR,
        ulPinLen: CK_ULONG,
    ) {
        let m = module()?;
        if pPin.is_null() {
            // No protected authentication path: the PIN must be given.
            m.session(hSession)?;
            return Err(Error::ArgumentsBad("NULL PIN"));
        }
        // SAFETY: per the spec.
        let pin = unsafe { slice(pPin, ulPinLen) }?;
        m.login(hSession, userType, pin)
    }
);

cryptoki_fn!(
    /// `C_LoginUser` (§5.6.10): user names do not exist on these tokens.
    fn C_LoginUser(
        hSession: CK_SESSION_HANDLE,
        userType: CK_USER_TYPE,
        pPin: CK_UTF8CHAR_PTR,
        ulPinLen: CK_ULONG,
        pUsername: CK_UTF8CHAR_PTR,
        ulUsernameLen: CK_ULONG,
    ) {
        module()?.session(hSession)?;
        let _ = (userType, pPin, ulPinLen, pUsername, ulUsernameLen);
        Err(Error::FunctionNotSupported)
    }
);

cryptoki_fn!(
    /// `C_Logout` (§5.6.11).
    fn C_Logout(hSession: CK_SESSION_HANDLE) {
        module()?.logout(hSession)
    }
);

cryptoki_fn!(
    /// `C_SessionCancel` (§5.6.5).
    fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) {
        module()?.session(hSession)?;
        let _ = flags;
        Err(Error::FunctionNotSupported)
    }
);
