//! Provisioning: builds or updates a state file from PINs, keys and certificates made with
//! openssl, and creates the CHUID, CCC, Discovery and Key History objects.

use std::collections::btree_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::card::{Card, CardError};
use crate::keys::{KeyError, PrivateKey};
use crate::mgmt::{self, MgmtKeyError};
use crate::objects;
use crate::state::{hex, State, StateError, StoredKey};
use crate::tlv;

/// One `--slot` group: a key reference with an optional key and certificate file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotSpec {
    /// Key reference (`9a`, `9c`, `9d`, `9e`, `82`–`95`).
    pub key_ref: u8,
    /// Private key file (PEM PKCS#8, PKCS#1 or SEC1, or DER).
    pub key: Option<PathBuf>,
    /// Certificate file (PEM or DER).
    pub cert: Option<PathBuf>,
}

/// What `piv-sim provision` was asked to do.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProvisionOptions {
    /// The state file to create or update.
    pub state: PathBuf,
    /// New PIN.
    pub pin: Option<String>,
    /// New PUK.
    pub puk: Option<String>,
    /// PIN retry limit (also resets the counter).
    pub pin_retries: Option<u8>,
    /// PUK retry limit (also resets the counter).
    pub puk_retries: Option<u8>,
    /// Application label.
    pub label: Option<String>,
    /// Serial number.
    pub serial: Option<u32>,
    /// Management key algorithm identifier and key.
    pub mgmt_key: Option<(u8, Vec<u8>)>,
    /// Keys and certificates to install.
    pub slots: Vec<SlotSpec>,
}

/// PINs and keys are never printed.
impl fmt::Debug for ProvisionOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionOptions")
            .field("state", &self.state)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// Why provisioning failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProvisionError {
    /// Reading or writing the state file failed.
    State(StateError),
    /// An input file could not be read (path, cause).
    Read(PathBuf, std::io::Error),
    /// A key file is unusable (path, cause).
    Key(PathBuf, KeyError),
    /// A certificate file is unusable (path, description).
    Cert(PathBuf, String),
    /// The management key is unusable.
    Mgmt(MgmtKeyError),
    /// Another invalid option (description).
    Invalid(String),
    /// The resulting state does not load as a card.
    Card(CardError),
}

impl fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProvisionError::State(e) => e.fmt(f),
            ProvisionError::Read(p, e) => write!(f, "{}: {e}", p.display()),
            ProvisionError::Key(p, e) => write!(f, "{}: {e}", p.display()),
            ProvisionError::Cert(p, e) => write!(f, "{}: {e}", p.display()),
            ProvisionError::Mgmt(e) => e.fmt(f),
            ProvisionError::Invalid(s) => f.write_str(s),
            ProvisionError::Card(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProvisionError {}

/// Creates or updates the state file; returns the saved state.
pub fn provision(opts: &ProvisionOptions) -> Result<State, ProvisionError> {
    let mut state = if opts.state.exists() {
        State::load(&opts.state).map_err(ProvisionError::State)?
    } else {
        let mut serial = [0u8; 4];
        getrandom::fill(&mut serial).map_err(|e| ProvisionError::Invalid(e.to_string()))?;
        State {
            // Keep it a positive 31-bit number, as YubiKey serials are.
            serial: u32::from_be_bytes(serial) & 0x7FFF_FFFF,
            ..State::default()
        }
    };
    apply_options(&mut state, opts)?;
    for slot in &opts.slots {
        install_slot(&mut state, slot)?;
    }
    ensure_standard_objects(&mut state)?;
    // Refuse to write a state the card would not load.
    Card::new(state.clone(), None).map_err(ProvisionError::Card)?;
    state.save(&opts.state).map_err(ProvisionError::State)?;
    Ok(state)
}

fn apply_options(state: &mut State, opts: &ProvisionOptions) -> Result<(), ProvisionError> {
    let pin_ok = |p: &str, what: &str| {
        if crate::card::valid_pin(p) {
            Ok(Zeroizing::new(p.to_owned()))
        } else {
            Err(ProvisionError::Invalid(format!(
                "{what} must be 6 to 8 digits"
            )))
        }
    };
    if let Some(pin) = &opts.pin {
        state.pin = pin_ok(pin, "PIN")?;
        state.pin_tries_left = state.pin_retries;
    }
    if let Some(puk) = &opts.puk {
        state.puk = pin_ok(puk, "PUK")?;
        state.puk_tries_left = state.puk_retries;
    }
    let retries_ok = |n: u8| {
        if (1..=15).contains(&n) {
            Ok(n)
        } else {
            Err(ProvisionError::Invalid(
                "retry limits must be 1 to 15".into(),
            ))
        }
    };
    if let Some(n) = opts.pin_retries {
        state.pin_retries = retries_ok(n)?;
        state.pin_tries_left = n;
    }
    if let Some(n) = opts.puk_retries {
        state.puk_retries = retries_ok(n)?;
        state.puk_tries_left = n;
    }
    if let Some(label) = &opts.label {
        state.label.clone_from(label);
    }
    if let Some(serial) = opts.serial {
        state.serial = serial;
    }
    if let Some((alg, key)) = &opts.mgmt_key {
        mgmt::MgmtKey::new(*alg, key).map_err(ProvisionError::Mgmt)?;
        state.mgmt_alg = *alg;
        state.mgmt_key = Zeroizing::new(hex(key));
    }
    Ok(())
}

fn install_slot(state: &mut State, slot: &SlotSpec) -> Result<(), ProvisionError> {
    let Some(cert_tag) = objects::cert_tag(slot.key_ref) else {
        return Err(ProvisionError::Invalid(format!(
            "{:02x} is not a key slot (9a 9c 9d 9e 82..95)",
            slot.key_ref
        )));
    };
    if let Some(path) = &slot.key {
        let bytes = Zeroizing::new(read(path)?);
        let key = parse_private_key(&bytes).map_err(|e| ProvisionError::Key(path.clone(), e))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| ProvisionError::Key(path.clone(), e))?;
        state.keys.insert(
            hex(&[slot.key_ref]),
            StoredKey {
                alg: key.algorithm(),
                pkcs8: Zeroizing::new(hex(&der)),
            },
        );
    }
    if let Some(path) = &slot.cert {
        let der =
            parse_certificate(&read(path)?).map_err(|e| ProvisionError::Cert(path.clone(), e))?;
        state.objects.insert(
            objects::tag_name(cert_tag),
            hex(&objects::cert_object(&der)),
        );
    }
    Ok(())
}

