//! Mechanisms: the table of what the tokens offer, and parsing of a caller's
//! `CK_MECHANISM` (already turned into typed parameters by the FFI layer) into
//! a [`Mech`] the operations understand.

use cryptoki_sys::*;

use super::{Error, Result};
use crate::crypto::HashAlg;

/// Mechanism parameters as read from the caller (pointers already resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MechParam {
    /// No parameter (`pParameter` NULL, length 0).
    None,
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `sLen`.
        salt_len: CK_ULONG,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep {
        /// `hashAlg`.
        hash: CK_MECHANISM_TYPE,
        /// `mgf`.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// `source`.
        source: CK_RSA_PKCS_OAEP_SOURCE_TYPE,
        /// `pSourceData` (the label).
        label: Vec<u8>,
    },
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh {
        /// `kdf`.
        kdf: CK_EC_KDF_TYPE,
        /// `pSharedData`.
        shared: Vec<u8>,
        /// `pPublicData` (the peer's point).
        public: Vec<u8>,
    },
    /// Some other parameter the module does not interpret (its length).
    Other(usize),
}

/// The X9.63 key-derivation functions for ECDH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// `CKD_NULL`: the shared secret itself.
    Null,
    /// `CKD_SHA*_KDF`: ANSI X9.63 KDF with this hash.
    X963(HashAlg),
}

/// A parsed mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mech {
    /// `CKM_RSA_PKCS`.
    RsaPkcs,
    /// `CKM_RSA_X_509`.
    RsaX509,
    /// `CKM_RSA_PKCS_PSS` (input is a hash) or `CKM_SHA*_RSA_PKCS_PSS` (`prehash` set).
    RsaPss {
        /// Hash of the message when the mechanism hashes it itself.
        prehash: Option<HashAlg>,
        /// PSS hash.
        hash: HashAlg,
        /// MGF1 hash.
        mgf: HashAlg,
        /// Salt length.
        salt_len: usize,
    },
    /// `CKM_SHA*_RSA_PKCS`.
    HashRsaPkcs(HashAlg),
    /// `CKM_RSA_PKCS_OAEP`.
    RsaOaep {
        /// OAEP hash.
        hash: HashAlg,
        /// MGF1 hash.
        mgf: HashAlg,
        /// Label.
        label: Vec<u8>,
    },
    /// `CKM_ECDSA` (input is a hash) or `CKM_ECDSA_SHA*` (`Some`).
    Ecdsa(Option<HashAlg>),
    /// `CKM_ECDH1_DERIVE`.
    Ecdh {
        /// Key-derivation function.
        kdf: Kdf,
        /// Shared info for the KDF.
        shared: Vec<u8>,
        /// The peer's public point (uncompressed).
        public: Vec<u8>,
    },
    /// `CKM_SHA*` digests.
    Digest(HashAlg),
}

/// What a mechanism may be used for (bits of `CK_MECHANISM_INFO.flags`).
#[derive(Debug, Clone, Copy)]
pub struct MechInfo {
    /// Minimum key size (bits).
    pub min: CK_ULONG,
    /// Maximum key size (bits).
    pub max: CK_ULONG,
    /// Flags.
    pub flags: CK_FLAGS,
}

const RSA: (CK_ULONG, CK_ULONG) = (1024, 2048);
const EC: (CK_ULONG, CK_ULONG) = (256, 384);
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
const SV: CK_FLAGS = CKF_HW | CKF_SIGN | CKF_VERIFY;

