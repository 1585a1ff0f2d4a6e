//! Object management (PKCS#11 3.0 §5.7).

use cryptoki_sys::*;

use super::{cryptoki_fn, module, out, template};
use crate::core::object::Lookup;
use crate::core::Error;

cryptoki_fn!(
    /// `C_CreateObject` (§5.7.1): the card's objects are written by its issuer.
    fn C_CreateObject(
        hSession: CK_SESSION_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
        phObject: CK_OBJECT_HANDLE_PTR,
    ) {
        module()?.session(hSession)?;
        let _ = (pTemplate, ulCount, phObject);
        Err(Error::FunctionNotSupported)
    }
);

cryptoki_fn!(
    /// `C_CopyObject` (§5.7.2).
    fn C_CopyObject(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
        phNewObject: CK_OBJECT_HANDLE_PTR,
    ) {
        module()?.object(hSession, hObject)?;
        let _ = (pTemplate, ulCount, phNewObject);
        Err(Error::FunctionNotSupported)
    }
);

cryptoki_fn!(
    /// `C_DestroyObject` (§5.7.3): session objects only.
    fn C_DestroyObject(hSession: CK_SESSION_HANDLE, hObject: CK_OBJECT_HANDLE) {
        module()?.destroy_object(hSession, hObject)
    }
);

cryptoki_fn!(
    /// `C_GetObjectSize` (§5.7.4).
    fn C_GetObjectSize(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pulSize: CK_ULONG_PTR,
    ) {
        let m = module()?;
        let object = m.object(hSession, hObject)?;
        // SAFETY: per the spec.
        let size = unsafe { out(pulSize) }?;
        *size = object.size() as CK_ULONG;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GetAttributeValue` (§5.7.5): fills what it can; sensitive and unknown
    /// attributes get `CK_UNAVAILABLE_INFORMATION` and the matching error.
    fn C_GetAttributeValue(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
    ) {
        let m = module()?;
        if pTemplate.is_null() && ulCount > 0 {
            return Err(Error::ArgumentsBad("NULL template"));
        }
        let count = usize::try_from(ulCount).map_err(|_| Error::ArgumentsBad("count"))?;
        let o = m.object(hSession, hObject)?;
        let mut sensitive = false;
        let mut invalid = false;
        let mut small = false;
        for i in 0..count {
            // SAFETY: the caller's template holds ulCount attributes.
            let a = unsafe { &mut *pTemplate.add(i) };
            match o.attribute(a.type_) {
                Lookup::Value(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = v.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < v.len() {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        small = true;
                    } else {
                        // SAFETY: pValue is valid for ulValueLen >= v.len() bytes.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = v.len() as CK_ULONG;
                    }
                }
                Lookup::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    sensitive = true;
                }
                Lookup::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    invalid = true;
                }
            }
        }
        if sensitive {
            Err(Error::AttributeSensitive)
        } else if invalid {
            Err(Error::AttributeTypeInvalid)
        } else if small {
            Err(Error::BufferTooSmall(0))
        } else {
            Ok(())
        }
    }
);

cryptoki_fn!(
    /// `C_SetAttributeValue` (§5.7.6): objects are read-only.
    fn C_SetAttributeValue(
        hSession: CK_SESSION_HANDLE,
        hObject: CK_OBJECT_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
    ) {
        let m = module()?;
        m.object(hSession, hObject)?;
        // SAFETY: per the spec.
        unsafe { template(pTemplate, ulCount) }?;
        Err(Error::AttributeReadOnly)
    }
);

cryptoki_fn!(
    /// `C_FindObjectsInit` (§5.7.7).
    fn C_FindObjectsInit(
        hSession: CK_SESSION_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulCount: CK_ULONG,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let t = unsafe { template(pTemplate, ulCount) }?;
        m.find_init(hSession, &t)
    }
);

cryptoki_fn!(
    /// `C_FindObjects` (§5.7.8).
    fn C_FindObjects(
        hSession: CK_SESSION_HANDLE,
        phObject: CK_OBJECT_HANDLE_PTR,
        ulMaxObjectCount: CK_ULONG,
        pulObjectCount: CK_ULONG_PTR,
    ) {
        let m = module()?;
        m.session(hSession)?;
        // SAFETY: per the spec.
        let count = unsafe { out(pulObjectCount) }?;
        if phObject.is_null() {
            return Err(Error::ArgumentsBad("NULL object array"));
        }
        let max = usize::try_from(ulMaxObjectCount).map_err(|_| Error::ArgumentsBad("count"))?;
        let found = m.find(hSession, max)?;
        // SAFETY: phObject holds ulMaxObjectCount >= found.len() handles.
        unsafe { std::ptr::copy_nonoverlapping(found.as_ptr(), phObject, found.len()) };
        *count = found.len() as CK_ULONG;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_FindObjectsFinal` (§5.7.9).
    fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) {
        module()?.find_final(hSession)
    }
);
