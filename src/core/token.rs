//! The token abstraction: what every kind of slot (PIV card, derived
//! credential) provides to the core. The core does mechanisms, padding,
//! sessions and objects; a token only holds keys and performs the
//! private-key primitives.

use zeroize::Zeroizing;

use super::object::{KeyInfo, Object};
use super::Result;

/// Static token description, cached by the token (no I/O to produce it).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    /// Label (at most 32 bytes are shown).
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number (at most 16 bytes are shown).
    pub serial: String,
    /// Minimum PIN length.
    pub min_pin: usize,
    /// Maximum PIN length.
    pub max_pin: usize,
    /// PIN state flags (`CKF_USER_PIN_COUNT_LOW`, …).
    pub pin_flags: cryptoki_sys::CK_FLAGS,
    /// Hardware token (a card) rather than software.
    pub hardware: bool,
}

/// A token: the holder of private keys behind a slot.
///
/// Methods that talk to a device may block; the core never holds a global
/// lock while calling them.
pub trait Token: Send + Sync {
    /// Current token information (cached; no I/O).
    fn info(&self) -> TokenInfo;

    /// The token's objects, read when the token was loaded.
    fn objects(&self) -> Vec<Object>;

    /// Log the user in.
    fn login(&self, pin: &[u8]) -> Result<()>;

    /// Log the user out.
    fn logout(&self) -> Result<()>;

    /// Change the user PIN.
    fn set_pin(&self, old: &[u8], new: &[u8]) -> Result<()>;

    /// Check a PIN for a context-specific login (keys with `CKA_ALWAYS_AUTHENTICATE`).
    fn check_context_pin(&self, key: &KeyInfo, pin: &[u8]) -> Result<()>;

    /// Raw RSA private-key operation on a modulus-sized block. `context_pin`
    /// is given for keys that need a fresh authentication per use; the token
    /// must present it and use the key atomically.
    fn rsa_private(
        &self,
        key: &KeyInfo,
        block: &[u8],
        context_pin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>>;

    /// ECDSA over a hash already reduced to the field size; returns raw `r || s`.
    fn ecdsa_sign(&self, key: &KeyInfo, hash: &[u8], context_pin: Option<&[u8]>)
        -> Result<Vec<u8>>;

    /// ECDH with the peer's uncompressed point; returns the shared X coordinate.
    fn ecdh(&self, key: &KeyInfo, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// Sign with an RSA key in one step, for tokens whose crypto library does
    /// the encoding itself (software keys). `input` is the message hash for
    /// hashing mechanisms, else the caller's data (hash for PSS, DigestInfo
    /// for `CKM_RSA_PKCS`). `None`: use [`Token::rsa_private`] on a block the
    /// core encodes.
    fn rsa_sign(
        &self,
        _key: &KeyInfo,
        _mech: &super::Mech,
        _input: &[u8],
    ) -> Option<Result<Vec<u8>>> {
        None
    }

    /// Decrypt and unpad in one step, for tokens whose crypto library does the
    /// padding itself (software keys). `None`: use [`Token::rsa_private`] and
    /// the core's constant-time unpadding.
    fn rsa_decrypt(
        &self,
        _key: &KeyInfo,
        _mech: &super::Mech,
        _ciphertext: &[u8],
    ) -> Option<Result<Zeroizing<Vec<u8>>>> {
        None
    }
}
