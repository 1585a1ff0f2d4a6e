//! The derived-credential token: certificates and public keys from the
//! credential file; private keys only after `C_Login` has run activation with
//! the back-end and the KWK has unwrapped them — in memory, wiped at logout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki_sys::*;
use dcred_protocol::client::{Client, ClientError};
use dcred_protocol::credential::{self, Credential, Role};
use dcred_protocol::messages::{Bytes, RequestBody, ResponseBody};
use dcred_protocol::DeviceKey;
use p256::pkcs8::DecodePrivateKey;
use zeroize::Zeroizing;

use crate::core::keyobjects::{key_objects, public_certificates_profile, KeySpec};
use crate::core::object::KeyInfo;
use crate::core::{lock, Error, Mech, Object, Result, Token, TokenInfo};
use crate::crypto::pubkey::parse_certificate;
use crate::crypto::{HashAlg, PublicKey};

/// An unwrapped private key. Dropping it wipes the key (the curve crates
/// zeroize their scalars; aws-lc cleanses freed key memory).
enum SoftKey {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Rsa {
        dec: aws_lc_rs::rsa::PrivateDecryptingKey,
        sign: aws_lc_rs::rsa::KeyPair,
    },
}

/// A derived credential in a slot.
pub struct SoftToken {
    cred: Credential,
    keys: Mutex<Option<Vec<(u8, SoftKey)>>>,
    pin_flags: Mutex<CK_FLAGS>,
    config: Arc<crate::config::Config>,
}

fn names(role: Role) -> (String, String) {
    match role {
        Role::Authentication => ("Derived PIV Authentication".into(), "DERIVED AUTH".into()),
        Role::Signature => ("Derived Digital Signature".into(), "DERIVED SIGN".into()),
        Role::KeyManagement => ("Key Management (escrowed)".into(), "KEY MAN".into()),
        Role::Retired(n) => (
            format!("Retired Key Management {n} (escrowed)"),
            format!("RETIRED KEY MAN {n}"),
        ),
    }
}

fn client_error(e: ClientError) -> Error {
    log::error!("derived credential: back-end: {e}");
    Error::DeviceError(format!("back-end: {e}"))
}

impl SoftToken {
    /// A token for a credential (no I/O).
    pub fn new(cred: Credential, config: Arc<crate::config::Config>) -> Result<Self> {
        Ok(SoftToken {
            cred,
            keys: Mutex::new(None),
            pin_flags: Mutex::new(0),
            config,
        })
    }

    fn client(&self) -> Result<Client> {
        Client::new(
            &self.cred.backend.address,
            &self.cred.backend.trust_anchor.0,
            Duration::from_millis(self.config.backend_timeout_ms),
        )
        .map_err(client_error)
    }

    fn check_pin(&self, pin: &[u8]) -> Result<()> {
        if pin.len() < 4 || pin.len() > 64 {
            return Err(Error::PinLenRange);
        }
        if !pin.iter().all(u8::is_ascii_digit) {
            return Err(Error::PinInvalid);
        }
        Ok(())
    }

    /// Map a refusal from the back-end; updates the PIN flags.
    fn refusal(&self, body: ResponseBody) -> Error {
        let mut flags = lock(&self.pin_flags);
        match body {
            ResponseBody::WrongPin { attempts_left } => {
                *flags = CKF_USER_PIN_COUNT_LOW;
                if attempts_left <= 1 {
                    *flags |= CKF_USER_PIN_FINAL_TRY;
                }
                Error::PinIncorrect
            }
            ResponseBody::Refused => {
                *flags = CKF_USER_PIN_LOCKED;
                Error::PinLocked
            }
            ResponseBody::Revoked => Error::CredentialRevoked,
            ResponseBody::Error { message } => {
                log::error!("derived credential: back-end refused the request: {message}");
                Error::DeviceError(format!("back-end: {message}"))
            }
            _ => Error::DeviceError("unexpected back-end answer".into()),
        }
    }

