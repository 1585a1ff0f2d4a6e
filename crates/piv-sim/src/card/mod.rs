//! The PIV Card Application (SP 800-73-4 Part 2 §3): command dispatch, SELECT, GET DATA,
//! PUT DATA, GENERATE ASYMMETRIC KEY PAIR and the YubiKey extensions yubico-piv-tool sends.
//! PIN handling is in [`pin`], GENERAL AUTHENTICATE in [`auth`].

mod auth;
mod pin;

pub use pin::{pad as pad_pin, valid_pin};

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::apdu::{Command, Response, Sw};
use crate::exchange::Application;
use crate::keys::{self, KeyError, PrivateKey};
use crate::mgmt::{self, MgmtKey, MgmtKeyError};
use crate::objects;
use crate::state::{hex, unhex, State, StateError, StoredKey};
use crate::tlv;

/// Firmware version reported by GET VERSION. 4.3.5 is a YubiKey 4 version after the ROCA
/// range (4.2.6–4.3.4, for which yubico-piv-tool refuses on-card RSA generation) and before
/// 5.x, for which yubico-piv-tool expects GET METADATA and GET SERIAL via the PIV applet.
pub const FIRMWARE_VERSION: [u8; 3] = [4, 3, 5];

/// The YubiKey OTP application AID; yubico-piv-tool selects it to read the serial number of
/// a YubiKey 4 (then selects PIV again).
const YUBICO_OTP_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x05, 0x27, 0x20, 0x01];

/// `65 81` — memory failure (the state file could not be written).
const SW_MEMORY_FAILURE: Sw = Sw(0x6581);

/// Largest data object PUT DATA stores (a real card has a few KiB per object; this also
/// keeps every answer within one vpcd frame).
const MAX_OBJECT: usize = 16 * 1024;

/// Why a card could not be built from its state.
#[derive(Debug)]
#[non_exhaustive]
pub enum CardError {
    /// Reading or writing the state file failed.
    State(StateError),
    /// A stored key is unusable (key reference, cause).
    Key(String, KeyError),
    /// The management key is unusable.
    Mgmt(MgmtKeyError),
    /// A field of the state is malformed (description).
    Invalid(String),
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardError::State(e) => e.fmt(f),
            CardError::Key(slot, e) => write!(f, "key {slot}: {e}"),
            CardError::Mgmt(e) => e.fmt(f),
            CardError::Invalid(s) => write!(f, "invalid state: {s}"),
        }
    }
}

impl std::error::Error for CardError {}

impl From<StateError> for CardError {
    fn from(e: StateError) -> Self {
        CardError::State(e)
    }
}

/// The application currently selected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Applet {
    /// The PIV Card Application (selected by default after reset, as on a YubiKey).
    #[default]
    Piv,
    /// The YubiKey OTP application (only answers the serial number query).
    YubicoOtp,
}

/// A management key authentication in progress (SP 800-73-4 Part 2 Appendix A.1).
enum Pending {
    /// Mutual authentication: the witness the card encrypted for the host.
    Witness(Zeroizing<Vec<u8>>),
    /// External authentication: the challenge the card sent in clear.
    Challenge(Vec<u8>),
}

/// Security status that lasts until reset, power-off or deselection.
#[derive(Default)]
struct Session {
    applet: Applet,
    pin_verified: bool,
    /// Set by a successful VERIFY; consumed by the next command (PIN-always key `9C`).
    pin_always: bool,
    mgmt_authenticated: bool,
    /// A pending management key challenge; valid for the next command only.
    mgmt_pending: Option<Pending>,
}

/// The virtual card: persistent state plus the current session.
pub struct Card {
    state: State,
    keys: BTreeMap<u8, PrivateKey>,
    mgmt: MgmtKey,
    path: Option<PathBuf>,
    session: Session,
}

impl fmt::Debug for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("state", &self.state)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Card {
    /// Builds a card from a state; when `path` is given, every change is written back to it.
    pub fn new(state: State, path: Option<PathBuf>) -> Result<Card, CardError> {
        let mgmt_key = unhex(&state.mgmt_key)
            .map(Zeroizing::new)
            .ok_or_else(|| CardError::Invalid("management key is not hex".into()))?;
        let mgmt = MgmtKey::new(state.mgmt_alg, &mgmt_key).map_err(CardError::Mgmt)?;
        let mut keys = BTreeMap::new();
        for (name, stored) in &state.keys {
            let key_ref = unhex(name)
                .and_then(|b| <[u8; 1]>::try_from(b).ok())
                .map(|[b]| b)
                .filter(|&b| objects::is_key_slot(b))
                .ok_or_else(|| CardError::Invalid(format!("bad key reference {name:?}")))?;
            let der = unhex(&stored.pkcs8)
                .map(Zeroizing::new)
                .ok_or_else(|| CardError::Invalid(format!("key {name} is not hex")))?;
            let key =
                PrivateKey::from_pkcs8_der(&der).map_err(|e| CardError::Key(name.clone(), e))?;
            if key.algorithm() != stored.alg {
                return Err(CardError::Invalid(format!(
                    "key {name}: algorithm {:02X} does not match the key",
                    stored.alg
                )));
            }
            keys.insert(key_ref, key);
        }
        for name in state.objects.keys() {
            if objects::parse_tag_name(name).is_none() {
                return Err(CardError::Invalid(format!("bad object tag {name:?}")));
            }
        }
        Ok(Card {
            state,
            keys,
            mgmt,
            path,
            session: Session::default(),
        })
    }