/// Creates the CHUID and CCC (once: their random identifiers stay), the Discovery object,
/// and recounts the Key History object from the retired slots that have a certificate.
fn ensure_standard_objects(state: &mut State) -> Result<(), ProvisionError> {
    let random = |n: usize| {
        let mut v = vec![0u8; n];
        getrandom::fill(&mut v)
            .map(|()| v)
            .map_err(|e| ProvisionError::Invalid(e.to_string()))
    };
    if let Entry::Vacant(e) = state.objects.entry(objects::tag_name(objects::TAG_CHUID)) {
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&random(16)?);
        e.insert(hex(&objects::chuid(&guid)));
    }
    if let Entry::Vacant(e) = state.objects.entry(objects::tag_name(objects::TAG_CCC)) {
        let mut id = [0u8; 14];
        id.copy_from_slice(&random(14)?);
        e.insert(hex(&objects::ccc(&id)));
    }
    state.objects.insert(
        objects::tag_name(objects::TAG_DISCOVERY),
        hex(&objects::discovery()),
    );
    let on_card = (objects::KEY_RETIRED_FIRST..=objects::KEY_RETIRED_LAST)
        .filter_map(objects::cert_tag)
        .filter(|&t| state.objects.contains_key(&objects::tag_name(t)))
        .count() as u8;
    state.objects.insert(
        objects::tag_name(objects::TAG_KEY_HISTORY),
        hex(&objects::key_history(on_card)),
    );
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, ProvisionError> {
    std::fs::read(path).map_err(|e| ProvisionError::Read(path.to_owned(), e))
}

/// A decoded PEM block: its label and DER contents.
type PemBlock = (String, Zeroizing<Vec<u8>>);

/// Splits PEM text into blocks; text outside blocks is ignored.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let label_end = block["-----BEGIN ".len()..]
            .find("-----")
            .ok_or("unterminated PEM header")?;
        let label = &block["-----BEGIN ".len().."-----BEGIN ".len() + label_end];
        let footer = format!("-----END {label}-----");
        let end = block.find(&footer).ok_or("PEM block without END line")? + footer.len();
        let (found, der) = pem_rfc7468::decode_vec(&block.as_bytes()[..end])
            .map_err(|e| format!("bad PEM block {label}: {e}"))?;
        out.push((found.to_owned(), Zeroizing::new(der)));
        rest = &block[end..];
    }
    Ok(out)
}

/// Reads a private key: PEM `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1),
/// `EC PRIVATE KEY` (SEC1; an `EC PARAMETERS` block before it is skipped), or DER.
pub fn parse_private_key(bytes: &[u8]) -> Result<PrivateKey, KeyError> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN "));
    let Some(text) = text else {
        return PrivateKey::from_pkcs8_der(bytes)
            .or_else(|_| PrivateKey::from_pkcs1_der(bytes))
            .or_else(|_| PrivateKey::from_sec1_der(bytes));
    };
    for (label, der) in pem_blocks(text).map_err(KeyError::Encoding)? {
        match label.as_str() {
            "PRIVATE KEY" => return PrivateKey::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => return PrivateKey::from_pkcs1_der(&der),
            "EC PRIVATE KEY" => return PrivateKey::from_sec1_der(&der),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyError::Encoding(
                    "encrypted keys are not supported; use openssl pkey to decrypt".into(),
                ))
            }
            _ => {}
        }
    }
    Err(KeyError::Encoding("no private key block found".into()))
}