    fn unwrap_keys(&self, kwk: &[u8]) -> Result<Vec<(u8, SoftKey)>> {
        let mut keys = Vec::new();
        for entry in &self.cred.keys {
            let pkcs8 = credential::unwrap(kwk, &self.cred.id, entry.role, &entry.wrapped_key.0)
                .map_err(|_| {
                    Error::DeviceError("a stored key does not authenticate under the KWK".into())
                })?;
            let key = if let Ok(k) = p256::SecretKey::from_pkcs8_der(&pkcs8) {
                SoftKey::P256(k)
            } else if let Ok(k) = p384::SecretKey::from_pkcs8_der(&pkcs8) {
                SoftKey::P384(k)
            } else {
                let bad = |_| Error::DeviceError("unsupported stored key".into());
                SoftKey::Rsa {
                    dec: aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(bad)?,
                    sign: aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8)
                        .map_err(|_| Error::DeviceError("unsupported stored key".into()))?,
                }
            };
            keys.push((entry.role.ck_id(), key));
        }
        Ok(keys)
    }

    fn with_key<R>(&self, key: &KeyInfo, f: impl FnOnce(&SoftKey) -> Result<R>) -> Result<R> {
        let keys = lock(&self.keys);
        let keys = keys.as_ref().ok_or(Error::UserNotLoggedIn)?;
        let k = keys
            .iter()
            .find(|(r, _)| *r == key.key_ref)
            .map(|(_, k)| k)
            .ok_or(Error::KeyHandleInvalid)?;
        f(k)
    }
}

impl Token for SoftToken {
    fn info(&self) -> TokenInfo {
        TokenInfo {
            label: self.cred.label.clone(),
            manufacturer: "dcred".into(),
            model: "derived cred".into(),
            serial: self.cred.id.chars().take(16).collect(),
            min_pin: 4,
            max_pin: 64,
            pin_flags: *lock(&self.pin_flags),
            hardware: false,
        }
    }

    fn objects(&self) -> Vec<Object> {
        let mut objs = vec![public_certificates_profile()];
        for entry in &self.cred.keys {
            let info = match parse_certificate(&entry.cert.0) {
                Ok(i) => i,
                Err(e) => {
                    log::warn!("credential {}: certificate not usable: {e:?}", self.cred.id);
                    continue;
                }
            };
            let (long, short) = names(entry.role);
            let rsa = matches!(info.public_key, PublicKey::Rsa { .. });
            let km = matches!(entry.role, Role::KeyManagement | Role::Retired(_));
            objs.extend(key_objects(&KeySpec {
                id: entry.role.ck_id(),
                key_ref: entry.role.ck_id(),
                cert_label: format!("Certificate for {long}"),
                key_label: format!("{short} key"),
                public_label: format!("{short} pubkey"),
                sign: !km,
                decrypt: km && rsa,
                derive: km && !rsa,
                private: true,
                always_authenticate: false,
                cert_der: &entry.cert.0,
                info: &info,
            }));
        }
        objs
    }

    fn login(&self, pin: &[u8]) -> Result<()> {
        self.check_pin(pin)?;
        let pc = &self.cred.protocredential;
        let key = DeviceKey::regenerate(pin, &pc.salt.0, pc.iterations);
        let handle = pc.handle.clone();
        let r = self
            .client()?
            .call(|challenge| RequestBody::Activate {
                handle,
                q: Bytes(key.public()),
                sig: Bytes(key.sign(challenge)),
            })
            .map_err(client_error)?;
        drop(key);
        match r.body {
            ResponseBody::Kwk { kwk } => {
                let keys = self.unwrap_keys(&kwk.0)?;
                *lock(&self.keys) = Some(keys);
                *lock(&self.pin_flags) = 0;
                log::info!("derived credential {}: activated", self.cred.id);
                Ok(())
            }
            other => Err(self.refusal(other)),
        }
    }

    fn logout(&self) -> Result<()> {
        *lock(&self.keys) = None;
        Ok(())
    }

