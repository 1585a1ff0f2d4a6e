//! Cryptographic functions (PKCS#11 3.0 §5.8–5.15) and mechanism parameters.

use cryptoki_sys::*;

use super::{cryptoki_fn, deliver, module, out, slice, template};
use crate::core::mechanism::PSS_MECHANISMS;
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
            t if PSS_MECHANISMS.contains(&t) => {
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

/// Single-part functions with an output buffer (two-call convention).
macro_rules! single_fn {
    ($(#[$meta:meta])* $name:ident, $method:ident, $kind:expr) => {
        cryptoki_fn!(
            $(#[$meta])*
            fn $name(hSession: CK_SESSION_HANDLE, pIn: CK_BYTE_PTR, ulInLen: CK_ULONG, pOut: CK_BYTE_PTR, pulOutLen: CK_ULONG_PTR) {
                let m = module()?;
                m.session(hSession)?;
                ending_op(&m, hSession, $kind, || {
                    // SAFETY: per the spec.
                    let data = unsafe { slice(pIn, ulInLen) }?;
                    // SAFETY: per the spec.
                    unsafe { deliver(pOut, pulOutLen, |o| m.$method(hSession, Some(data), o)) }
                })
            }
        );
    };
}

/// Run the argument-reading part of an operation call: a bad argument ends
/// the operation, as every error other than a length query or
/// `CKR_BUFFER_TOO_SMALL` does (PKCS#11 3.0 §5.8–5.14).
fn ending_op(
    m: &crate::core::Module,
    h: CK_SESSION_HANDLE,
    kind: OpKind,
    f: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let r = f();
    if matches!(r, Err(Error::ArgumentsBad(_))) {
        m.end_op(h, kind);
    }
    r
}

/// `*Update` functions that only absorb input.
macro_rules! update_fn {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        cryptoki_fn!(
            $(#[$meta])*
            fn $name(hSession: CK_SESSION_HANDLE, pPart: CK_BYTE_PTR, ulPartLen: CK_ULONG) {
                let m = module()?;
                m.session(hSession)?;
                ending_op(&m, hSession, $kind, || {
                    // SAFETY: per the spec.
                    let data = unsafe { slice(pPart, ulPartLen) }?;
                    m.update(hSession, $kind, data)
                })
            }
        );
    };
}

/// `*Final` functions with an output buffer.
macro_rules! final_fn {
    ($(#[$meta:meta])* $name:ident, $method:ident, $kind:expr) => {
        cryptoki_fn!(
            $(#[$meta])*
            fn $name(hSession: CK_SESSION_HANDLE, pOut: CK_BYTE_PTR, pulOutLen: CK_ULONG_PTR) {
                let m = module()?;
                m.session(hSession)?;
                ending_op(&m, hSession, $kind, || {
                    // SAFETY: per the spec.
                    unsafe { deliver(pOut, pulOutLen, |o| m.$method(hSession, None, o)) }
                })
            }
        );
    };
}

single_fn!(
    /// `C_Sign` (§5.13.2).
    C_Sign, sign, OpKind::Sign
);
single_fn!(
    /// `C_Encrypt` (§5.8.2).
    C_Encrypt, encrypt, OpKind::Encrypt
);
single_fn!(
    /// `C_Decrypt` (§5.9.2).
    C_Decrypt, decrypt, OpKind::Decrypt
);
single_fn!(
    /// `C_Digest` (§5.12.2).
    C_Digest, digest, OpKind::Digest
);
update_fn!(
    /// `C_SignUpdate` (§5.13.3).
    C_SignUpdate, OpKind::Sign
);
update_fn!(
    /// `C_VerifyUpdate` (§5.14.3).
    C_VerifyUpdate, OpKind::Verify
);
update_fn!(
    /// `C_DigestUpdate` (§5.12.3).
    C_DigestUpdate, OpKind::Digest
);
final_fn!(
    /// `C_SignFinal` (§5.13.4).
    C_SignFinal, sign, OpKind::Sign
);
final_fn!(
    /// `C_DigestFinal` (§5.12.5).
    C_DigestFinal, digest, OpKind::Digest
);
final_fn!(
    /// `C_EncryptFinal` (§5.8.4).
    C_EncryptFinal, encrypt, OpKind::Encrypt
);
final_fn!(
    /// `C_DecryptFinal` (§5.9.4).
    C_DecryptFinal, decrypt, OpKind::Decrypt
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
        m.session(hSession)?;
        ending_op(&m, hSession, OpKind::Verify, || {
            // SAFETY: per the spec.
            let data = unsafe { slice(pData, ulDataLen) }?;
            // SAFETY: per the spec.
            let sig = unsafe { slice(pSignature, ulSignatureLen) }?;
            m.verify(hSession, Some(data), sig)
        })
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
        m.session(hSession)?;
        ending_op(&m, hSession, OpKind::Verify, || {
            // SAFETY: per the spec.
            let sig = unsafe { slice(pSignature, ulSignatureLen) }?;
            m.verify(hSession, None, sig)
        })
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
        let len = usize::try_from(ulRandomLen)
            .ok()
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(Error::ArgumentsBad("length"))?;
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
                m.session(hSession)?;
                ending_op(&m, hSession, $kind, || {
                    // SAFETY: per the spec.
                    let data = unsafe { slice(pPart, ulPartLen) }?;
                    // SAFETY: per the spec.
                    let len = unsafe { out(pulOutLen) }?;
                    let _ = pOut;
                    m.update(hSession, $kind, data)?;
                    // RSA works on one block: the output comes at the final call.
                    *len = 0;
                    Ok(())
                })
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