    /// Opens the card stored at `path`.
    pub fn open(path: PathBuf) -> Result<Card, CardError> {
        let state = State::load(&path)?;
        Card::new(state, Some(path))
    }

    /// The persistent state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Power off, power on or reset: the security status is lost, as on a real card.
    pub fn reset(&mut self) {
        self.session = Session::default();
    }

    /// Writes the state back to its file, if it has one.
    fn persist(&mut self) -> Result<(), Sw> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        self.state.save(path).map_err(|e| {
            eprintln!("piv-sim: cannot save state: {e}");
            SW_MEMORY_FAILURE
        })
    }

    /// Stores a key in a slot (state and in-memory copy).
    fn store_key(&mut self, key_ref: u8, key: PrivateKey) -> Result<(), Sw> {
        let der = key.to_pkcs8_der().map_err(|_| SW_MEMORY_FAILURE)?;
        self.state.keys.insert(
            hex(&[key_ref]),
            StoredKey {
                alg: key.algorithm(),
                pkcs8: Zeroizing::new(hex(&der)),
            },
        );
        self.keys.insert(key_ref, key);
        self.persist()
    }

    fn object(&self, tag: u32) -> Option<Vec<u8>> {
        self.state
            .objects
            .get(&objects::tag_name(tag))
            .and_then(|h| unhex(h))
    }

    fn dispatch(&mut self, cmd: &Command, pin_always: bool, pending: Option<Pending>) -> Response {
        if cmd.cla & !0x10 != 0 {
            return Sw::CLA_NOT_SUPPORTED.into();
        }
        if cmd.ins == 0xA4 {
            return self.select(cmd);
        }
        if self.session.applet == Applet::YubicoOtp {
            return match (cmd.ins, cmd.p1) {
                (0x01, 0x10) => Response::ok(self.state.serial.to_be_bytes().to_vec()),
                _ => Sw::INS_NOT_SUPPORTED.into(),
            };
        }
        match cmd.ins {
            0xCB => self.get_data(cmd),
            0xDB => self.put_data(cmd),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference_data(cmd),
            0x2C => self.reset_retry_counter(cmd),
            0x87 => self.general_authenticate(cmd, pin_always, pending),
            0x47 => self.generate(cmd),
            // YubiKey GET VERSION and GET SERIAL.
            0xFD => Response::ok(FIRMWARE_VERSION.to_vec()),
            0xF8 => Response::ok(self.state.serial.to_be_bytes().to_vec()),
            _ => Sw::INS_NOT_SUPPORTED.into(),
        }
    }

    /// SELECT (SP 800-73-4 Part 2 §3.1.1): by AID only; the PIV AID may be truncated to
    /// 9 bytes (no version).
    fn select(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0x04 {
            return Sw::NOT_FOUND.into();
        }
        let aid = &cmd.data[..];
        if aid.len() >= objects::PIV_AID_MIN && objects::PIV_AID.starts_with(aid) {
            if self.session.applet != Applet::Piv {
                self.session = Session::default();
            }
            if cmd.p2 == 0x0C {
                return Sw::OK.into();
            }
            return Response::ok(objects::application_property_template(
                &self.state.label,
                &[
                    mgmt::ALG_3DES,
                    mgmt::ALG_AES128,
                    mgmt::ALG_AES192,
                    mgmt::ALG_AES256,
                    keys::ALG_RSA1024,
                    keys::ALG_RSA2048,
                    keys::ALG_ECC_P256,
                    keys::ALG_ECC_P384,
                ],
            ));
        }
        if aid.len() >= YUBICO_OTP_AID.len() && aid.starts_with(&YUBICO_OTP_AID) {
            // Leaving the PIV application loses its security status.
            self.session = Session {
                applet: Applet::YubicoOtp,
                ..Session::default()
            };
            let mut status = FIRMWARE_VERSION.to_vec();
            status.extend_from_slice(&[0, 0, 0]);
            return Response::ok(status);
        }
        Sw::NOT_FOUND.into()
    }

    /// Parses the `5C` tag list of GET DATA / PUT DATA.
    fn object_tag(value: &[u8]) -> Option<u32> {
        if value.is_empty() || value.len() > 3 {
            return None;
        }
        Some(value.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
    }

    /// GET DATA (SP 800-73-4 Part 2 §3.1.2): `5C tag` → `53 object` (Discovery and BIT group
    /// objects come back with their own tag).
    fn get_data(&mut self, cmd: &Command) -> Response {
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Sw::BAD_P1P2.into();
        }
        let Some(tag) = tlv::parse_single(&cmd.data, 0x5C)
            .ok()
            .and_then(Self::object_tag)
        else {
            return Sw::BAD_DATA.into();
        };
        if !objects::is_object_tag(tag) {
            return Sw::NOT_FOUND.into();
        }
        match self.object(tag) {
            Some(value) => {
                let outer = match tag {
                    objects::TAG_DISCOVERY | objects::TAG_BIT_GROUP => tag,
                    _ => 0x53,
                };
                Response::ok(tlv::encode(outer, &value))
            }
            None => Sw::NOT_FOUND.into(),
        }
    }

    /// PUT DATA (SP 800-73-4 Part 2 §3.3.1): `5C tag 53 value`; an empty value deletes the
    /// object. Needs the management key.
    fn put_data(&mut self, cmd: &Command) -> Response {
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF) {
            return Sw::BAD_P1P2.into();
        }
        if !self.session.mgmt_authenticated {
            return Sw::SECURITY_STATUS.into();
        }
        let mut r = tlv::Reader::new(&cmd.data);
        let parsed = match r.read() {
            // Discovery and BIT group objects are written with their own tag.
            Ok(t) if matches!(t.tag, objects::TAG_DISCOVERY | objects::TAG_BIT_GROUP) => {
                Some((t.tag, t.value))
            }
            Ok(t) if t.tag == 0x5C => {
                Self::object_tag(t.value).and_then(|tag| r.expect(0x53).ok().map(|v| (tag, v)))
            }
            _ => None,
        };
        let Some((tag, value)) = parsed.filter(|_| r.finish().is_ok()) else {
            return Sw::BAD_DATA.into();
        };
        if !objects::is_object_tag(tag) {
            return Sw::NOT_FOUND.into();
        }
        if value.len() > MAX_OBJECT {
            return Sw::NO_MEMORY.into();
        }
        let name = objects::tag_name(tag);
        if value.is_empty() {
            self.state.objects.remove(&name);
        } else {
            self.state.objects.insert(name, hex(value));
        }
        match self.persist() {
            Ok(()) => Sw::OK.into(),
            Err(sw) => sw.into(),
        }
    }

    /// GENERATE ASYMMETRIC KEY PAIR (SP 800-73-4 Part 2 §3.3.2): `AC { 80 alg }`. Needs the
    /// management key. Any PIN/touch policy tags (`AA`, `AB`) are ignored.
    fn generate(&mut self, cmd: &Command) -> Response {
        if cmd.p1 != 0 || !objects::is_key_slot(cmd.p2) {
            return Sw::BAD_P1P2.into();
        }
        if !self.session.mgmt_authenticated {
            return Sw::SECURITY_STATUS.into();
        }
        let alg = tlv::parse_single(&cmd.data, 0xAC)
            .and_then(tlv::parse_all)
            .ok()
            .and_then(|items| tlv::find(&items, 0x80).map(<[u8]>::to_vec));
        let Some([alg]) = alg.as_deref() else {
            return Sw::BAD_DATA.into();
        };
        let key = match PrivateKey::generate(*alg) {
            Ok(key) => key,
            Err(KeyError::UnsupportedAlgorithm(_)) => return Sw::BAD_DATA.into(),
            Err(e) => {
                eprintln!("piv-sim: key generation failed: {e}");
                return SW_MEMORY_FAILURE.into();
            }
        };
        let public = key.public_template();
        match self.store_key(cmd.p2, key) {
            Ok(()) => Response::ok(public),
            Err(sw) => sw.into(),
        }
    }
}

impl Application for Card {
    fn process(&mut self, cmd: &Command) -> Response {
        // Both of these last for one command only: any other APDU cancels them.
        let pin_always = std::mem::take(&mut self.session.pin_always);
        let pending = self.session.mgmt_pending.take();
        self.dispatch(cmd, pin_always, pending)
    }
}

/// Constant-time equality of two byte strings of public length.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
pub(crate) mod tests;