    fn set_pin(&self, old: &[u8], new: &[u8]) -> Result<()> {
        self.check_pin(old)?;
        self.check_pin(new)?;
        if new.len() < 6 {
            return Err(Error::PinLenRange);
        }
        let pc = &self.cred.protocredential;
        let old_key = DeviceKey::regenerate(old, &pc.salt.0, pc.iterations);
        let new_key = DeviceKey::regenerate(new, &pc.salt.0, pc.iterations);
        let handle = pc.handle.clone();
        let r = self
            .client()?
            .call(|challenge| RequestBody::ChangePin {
                handle,
                q: Bytes(old_key.public()),
                sig: Bytes(old_key.sign(challenge)),
                new_q: Bytes(new_key.public()),
            })
            .map_err(client_error)?;
        match r.body {
            ResponseBody::PinChanged => {
                *lock(&self.pin_flags) = 0;
                Ok(())
            }
            other => Err(self.refusal(other)),
        }
    }

    fn check_context_pin(&self, _key: &KeyInfo, _pin: &[u8]) -> Result<()> {
        Err(Error::OperationNotInitialized)
    }

    fn rsa_private(
        &self,
        _key: &KeyInfo,
        _block: &[u8],
        _pin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        // Derived keys are EC; escrowed RSA keys decrypt through rsa_decrypt.
        Err(Error::KeyFunctionNotPermitted)
    }

    fn rsa_decrypt(
        &self,
        key: &KeyInfo,
        mech: &Mech,
        ct: &[u8],
    ) -> Option<Result<Zeroizing<Vec<u8>>>> {
        Some(self.with_key(key, |k| {
            let SoftKey::Rsa { dec: rsa, .. } = k else {
                return Err(Error::KeyTypeInconsistent);
            };
            let mut out = Zeroizing::new(vec![0u8; ct.len()]);
            let n = match mech {
                Mech::RsaPkcs => {
                    let d = aws_lc_rs::rsa::Pkcs1PrivateDecryptingKey::new(rsa.clone())
                        .map_err(|_| Error::GeneralError("RSA key".into()))?;
                    d.decrypt(ct, &mut out)
                        .map_err(|_| Error::EncryptedDataInvalid)?
                        .len()
                }
                Mech::RsaOaep { hash, mgf, label } => {
                    use aws_lc_rs::rsa::{
                        OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384,
                        OAEP_SHA512_MGF1SHA512,
                    };
                    let alg = match (hash, mgf) {
                        (HashAlg::Sha1, HashAlg::Sha1) => &OAEP_SHA1_MGF1SHA1,
                        (HashAlg::Sha256, HashAlg::Sha256) => &OAEP_SHA256_MGF1SHA256,
                        (HashAlg::Sha384, HashAlg::Sha384) => &OAEP_SHA384_MGF1SHA384,
                        (HashAlg::Sha512, HashAlg::Sha512) => &OAEP_SHA512_MGF1SHA512,
                        _ => {
                            return Err(Error::MechanismParamInvalid(
                                "software OAEP needs the same hash for OAEP and MGF1",
                            ))
                        }
                    };
                    let d = aws_lc_rs::rsa::OaepPrivateDecryptingKey::new(rsa.clone())
                        .map_err(|_| Error::GeneralError("RSA key".into()))?;
                    let label = (!label.is_empty()).then_some(label.as_slice());
                    d.decrypt(alg, ct, &mut out, label)
                        .map_err(|_| Error::EncryptedDataInvalid)?
                        .len()
                }
                _ => return Err(Error::MechanismInvalid(CKM_RSA_X_509)),
            };
            out.truncate(n);
            Ok(out)
        }))
    }