/// Every mechanism of the card-backed tokens, sorted by mechanism number.
pub const MECHANISMS: &[(CK_MECHANISM_TYPE, CK_ULONG, CK_ULONG, CK_FLAGS)] = &[
    (
        CKM_RSA_PKCS,
        RSA.0,
        RSA.1,
        SV | CKF_ENCRYPT | CKF_DECRYPT | CKF_UNWRAP,
    ),
    (CKM_RSA_X_509, RSA.0, RSA.1, SV | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_SHA1_RSA_PKCS, RSA.0, RSA.1, SV),
    (
        CKM_RSA_PKCS_OAEP,
        RSA.0,
        RSA.1,
        CKF_HW | CKF_ENCRYPT | CKF_DECRYPT | CKF_UNWRAP,
    ),
    (CKM_RSA_PKCS_PSS, RSA.0, RSA.1, SV),
    (CKM_SHA1_RSA_PKCS_PSS, RSA.0, RSA.1, SV),
    (CKM_SHA256_RSA_PKCS, RSA.0, RSA.1, SV),
    (CKM_SHA384_RSA_PKCS, RSA.0, RSA.1, SV),
    (CKM_SHA512_RSA_PKCS, RSA.0, RSA.1, SV),
    (CKM_SHA256_RSA_PKCS_PSS, RSA.0, RSA.1, SV),
    (CKM_SHA384_RSA_PKCS_PSS, RSA.0, RSA.1, SV),
    (CKM_SHA512_RSA_PKCS_PSS, RSA.0, RSA.1, SV),
    (CKM_SHA224_RSA_PKCS, RSA.0, RSA.1, SV),
    (CKM_SHA224_RSA_PKCS_PSS, RSA.0, RSA.1, SV),
    (CKM_SHA_1, 0, 0, CKF_DIGEST),
    (CKM_SHA256, 0, 0, CKF_DIGEST),
    (CKM_SHA224, 0, 0, CKF_DIGEST),
    (CKM_SHA384, 0, 0, CKF_DIGEST),
    (CKM_SHA512, 0, 0, CKF_DIGEST),
    (CKM_ECDSA, EC.0, EC.1, SV | EC_FLAGS),
    (CKM_ECDSA_SHA1, EC.0, EC.1, SV | EC_FLAGS),
    (CKM_ECDSA_SHA224, EC.0, EC.1, SV | EC_FLAGS),
    (CKM_ECDSA_SHA256, EC.0, EC.1, SV | EC_FLAGS),
    (CKM_ECDSA_SHA384, EC.0, EC.1, SV | EC_FLAGS),
    (CKM_ECDSA_SHA512, EC.0, EC.1, SV | EC_FLAGS),
    (CKM_ECDH1_DERIVE, EC.0, EC.1, CKF_HW | CKF_DERIVE | EC_FLAGS),
];

/// The RSA-PSS mechanisms (they take `CK_RSA_PKCS_PSS_PARAMS`).
pub const PSS_MECHANISMS: [CK_MECHANISM_TYPE; 6] = [
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];

/// Information for one mechanism.
pub fn info(m: CK_MECHANISM_TYPE) -> Result<MechInfo> {
    MECHANISMS
        .binary_search_by_key(&m, |e| e.0)
        .map(|i| MechInfo {
            min: MECHANISMS[i].1,
            max: MECHANISMS[i].2,
            flags: MECHANISMS[i].3,
        })
        .map_err(|_| Error::MechanismInvalid(m))
}

fn hash_of(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    Some(match m {
        CKM_SHA1_RSA_PKCS | CKM_SHA1_RSA_PKCS_PSS | CKM_ECDSA_SHA1 | CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224_RSA_PKCS | CKM_SHA224_RSA_PKCS_PSS | CKM_ECDSA_SHA224 | CKM_SHA224 => {
            HashAlg::Sha224
        }
        CKM_SHA256_RSA_PKCS | CKM_SHA256_RSA_PKCS_PSS | CKM_ECDSA_SHA256 | CKM_SHA256 => {
            HashAlg::Sha256
        }
        CKM_SHA384_RSA_PKCS | CKM_SHA384_RSA_PKCS_PSS | CKM_ECDSA_SHA384 | CKM_SHA384 => {
            HashAlg::Sha384
        }
        CKM_SHA512_RSA_PKCS | CKM_SHA512_RSA_PKCS_PSS | CKM_ECDSA_SHA512 | CKM_SHA512 => {
            HashAlg::Sha512
        }
        _ => return None,
    })
}

