//! Back-end keys in a PKCS#11 token, named by RFC 7512 URIs
//! (`pkcs11:token=…;object=…?module-path=…&pin-value=…` or `pin-source=file:…`).
//! `init` generates missing keys inside the token (sensitive, never
//! extractable); the back-end then only asks the token to compute with them.

use std::path::PathBuf;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::{Error, Result};

fn hsm(e: impl std::fmt::Display) -> Error {
    Error::Keys(format!("HSM: {e}"))
}

/// A parsed PKCS#11 URI (the subset the back-end needs).
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// PKCS#11 module.
    pub module: PathBuf,
    /// Token label.
    pub token: String,
    /// Object label.
    pub object: String,
    /// User PIN.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pkcs11:token={};object={}", self.token, self.object)
    }
}

fn pct_decode(s: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Usage("bad %-escape in a PKCS#11 URI".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Usage("PKCS#11 URI is not UTF-8".into()))
}

impl Pkcs11Uri {
    /// Parse `pkcs11:path-attributes?query-attributes`.
    pub fn parse(uri: &str) -> Result<Pkcs11Uri> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| Error::Usage("a PKCS#11 URI starts with pkcs11:".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (mut token, mut object, mut module, mut pin) = (None, None, None, None);
        for kv in path.split(';').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "token" => token = Some(pct_decode(v)?),
                "object" => object = Some(pct_decode(v)?),
                _ => {}
            }
        }
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "module-path" => module = Some(PathBuf::from(pct_decode(v)?)),
                "pin-value" => pin = Some(Zeroizing::new(pct_decode(v)?)),
                "pin-source" => {
                    let file = pct_decode(v)?;
                    let file = file.strip_prefix("file:").unwrap_or(&file).to_string();
                    let text = Zeroizing::new(
                        std::fs::read_to_string(&file)
                            .map_err(|e| Error::Usage(format!("pin-source {file}: {e}")))?,
                    );
                    pin = Some(Zeroizing::new(
                        text.trim_end_matches(['\r', '\n']).to_string(),
                    ));
                }
                _ => {}
            }
        }
        fn need<T>(v: Option<T>, what: &str) -> Result<T> {
            v.ok_or_else(|| Error::Usage(format!("PKCS#11 URI needs {what}")))
        }
        Ok(Pkcs11Uri {
            module: need(module, "module-path")?,
            token: need(token, "token=")?,
            object: need(object, "object=")?,
            pin: need(pin, "pin-value or pin-source")?,
        })
    }
}

/// What kind of key an object is.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    /// AES-256 for AES-GCM.
    Aes,
    /// Generic secret for HMAC-SHA256.
    Hmac,
    /// EC P-256 key pair for ECDSA.
    EcP256,
}

/// An open session on the token, logged in.
pub struct Hsm {
    _ctx: Pkcs11,
    session: Mutex<Session>,
}

