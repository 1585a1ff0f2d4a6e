//! The on-disk derived credential (written by `dcred enroll`, read by the
//! module): a versioned JSON file, mode 0600, written atomically.
//!
//! It holds the protocredential (handle, salt, KDF parameters, back-end
//! address and trust anchor), the certificates, and the private keys wrapped
//! with AES-256-GCM under the KWK (which only the back-end keeps), with
//! associated data binding the credential id and the object id. Nothing in it
//! depends on the PIN: no hash, no MAC, no PIN-keyed ciphertext — a copy of
//! the file gives no offline PIN oracle.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::messages::Bytes;

/// Format version.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing a credential.
#[derive(Debug)]
#[non_exhaustive]
pub enum CredentialError {
    /// File system.
    Io(std::io::Error),
    /// Not a credential file, or a newer format.
    Format(String),
    /// A wrapped key does not authenticate under this KWK.
    Unwrap,
}

impl std::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialError::Io(e) => write!(f, "{e}"),
            CredentialError::Format(e) => write!(f, "credential file: {e}"),
            CredentialError::Unwrap => {
                write!(f, "a wrapped key does not authenticate under the KWK")
            }
        }
    }
}

impl std::error::Error for CredentialError {}

impl From<std::io::Error> for CredentialError {
    fn from(e: std::io::Error) -> Self {
        CredentialError::Io(e)
    }
}

/// The role of an object, mirroring the PIV key slots (and their CKA_IDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Derived PIV authentication (CKA_ID 01, like 9A).
    Authentication,
    /// Derived digital signature (CKA_ID 02, like 9C).
    Signature,
    /// Current key management (CKA_ID 03, like 9D).
    KeyManagement,
    /// Retired key management n (CKA_ID 04 + n, like 82..).
    Retired(u8),
}

impl Role {
    /// The CKA_ID the module gives the objects of this role.
    pub fn ck_id(self) -> u8 {
        match self {
            Role::Authentication => 1,
            Role::Signature => 2,
            Role::KeyManagement => 3,
            Role::Retired(n) => 4u8.saturating_add(n),
        }
    }
}

/// How to reach the back-end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendRef {
    /// "host:port".
    pub address: String,
    /// DER of the trust anchor recorded at enrollment.
    pub trust_anchor: Bytes,
}

/// The PIN-regeneration parameters and the record handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Protocredential {
    /// Device record handle (32 bytes, secret).
    pub handle: Bytes,
    /// Salt (32 bytes).
    pub salt: Bytes,
    /// KDF name: "pbkdf2-hmac-sha256".
    pub kdf: String,
    /// KDF iteration count.
    pub iterations: u32,
}

/// A key and its certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Role (and so CKA_ID).
    pub role: Role,
    /// Certificate, DER.
    pub cert: Bytes,
    /// `nonce || AES-256-GCM(KWK, PKCS#8, aad)`.
    pub wrapped_key: Bytes,
}

/// A derived credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    /// Format version.
    pub version: u32,
    /// Public credential id (hex of 16 random bytes): the token serial, file name.
    pub id: String,
    /// Token label.
    pub label: String,
    /// Back-end.
    pub backend: BackendRef,
    /// Protocredential.
    pub protocredential: Protocredential,
    /// The issuing CA certificate, DER.
    pub ca_cert: Bytes,
    /// Keys and certificates.
    pub keys: Vec<KeyEntry>,
}

fn aad(id: &str, role: Role) -> Vec<u8> {
    let mut a = b"dcred-credential-v1\0".to_vec();
    a.extend_from_slice(id.as_bytes());
    a.push(0);
    a.push(role.ck_id());
    a
}

/// Wrap a PKCS#8 key for a credential and role.
pub fn wrap(kwk: &[u8; 32], id: &str, role: Role, pkcs8: &[u8]) -> Bytes {
    let cipher = Aes256Gcm::new(kwk.into());
    let nonce = crate::devicekey::random::<12>();
    let n = Nonce::try_from(nonce.as_ref()).expect("12-byte nonce");
    // AES-GCM encryption of a short message cannot fail.
    let ct = cipher
        .encrypt(
            &n,
            Payload {
                msg: pkcs8,
                aad: &aad(id, role),
            },
        )
        .expect("AES-GCM encryption");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Bytes(out)
}

