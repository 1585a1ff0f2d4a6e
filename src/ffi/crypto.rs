//! Cryptographic functions (PKCS#11 3.0 §5.8–5.15) and mechanism parameters.

use cryptoki_sys::*;

use super::{cryptoki_fn, deliver, module, out, slice, template};
use crate::core::session::OpKind;
use crate::core::{Error, Mech, MechParam, Result};

/// Read a `CK_MECHANISM` and its parameter into typed values.
///
/// # Safety
/// `p` must be NULL or point to a `CK_MECHANISM` whose `pParameter` is valid
/// for `ulParameterLen` bytes (and, inside, pointers valid as the spec says).
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mech> {
    // SAFETY: caller guarantee.
    let m = unsafe { p.as_ref() }.ok_or(Error::ArgumentsBad("NULL mechanism"))?;
    let len = usize::try_from(m.ulParameterLen).map_err(|_| Error::ArgumentsBad("length"))?;
    let param = if m.pParameter.is_null() {
        if len != 0 {
            return Err(Error::MechanismParamInvalid("NULL parameter with a length"));
        }
        MechParam::None
    } else {
        match m.mechanism {
            CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS => {
                if len != std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
                    return Err(Error::MechanismParamInvalid("CK_RSA_PKCS_PSS_PARAMS size"));
                }
                // SAFETY: size checked; the caller guarantees readability. Unaligned read to be safe.
                let pp =
                    unsafe { (m.pParameter as *const CK_RSA_PKCS_PSS_PARAMS).read_unaligned() };
                MechParam::Pss {
                    hash: pp.hashAlg,
                    mgf: pp.mgf,
                    salt_len: pp.sLen,
                }
            }
            CKM_RSA_PKCS_OAEP => {
                if len != std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>() {
                    return Err(Error::MechanismParamInvalid("CK_RSA_PKCS_OAEP_PARAMS size"));
                }
                // SAFETY: size checked; caller guarantee.
                let op =
                    unsafe { (m.pParameter as *const CK_RSA_PKCS_OAEP_PARAMS).read_unaligned() };
                // SAFETY: pSourceData valid for ulSourceDataLen bytes (spec).
                let label = unsafe { slice(op.pSourceData as *const u8, op.ulSourceDataLen) }
                    .map_err(|_| Error::MechanismParamInvalid("OAEP label"))?;
                MechParam::Oaep {
                    hash: op.hashAlg,
                    mgf: op.mgf,
                    source: op.source,
                    label: label.to_vec(),
                }
            }
            CKM_ECDH1_DERIVE => {
                if len != std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>() {
                    return Err(Error::MechanismParamInvalid("CK_ECDH1_DERIVE_PARAMS size"));
                }
                // SAFETY: size checked; caller guarantee.
                let ep =
                    unsafe { (m.pParameter as *const CK_ECDH1_DERIVE_PARAMS).read_unaligned() };
                // SAFETY: pointers valid for their lengths (spec).
                let shared = unsafe { slice(ep.pSharedData as *const u8, ep.ulSharedDataLen) }
                    .map_err(|_| Error::MechanismParamInvalid("ECDH shared data"))?;
                // SAFETY: as above.
                let public = unsafe { slice(ep.pPublicData as *const u8, ep.ulPublicDataLen) }
                    .map_err(|_| Error::MechanismParamInvalid("ECDH public data"))?;
                MechParam::Ecdh {
                    kdf: ep.kdf,
                    shared: shared.to_vec(),
                    public: public.to_vec(),
                }
            }
            _ => MechParam::Other(len),
        }
    };
    Mech::parse(m.mechanism, param)
}

macro_rules! init_fn {
    ($(#[$meta:meta])* $name:ident, $method:ident) => {
        cryptoki_fn!(
            $(#[$meta])*
            fn $name(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR, hKey: CK_OBJECT_HANDLE) {
                let m = module()?;
                m.session(hSession)?;
                // SAFETY: per the spec.
                let mech = unsafe { mechanism(pMechanism) }?;
                m.$method(hSession, mech, hKey)
            }
        );
    };
}

init_fn!(
    /// `C_SignInit` (§5.13.1).
    C_SignInit, sign_init
);
init_fn!(
    /// `C_VerifyInit` (§5.14.1).
    C_VerifyInit, verify_init
);
init_fn!(
    /// `C_EncryptInit` (§5.8.1).
    C_EncryptInit, encrypt_init
);
init_fn!(
    /// `C_DecryptInit` (§5.9.1).
    C_DecryptInit, decrypt_init
);

cryptoki_fn!(
    /// `C_DigestInit` (§5.12.1).
    fn C_DigestInit(hSession: CK_SESSION_HANDLE, pMechanism: CK_MECHANISM_PTR) {
        let m = module()?;
        m.session(hSession)?;
        // SAFETY: per the spec.
        let mech = unsafe { mechanism(pMechanism) }?;
        m.digest_init(hSession, mech)
    }
);

cryptoki_fn!(
    /// `C_Sign` (§5.13.2).
    fn C_Sign(
        hSession: CK_SESSION_HANDLE,
        pData: CK_BYTE_PTR,
        ulDataLen: CK_ULONG,
        pSignature: CK_BYTE_PTR,
        pulSignatureLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: per the spec.
        unsafe {
            deliver(pSignature, pulSignatureLen, |o| {
                m.sign(hSession, Some(data), o)
            })
        }
    }
);

cryptoki_fn!(
    /// `C_SignUpdate` (§5.13.3).
    fn C_SignUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pPart, ulPartLen) }?;
        m.update(hSession, OpKind::Sign, data)
    }
);

