//! The back-end's own secrets: the master key that wraps stored KWKs and the
//! MAC key that turns a device's public key `Q` into the value stored (so the
//! database never holds `Q` or anything PIN-derived in the clear). Both are
//! 32-byte files, mode 0600, in the data directory. (PKCS#11 HSM keys: to come.)

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{write_private, Error, Result};

/// File names in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// MAC key file.
pub const MAC_KEY_FILE: &str = "mac.key";

/// The back-end's keys.
pub struct Keys {
    master: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
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

    /// Load the keys from `dir`.
    pub fn load(dir: &Path) -> Result<Keys> {
        Ok(Keys {
            master: read_key(&dir.join(MASTER_KEY_FILE))?,
            mac: read_key(&dir.join(MAC_KEY_FILE))?,
        })
    }

    /// Keys from raw bytes (tests).
    pub fn from_bytes(master: [u8; 32], mac: [u8; 32]) -> Keys {
        Keys {
            master: Zeroizing::new(master),
            mac: Zeroizing::new(mac),
        }
    }

    /// HMAC-SHA256 of a device public key.
    pub fn mac_q(&self, q: &[u8]) -> Vec<u8> {
        let mut m =
            Hmac::<Sha256>::new_from_slice(self.mac.as_ref()).expect("HMAC takes any key length");
        m.update(q);
        m.finalize().into_bytes().to_vec()
    }

    /// Compare a presented `Q` with a stored MAC, in constant time.
    pub fn check_q(&self, q: &[u8], stored_mac: &[u8]) -> bool {
        bool::from(self.mac_q(q).ct_eq(stored_mac))
    }

    /// Wrap a KWK for storage: `nonce || AES-256-GCM(master, kwk, aad = record id)`.
    pub fn wrap_kwk(&self, record_id: &[u8], kwk: &[u8]) -> Result<Vec<u8>> {
        let cipher = Aes256Gcm::new_from_slice(self.master.as_ref())
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
        let cipher = Aes256Gcm::new_from_slice(self.master.as_ref())
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
        let m = k.mac_q(b"Q");
        assert!(k.check_q(b"Q", &m));
        assert!(!k.check_q(b"R", &m));
        assert_ne!(m, Keys::from_bytes([1; 32], [3; 32]).mac_q(b"Q"));
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