/// Reads a certificate: PEM `CERTIFICATE` or DER. Only the outer DER framing is checked.
pub fn parse_certificate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let der = match std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN "))
    {
        Some(text) => pem_blocks(text)?
            .into_iter()
            .find(|(label, _)| label == "CERTIFICATE")
            .map(|(_, der)| der.to_vec())
            .ok_or("no CERTIFICATE block found")?,
        None => bytes.to_vec(),
    };
    tlv::parse_single(&der, 0x30).map_err(|e| format!("not a DER certificate: {e}"))?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ALG_ECC_P256, ALG_ECC_P384};

    fn pem(label: &str, der: &[u8]) -> String {
        pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap()
    }

    #[test]
    fn parses_key_formats() {
        let key = PrivateKey::generate(ALG_ECC_P256).unwrap();
        let PrivateKey::P256(sk) = &key else {
            unreachable!()
        };
        let pkcs8 = key.to_pkcs8_der().unwrap();
        let sec1 = sk.to_sec1_der().unwrap();
        for input in [
            pem("PRIVATE KEY", &pkcs8).into_bytes(),
            format!(
                "{}{}",
                pem(
                    "EC PARAMETERS",
                    &[6, 8, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 3, 1, 7]
                ),
                pem("EC PRIVATE KEY", &sec1)
            )
            .into_bytes(),
            pkcs8.to_vec(),
            sec1.to_vec(),
        ] {
            let back = parse_private_key(&input).unwrap();
            assert_eq!(back.public_template(), key.public_template());
        }
        let p384 = PrivateKey::generate(ALG_ECC_P384).unwrap();
        let PrivateKey::P384(sk) = &p384 else {
            unreachable!()
        };
        let back = parse_private_key(pem("EC PRIVATE KEY", &sk.to_sec1_der().unwrap()).as_bytes());
        assert_eq!(back.unwrap().algorithm(), ALG_ECC_P384);
        assert!(parse_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n").is_err());
        assert!(parse_private_key(b"junk").is_err());
    }

    #[test]
    fn parses_certificates() {
        let der = vec![0x30, 3, 2, 1, 5];
        assert_eq!(parse_certificate(&der).unwrap(), der);
        assert_eq!(
            parse_certificate(pem("CERTIFICATE", &der).as_bytes()).unwrap(),
            der
        );
        assert!(parse_certificate(&[0x30, 9, 1]).is_err());
    }

    #[test]
    fn provisions_and_reprovisions() {
        let dir = std::env::temp_dir().join(format!("piv-sim-prov-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = PrivateKey::generate(ALG_ECC_P256).unwrap();
        std::fs::write(
            dir.join("k.pem"),
            pem("PRIVATE KEY", &key.to_pkcs8_der().unwrap()),
        )
        .unwrap();
        std::fs::write(dir.join("c.der"), [0x30, 3, 2, 1, 5]).unwrap();
        let mut opts = ProvisionOptions {
            state: dir.join("card.json"),
            pin: Some("654321".into()),
            pin_retries: Some(5),
            slots: vec![SlotSpec {
                key_ref: 0x83,
                key: Some(dir.join("k.pem")),
                cert: Some(dir.join("c.der")),
            }],
            ..ProvisionOptions::default()
        };
        let st = provision(&opts).unwrap();
        assert_eq!(
            (st.pin.as_str(), st.pin_retries, st.pin_tries_left),
            ("654321", 5, 5)
        );
        assert_eq!(st.keys["83"].alg, ALG_ECC_P256);
        assert_eq!(
            st.objects["5fc10e"],
            hex(&objects::cert_object(&[0x30, 3, 2, 1, 5]))
        );
        assert_eq!(st.objects["5fc10c"], hex(&objects::key_history(1)));
        let guid = st.objects["5fc102"].clone();
        // Re-provisioning keeps the CHUID and PIN, adds the new slot.
        opts.pin = None;
        opts.pin_retries = None;
        opts.slots[0].key_ref = 0x9E;
        let st = provision(&opts).unwrap();
        assert_eq!(st.objects["5fc102"], guid);
        assert_eq!(st.pin.as_str(), "654321");
        assert!(st.keys.contains_key("83") && st.keys.contains_key("9e"));
        assert!(st.objects.contains_key("7e") && st.objects.contains_key("5fc107"));
        opts.slots[0].key_ref = 0x9B;
        assert!(provision(&opts).is_err());
        opts.slots.clear();
        opts.pin = Some("12".into());
        assert!(provision(&opts).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