fn no_param(p: &MechParam) -> Result<()> {
    match p {
        MechParam::None => Ok(()),
        _ => Err(Error::MechanismParamInvalid(
            "this mechanism takes no parameter",
        )),
    }
}

impl Mech {
    /// Parse a mechanism and its parameter.
    pub fn parse(m: CK_MECHANISM_TYPE, p: MechParam) -> Result<Mech> {
        info(m)?;
        let h = hash_of(m);
        Ok(match m {
            CKM_RSA_PKCS => no_param(&p).map(|_| Mech::RsaPkcs)?,
            CKM_RSA_X_509 => no_param(&p).map(|_| Mech::RsaX509)?,
            CKM_SHA1_RSA_PKCS | CKM_SHA224_RSA_PKCS | CKM_SHA256_RSA_PKCS | CKM_SHA384_RSA_PKCS
            | CKM_SHA512_RSA_PKCS => {
                no_param(&p)?;
                Mech::HashRsaPkcs(h.ok_or(Error::MechanismInvalid(m))?)
            }
            t if PSS_MECHANISMS.contains(&t) => {
                let MechParam::Pss {
                    hash,
                    mgf,
                    salt_len,
                } = p
                else {
                    return Err(Error::MechanismParamInvalid(
                        "PSS needs CK_RSA_PKCS_PSS_PARAMS",
                    ));
                };
                let hash =
                    HashAlg::from_ckm(hash).ok_or(Error::MechanismParamInvalid("PSS hashAlg"))?;
                let mgf = HashAlg::from_mgf(mgf).ok_or(Error::MechanismParamInvalid("PSS mgf"))?;
                if h.is_some_and(|mh| mh != hash) {
                    return Err(Error::MechanismParamInvalid(
                        "PSS hashAlg differs from the mechanism's hash",
                    ));
                }
                Mech::RsaPss {
                    prehash: h,
                    hash,
                    mgf,
                    salt_len: usize::try_from(salt_len)
                        .map_err(|_| Error::MechanismParamInvalid("PSS sLen"))?,
                }
            }
            CKM_RSA_PKCS_OAEP => {
                let MechParam::Oaep {
                    hash,
                    mgf,
                    source,
                    label,
                } = p
                else {
                    return Err(Error::MechanismParamInvalid(
                        "OAEP needs CK_RSA_PKCS_OAEP_PARAMS",
                    ));
                };
                if source != CKZ_DATA_SPECIFIED && !(source == 0 && label.is_empty()) {
                    return Err(Error::MechanismParamInvalid("OAEP source"));
                }
                Mech::RsaOaep {
                    hash: HashAlg::from_ckm(hash)
                        .ok_or(Error::MechanismParamInvalid("OAEP hashAlg"))?,
                    mgf: HashAlg::from_mgf(mgf).ok_or(Error::MechanismParamInvalid("OAEP mgf"))?,
                    label,
                }
            }
            CKM_ECDSA => no_param(&p).map(|_| Mech::Ecdsa(None))?,
            CKM_ECDSA_SHA1 | CKM_ECDSA_SHA224 | CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384
            | CKM_ECDSA_SHA512 => {
                no_param(&p)?;
                Mech::Ecdsa(h)
            }
            CKM_ECDH1_DERIVE => {
                let MechParam::Ecdh {
                    kdf,
                    shared,
                    public,
                } = p
                else {
                    return Err(Error::MechanismParamInvalid(
                        "ECDH needs CK_ECDH1_DERIVE_PARAMS",
                    ));
                };
                let kdf = match kdf {
                    CKD_NULL => Kdf::Null,
                    CKD_SHA1_KDF => Kdf::X963(HashAlg::Sha1),
                    CKD_SHA224_KDF => Kdf::X963(HashAlg::Sha224),
                    CKD_SHA256_KDF => Kdf::X963(HashAlg::Sha256),
                    CKD_SHA384_KDF => Kdf::X963(HashAlg::Sha384),
                    CKD_SHA512_KDF => Kdf::X963(HashAlg::Sha512),
                    _ => return Err(Error::MechanismParamInvalid("ECDH kdf")),
                };
                if kdf == Kdf::Null && !shared.is_empty() {
                    return Err(Error::MechanismParamInvalid(
                        "CKD_NULL takes no shared data",
                    ));
                }
                Mech::Ecdh {
                    kdf,
                    shared,
                    public,
                }
            }
            CKM_SHA_1 | CKM_SHA224 | CKM_SHA256 | CKM_SHA384 | CKM_SHA512 => {
                no_param(&p)?;
                Mech::Digest(h.ok_or(Error::MechanismInvalid(m))?)
            }
            _ => return Err(Error::MechanismInvalid(m)),
        })
    }

