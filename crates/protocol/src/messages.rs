//! Requests and responses. Binary fields travel as base64 strings ([`Bytes`]);
//! their `Debug` shows only a length, so a KWK, handle or key can never reach
//! a log through a `{:?}`.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Binary data in a message (wiped on drop; `Debug` prints the length only).
#[derive(Clone, PartialEq, Eq, Default, Zeroize, ZeroizeOnDrop)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let s = zeroize::Zeroizing::new(String::deserialize(d)?);
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// A request from the device.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// Protocol version ([`crate::VERSION`]).
    pub version: u16,
    /// What is asked.
    #[serde(flatten)]
    pub body: RequestBody,
}

/// The kinds of request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequestBody {
    /// Activation: prove the PIN-derived key, receive the KWK.
    Activate {
        /// Device record handle (32 random bytes).
        handle: Bytes,
        /// Device public key `Q` (SEC1).
        q: Bytes,
        /// ECDSA-P256-SHA256 over the challenge, `r || s`.
        sig: Bytes,
    },
    /// PIN change: prove the old key, register the new `Q` in one transaction.
    ChangePin {
        /// Device record handle.
        handle: Bytes,
        /// Old `Q`.
        q: Bytes,
        /// Signature with the old key over the challenge.
        sig: Bytes,
        /// New `Q`.
        new_q: Bytes,
    },
    /// Enrollment of a derived credential after proof of PIV card possession.
    Enroll(Box<EnrollRequest>),
}

/// Signature algorithms of the PIV authentication key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PivSigAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// ECDSA with SHA-256, DER signature.
    EcdsaSha256,
}

/// Enrollment request.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The PIV Authentication certificate (9A), DER.
    pub piv_cert: Bytes,
    /// Its key's signature over the channel-bound challenge.
    pub piv_sig: Bytes,
    /// Algorithm of `piv_sig`.
    pub piv_sig_alg: PivSigAlg,
    /// New device record handle (32 random bytes).
    pub handle: Bytes,
    /// Device public key `Q` regenerated from the new derived PIN.
    pub q: Bytes,
    /// The key-wrapping key the back-end will guard (32 bytes).
    pub kwk: Bytes,
    /// Public key (SPKI DER) of the derived PIV authentication key made on the device.
    pub auth_spki: Bytes,
    /// Public key (SPKI DER) of the derived digital-signature key made on the device.
    pub sign_spki: Bytes,
}

/// A response from the back-end.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    /// Protocol version.
    pub version: u16,
    /// The answer.
    #[serde(flatten)]
    pub body: ResponseBody,
}

/// The kinds of response.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseBody {
    /// Activation succeeded.
    Kwk {
        /// The key-wrapping key.
        kwk: Bytes,
    },
    /// The PIN change is registered.
    PinChanged,
    /// Wrong PIN (the signature or `Q` did not match); the failure was counted.
    WrongPin {
        /// Attempts left before the record locks.
        attempts_left: u32,
    },
    /// Unknown or locked record: deliberately the same answer for both.
    Refused,
    /// The credential is revoked, or the PIV card it derives from is revoked or expired.
    Revoked,
    /// Enrollment succeeded.
    Enrolled(Box<EnrollResponse>),
    /// The request was not understood (bad version, malformed); nothing was counted.
    Error {
        /// What was wrong.
        message: String,
    },
}

/// What enrollment returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Derived PIV authentication certificate, DER.
    pub auth_cert: Bytes,
    /// Derived digital-signature certificate, DER.
    pub sign_cert: Bytes,
    /// The issuing CA certificate, DER.
    pub ca_cert: Bytes,
    /// Escrowed key-management keys, current first, then every retired one.
    pub key_management: Vec<EscrowedKey>,
}

/// An escrowed key-management key.
#[derive(Debug, Serialize, Deserialize)]
pub struct EscrowedKey {
    /// Certificate, DER.
    pub cert: Bytes,
    /// Private key, PKCS#8 DER.
    pub pkcs8: Bytes,
    /// The current key (else retired).
    pub current: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_debug_shows_length_only() {
        let b = Bytes(vec![0x41; 32]);
        assert_eq!(format!("{b:?}"), "Bytes(32 bytes)");
        let r = RequestBody::Activate {
            handle: Bytes(vec![0xaa; 32]),
            q: Bytes(vec![4; 65]),
            sig: Bytes(vec![1; 64]),
        };
        let text = format!("{r:?}");
        assert!(!text.contains("170") && !text.contains("aa"), "{text}");
    }

    #[test]
    fn json_shape_is_stable() {
        let r = Request {
            version: 1,
            body: RequestBody::Activate {
                handle: Bytes(vec![1, 2]),
                q: Bytes(vec![3]),
                sig: Bytes(vec![]),
            },
        };
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"version":1,"type":"activate","handle":"AQI=","q":"Aw==","sig":""}"#
        );
        let back: Request = serde_json::from_str(&j).unwrap();
        assert!(matches!(back.body, RequestBody::Activate { .. }));
    }
}
