//! The card's asymmetric keys and the private-key operations GENERAL AUTHENTICATE performs.
//!
//! The simulator is **test tooling**: it does raw RSA with the `rsa` crate's hazmat API (with
//! blinding, but no claim of side-channel resistance) and keeps keys in a clear-text state file.
//! Algorithm identifiers are those of SP 800-78-4 Table 6-2.

use std::fmt;

use getrandom::SysRng;
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey as RsaPrivateKey};
use zeroize::Zeroizing;

use crate::tlv;

/// `06` — RSA 1024.
pub const ALG_RSA1024: u8 = 0x06;
/// `07` — RSA 2048.
pub const ALG_RSA2048: u8 = 0x07;
/// `11` — ECC P-256.
pub const ALG_ECC_P256: u8 = 0x11;
/// `14` — ECC P-384.
pub const ALG_ECC_P384: u8 = 0x14;

/// Why a key operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The algorithm identifier is not one this card supports.
    UnsupportedAlgorithm(u8),
    /// The key is of a kind or size the card does not hold (description).
    UnsupportedKey(String),
    /// The input block is malformed (wrong length, not below the modulus, bad point).
    BadInput(&'static str),
    /// The key bytes could not be decoded or encoded (description).
    Encoding(String),
    /// The operation itself failed (description).
    Crypto(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::UnsupportedAlgorithm(a) => write!(f, "unsupported algorithm {a:02X}"),
            KeyError::UnsupportedKey(s) => write!(f, "unsupported key: {s}"),
            KeyError::BadInput(s) => write!(f, "bad input: {s}"),
            KeyError::Encoding(s) => write!(f, "key encoding: {s}"),
            KeyError::Crypto(s) => write!(f, "key operation failed: {s}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A private key held by the card.
#[derive(Clone)]
pub enum PrivateKey {
    /// RSA 1024 or 2048, e = 65537 when generated.
    Rsa(Box<RsaPrivateKey>),
    /// ECC P-256.
    P256(p256::SecretKey),
    /// ECC P-384.
    P384(p384::SecretKey),
}

/// Never prints key material.
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(alg {:02X})", self.algorithm())
    }
}

impl PrivateKey {
    /// Generates a key for an SP 800-78-4 algorithm identifier.
    pub fn generate(alg: u8) -> Result<PrivateKey, KeyError> {
        let rng_err = |e: getrandom::Error| KeyError::Crypto(e.to_string());
        match alg {
            ALG_RSA1024 | ALG_RSA2048 => {
                let bits = if alg == ALG_RSA1024 { 1024 } else { 2048 };
                let key = RsaPrivateKey::new(&mut SysRng, bits)
                    .map_err(|e| KeyError::Crypto(e.to_string()))?;
                Ok(PrivateKey::Rsa(Box::new(key)))
            }
            ALG_ECC_P256 => Ok(PrivateKey::P256(
                p256::SecretKey::try_generate_from_rng(&mut SysRng).map_err(rng_err)?,
            )),
            ALG_ECC_P384 => Ok(PrivateKey::P384(
                p384::SecretKey::try_generate_from_rng(&mut SysRng).map_err(rng_err)?,
            )),
            other => Err(KeyError::UnsupportedAlgorithm(other)),
        }
    }

    /// Decodes a PKCS#8 `PrivateKeyInfo` (RSA 1024/2048, EC P-256/P-384).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        if let Ok(k) = RsaPrivateKey::from_pkcs8_der(der) {
            return PrivateKey::from_rsa(k);
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P256(k));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::P384(k));
        }
        Err(KeyError::Encoding(
            "not a PKCS#8 RSA, P-256 or P-384 private key".into(),
        ))
    }

    /// Decodes a PKCS#1 `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let k =
            RsaPrivateKey::from_pkcs1_der(der).map_err(|e| KeyError::Encoding(e.to_string()))?;
        PrivateKey::from_rsa(k)
    }

    /// Decodes a SEC1 `ECPrivateKey` on P-256 or P-384.
    pub fn from_sec1_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            return Ok(PrivateKey::P256(k));
        }
        p384::SecretKey::from_sec1_der(der)
            .map(PrivateKey::P384)
            .map_err(|_| KeyError::Encoding("not a SEC1 P-256 or P-384 private key".into()))
    }

    fn from_rsa(k: RsaPrivateKey) -> Result<PrivateKey, KeyError> {
        match k.size() {
            128 | 256 => Ok(PrivateKey::Rsa(Box::new(k))),
            n => Err(KeyError::UnsupportedKey(format!(
                "RSA-{} (only 1024 and 2048)",
                n * 8
            ))),
        }
    }

    /// Encodes the key as PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match self {
            PrivateKey::Rsa(k) => k.to_pkcs8_der(),
            PrivateKey::P256(k) => k.to_pkcs8_der(),
            PrivateKey::P384(k) => k.to_pkcs8_der(),
        }
        .map_err(|e| KeyError::Encoding(e.to_string()))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The SP 800-78-4 algorithm identifier of this key.
    pub fn algorithm(&self) -> u8 {
        match self {
            PrivateKey::Rsa(k) if k.size() == 128 => ALG_RSA1024,
            PrivateKey::Rsa(_) => ALG_RSA2048,
            PrivateKey::P256(_) => ALG_ECC_P256,
            PrivateKey::P384(_) => ALG_ECC_P384,
        }
    }

    /// The public key as GENERATE ASYMMETRIC KEY PAIR returns it (SP 800-73-4 Part 2 §3.3.2):
    /// `7F49 { 81 n, 82 e }` for RSA, `7F49 { 86 04||X||Y }` for ECC.
    pub fn public_template(&self) -> Vec<u8> {
        let mut inner = Vec::new();
        match self {
            PrivateKey::Rsa(k) => {
                tlv::push(&mut inner, 0x81, &k.n_bytes());
                tlv::push(&mut inner, 0x82, &k.e_bytes());
            }
            PrivateKey::P256(k) => tlv::push(&mut inner, 0x86, &k.public_key().to_sec1_bytes()),
            PrivateKey::P384(k) => tlv::push(&mut inner, 0x86, &k.public_key().to_sec1_bytes()),
        }
        tlv::encode(0x7F49, &inner)
    }

    /// Raw RSA private-key operation on a block as long as the modulus, smaller than it
    /// (RSADP/RSASP1, RFC 8017 §5.1.2). Padding is the host's business.
    pub fn rsa_raw(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let PrivateKey::Rsa(key) = self else {
            return Err(KeyError::BadInput("not an RSA key"));
        };
        let k = key.size();
        if input.len() != k {
            return Err(KeyError::BadInput(
                "block length differs from modulus length",
            ));
        }
        let c = BoxedUint::from_be_slice(input, key.n_bits_precision())
            .map_err(|_| KeyError::BadInput("block does not fit the modulus"))?;
        if c >= *key.n().as_ref() {
            return Err(KeyError::BadInput("block is not below the modulus"));
        }
        let m = rsa::hazmat::rsa_decrypt_and_check(key.as_ref(), Some(&mut SysRng), &c)
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        let bytes = Zeroizing::new(m.to_be_bytes().to_vec());
        let mut out = Zeroizing::new(vec![0u8; k]);
        // `to_be_bytes` is as wide as the storage precision: keep the low k bytes.
        let skip = bytes.len().saturating_sub(k);
        let src = &bytes[skip..];
        out[k - src.len()..].copy_from_slice(src);
        Ok(out)
    }

    /// ECDSA over an already-hashed input (SP 800-73-4 Part 2 §3.2.4, tag `81`), returned as a
    /// DER `ECDSA-Sig-Value`.
    pub fn ecdsa_sign(&self, hash: &[u8]) -> Result<Vec<u8>, KeyError> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        if hash.is_empty() {
            return Err(KeyError::BadInput("empty hash"));
        }
        let bad = |_| KeyError::BadInput("hash length not usable with this curve");
        match self {
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(k)
                    .sign_prehash(hash)
                    .map_err(bad)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::P384(k) => {
                let sig: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(k)
                    .sign_prehash(hash)
                    .map_err(bad)?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::Rsa(_) => Err(KeyError::BadInput("not an EC key")),
        }
    }

    /// ECDH with a peer's uncompressed point `04||X||Y` (tag `85`); returns the shared X
    /// coordinate (SP 800-73-4 Part 2 §3.2.4, key establishment).
    pub fn ecdh(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let bad = |_| KeyError::BadInput("peer point is not an uncompressed point on the curve");
        let field = match self {
            PrivateKey::P256(_) => 32,
            PrivateKey::P384(_) => 48,
            PrivateKey::Rsa(_) => return Err(KeyError::BadInput("not an EC key")),
        };
        if peer.len() != 1 + 2 * field || peer.first() != Some(&0x04) {
            return Err(KeyError::BadInput("peer point must be uncompressed"));
        }
        let shared = match self {
            PrivateKey::P256(k) => {
                let pk = p256::PublicKey::from_sec1_bytes(peer).map_err(bad)?;
                k.diffie_hellman(&pk).raw_secret_bytes().to_vec()
            }
            PrivateKey::P384(k) => {
                let pk = p384::PublicKey::from_sec1_bytes(peer).map_err(bad)?;
                k.diffie_hellman(&pk).raw_secret_bytes().to_vec()
            }
            PrivateKey::Rsa(_) => return Err(KeyError::BadInput("not an EC key")),
        };
        Ok(Zeroizing::new(shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    /// One RSA-1024 key per test thread, so the tests spend little time on prime search.
    fn rsa_key() -> PrivateKey {
        thread_local! {
            static KEY: PrivateKey = PrivateKey::generate(ALG_RSA1024).unwrap();
        }
        KEY.with(|k| k.clone())
    }

    /// Raw public-key operation, for checking the private one.
    fn rsa_public(key: &PrivateKey, block: &[u8]) -> Vec<u8> {
        let PrivateKey::Rsa(rsa) = key else {
            unreachable!()
        };
        let m = BoxedUint::from_be_slice(block, rsa.n_bits_precision()).unwrap();
        let c = rsa::hazmat::rsa_encrypt(rsa.as_ref(), &m)
            .unwrap()
            .to_be_bytes();
        c[c.len() - rsa.size()..].to_vec()
    }

    #[test]
    fn rsa_raw_inverts_public_operation() {
        let key = rsa_key();
        // A PKCS#1 v1.5 signature block: the public operation gives it back.
        let mut block = vec![0x00, 0x01];
        block.extend(std::iter::repeat_n(0xFF, 128 - 3 - 51));
        block.push(0);
        block.extend([0x30; 51]);
        let sig = key.rsa_raw(&block).unwrap();
        assert_eq!(sig.len(), 128);
        assert_eq!(rsa_public(&key, &sig), block);
        // Decryption of something encrypted with the public key.
        let mut msg = vec![0x00, 0x02];
        msg.extend([0x5A; 126]);
        let ct = rsa_public(&key, &msg);
        assert_eq!(&key.rsa_raw(&ct).unwrap()[..], &msg[..]);
        // Wrong length and out-of-range inputs are refused.
        assert!(matches!(key.rsa_raw(&[1; 127]), Err(KeyError::BadInput(_))));
        assert!(matches!(
            key.rsa_raw(&[0xFF; 128]),
            Err(KeyError::BadInput(_))
        ));
    }

    #[test]
    fn ecdsa_signatures_verify() {
        for alg in [ALG_ECC_P256, ALG_ECC_P384] {
            let key = PrivateKey::generate(alg).unwrap();
            let hash = vec![0x42; if alg == ALG_ECC_P256 { 32 } else { 48 }];
            let der = key.ecdsa_sign(&hash).unwrap();
            match &key {
                PrivateKey::P256(k) => {
                    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
                    p256::ecdsa::VerifyingKey::from(k.public_key())
                        .verify_prehash(&hash, &sig)
                        .unwrap();
                }
                PrivateKey::P384(k) => {
                    let sig = p384::ecdsa::Signature::from_der(&der).unwrap();
                    p384::ecdsa::VerifyingKey::from(k.public_key())
                        .verify_prehash(&hash, &sig)
                        .unwrap();
                }
                PrivateKey::Rsa(_) => unreachable!(),
            }
            assert!(key.ecdsa_sign(&[]).is_err());
        }
    }

    #[test]
    fn ecdh_agrees_with_peer() {
        let card = PrivateKey::generate(ALG_ECC_P256).unwrap();
        let peer = p256::SecretKey::try_generate_from_rng(&mut SysRng).unwrap();
        let PrivateKey::P256(card_sk) = &card else {
            unreachable!()
        };
        let ours = card.ecdh(&peer.public_key().to_sec1_bytes()).unwrap();
        let theirs = peer.diffie_hellman(&card_sk.public_key());
        assert_eq!(&ours[..], &theirs.raw_secret_bytes()[..]);
        assert!(card.ecdh(&[4; 65]).is_err());
        assert!(card.ecdh(&[4; 10]).is_err());
    }

    #[test]
    fn pkcs8_round_trip_and_public_template() {
        for key in [rsa_key(), PrivateKey::generate(ALG_ECC_P384).unwrap()] {
            let der = key.to_pkcs8_der().unwrap();
            let back = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(back.algorithm(), key.algorithm());
            assert_eq!(back.public_template(), key.public_template());
        }
        let t = PrivateKey::generate(ALG_ECC_P256)
            .unwrap()
            .public_template();
        assert_eq!(t[..5], [0x7F, 0x49, 0x43, 0x86, 0x41]);
        let t = rsa_key().public_template();
        assert_eq!(t[..6], [0x7F, 0x49, 0x81, 0x88, 0x81, 0x81]);
        assert!(PrivateKey::generate(0x05).is_err());
    }
}
