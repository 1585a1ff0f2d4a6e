//! The back-end's own secrets: the master key that wraps stored KWKs and the
//! MAC key that turns a device's public key `Q` into the value stored (so the
//! database never holds `Q` or anything PIN-derived in the clear). By default
//! both are 32-byte files, mode 0600, in the data directory; with
//! `keys.json` (written by `init --master-key URI --mac-key URI`) they are
//! keys inside a PKCS#11 token and never leave it.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::hsm::{Hsm, KeyKind, Pkcs11Uri};
use crate::{write_private, Error, Result};

/// File names in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// MAC key file.
pub const MAC_KEY_FILE: &str = "mac.key";

/// Where the HSM key URIs are recorded in the data directory.
pub const HSM_CONFIG: &str = "keys.json";

/// The key URIs of an HSM-backed back-end.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HsmConfig {
    /// Master key (AES-256).
    pub master: String,
    /// MAC key (generic secret).
    pub mac: String,
    /// Issuing CA key (EC P-256).
    pub ca: String,
}

impl HsmConfig {
    /// Read `keys.json` if present.
    pub fn load(dir: &Path) -> Result<Option<HsmConfig>> {
        match std::fs::read(dir.join(HSM_CONFIG)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Keys(format!("{HSM_CONFIG}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Open the token and make sure the three keys exist (generated inside it if not).
    pub fn open(&self) -> Result<(std::sync::Arc<Hsm>, [String; 3])> {
        let uris = [
            Pkcs11Uri::parse(&self.master)?,
            Pkcs11Uri::parse(&self.mac)?,
            Pkcs11Uri::parse(&self.ca)?,
        ];
        if uris
            .iter()
            .any(|u| u.module != uris[0].module || u.token != uris[0].token)
        {
            return Err(Error::Usage(
                "the three key URIs must name the same module and token".into(),
            ));
        }
        let hsm = Hsm::open(&uris[0])?;
        hsm.ensure(&uris[0].object, KeyKind::Aes)?;
        hsm.ensure(&uris[1].object, KeyKind::Hmac)?;
        hsm.ensure(&uris[2].object, KeyKind::EcP256)?;
        let [a, b, c] = uris;
        Ok((std::sync::Arc::new(hsm), [a.object, b.object, c.object]))
    }
}

enum Store {
    Files {
        master: Zeroizing<[u8; 32]>,
        mac: Zeroizing<[u8; 32]>,
    },
    Hsm {
        hsm: std::sync::Arc<Hsm>,
        master: String,
        mac: String,
    },
}

/// The back-end's keys.
pub struct Keys {
    store: Store,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

fn read_key(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    let bytes = Zeroizing::new(
        std::fs::read(path).map_err(|e| Error::Keys(format!("{}: {e}", path.display())))?,
    );
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::Keys(format!("{}: not a 32-byte key", path.display())))?;
    Ok(Zeroizing::new(key))
}

impl Keys {
    /// Create fresh keys in `dir` (fails if they exist: never overwrite a key).
    pub fn create(dir: &Path) -> Result<()> {
        for name in [MASTER_KEY_FILE, MAC_KEY_FILE] {
            let path = dir.join(name);
            if path.exists() {
                return Err(Error::Keys(format!(
                    "{} exists; refusing to replace it",
                    path.display()
                )));
            }
            let key = dcred_protocol::devicekey::random::<32>();
            write_private(&path, key.as_ref())?;
        }
        Ok(())
    }

    /// Load the keys from `dir` (the HSM when `keys.json` names one).
    pub fn load(dir: &Path) -> Result<Keys> {
        if let Some(cfg) = HsmConfig::load(dir)? {
            let (hsm, [master, mac, _]) = cfg.open()?;
            return Ok(Keys {
                store: Store::Hsm { hsm, master, mac },
            });
        }
        Ok(Keys {
            store: Store::Files {
                master: read_key(&dir.join(MASTER_KEY_FILE))?,
                mac: read_key(&dir.join(MAC_KEY_FILE))?,
            },
        })
    }

    /// The HSM and the CA key's label, when the keys live in a token.
    pub fn hsm_ca(&self, dir: &Path) -> Result<Option<(std::sync::Arc<Hsm>, String)>> {
        match (&self.store, HsmConfig::load(dir)?) {
            (Store::Hsm { hsm, .. }, Some(cfg)) => {
                Ok(Some((hsm.clone(), Pkcs11Uri::parse(&cfg.ca)?.object)))
            }
            _ => Ok(None),
        }
    }

    /// Keys from raw bytes (tests).
    pub fn from_bytes(master: [u8; 32], mac: [u8; 32]) -> Keys {
        Keys {
            store: Store::Files {
                master: Zeroizing::new(master),
                mac: Zeroizing::new(mac),
            },
        }
    }

    /// HMAC-SHA256 of a device public key.
    pub fn mac_q(&self, q: &[u8]) -> Result<Vec<u8>> {
        match &self.store {
            Store::Files { mac, .. } => {
                let mut m = Hmac::<Sha256>::new_from_slice(mac.as_ref())
                    .expect("HMAC takes any key length");
                m.update(q);
                Ok(m.finalize().into_bytes().to_vec())
            }
            Store::Hsm { hsm, mac, .. } => hsm.hmac(mac, q),
        }
    }

    /// Compare a presented `Q` with a stored MAC, in constant time.
    pub fn check_q(&self, q: &[u8], stored_mac: &[u8]) -> Result<bool> {
        Ok(bool::from(self.mac_q(q)?.ct_eq(stored_mac)))
    }

    /// Wrap a KWK for storage: `nonce || AES-256-GCM(master, kwk, aad = record id)`.
    pub fn wrap_kwk(&self, record_id: &[u8], kwk: &[u8]) -> Result<Vec<u8>> {
        let master = match &self.store {
            Store::Files { master, .. } => master,
            Store::Hsm { hsm, master, .. } => return hsm.seal(master, record_id, kwk),
        };
        let cipher = Aes256Gcm::new_from_slice(master.as_ref())
            .map_err(|_| Error::Keys("master key".into()))?;
        let nonce = dcred_protocol::devicekey::random::<12>();
        let ct = cipher
            .encrypt(
                &Nonce::try_from(nonce.as_ref()).map_err(|_| Error::Keys("nonce".into()))?,
                Payload {
                    msg: kwk,
                    aad: record_id,
                },
            )
            .map_err(|_| Error::Keys("wrapping failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Unwrap a stored KWK.
    pub fn unwrap_kwk(&self, record_id: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < 12 + 16 {
            return Err(Error::Keys("wrapped KWK too short".into()));
        }
        let master = match &self.store {
            Store::Files { master, .. } => master,
            Store::Hsm { hsm, master, .. } => return hsm.open_sealed(master, record_id, wrapped),
        };
        let cipher = Aes256Gcm::new_from_slice(master.as_ref())
            .map_err(|_| Error::Keys("master key".into()))?;
        let (nonce, ct) = wrapped.split_at(12);
        cipher
            .decrypt(
                &Nonce::try_from(nonce).map_err(|_| Error::Keys("nonce".into()))?,
                Payload {
                    msg: ct,
                    aad: record_id,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Keys(
                    "stored KWK does not authenticate (wrong master key or tampered record)".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwk_wrap_is_bound_to_the_record() {
        let k = Keys::from_bytes([1; 32], [2; 32]);
        let w = k.wrap_kwk(b"rec-a", &[9; 32]).unwrap();
        assert_eq!(&k.unwrap_kwk(b"rec-a", &w).unwrap()[..], &[9; 32]);
        assert!(
            k.unwrap_kwk(b"rec-b", &w).is_err(),
            "moved to another record"
        );
        let other = Keys::from_bytes([3; 32], [2; 32]);
        assert!(other.unwrap_kwk(b"rec-a", &w).is_err(), "other master key");
    }

    #[test]
    fn q_mac_checks() {
        let k = Keys::from_bytes([1; 32], [2; 32]);
        let m = k.mac_q(b"Q").unwrap();
        assert!(k.check_q(b"Q", &m).unwrap());
        assert!(!k.check_q(b"R", &m).unwrap());
        assert_ne!(m, Keys::from_bytes([1; 32], [3; 32]).mac_q(b"Q").unwrap());
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        Keys::create(d.path()).unwrap();
        Keys::load(d.path()).unwrap();
        assert!(Keys::create(d.path()).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
