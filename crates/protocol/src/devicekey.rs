//! The device-authentication key pair, regenerated from the PIN and the
//! protocredential's salt (DESIGN.md; Pomcor, adapted from DSA to P-256).
//!
//! `seed = PBKDF2-HMAC-SHA256(PIN, salt, iterations, 40 bytes)`, then
//! `d = (seed mod (n − 1)) + 1` (FIPS 186-4 B.4.1 with the KDF output as the
//! 320 "returned bits"), `Q = d·G`. Nothing derived from the PIN is stored:
//! the public key `Q` goes only to the back-end, which keeps it secret.

use crypto_bigint::{NonZero, U384};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use zeroize::{Zeroize, Zeroizing};

/// Bytes drawn from the KDF (B.4.1: the order's bit length + 64).
pub const SEED_LEN: usize = 40;

/// Default PBKDF2 iteration count: 105 ms here (release build; measured by the
/// ignored test `regeneration_cost`: 100 000 → 18 ms, 250 000 → 44 ms, 600 000 → 105 ms).
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// P-256 group order minus one, as a 384-bit integer.
const N_MINUS_1: U384 = U384::from_be_hex(concat!(
    "00000000000000000000000000000000",
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632550"
));

/// Errors of key regeneration and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The public key bytes are not a P-256 point.
    BadPoint,
    /// The signature bytes are malformed.
    BadSignature,
    /// The signature does not verify.
    Invalid,
}

/// A regenerated device key pair. The private scalar is wiped on drop and
/// never printed.
pub struct DeviceKey {
    signing: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

impl DeviceKey {
    /// Regenerate the key pair from a PIN, the salt and the iteration count.
    pub fn regenerate(pin: &[u8], salt: &[u8], iterations: u32) -> DeviceKey {
        let mut seed = Zeroizing::new([0u8; 48]);
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pin, salt, iterations, &mut seed[48 - SEED_LEN..]);
        DeviceKey::from_seed(&seed)
    }

    /// B.4.1 from a 48-byte big-endian buffer whose first 8 bytes are zero.
    fn from_seed(seed: &[u8; 48]) -> DeviceKey {
        let c = U384::from_be_slice(seed);
        // N_MINUS_1 is a non-zero constant.
        let modulus = NonZero::new(N_MINUS_1).expect("n - 1 is not zero");
        let mut d = c.rem(&modulus).wrapping_add(&U384::ONE);
        let mut bytes = Zeroizing::new(d.to_be_bytes());
        d.zeroize();
        let scalar: [u8; 32] = bytes.as_ref()[16..48].try_into().expect("48-byte encoding");
        let mut scalar = Zeroizing::new(scalar);
        // 1 <= d <= n - 1, so the scalar is always a valid key.
        let signing = SigningKey::from_bytes(&(*scalar).into()).expect("1 <= d < n");
        scalar.zeroize();
        bytes.as_mut().zeroize();
        DeviceKey { signing }
    }

    /// The public key `Q`, SEC1 uncompressed.
    pub fn public(&self) -> Vec<u8> {
        self.signing
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec()
    }

    /// ECDSA-P256-SHA256 signature (deterministic, RFC 6979) as raw `r || s`.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: Signature = self.signing.sign(msg);
        sig.to_bytes().to_vec()
    }
}

/// Check that bytes are a P-256 public point (SEC1).
pub fn check_point(public: &[u8]) -> Result<(), KeyError> {
    VerifyingKey::from_sec1_bytes(public)
        .map(|_| ())
        .map_err(|_| KeyError::BadPoint)
}

/// Verify a device signature (`r || s`) with a SEC1 public key.
pub fn verify(public: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
    let vk = VerifyingKey::from_sec1_bytes(public).map_err(|_| KeyError::BadPoint)?;
    let sig = Signature::from_slice(sig).map_err(|_| KeyError::BadSignature)?;
    vk.verify(msg, &sig).map_err(|_| KeyError::Invalid)
}

/// Fresh random bytes (handles, salts, KWKs).
pub fn random<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut b = Zeroizing::new([0u8; N]);
    // The OS generator failing is not recoverable for key generation.
    getrandom::fill(b.as_mut()).expect("OS random number generator");
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::sec1::ToSec1Point;

    #[test]
    fn same_pin_same_key_other_pin_other_key() {
        let salt = [7u8; 32];
        let a = DeviceKey::regenerate(b"123456", &salt, 10);
        let b = DeviceKey::regenerate(b"123456", &salt, 10);
        let c = DeviceKey::regenerate(b"123457", &salt, 10);
        let d = DeviceKey::regenerate(b"123456", &[8u8; 32], 10);
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
        assert_ne!(a.public(), d.public());
        assert_eq!(a.public().len(), 65);
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        let sig = k.sign(b"challenge");
        verify(&k.public(), b"challenge", &sig).unwrap();
        assert_eq!(verify(&k.public(), b"other", &sig), Err(KeyError::Invalid));
        let other = DeviceKey::regenerate(b"000000", b"salt", 10);
        assert_eq!(
            verify(&other.public(), b"challenge", &sig),
            Err(KeyError::Invalid)
        );
        assert_eq!(verify(b"junk", b"challenge", &sig), Err(KeyError::BadPoint));
        assert_eq!(
            verify(&k.public(), b"challenge", b"short"),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn b41_reduction_edges() {
        // seed = 0 gives d = 1; seed = n - 1 gives d = 1 again; seed = n - 2 gives n - 1.
        let zero = [0u8; 48];
        let one = DeviceKey::from_seed(&zero);
        let g = p256::PublicKey::from_secret_scalar(
            &p256::NonZeroScalar::new(p256::Scalar::ONE).unwrap(),
        );
        assert_eq!(one.public(), g.to_sec1_point(false).as_bytes());
        let n1: [u8; 48] = N_MINUS_1.to_be_bytes().as_ref().try_into().unwrap();
        assert_eq!(DeviceKey::from_seed(&n1).public(), one.public());
        let mut n2 = n1;
        n2[47] -= 1;
        let top = DeviceKey::from_seed(&n2);
        // d = n - 1 = -1: its public key is -G (same x, negated y)
        assert_eq!(top.public()[1..33], one.public()[1..33]);
        assert_ne!(top.public()[33..], one.public()[33..]);
        // the largest 320-bit seed still gives a valid key
        let mut max = [0u8; 48];
        max[8..].fill(0xff);
        DeviceKey::from_seed(&max);
    }

    #[test]
    fn debug_hides_the_key() {
        let k = DeviceKey::regenerate(b"123456", b"salt", 10);
        assert_eq!(format!("{k:?}"), "DeviceKey(..)");
    }
}

#[cfg(test)]
mod cost {
    /// Prints what key regeneration costs here (not an assertion: a figure for
    /// choosing DEFAULT_ITERATIONS). `cargo test --release -p dcred-protocol -- --ignored --nocapture regeneration_cost`
    #[test]
    #[ignore = "measurement, run by hand"]
    fn regeneration_cost() {
        for it in [100_000u32, 250_000, 600_000] {
            let t = std::time::Instant::now();
            let _ = super::DeviceKey::regenerate(b"123456", &[7u8; 32], it);
            eprintln!(
                "PBKDF2-HMAC-SHA256 {it} iterations + B.4.1: {} ms",
                t.elapsed().as_millis()
            );
        }
    }
}
