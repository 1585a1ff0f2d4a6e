//! The certificate, public-key and private-key objects of one key, shared by
//! every token kind so that card keys and derived keys look alike to
//! applications (same attributes, same CKA_ID roles).

use cryptoki_sys::*;

use super::object::{KeyInfo, Object, ObjectBuilder};
use crate::crypto::pubkey::CertInfo;
use crate::crypto::PublicKey;

/// What distinguishes one key's objects.
pub struct KeySpec<'a> {
    /// CKA_ID (one byte, PIV convention: 01 = authentication, …).
    pub id: u8,
    /// Token-specific key reference.
    pub key_ref: u8,
    /// Label of the certificate.
    pub cert_label: String,
    /// Label of the private key.
    pub key_label: String,
    /// Label of the public key.
    pub public_label: String,
    /// CKA_SIGN (and CKA_VERIFY on the public key).
    pub sign: bool,
    /// CKA_DECRYPT and CKA_UNWRAP (CKA_ENCRYPT on the public key).
    pub decrypt: bool,
    /// CKA_DERIVE.
    pub derive: bool,
    /// CKA_PRIVATE of the private key.
    pub private: bool,
    /// CKA_ALWAYS_AUTHENTICATE.
    pub always_authenticate: bool,
    /// The certificate, DER.
    pub cert_der: &'a [u8],
    /// Its parsed fields.
    pub info: &'a CertInfo,
}

/// Certificate, public key and private key for a key.
pub fn key_objects(k: &KeySpec<'_>) -> Vec<Object> {
    let id = [k.id];
    let info = k.info;
    let cert = Object::builder(CKO_CERTIFICATE)
        .flag(CKA_TOKEN, true)
        .flag(CKA_PRIVATE, false)
        .flag(CKA_MODIFIABLE, false)
        .flag(CKA_TRUSTED, false)
        .bytes(CKA_LABEL, k.cert_label.as_bytes())
        .bytes(CKA_ID, &id)
        .ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .ulong(CKA_CERTIFICATE_CATEGORY, 1)
        .bytes(CKA_SUBJECT, &info.subject)
        .bytes(CKA_ISSUER, &info.issuer)
        .bytes(CKA_SERIAL_NUMBER, &info.serial)
        .bytes(CKA_VALUE, k.cert_der)
        .bytes(CKA_START_DATE, &[])
        .bytes(CKA_END_DATE, &[])
        .build();
    let key_attrs = |b: ObjectBuilder| {
        let b = match &info.public_key {
            PublicKey::Rsa { n, e } => b
                .ulong(CKA_KEY_TYPE, CKK_RSA)
                .bytes(CKA_MODULUS, n)
                .bytes(CKA_PUBLIC_EXPONENT, e)
                .ulong(CKA_MODULUS_BITS, info.public_key.bits() as CK_ULONG),
            PublicKey::Ec { curve, point } => {
                let mut octets = vec![0x04];
                crate::piv::tlv::push_len(&mut octets, point.len());
                octets.extend_from_slice(point);
                b.ulong(CKA_KEY_TYPE, CKK_EC)
                    .bytes(CKA_EC_PARAMS, &curve.ec_params())
                    .bytes(CKA_EC_POINT, &octets)
            }
        };
        b.flag(CKA_TOKEN, true)
            .flag(CKA_MODIFIABLE, false)
            .flag(CKA_LOCAL, false)
            .flag(CKA_DERIVE, k.derive)
            .bytes(CKA_ID, &id)
            .bytes(CKA_SUBJECT, &info.subject)
            .bytes(CKA_START_DATE, &[])
            .bytes(CKA_END_DATE, &[])
            .ulong(CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION)
    };
    let public = key_attrs(Object::builder(CKO_PUBLIC_KEY))
        .flag(CKA_PRIVATE, false)
        .bytes(CKA_LABEL, k.public_label.as_bytes())
        .flag(CKA_VERIFY, k.sign)
        .flag(CKA_VERIFY_RECOVER, false)
        .flag(CKA_ENCRYPT, k.decrypt)
        .flag(CKA_WRAP, false)
        .flag(CKA_TRUSTED, false)
        .key(KeyInfo {
            key_ref: k.key_ref,
            public: info.public_key.clone(),
            always_authenticate: false,
        })
        .build();
    let private = key_attrs(Object::builder(CKO_PRIVATE_KEY))
        .flag(CKA_PRIVATE, k.private)
        .bytes(CKA_LABEL, k.key_label.as_bytes())
        .flag(CKA_SENSITIVE, true)
        .flag(CKA_ALWAYS_SENSITIVE, true)
        .flag(CKA_EXTRACTABLE, false)
        .flag(CKA_NEVER_EXTRACTABLE, true)
        .flag(CKA_SIGN, k.sign)
        .flag(CKA_SIGN_RECOVER, false)
        .flag(CKA_DECRYPT, k.decrypt)
        .flag(CKA_UNWRAP, k.decrypt)
        .flag(CKA_WRAP_WITH_TRUSTED, false)
        .flag(CKA_ALWAYS_AUTHENTICATE, k.always_authenticate)
        .key(KeyInfo {
            key_ref: k.key_ref,
            public: info.public_key.clone(),
            always_authenticate: k.always_authenticate,
        })
        .build();
    vec![cert, public, private]
}

/// The profile object that tells NSS the certificates are public.
pub fn public_certificates_profile() -> Object {
    Object::builder(CKO_PROFILE)
        .flag(CKA_TOKEN, true)
        .flag(CKA_PRIVATE, false)
        .ulong(CKA_PROFILE_ID, CKP_PUBLIC_CERTIFICATES_TOKEN)
        .build()
}