cryptoki_fn!(
    /// `C_SignFinal` (§5.13.4).
    fn C_SignFinal(
        hSession: CK_SESSION_HANDLE,
        pSignature: CK_BYTE_PTR,
        pulSignatureLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        unsafe { deliver(pSignature, pulSignatureLen, |o| m.sign(hSession, None, o)) }
    }
);

cryptoki_fn!(
    /// `C_Verify` (§5.14.2).
    fn C_Verify(
        hSession: CK_SESSION_HANDLE,
        pData: CK_BYTE_PTR,
        ulDataLen: CK_ULONG,
        pSignature: CK_BYTE_PTR,
        ulSignatureLen: CK_ULONG,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: per the spec.
        let sig = unsafe { slice(pSignature, ulSignatureLen) }?;
        m.verify(hSession, Some(data), sig)
    }
);

cryptoki_fn!(
    /// `C_VerifyUpdate` (§5.14.3).
    fn C_VerifyUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pPart, ulPartLen) }?;
        m.update(hSession, OpKind::Verify, data)
    }
);

cryptoki_fn!(
    /// `C_VerifyFinal` (§5.14.4).
    fn C_VerifyFinal(
        hSession: CK_SESSION_HANDLE,
        pSignature: CK_BYTE_PTR,
        ulSignatureLen: CK_ULONG,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let sig = unsafe { slice(pSignature, ulSignatureLen) }?;
        m.verify(hSession, None, sig)
    }
);

cryptoki_fn!(
    /// `C_Encrypt` (§5.8.2).
    fn C_Encrypt(
        hSession: CK_SESSION_HANDLE,
        pData: CK_BYTE_PTR,
        ulDataLen: CK_ULONG,
        pEncryptedData: CK_BYTE_PTR,
        pulEncryptedDataLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: per the spec.
        unsafe {
            deliver(pEncryptedData, pulEncryptedDataLen, |o| {
                m.encrypt(hSession, Some(data), o)
            })
        }
    }
);

cryptoki_fn!(
    /// `C_Decrypt` (§5.9.2).
    fn C_Decrypt(
        hSession: CK_SESSION_HANDLE,
        pEncryptedData: CK_BYTE_PTR,
        ulEncryptedDataLen: CK_ULONG,
        pData: CK_BYTE_PTR,
        pulDataLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pEncryptedData, ulEncryptedDataLen) }?;
        // SAFETY: per the spec.
        unsafe { deliver(pData, pulDataLen, |o| m.decrypt(hSession, Some(data), o)) }
    }
);

cryptoki_fn!(
    /// `C_Digest` (§5.12.2).
    fn C_Digest(
        hSession: CK_SESSION_HANDLE,
        pData: CK_BYTE_PTR,
        ulDataLen: CK_ULONG,
        pDigest: CK_BYTE_PTR,
        pulDigestLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: per the spec.
        unsafe { deliver(pDigest, pulDigestLen, |o| m.digest(hSession, Some(data), o)) }
    }
);

cryptoki_fn!(
    /// `C_DigestUpdate` (§5.12.3).
    fn C_DigestUpdate(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
        let m = module()?;
        // SAFETY: per the spec.
        let data = unsafe { slice(pPart, ulPartLen) }?;
        m.update(hSession, OpKind::Digest, data)
    }
);

cryptoki_fn!(
    /// `C_DigestFinal` (§5.12.5).
    fn C_DigestFinal(
        hSession: CK_SESSION_HANDLE,
        pDigest: CK_BYTE_PTR,
        pulDigestLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        unsafe { deliver(pDigest, pulDigestLen, |o| m.digest(hSession, None, o)) }
    }
);