    fn rsa_sign(&self, key: &KeyInfo, mech: &Mech, input: &[u8]) -> Option<Result<Vec<u8>>> {
        use aws_lc_rs::digest;
        use aws_lc_rs::signature::{
            RsaEncoding, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256,
            RSA_PSS_SHA384, RSA_PSS_SHA512,
        };
        let pkcs1 = |h: HashAlg| -> Result<(&'static dyn RsaEncoding, &'static digest::Algorithm)> {
            Ok(match h {
                HashAlg::Sha256 => (&RSA_PKCS1_SHA256, &digest::SHA256),
                HashAlg::Sha384 => (&RSA_PKCS1_SHA384, &digest::SHA384),
                HashAlg::Sha512 => (&RSA_PKCS1_SHA512, &digest::SHA512),
                _ => return Err(Error::MechanismInvalid(CKM_SHA1_RSA_PKCS)),
            })
        };
        Some(self.with_key(key, |k| {
            let SoftKey::Rsa { sign, .. } = k else {
                return Err(Error::KeyTypeInconsistent);
            };
            let (enc, alg, hash): (&'static dyn RsaEncoding, _, &[u8]) = match mech {
                Mech::HashRsaPkcs(h) => {
                    let (e, a) = pkcs1(*h)?;
                    (e, a, input)
                }
                Mech::RsaPkcs => {
                    // The caller's DigestInfo names the hash.
                    let h = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
                        .into_iter()
                        .find(|h| {
                            input.len() == h.digest_info_prefix().len() + h.output_len()
                                && input.starts_with(h.digest_info_prefix())
                        })
                        .ok_or(Error::DataInvalid)?;
                    let (e, a) = pkcs1(h)?;
                    (e, a, &input[h.digest_info_prefix().len()..])
                }
                Mech::RsaPss { hash, mgf, salt_len, .. } => {
                    if mgf != hash || *salt_len != hash.output_len() {
                        return Err(Error::MechanismParamInvalid(
                            "software RSA-PSS keys sign with MGF1 of the same hash and a hash-length salt",
                        ));
                    }
                    match hash {
                        HashAlg::Sha256 => (&RSA_PSS_SHA256 as &dyn RsaEncoding, &digest::SHA256, input),
                        HashAlg::Sha384 => (&RSA_PSS_SHA384 as &dyn RsaEncoding, &digest::SHA384, input),
                        HashAlg::Sha512 => (&RSA_PSS_SHA512 as &dyn RsaEncoding, &digest::SHA512, input),
                        _ => return Err(Error::MechanismParamInvalid("PSS hash")),
                    }
                }
                _ => return Err(Error::MechanismInvalid(CKM_RSA_X_509)),
            };
            let d = digest::Digest::import_less_safe(hash, alg).map_err(|_| Error::DataLenRange)?;
            let mut sig = vec![0u8; sign.public_modulus_len()];
            sign.sign_digest(enc, &d, &mut sig)
                .map_err(|_| Error::FunctionFailed("RSA signature".into()))?;
            Ok(sig)
        }))
    }

    fn ecdsa_sign(&self, key: &KeyInfo, hash: &[u8], _pin: Option<&[u8]>) -> Result<Vec<u8>> {
        use signature::hazmat::PrehashSigner;
        self.with_key(key, |k| match k {
            SoftKey::P256(sk) => {
                let s: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(sk)
                    .sign_prehash(hash)
                    .map_err(|_| Error::DataInvalid)?;
                Ok(s.to_bytes().to_vec())
            }
            SoftKey::P384(sk) => {
                let s: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(sk)
                    .sign_prehash(hash)
                    .map_err(|_| Error::DataInvalid)?;
                Ok(s.to_bytes().to_vec())
            }
            SoftKey::Rsa { .. } => Err(Error::KeyTypeInconsistent),
        })
    }

    fn ecdh(&self, key: &KeyInfo, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.with_key(key, |k| match k {
            SoftKey::P256(sk) => {
                let pk = p256::PublicKey::from_sec1_bytes(peer)
                    .map_err(|_| Error::MechanismParamInvalid("peer point"))?;
                let z = p256::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                Ok(Zeroizing::new(z.raw_secret_bytes().to_vec()))
            }
            SoftKey::P384(sk) => {
                let pk = p384::PublicKey::from_sec1_bytes(peer)
                    .map_err(|_| Error::MechanismParamInvalid("peer point"))?;
                let z = p384::ecdh::diffie_hellman(sk.to_nonzero_scalar(), pk.as_affine());
                Ok(Zeroizing::new(z.raw_secret_bytes().to_vec()))
            }
            SoftKey::Rsa { .. } => Err(Error::KeyTypeInconsistent),
        })
    }
}