impl Hsm {
    /// Open the token of a URI and log in.
    pub fn open(uri: &Pkcs11Uri) -> Result<Hsm> {
        let ctx = Pkcs11::new(&uri.module).map_err(hsm)?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(hsm)?;
        let slot = ctx
            .get_slots_with_token()
            .map_err(hsm)?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|i| i.label().trim() == uri.token)
            })
            .ok_or_else(|| hsm(format!("no token labelled {}", uri.token)))?;
        let session = ctx.open_rw_session(slot).map_err(hsm)?;
        session
            .login(UserType::User, Some(&AuthPin::new(uri.pin.as_str().into())))
            .map_err(hsm)?;
        Ok(Hsm {
            _ctx: ctx,
            session: Mutex::new(session),
        })
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Find an object by label and class.
    pub fn find(&self, label: &str, class: ObjectClass) -> Result<Option<ObjectHandle>> {
        let found = self
            .session()
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(hsm)?;
        Ok(found.first().copied())
    }

    /// Generate a key inside the token unless one with that label exists.
    pub fn ensure(&self, label: &str, kind: KeyKind) -> Result<()> {
        let class = match kind {
            KeyKind::EcP256 => ObjectClass::PRIVATE_KEY,
            _ => ObjectClass::SECRET_KEY,
        };
        if self.find(label, class)?.is_some() {
            return Ok(());
        }
        let s = self.session();
        let common = |extra: Vec<Attribute>| {
            let mut v = vec![
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Label(label.as_bytes().to_vec()),
            ];
            v.extend(extra);
            v
        };
        match kind {
            KeyKind::Aes => {
                s.generate_key(
                    &Mechanism::AesKeyGen,
                    &common(vec![
                        Attribute::ValueLen(32.into()),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                    ]),
                )
                .map_err(hsm)?;
            }
            KeyKind::Hmac => {
                s.generate_key(
                    &Mechanism::GenericSecretKeyGen,
                    &common(vec![
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        Attribute::ValueLen(32.into()),
                        Attribute::Sign(true),
                        Attribute::Verify(true),
                    ]),
                )
                .map_err(hsm)?;
            }
            KeyKind::EcP256 => {
                // DER of the P-256 OID.
                let params = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
                s.generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::EcParams(params),
                        Attribute::Verify(true),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ],
                    &common(vec![Attribute::Sign(true)]),
                )
                .map_err(hsm)?;
            }
        }
        Ok(())
    }

    fn key(&self, label: &str, class: ObjectClass) -> Result<ObjectHandle> {
        self.find(label, class)?
            .ok_or_else(|| hsm(format!("no key labelled {label} in the token")))
    }

    /// HMAC-SHA256 with a secret key.
    pub fn hmac(&self, label: &str, data: &[u8]) -> Result<Vec<u8>> {
        let k = self.key(label, ObjectClass::SECRET_KEY)?;
        self.session()
            .sign(&Mechanism::Sha256Hmac, k, data)
            .map_err(hsm)
    }

    /// AES-256-GCM encryption: `iv || ciphertext || tag`.
    pub fn seal(&self, label: &str, aad: &[u8], pt: &[u8]) -> Result<Vec<u8>> {
        let k = self.key(label, ObjectClass::SECRET_KEY)?;
        let mut iv = *dcred_protocol::devicekey::random::<12>();
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(hsm)?;
        let ct = self
            .session()
            .encrypt(&Mechanism::AesGcm(params), k, pt)
            .map_err(hsm)?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// AES-256-GCM decryption of `iv || ciphertext || tag`.
    pub fn open_sealed(
        &self,
        label: &str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 28 {
            return Err(Error::Keys("sealed value too short".into()));
        }
        let k = self.key(label, ObjectClass::SECRET_KEY)?;
        let mut iv: [u8; 12] = sealed[..12].try_into().map_err(hsm)?;
        let params = GcmParams::new(&mut iv, aad, 128.into()).map_err(hsm)?;
        self.session()
            .decrypt(&Mechanism::AesGcm(params), k, &sealed[12..])
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Keys("stored value does not authenticate under the HSM master key".into())
            })
    }

    /// ECDSA-P256-SHA256 with a private key; raw `r || s`. The hash is taken
    /// here and the token signs it with `CKM_ECDSA` (SoftHSMv2 2.6 has no
    /// `CKM_ECDSA_SHA256`).
    pub fn sign_ecdsa(&self, label: &str, msg: &[u8]) -> Result<Vec<u8>> {
        use sha2::Digest;
        let k = self.key(label, ObjectClass::PRIVATE_KEY)?;
        let digest = sha2::Sha256::digest(msg);
        self.session()
            .sign(&Mechanism::Ecdsa, k, &digest)
            .map_err(hsm)
    }

    /// The uncompressed EC point of a public key.
    pub fn ec_point(&self, label: &str) -> Result<Vec<u8>> {
        let k = self.key(label, ObjectClass::PUBLIC_KEY)?;
        let attrs = self
            .session()
            .get_attributes(k, &[AttributeType::EcPoint])
            .map_err(hsm)?;
        match attrs.into_iter().next() {
            // DER OCTET STRING around the point (SoftHSM, most tokens) or the raw point.
            Some(Attribute::EcPoint(v)) if v.len() == 67 && v[0] == 0x04 && v[1] == 65 => {
                Ok(v[2..].to_vec())
            }
            Some(Attribute::EcPoint(v)) if v.len() == 65 => Ok(v),
            _ => Err(hsm("CA public key has no usable EC point")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parsing() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=dcred%20backend;object=master?module-path=/usr/lib/x.so&pin-value=1234",
        )
        .unwrap();
        assert_eq!(
            (u.token.as_str(), u.object.as_str(), u.pin.as_str()),
            ("dcred backend", "master", "1234")
        );
        assert_eq!(u.module, PathBuf::from("/usr/lib/x.so"));
        assert!(!format!("{u:?}").contains("1234"), "Debug hides the PIN");
        assert!(
            Pkcs11Uri::parse("pkcs11:token=t;object=o?pin-value=1").is_err(),
            "module-path required"
        );
        assert!(Pkcs11Uri::parse("file:/x").is_err());
        assert!(Pkcs11Uri::parse("pkcs11:token=%zz;object=o?module-path=m&pin-value=1").is_err());
    }
}