cryptoki_fn!(
    /// `C_DeriveKey` (§5.16.5): `CKM_ECDH1_DERIVE` on the card.
    fn C_DeriveKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: CK_MECHANISM_PTR,
        hBaseKey: CK_OBJECT_HANDLE,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulAttributeCount: CK_ULONG,
        phKey: CK_OBJECT_HANDLE_PTR,
    ) {
        let m = module()?;
        m.session(hSession)?;
        // SAFETY: per the spec.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: per the spec.
        let t = unsafe { template(pTemplate, ulAttributeCount) }?;
        // SAFETY: per the spec.
        let key = unsafe { out(phKey) }?;
        *key = m.derive(hSession, mech, hBaseKey, &t)?;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_UnwrapKey` (§5.16.4): RSA PKCS#1 v1.5 or OAEP on the card.
    fn C_UnwrapKey(
        hSession: CK_SESSION_HANDLE,
        pMechanism: CK_MECHANISM_PTR,
        hUnwrappingKey: CK_OBJECT_HANDLE,
        pWrappedKey: CK_BYTE_PTR,
        ulWrappedKeyLen: CK_ULONG,
        pTemplate: CK_ATTRIBUTE_PTR,
        ulAttributeCount: CK_ULONG,
        phKey: CK_OBJECT_HANDLE_PTR,
    ) {
        let m = module()?;
        m.session(hSession)?;
        // SAFETY: per the spec.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: per the spec.
        let wrapped = unsafe { slice(pWrappedKey, ulWrappedKeyLen) }?;
        // SAFETY: per the spec.
        let t = unsafe { template(pTemplate, ulAttributeCount) }?;
        // SAFETY: per the spec.
        let key = unsafe { out(phKey) }?;
        *key = m.unwrap_key(hSession, mech, hUnwrappingKey, wrapped, &t)?;
        Ok(())
    }
);

cryptoki_fn!(
    /// `C_GenerateRandom` (§5.17.2): from the operating system.
    fn C_GenerateRandom(
        hSession: CK_SESSION_HANDLE,
        RandomData: CK_BYTE_PTR,
        ulRandomLen: CK_ULONG,
    ) {
        let m = module()?;
        m.session(hSession)?;
        let len = usize::try_from(ulRandomLen).map_err(|_| Error::ArgumentsBad("length"))?;
        if RandomData.is_null() {
            return if len == 0 {
                Ok(())
            } else {
                Err(Error::ArgumentsBad("NULL buffer"))
            };
        }
        // SAFETY: RandomData is valid for ulRandomLen writes (spec).
        let buf = unsafe { std::slice::from_raw_parts_mut(RandomData, len) };
        crate::crypto::random(buf).map_err(Error::from)
    }
);

cryptoki_fn!(
    /// `C_SeedRandom` (§5.17.1): the OS generator needs no seed.
    fn C_SeedRandom(hSession: CK_SESSION_HANDLE, pSeed: CK_BYTE_PTR, ulSeedLen: CK_ULONG) {
        let m = module()?;
        m.session(hSession)?;
        // SAFETY: per the spec.
        unsafe { slice(pSeed, ulSeedLen) }?;
        Err(Error::RandomSeedNotSupported)
    }
);

macro_rules! accumulate_fn {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        cryptoki_fn!(
            $(#[$meta])*
            fn $name(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG, pOut: CK_BYTE_PTR, pulOutLen: CK_ULONG_PTR) {
                let m = module()?;
                // SAFETY: per the spec.
                let data = unsafe { slice(pPart, ulPartLen) }?;
                // SAFETY: per the spec.
                let len = unsafe { out(pulOutLen) }?;
                let _ = pOut;
                m.update(hSession, $kind, data)?;
                // RSA works on one block: the output comes at the final call.
                *len = 0;
                Ok(())
            }
        );
    };
}

accumulate_fn!(
    /// `C_EncryptUpdate` (§5.8.3): input is collected for `C_EncryptFinal`.
    C_EncryptUpdate, OpKind::Encrypt
);
accumulate_fn!(
    /// `C_DecryptUpdate` (§5.9.3): input is collected for `C_DecryptFinal`.
    C_DecryptUpdate, OpKind::Decrypt
);

cryptoki_fn!(
    /// `C_EncryptFinal` (§5.8.4).
    fn C_EncryptFinal(
        hSession: CK_SESSION_HANDLE,
        pLastEncryptedPart: CK_BYTE_PTR,
        pulLastEncryptedPartLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        unsafe {
            deliver(pLastEncryptedPart, pulLastEncryptedPartLen, |o| {
                m.encrypt(hSession, None, o)
            })
        }
    }
);

cryptoki_fn!(
    /// `C_DecryptFinal` (§5.9.4).
    fn C_DecryptFinal(
        hSession: CK_SESSION_HANDLE,
        pLastPart: CK_BYTE_PTR,
        pulLastPartLen: CK_ULONG_PTR,
    ) {
        let m = module()?;
        // SAFETY: per the spec.
        unsafe { deliver(pLastPart, pulLastPartLen, |o| m.decrypt(hSession, None, o)) }
    }
);
