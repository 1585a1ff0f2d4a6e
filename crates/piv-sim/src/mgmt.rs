//! The PIV Card Application Administration Key (key reference `9B`): single-block ECB
//! encryption with 3DES or AES, as used by the GENERAL AUTHENTICATE challenge-response
//! (SP 800-73-4 Part 2 Appendix A.1; algorithm identifiers from SP 800-78-4 Table 6-2).

use std::fmt;

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroizing;

/// `03` — 3-key Triple DES (ECB).
pub const ALG_3DES: u8 = 0x03;
/// `08` — AES-128 (ECB).
pub const ALG_AES128: u8 = 0x08;
/// `0A` — AES-192 (ECB).
pub const ALG_AES192: u8 = 0x0A;
/// `0C` — AES-256 (ECB).
pub const ALG_AES256: u8 = 0x0C;

/// Why a management key could not be built or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MgmtKeyError {
    /// Unknown algorithm identifier.
    UnsupportedAlgorithm(u8),
    /// The key length does not fit the algorithm (length given).
    KeyLength(usize),
    /// The block is not exactly one cipher block long (length given).
    BlockLength(usize),
}

impl fmt::Display for MgmtKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MgmtKeyError::UnsupportedAlgorithm(a) => {
                write!(f, "unsupported management key algorithm {a:02X}")
            }
            MgmtKeyError::KeyLength(n) => write!(f, "management key of {n} bytes has wrong length"),
            MgmtKeyError::BlockLength(n) => write!(f, "{n}-byte input is not one cipher block"),
        }
    }
}

impl std::error::Error for MgmtKeyError {}

/// A management key with its algorithm.
#[derive(Clone)]
pub struct MgmtKey {
    alg: u8,
    key: Zeroizing<Vec<u8>>,
}

/// Never prints the key.
impl fmt::Debug for MgmtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MgmtKey(alg {:02X})", self.alg)
    }
}

/// Key length for an algorithm identifier.
pub fn key_len(alg: u8) -> Result<usize, MgmtKeyError> {
    match alg {
        ALG_3DES | ALG_AES192 => Ok(24),
        ALG_AES128 => Ok(16),
        ALG_AES256 => Ok(32),
        other => Err(MgmtKeyError::UnsupportedAlgorithm(other)),
    }
}

impl MgmtKey {
    /// Checks the key length against the algorithm.
    pub fn new(alg: u8, key: &[u8]) -> Result<MgmtKey, MgmtKeyError> {
        if key.len() != key_len(alg)? {
            return Err(MgmtKeyError::KeyLength(key.len()));
        }
        Ok(MgmtKey {
            alg,
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// The algorithm identifier.
    pub fn alg(&self) -> u8 {
        self.alg
    }

    /// The cipher block length: 8 for 3DES, 16 for AES (the witness/challenge length).
    pub fn block_len(&self) -> usize {
        if self.alg == ALG_3DES {
            8
        } else {
            16
        }
    }

    /// Encrypts one block.
    pub fn encrypt(&self, block: &[u8]) -> Result<Vec<u8>, MgmtKeyError> {
        self.apply(block, true)
    }

    /// Decrypts one block.
    pub fn decrypt(&self, block: &[u8]) -> Result<Vec<u8>, MgmtKeyError> {
        self.apply(block, false)
    }

    fn apply(&self, block: &[u8], encrypt: bool) -> Result<Vec<u8>, MgmtKeyError> {
        if block.len() != self.block_len() {
            return Err(MgmtKeyError::BlockLength(block.len()));
        }
        let klen = MgmtKeyError::KeyLength(self.key.len());
        match self.alg {
            ALG_3DES => run(
                des::TdesEde3::new_from_slice(&self.key).map_err(|_| klen)?,
                block,
                encrypt,
            ),
            ALG_AES128 => run(
                aes::Aes128::new_from_slice(&self.key).map_err(|_| klen)?,
                block,
                encrypt,
            ),
            ALG_AES192 => run(
                aes::Aes192::new_from_slice(&self.key).map_err(|_| klen)?,
                block,
                encrypt,
            ),
            ALG_AES256 => run(
                aes::Aes256::new_from_slice(&self.key).map_err(|_| klen)?,
                block,
                encrypt,
            ),
            other => Err(MgmtKeyError::UnsupportedAlgorithm(other)),
        }
    }
}

fn run<C: BlockCipherEncrypt + BlockCipherDecrypt>(
    cipher: C,
    block: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, MgmtKeyError> {
    let mut b = Array::try_from(block).map_err(|_| MgmtKeyError::BlockLength(block.len()))?;
    if encrypt {
        cipher.encrypt_block(&mut b);
    } else {
        cipher.decrypt_block(&mut b);
    }
    Ok(b.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{unhex, DEFAULT_MGMT_KEY};

    #[test]
    fn known_answers() {
        // FIPS 197 Appendix C.1 (AES-128).
        let k = MgmtKey::new(
            ALG_AES128,
            &unhex("000102030405060708090a0b0c0d0e0f").unwrap(),
        )
        .unwrap();
        let ct = k
            .encrypt(&unhex("00112233445566778899aabbccddeeff").unwrap())
            .unwrap();
        assert_eq!(ct, unhex("69c4e0d86a7b0430d8cdb78070b4c55a").unwrap());
        assert_eq!(
            k.decrypt(&ct).unwrap(),
            unhex("00112233445566778899aabbccddeeff").unwrap()
        );
        // Classic DES vector (key 133457799BBCDFF1); 3DES with K1=K2=K3 is single DES.
        let k = MgmtKey::new(ALG_3DES, &unhex("133457799bbcdff1").unwrap().repeat(3)).unwrap();
        let ct = k.encrypt(&unhex("0123456789abcdef").unwrap()).unwrap();
        assert_eq!(ct, unhex("85e813540f0ab405").unwrap());
        assert_eq!(k.decrypt(&ct).unwrap(), unhex("0123456789abcdef").unwrap());
        let k = MgmtKey::new(ALG_3DES, &unhex(DEFAULT_MGMT_KEY).unwrap()).unwrap();
        assert_eq!(k.decrypt(&k.encrypt(&[9; 8]).unwrap()).unwrap(), vec![9; 8]);
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(
            MgmtKey::new(ALG_3DES, &[0; 16]).unwrap_err(),
            MgmtKeyError::KeyLength(16)
        );
        assert_eq!(
            MgmtKey::new(0x01, &[0; 16]).unwrap_err(),
            MgmtKeyError::UnsupportedAlgorithm(1)
        );
        let k = MgmtKey::new(ALG_AES256, &[7; 32]).unwrap();
        assert_eq!(k.block_len(), 16);
        assert_eq!(
            k.encrypt(&[0; 8]).unwrap_err(),
            MgmtKeyError::BlockLength(8)
        );
    }
}