    /// The hash the mechanism applies to the message itself, if any.
    pub fn message_hash(&self) -> Option<HashAlg> {
        match self {
            Mech::HashRsaPkcs(h) | Mech::Digest(h) => Some(*h),
            Mech::RsaPss { prehash, .. } => *prehash,
            Mech::Ecdsa(h) => *h,
            _ => None,
        }
    }

    /// Is this an RSA mechanism (else EC)?
    pub fn is_rsa(&self) -> bool {
        matches!(
            self,
            Mech::RsaPkcs
                | Mech::RsaX509
                | Mech::RsaPss { .. }
                | Mech::HashRsaPkcs(_)
                | Mech::RsaOaep { .. }
        )
    }
}

/// ANSI X9.63 KDF: `Hash(Z || counter || SharedInfo)` blocks, counter from 1.
pub fn x963_kdf(hash: HashAlg, z: &[u8], shared: &[u8], len: usize) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len + hash.output_len()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut h = crate::crypto::Hasher::new(hash);
        h.update(z);
        h.update(&counter.to_be_bytes());
        h.update(shared);
        out.extend_from_slice(&h.finish());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_table_is_sorted() {
        assert!(MECHANISMS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn pss_hash_must_match_mechanism() {
        let p = MechParam::Pss {
            hash: CKM_SHA_1,
            mgf: CKG_MGF1_SHA1,
            salt_len: 20,
        };
        assert!(matches!(
            Mech::parse(CKM_SHA256_RSA_PKCS_PSS, p.clone()),
            Err(Error::MechanismParamInvalid(_))
        ));
        assert!(Mech::parse(CKM_RSA_PKCS_PSS, p).is_ok());
    }

    #[test]
    fn params_are_required_and_checked() {
        assert!(Mech::parse(CKM_RSA_PKCS_OAEP, MechParam::None).is_err());
        assert!(Mech::parse(CKM_RSA_PKCS, MechParam::Other(4)).is_err());
        assert_eq!(
            Mech::parse(CKM_AES_ECB, MechParam::None),
            Err(Error::MechanismInvalid(CKM_AES_ECB))
        );
    }

    #[test]
    fn x963_kdf_known_answer() {
        // ANSI X9.63 test vector (SHA-1, 128-bit output), as used by NIST CAVS.
        let z = [
            0x1c, 0x7d, 0x7b, 0x5f, 0x05, 0x97, 0xb0, 0x3d, 0x06, 0xa0, 0x18, 0x46, 0x6e, 0xd1,
            0xa9, 0x3e, 0x30, 0xed, 0x4b, 0x04, 0xdc, 0x64, 0xcc, 0xdd,
        ];
        let out = x963_kdf(HashAlg::Sha1, &z, &[], 16);
        assert_eq!(
            &out[..],
            &[
                0xbf, 0x71, 0xdf, 0xfd, 0x8f, 0x4d, 0x99, 0x22, 0x39, 0x36, 0xbe, 0xb4, 0x6f, 0xee,
                0x8c, 0xcc
            ]
        );
    }
}
