//! The card's persistent state: one JSON file.
//!
//! **This is a test card: the state file holds the PIN, the PUK, the management key and every
//! private key in the clear** (PKCS#8 DER, hex). It is written with mode 0600, atomically
//! (temporary file, fsync, rename), but nothing else protects it. Never put a real key in it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The state file format version this code reads and writes.
pub const STATE_VERSION: u32 = 1;

/// A private key as stored: SP 800-78-4 algorithm identifier and PKCS#8 DER.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Algorithm identifier (`06` RSA-1024, `07` RSA-2048, `11` P-256, `14` P-384).
    pub alg: u8,
    /// PKCS#8 `PrivateKeyInfo`, hex.
    pub pkcs8: Zeroizing<String>,
}

/// Everything the card remembers across sessions.
#[derive(Clone, Serialize, Deserialize)]
pub struct State {
    /// Format version, always [`STATE_VERSION`].
    pub version: u32,
    /// Application label returned in the SELECT answer (tag `50`).
    pub label: String,
    /// Card serial number returned by the YubiKey GET SERIAL extension.
    pub serial: u32,
    /// PIV Card Application PIN (6–8 digits).
    pub pin: Zeroizing<String>,
    /// PIN Unblocking Key (8 digits).
    pub puk: Zeroizing<String>,
    /// PIN retry limit.
    pub pin_retries: u8,
    /// PIN tries left.
    pub pin_tries_left: u8,
    /// PUK retry limit.
    pub puk_retries: u8,
    /// PUK tries left.
    pub puk_tries_left: u8,
    /// Management key algorithm (`03` 3DES, `08` AES-128, `0A` AES-192, `0C` AES-256).
    pub mgmt_alg: u8,
    /// Management key, hex.
    pub mgmt_key: Zeroizing<String>,
    /// Data objects by tag (lower-case hex, e.g. `5fc102`), value hex (the content of `53`).
    pub objects: BTreeMap<String, String>,
    /// Private keys by key reference (lower-case hex, e.g. `9a`).
    pub keys: BTreeMap<String, StoredKey>,
}

/// Never prints secrets.
impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("label", &self.label)
            .field("pin_tries_left", &self.pin_tries_left)
            .field("puk_tries_left", &self.puk_tries_left)
            .field("objects", &self.objects.keys().collect::<Vec<_>>())
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The YubiKey default management key, so that yubico-piv-tool works without `-k`.
pub const DEFAULT_MGMT_KEY: &str = "010203040506070801020304050607080102030405060708";

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            label: "dcred virtual PIV".to_owned(),
            serial: 0,
            pin: Zeroizing::new("123456".to_owned()),
            puk: Zeroizing::new("12345678".to_owned()),
            pin_retries: 3,
            pin_tries_left: 3,
            puk_retries: 3,
            puk_tries_left: 3,
            mgmt_alg: 0x03,
            mgmt_key: Zeroizing::new(DEFAULT_MGMT_KEY.to_owned()),
            objects: BTreeMap::new(),
            keys: BTreeMap::new(),
        }
    }
}

/// Why the state file could not be read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// File system error (path, cause).
    Io(PathBuf, std::io::Error),
    /// The file is not valid state JSON (path, cause).
    Json(PathBuf, serde_json::Error),
    /// The file has another format version.
    Version(PathBuf, u32),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            StateError::Json(p, e) => write!(f, "{}: invalid state file: {e}", p.display()),
            StateError::Version(p, v) => write!(
                f,
                "{}: state version {v} is not supported (expected {STATE_VERSION})",
                p.display()
            ),
        }
    }
}

impl std::error::Error for StateError {}

impl State {
    /// Reads a state file.
    pub fn load(path: &Path) -> Result<State, StateError> {
        let text = Zeroizing::new(
            fs::read_to_string(path).map_err(|e| StateError::Io(path.to_owned(), e))?,
        );
        let state: State =
            serde_json::from_str(&text).map_err(|e| StateError::Json(path.to_owned(), e))?;
        if state.version != STATE_VERSION {
            return Err(StateError::Version(path.to_owned(), state.version));
        }
        Ok(state)
    }

    /// Writes the state file atomically: temporary file (mode 0600), fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |e| StateError::Io(path.to_owned(), e);
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(self).map_err(|e| StateError::Json(path.to_owned(), e))?,
        );
        write_atomic(path, &json, 0o600).map_err(io)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        fs::File::open(&dir).and_then(|d| d.sync_all())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex (either case); `None` on odd length or a non-hex digit.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0x5F, 0xC1, 0x02]), "5fc102");
        assert_eq!(unhex("5FC102"), Some(vec![0x5F, 0xC1, 0x02]));
        assert_eq!(unhex("5FC10"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é1"), None);
    }

    #[test]
    fn state_round_trip_is_atomic_and_private() {
        let dir = std::env::temp_dir().join(format!("piv-sim-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("card.json");
        let mut st = State::default();
        st.objects.insert("5fc102".into(), "3000".into());
        st.keys.insert(
            "9a".into(),
            StoredKey {
                alg: 0x11,
                pkcs8: Zeroizing::new("00".into()),
            },
        );
        st.pin_tries_left = 1;
        st.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let back = State::load(&path).unwrap();
        assert_eq!(back.pin_tries_left, 1);
        assert_eq!(back.objects, st.objects);
        assert_eq!(back.keys["9a"].alg, 0x11);
        assert!(fs::read_to_string(&path)
            .unwrap()
            .contains("\"version\": 1"));
        // Only the state file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        let v2 = fs::read_to_string(&path)
            .unwrap()
            .replace("\"version\": 1", "\"version\": 2");
        fs::write(&path, v2).unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Version(_, 2))));
        fs::write(&path, "{").unwrap();
        assert!(matches!(State::load(&path), Err(StateError::Json(..))));
        fs::remove_dir_all(&dir).unwrap();
    }
}
