//! Slot and token management (PKCS#11 3.0 §5.5).

use cryptoki_sys::*;

use super::{cryptoki_fn, module, out, pad_field, slice};
use crate::core::mechanism::{self, MECHANISMS};
use crate::core::{Error, Result};

/// Copy a list into a caller array with the two-call convention.
///
/// # Safety
/// `dst` must be NULL or valid for `*count` writes; `count` valid.
unsafe fn deliver_list<T: Copy>(dst: *mut T, count: *mut CK_ULONG, items: &[T]) -> Result<()> {
    // SAFETY: forwarded caller guarantee.
    let count = unsafe { out(count) }?;
    if dst.is_null() {
        *count = items.len() as CK_ULONG;
        return Ok(());
    }
    if (*count as usize) < items.len() {
        *count = items.len() as CK_ULONG;
        return Err(Error::BufferTooSmall(items.len()));
    }
    // SAFETY: the caller's array holds at least *count >= items.len() elements.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), dst, items.len()) };
    *count = items.len() as CK_ULONG;
    Ok(())
}

cryptoki_fn!(
    /// `C_GetSlotList` (§5.5.1). Never touches a card: presence comes from pcscd.
    fn C_GetSlotList(tokenPresent: CK_BBOOL, pSlotList: CK_SLOT_ID_PTR, pulCount: CK_ULONG_PTR) {
        let m = module()?;
        m.refresh(pSlotList.is_null());
        let ids = m.slot_list(tokenPresent != 0);
        // SAFETY: per the spec.
        unsafe { deliver_list(pSlotList, pulCount, &ids) }
    }
);

cryptoki_fn!(
    /// `C_GetSlotInfo` (§5.5.2).
    fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) {
        let m = module()?;
        // SAFETY: per the spec.
        let info = unsafe { out(pInfo) }?;
        m.refresh(false);
        let (desc, flags) = m.slot_info(slotID)?;
        pad_field(&mut info.slotDescription, &desc);
        pad_field(&mut info.manufacturerID, "dcred project");
        info.flags = flags;
        info.hardwareVersion = CK_VERSION { major: 0, minor: 0 };
        info.firmwareVersion = CK_VERSION { major: 0, minor: 0 };
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetTokenInfo` (§5.5.3). Card data is cached: no APDU after the first call.
    fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) {
        let m = module()?;
        // SAFETY: per the spec.
        let info = unsafe { out(pInfo) }?;
        m.refresh(false);
        let t = m.token_info(slotID)?;
        pad_field(&mut info.label, &t.label);
        pad_field(&mut info.manufacturerID, &t.manufacturer);
        pad_field(&mut info.model, &t.model);
        pad_field(&mut info.serialNumber, &t.serial);
        info.flags = CKF_LOGIN_REQUIRED
            | CKF_USER_PIN_INITIALIZED
            | CKF_TOKEN_INITIALIZED
            | CKF_RNG
            | t.pin_flags;
        info.ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
        info.ulSessionCount = CK_UNAVAILABLE_INFORMATION;
        info.ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
        info.ulRwSessionCount = CK_UNAVAILABLE_INFORMATION;
        info.ulMaxPinLen = t.max_pin as CK_ULONG;
        info.ulMinPinLen = t.min_pin as CK_ULONG;
        info.ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
        info.ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
        info.ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info.ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
        info.hardwareVersion = CK_VERSION { major: 0, minor: 0 };
        info.firmwareVersion = CK_VERSION { major: 0, minor: 0 };
        info.utcTime = [b' '; 16];
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetMechanismList` (§5.5.5).
    fn C_GetMechanismList(
        slotID: CK_SLOT_ID,
        pMechanismList: CK_MECHANISM_TYPE_PTR,
        pulCount: CK_ULONG_PTR,
    ) {
        let m = module()?;
        m.slot(slotID)?;
        let list: Vec<CK_MECHANISM_TYPE> = MECHANISMS.iter().map(|e| e.0).collect();
        // SAFETY: per the spec.
        unsafe { deliver_list(pMechanismList, pulCount, &list) }
    }
);

cryptoki_fn!(
    /// `C_GetMechanismInfo` (§5.5.6).
    fn C_GetMechanismInfo(
        slotID: CK_SLOT_ID,
        type_: CK_MECHANISM_TYPE,
        pInfo: CK_MECHANISM_INFO_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let info = unsafe { out(pInfo) }?;
        m.slot(slotID)?;
        let i = mechanism::info(type_)?;
        info.ulMinKeySize = i.min;
        info.ulMaxKeySize = i.max;
        info.flags = i.flags;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_InitToken` (§5.5.7): PIV cards are personalised by their issuer.
    fn C_InitToken(
        slotID: CK_SLOT_ID,
        pPin: CK_UTF8CHAR_PTR,
        ulPinLen: CK_ULONG,
        pLabel: CK_UTF8CHAR_PTR,
    ) {
        let m = module()?;
        m.slot(slotID)?;
        let _ = (pPin, ulPinLen, pLabel);
        Err(Error::FunctionNotSupported)
    }
);

cryptoki_fn!(
    /// `C_InitPIN` (§5.5.8): needs the SO (PUK) role, not offered.
    fn C_InitPIN(hSession: CK_SESSION_HANDLE, pPin: CK_UTF8CHAR_PTR, ulPinLen: CK_ULONG) {
        let m = module()?;
        m.session(hSession)?;
        let _ = (pPin, ulPinLen);
        Err(Error::UserNotLoggedIn)
    }
);

cryptoki_fn!(
    /// `C_SetPIN` (§5.5.9): CHANGE REFERENCE DATA on the card.
    fn C_SetPIN(
        hSession: CK_SESSION_HANDLE,
        pOldPin: CK_UTF8CHAR_PTR,
        ulOldLen: CK_ULONG,
        pNewPin: CK_UTF8CHAR_PTR,
        ulNewLen: CK_ULONG,
    ) {
        let m = module()?;
        m.session(hSession)?;
        // SAFETY: per the spec.
        let old = unsafe { slice(pOldPin, ulOldLen) }?;
        // SAFETY: per the spec.
        let new = unsafe { slice(pNewPin, ulNewLen) }?;
        if pOldPin.is_null() || pNewPin.is_null() {
            return Err(Error::ArgumentsBad("NULL PIN"));
        }
        m.set_pin(hSession, old, new)
    }
);

cryptoki_fn!(
    /// `C_WaitForSlotEvent` (§5.5.4). A blocked wait ends with
    /// `CKR_CRYPTOKI_NOT_INITIALIZED` when another thread calls `C_Finalize`.
    fn C_WaitForSlotEvent(flags: CK_FLAGS, pSlot: CK_SLOT_ID_PTR, pReserved: CK_VOID_PTR) {
        let m = module()?;
        if !pReserved.is_null() {
            return Err(Error::ArgumentsBad("pReserved must be NULL"));
        }
        // SAFETY: per the spec.
        let slot = unsafe { out(pSlot) }?;
        *slot = m.wait_for_slot_event(flags & CKF_DONT_BLOCK != 0)?;
        Ok(())
    }
);