/// Unwrap a key.
pub fn unwrap(
    kwk: &[u8],
    id: &str,
    role: Role,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CredentialError> {
    if kwk.len() != 32 || wrapped.len() < 28 {
        return Err(CredentialError::Unwrap);
    }
    let cipher = Aes256Gcm::new_from_slice(kwk).map_err(|_| CredentialError::Unwrap)?;
    let (nonce, ct) = wrapped.split_at(12);
    let n = Nonce::try_from(nonce).map_err(|_| CredentialError::Unwrap)?;
    cipher
        .decrypt(
            &n,
            Payload {
                msg: ct,
                aad: &aad(id, role),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| CredentialError::Unwrap)
}

impl Credential {
    /// Parse a credential file's text.
    pub fn parse(text: &[u8]) -> Result<Credential, CredentialError> {
        #[derive(Deserialize)]
        struct V {
            version: u32,
        }
        let v: V =
            serde_json::from_slice(text).map_err(|e| CredentialError::Format(e.to_string()))?;
        if v.version != FORMAT_VERSION {
            return Err(CredentialError::Format(format!(
                "format version {} is not supported (this build reads {FORMAT_VERSION})",
                v.version
            )));
        }
        serde_json::from_slice(text).map_err(|e| CredentialError::Format(e.to_string()))
    }

    /// Read a credential file.
    pub fn read(path: &Path) -> Result<Credential, CredentialError> {
        Self::parse(&std::fs::read(path)?)
    }

    /// Write atomically (temp file, fsync, rename), mode 0600.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, CredentialError> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = dir.join(format!("{}.json", self.id));
        let tmp = dir.join(format!(".{}.tmp{}", self.id, std::process::id()));
        let text =
            serde_json::to_vec_pretty(self).map_err(|e| CredentialError::Format(e.to_string()))?;
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(path)
    }
}

/// Where credentials live: `$DCRED_DATA_DIR` or `<data dir>/dcred/credentials`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("DCRED_DATA_DIR")
        .map(|d| PathBuf::from(d).join("credentials"))
        .or_else(|| dirs::data_dir().map(|d| d.join("dcred").join("credentials")))
}

/// Every credential in a directory (unreadable files are reported, not fatal).
pub fn list(dir: &Path) -> Vec<(PathBuf, Result<Credential, CredentialError>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let c = Credential::read(&p);
            (p, c)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credential {
        Credential {
            version: FORMAT_VERSION,
            id: "00112233445566778899aabbccddeeff".into(),
            label: "Jane Doe (derived)".into(),
            backend: BackendRef {
                address: "127.0.0.1:8443".into(),
                trust_anchor: Bytes(vec![1, 2, 3]),
            },
            protocredential: Protocredential {
                handle: Bytes(vec![7; 32]),
                salt: Bytes(vec![8; 32]),
                kdf: "pbkdf2-hmac-sha256".into(),
                iterations: 10,
            },
            ca_cert: Bytes(vec![]),
            keys: vec![],
        }
    }

    #[test]
    fn wrap_binds_credential_and_role() {
        let kwk = [5u8; 32];
        let w = wrap(&kwk, "cred-a", Role::Authentication, b"pkcs8");
        assert_eq!(
            &unwrap(&kwk, "cred-a", Role::Authentication, &w.0).unwrap()[..],
            b"pkcs8"
        );
        assert!(unwrap(&kwk, "cred-b", Role::Authentication, &w.0).is_err());
        assert!(unwrap(&kwk, "cred-a", Role::Signature, &w.0).is_err());
        assert!(unwrap(&[6u8; 32], "cred-a", Role::Authentication, &w.0).is_err());
        assert!(unwrap(&kwk, "cred-a", Role::Authentication, &w.0[..20]).is_err());
    }

    #[test]
    fn write_read_round_trip_0600() {
        let d = tempfile_dir();
        let c = sample();
        let p = c.write(&d).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = Credential::read(&p).unwrap();
        assert_eq!(back.protocredential.handle, c.protocredential.handle);
        assert_eq!(list(&d).len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn newer_format_is_refused_clearly() {
        let e = Credential::parse(br#"{"version":2}"#).unwrap_err();
        assert!(e.to_string().contains("format version 2"), "{e}");
        assert!(Credential::parse(b"junk").is_err());
    }

    #[test]
    fn roles_map_to_piv_ids() {
        assert_eq!(Role::Authentication.ck_id(), 1);
        assert_eq!(Role::Signature.ck_id(), 2);
        assert_eq!(Role::KeyManagement.ck_id(), 3);
        assert_eq!(Role::Retired(1).ck_id(), 5);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("dcred-cred-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
