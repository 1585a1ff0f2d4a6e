//! Public keys taken from certificates: attributes for PKCS#11 objects and the
//! public-key operations (signature verification, encryption).

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use signature::hazmat::PrehashVerifier;

use super::{padding, CryptoError, HashAlg};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The named curves the module supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
}

impl Curve {
    /// Field (and coordinate) size in bytes.
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// DER of the curve's OID, the value of `CKA_EC_PARAMS`.
    pub fn ec_params(self) -> Vec<u8> {
        let oid = match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
        };
        // Encoding a constant OID cannot fail.
        oid.to_der().unwrap_or_default()
    }

    /// From a DER `CKA_EC_PARAMS` value.
    pub fn from_ec_params(der: &[u8]) -> Option<Curve> {
        let oid = ObjectIdentifier::from_der(der).ok()?;
        Self::from_oid(&oid)
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        if *oid == OID_P256 {
            Some(Curve::P256)
        } else if *oid == OID_P384 {
            Some(Curve::P384)
        } else {
            None
        }
    }
}

/// A public key: RSA modulus and exponent, or an EC point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA, big-endian unsigned integers without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC, uncompressed point `04 || X || Y`.
    Ec {
        /// Curve.
        curve: Curve,
        /// Uncompressed point.
        point: Vec<u8>,
    },
}

/// Fields of an X.509 certificate that PKCS#11 certificate objects expose.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// DER of the subject Name.
    pub subject: Vec<u8>,
    /// DER of the issuer Name.
    pub issuer: Vec<u8>,
    /// DER of the serial number INTEGER.
    pub serial: Vec<u8>,
    /// The certified public key.
    pub public_key: PublicKey,
    /// The subject's common name, if any (for labels).
    pub common_name: Option<String>,
}

/// Parse a DER certificate.
pub fn parse_certificate(der_bytes: &[u8]) -> Result<CertInfo, CryptoError> {
    let cert = x509_cert::Certificate::from_der(der_bytes)
        .map_err(|_| CryptoError::Key("certificate is not valid DER X.509"))?;
    let tbs = cert.tbs_certificate();
    let enc = |r: der::Result<Vec<u8>>| r.map_err(|_| CryptoError::Key("re-encoding failed"));
    let spki = tbs.subject_public_key_info();
    let public_key = public_key_from_spki(
        &spki.algorithm.oid,
        spki.algorithm.parameters.as_ref(),
        spki.subject_public_key.raw_bytes(),
    )?;
    let common_name = tbs
        .subject()
        .common_name()
        .ok()
        .flatten()
        .map(|cn| cn.value().into_owned());
    Ok(CertInfo {
        subject: enc(tbs.subject().to_der())?,
        issuer: enc(tbs.issuer().to_der())?,
        serial: enc(tbs.serial_number().to_der())?,
        public_key,
        common_name,
    })
}

fn public_key_from_spki(
    alg: &ObjectIdentifier,
    params: Option<&der::Any>,
    bits: &[u8],
) -> Result<PublicKey, CryptoError> {
    if *alg == OID_RSA {
        let k: pkcs1::RsaPublicKey<der::asn1::UintRef<'_>> = pkcs1::RsaPublicKey::from_der(bits)
            .map_err(|_| CryptoError::Key("RSA public key is not valid PKCS#1"))?;
        Ok(PublicKey::Rsa {
            n: k.modulus.as_bytes().to_vec(),
            e: k.public_exponent.as_bytes().to_vec(),
        })
    } else if *alg == OID_EC {
        let oid = params
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or(CryptoError::Key("EC key without named curve"))?;
        let curve = Curve::from_oid(&oid).ok_or(CryptoError::Key("unsupported curve"))?;
        PublicKey::ec_from_sec1(curve, bits)
    } else {
        Err(CryptoError::Key("unsupported public key algorithm"))
    }
}

impl PublicKey {
    /// An EC key from a SEC1 point (compressed or not), normalised to uncompressed.
    pub fn ec_from_sec1(curve: Curve, bytes: &[u8]) -> Result<PublicKey, CryptoError> {
        let point = match curve {
            Curve::P256 => p256::PublicKey::from_sec1_bytes(bytes)
                .map(|k| p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&k, false))
                .map(|p| p.as_bytes().to_vec()),
            Curve::P384 => p384::PublicKey::from_sec1_bytes(bytes)
                .map(|k| p384::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&k, false))
                .map(|p| p.as_bytes().to_vec()),
        }
        .map_err(|_| CryptoError::Key("invalid EC point"))?;
        Ok(PublicKey::Ec { curve, point })
    }

    /// Key size in bits (modulus bits, or curve order bits).
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa { n, .. } => {
                let lead = n.first().copied().unwrap_or(0);
                n.len() * 8 - lead.leading_zeros() as usize
            }
            PublicKey::Ec { curve, .. } => curve.field_len() * 8,
        }
    }

    /// RSA modulus length in bytes.
    pub fn modulus_len(&self) -> usize {
        match self {
            PublicKey::Rsa { n, .. } => n.len(),
            PublicKey::Ec { curve, .. } => curve.field_len(),
        }
    }

    /// Raw RSA public operation `m^e mod n` on a `k`-byte block.
    pub fn rsa_public_raw(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let PublicKey::Rsa { n, e } = self else {
            return Err(CryptoError::Key("not an RSA key"));
        };
        let k = n.len();
        if block.len() != k {
            return Err(CryptoError::DataLen);
        }
        if !padding::be_less_than(block, n) {
            return Err(CryptoError::Data);
        }
        let prec = (k as u32) * 8;
        let prec = prec.div_ceil(64) * 64;
        let nn = rsa::BoxedUint::from_be_slice(n, prec).map_err(|_| CryptoError::Key("modulus"))?;
        let ee =
            rsa::BoxedUint::from_be_slice(e, prec).map_err(|_| CryptoError::Key("exponent"))?;
        let key = rsa::PublicKey::new(nn, ee).map_err(|_| CryptoError::Key("RSA key rejected"))?;
        let m = rsa::BoxedUint::from_be_slice(block, prec).map_err(|_| CryptoError::Data)?;
        let c = rsa::hazmat::rsa_encrypt(&key, &m).map_err(|_| CryptoError::Data)?;
        let bytes = c.to_be_bytes();
        Ok(bytes[bytes.len() - k..].to_vec())
    }

    /// Verify an ECDSA signature (raw `r || s`) over a caller-supplied hash.
    pub fn ecdsa_verify_prehash(&self, hash: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        let PublicKey::Ec { curve, point } = self else {
            return Err(CryptoError::Key("not an EC key"));
        };
        if sig.len() != 2 * curve.field_len() {
            return Err(CryptoError::SignatureLen);
        }
        let ok = match curve {
            Curve::P256 => {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| CryptoError::Key("invalid EC point"))?;
                let s = p256::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| CryptoError::BadSignature)?;
                vk.verify_prehash(hash, &s).is_ok()
            }
            Curve::P384 => {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| CryptoError::Key("invalid EC point"))?;
                let s = p384::ecdsa::Signature::from_slice(sig)
                    .map_err(|_| CryptoError::BadSignature)?;
                vk.verify_prehash(hash, &s).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

