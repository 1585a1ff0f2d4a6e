//! Software cryptography that does not need a private key: hashing, RSA
//! padding and unpadding (constant-time where a secret is involved), and
//! public-key operations (verify, encrypt) so applications can use the public
//! half of a card key through the module.

pub mod hash;
pub mod padding;
pub mod pubkey;

pub use hash::{HashAlg, Hasher};
pub use pubkey::{Curve, PublicKey};

/// Errors of the software crypto layer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The input has the wrong length for the key or scheme.
    DataLen,
    /// The input is not valid for the scheme (out of range, bad encoding).
    Data,
    /// Decryption failed its padding check.
    Padding,
    /// The signature does not verify.
    BadSignature,
    /// The signature has the wrong length.
    SignatureLen,
    /// A key (certificate, public key) could not be parsed or is unsupported.
    Key(&'static str),
    /// The OS random number generator failed.
    Random,
}

impl From<CryptoError> for crate::core::Error {
    fn from(e: CryptoError) -> Self {
        use crate::core::Error;
        match e {
            CryptoError::DataLen => Error::DataLenRange,
            CryptoError::Data => Error::DataInvalid,
            CryptoError::Padding => Error::EncryptedDataInvalid,
            CryptoError::BadSignature => Error::SignatureInvalid,
            CryptoError::SignatureLen => Error::SignatureLenRange,
            CryptoError::Key(what) => Error::FunctionFailed(format!("key: {what}")),
            CryptoError::Random => Error::RandomFailed,
        }
    }
}

/// Fill `buf` from the operating system's random number generator.
pub fn random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}
