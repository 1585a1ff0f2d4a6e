//! The PIV card driver (SP 800-73-4): APDU and BER-TLV codecs, the card
//! commands, the PC/SC transport and slot provider, and the token that maps
//! PIV key references to PKCS#11 objects.

pub mod apdu;
pub mod card;
pub mod reader;
pub mod tlv;
pub mod token;
pub mod transport;

use crate::core::Error;

/// Errors of the PIV driver.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PivError {
    /// The card or reader went away.
    Removed,
    /// PC/SC failed (the text is the PC/SC error).
    Pcsc(String),
    /// The card's answer is not well formed (the text says how).
    Malformed(&'static str),
    /// Wrong PIN, with the tries left.
    WrongPin {
        /// Tries left before the PIN blocks.
        tries: u8,
    },
    /// The PIN is blocked.
    PinBlocked,
    /// The key needs a PIN (69 82).
    SecurityStatusNotSatisfied,
    /// Object or key not on the card.
    NotFound,
    /// The card rejected the data (6A 80).
    IncorrectData,
    /// The card does not have the PIV application.
    NotPiv,
    /// Another status word (hex) for a command (INS).
    Status {
        /// Instruction.
        ins: u8,
        /// Status word.
        sw: u16,
    },
    /// The APDU did not complete in time.
    Timeout,
}

impl std::fmt::Display for PivError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PivError::Removed => write!(f, "card removed"),
            PivError::Pcsc(e) => write!(f, "PC/SC: {e}"),
            PivError::Malformed(w) => write!(f, "malformed card answer: {w}"),
            PivError::WrongPin { tries } => write!(f, "wrong PIN, {tries} tries left"),
            PivError::PinBlocked => write!(f, "PIN blocked"),
            PivError::SecurityStatusNotSatisfied => write!(f, "security status not satisfied"),
            PivError::NotFound => write!(f, "not found on the card"),
            PivError::IncorrectData => write!(f, "card rejected the data"),
            PivError::NotPiv => write!(f, "no PIV application on the card"),
            PivError::Status { ins, sw } => write!(f, "INS {ins:02X} failed with SW {sw:04X}"),
            PivError::Timeout => write!(f, "card did not answer in time"),
        }
    }
}

impl From<PivError> for Error {
    fn from(e: PivError) -> Self {
        match e {
            PivError::Removed => Error::DeviceRemoved,
            PivError::WrongPin { .. } => Error::PinIncorrect,
            PivError::PinBlocked => Error::PinLocked,
            PivError::SecurityStatusNotSatisfied => Error::UserNotLoggedIn,
            PivError::IncorrectData => Error::DataInvalid,
            PivError::NotFound => Error::KeyHandleInvalid,
            PivError::NotPiv => Error::TokenNotRecognized,
            e @ (PivError::Pcsc(_)
            | PivError::Malformed(_)
            | PivError::Status { .. }
            | PivError::Timeout) => Error::DeviceError(e.to_string()),
        }
    }
}