/// Convert a DER ECDSA-Sig-Value from a card into PKCS#11's raw `r || s`.
pub fn ecdsa_der_to_raw(curve: Curve, der_sig: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let raw = match curve {
        Curve::P256 => p256::ecdsa::Signature::from_der(der_sig)
            .map(|s| s.to_bytes().to_vec())
            .map_err(|_| CryptoError::Data)?,
        Curve::P384 => p384::ecdsa::Signature::from_der(der_sig)
            .map(|s| s.to_bytes().to_vec())
            .map_err(|_| CryptoError::Data)?,
    };
    Ok(raw)
}

/// ECDSA input as the card expects it: the hash truncated or left-padded to the field size
/// (FIPS 186-4 §6.4: the leftmost bits of the hash are used).
pub fn ecdsa_card_input(curve: Curve, hash: &[u8]) -> Vec<u8> {
    let n = curve.field_len();
    if hash.len() >= n {
        hash[..n].to_vec()
    } else {
        let mut v = vec![0u8; n - hash.len()];
        v.extend_from_slice(hash);
        v
    }
}

/// Which RSA verification scheme.
#[derive(Debug, Clone, Copy)]
pub enum RsaVerify<'a> {
    /// PKCS#1 v1.5 over already encoded data (DigestInfo for CKM_RSA_PKCS).
    Pkcs1(&'a [u8]),
    /// Raw: the recovered block must equal the data, left-padded with zeros.
    Raw(&'a [u8]),
    /// PSS over a hash.
    Pss {
        /// Message hash.
        mhash: &'a [u8],
        /// Hash used in PSS.
        hash: HashAlg,
        /// MGF1 hash.
        mgf: HashAlg,
        /// Salt length.
        salt_len: usize,
    },
}

impl PublicKey {
    /// Verify an RSA signature with the given scheme.
    pub fn rsa_verify(&self, scheme: RsaVerify<'_>, sig: &[u8]) -> Result<(), CryptoError> {
        let k = self.modulus_len();
        if sig.len() != k {
            return Err(CryptoError::SignatureLen);
        }
        let block = self
            .rsa_public_raw(sig)
            .map_err(|_| CryptoError::BadSignature)?;
        let ok = match scheme {
            RsaVerify::Pkcs1(data) => padding::pkcs1_type1_unpad(&block)
                .map(|d| d == data)
                .unwrap_or(false),
            RsaVerify::Raw(data) => {
                data.len() <= k
                    && block[..k - data.len()].iter().all(|&b| b == 0)
                    && &block[k - data.len()..] == data
            }
            RsaVerify::Pss {
                mhash,
                hash,
                mgf,
                salt_len,
            } => padding::pss_verify(mhash, &block, self.bits(), hash, mgf, salt_len).is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_params_round_trip() {
        for c in [Curve::P256, Curve::P384] {
            assert_eq!(Curve::from_ec_params(&c.ec_params()), Some(c));
        }
        assert_eq!(
            Curve::P256.ec_params(),
            [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        );
    }

    #[test]
    fn ecdsa_input_is_truncated_or_padded() {
        assert_eq!(ecdsa_card_input(Curve::P256, &[1u8; 48]).len(), 32);
        let padded = ecdsa_card_input(Curve::P384, &[1u8; 32]);
        assert_eq!(padded.len(), 48);
        assert_eq!(padded[..16], [0u8; 16]);
    }

    #[test]
    fn rejects_garbage_certificate() {
        assert!(parse_certificate(b"not a cert").is_err());
    }

    #[test]
    fn rsa_raw_rejects_out_of_range() {
        let k = PublicKey::Rsa {
            n: vec![0xc5; 128],
            e: vec![1, 0, 1],
        };
        assert_eq!(k.rsa_public_raw(&[0xff; 128]), Err(CryptoError::Data));
        assert_eq!(k.rsa_public_raw(&[0x01; 127]), Err(CryptoError::DataLen));
        assert!(k.rsa_public_raw(&[0x01; 128]).is_ok());
    }
}
