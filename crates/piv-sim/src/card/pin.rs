//! PIN and PUK commands (SP 800-73-4 Part 2 §3.2.1 VERIFY, §3.2.2 CHANGE REFERENCE DATA,
//! §3.2.3 RESET RETRY COUNTER). Retry counters live in the state file, so they survive the
//! card process, as on a real card.

use super::{ct_eq, Card};
use crate::apdu::{Command, Response, Sw};

/// Key reference of the PIV Card Application PIN.
const REF_PIN: u8 = 0x80;
/// Key reference of the PIN Unblocking Key.
const REF_PUK: u8 = 0x81;

/// Pads a PIN or PUK to the 8-byte reference data format: ASCII digits then `FF`.
pub fn pad(pin: &str) -> [u8; 8] {
    let mut out = [0xFF; 8];
    for (o, b) in out.iter_mut().zip(pin.bytes()) {
        *o = b;
    }
    out
}

/// Checks and decodes 8 bytes of reference data: 6 to 8 ASCII digits, then `FF` padding.
pub fn unpad(block: &[u8]) -> Option<String> {
    if block.len() != 8 {
        return None;
    }
    let len = block.iter().position(|&b| b == 0xFF).unwrap_or(8);
    let (digits, padding) = block.split_at(len);
    if !(6..=8).contains(&len)
        || !digits.iter().all(u8::is_ascii_digit)
        || !padding.iter().all(|&b| b == 0xFF)
    {
        return None;
    }
    Some(digits.iter().map(|&b| char::from(b)).collect())
}

/// True when `value` is acceptable as a PIN or PUK (6–8 digits).
pub fn valid_pin(value: &str) -> bool {
    (6..=8).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

/// Which reference data a command addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reference {
    Pin,
    Puk,
}

impl Card {
    fn tries_left(&self, r: Reference) -> u8 {
        match r {
            Reference::Pin => self.state.pin_tries_left,
            Reference::Puk => self.state.puk_tries_left,
        }
    }

    /// Compares presented reference data; counts a failure or resets the counter, and
    /// persists the counter. `Err` carries the status word to answer.
    fn check_reference(&mut self, r: Reference, presented: &[u8]) -> Result<(), Sw> {
        if self.tries_left(r) == 0 {
            return Err(Sw::BLOCKED);
        }
        let (stored, left, max) = match r {
            Reference::Pin => (
                pad(&self.state.pin),
                &mut self.state.pin_tries_left,
                self.state.pin_retries,
            ),
            Reference::Puk => (
                pad(&self.state.puk),
                &mut self.state.puk_tries_left,
                self.state.puk_retries,
            ),
        };
        if ct_eq(&stored, presented) {
            let changed = *left != max;
            *left = max;
            if changed {
                self.persist()?;
            }
            Ok(())
        } else {
            *left = left.saturating_sub(1);
            let now = *left;
            if r == Reference::Pin {
                self.session.pin_verified = false;
            }
            self.persist()?;
            Err(Sw::tries_left(now))
        }
    }

    /// VERIFY: `00 20 00 80` with the padded PIN; with no data, reports the status;
    /// `00 20 FF 80` resets the security status.
    pub(super) fn verify(&mut self, cmd: &Command) -> Response {
        if cmd.p2 != REF_PIN {
            return Sw::REF_NOT_FOUND.into();
        }
        match (cmd.p1, cmd.data.len()) {
            (0xFF, 0) => {
                self.session.pin_verified = false;
                Sw::OK.into()
            }
            (0x00, 0) => match self.state.pin_tries_left {
                0 => Sw::BLOCKED.into(),
                _ if self.session.pin_verified => Sw::OK.into(),
                n => Sw::tries_left(n).into(),
            },
            (0x00, 8) => match self.check_reference(Reference::Pin, &cmd.data) {
                Ok(()) => {
                    self.session.pin_verified = true;
                    self.session.pin_always = true;
                    Sw::OK.into()
                }
                Err(sw) => sw.into(),
            },
            (0x00 | 0xFF, _) => Sw::BAD_DATA.into(),
            _ => Sw::BAD_P1P2.into(),
        }
    }

    /// CHANGE REFERENCE DATA: `00 24 00 80|81`, data = old (8) || new (8).
    pub(super) fn change_reference_data(&mut self, cmd: &Command) -> Response {
        let r = match (cmd.p1, cmd.p2) {
            (0x00, REF_PIN) => Reference::Pin,
            (0x00, REF_PUK) => Reference::Puk,
            (0x00, _) => return Sw::REF_NOT_FOUND.into(),
            _ => return Sw::BAD_P1P2.into(),
        };
        if cmd.data.len() != 16 {
            return Sw::BAD_DATA.into();
        }
        let (old, new) = cmd.data.split_at(8);
        let Some(new) = unpad(new).map(zeroize::Zeroizing::new) else {
            return Sw::BAD_DATA.into();
        };
        if let Err(sw) = self.check_reference(r, old) {
            return sw.into();
        }
        match r {
            Reference::Pin => {
                self.state.pin = new;
                self.session.pin_verified = true;
            }
            Reference::Puk => self.state.puk = new,
        }
        match self.persist() {
            Ok(()) => Sw::OK.into(),
            Err(sw) => sw.into(),
        }
    }

    /// RESET RETRY COUNTER: `00 2C 00 80`, data = PUK (8) || new PIN (8).
    pub(super) fn reset_retry_counter(&mut self, cmd: &Command) -> Response {
        match (cmd.p1, cmd.p2) {
            (0x00, REF_PIN) => {}
            (0x00, _) => return Sw::REF_NOT_FOUND.into(),
            _ => return Sw::BAD_P1P2.into(),
        }
        if cmd.data.len() != 16 {
            return Sw::BAD_DATA.into();
        }
        let (puk, new) = cmd.data.split_at(8);
        let Some(new) = unpad(new).map(zeroize::Zeroizing::new) else {
            return Sw::BAD_DATA.into();
        };
        if let Err(sw) = self.check_reference(Reference::Puk, puk) {
            return sw.into();
        }
        self.state.pin = new;
        self.state.pin_tries_left = self.state.pin_retries;
        self.session.pin_verified = false;
        match self.persist() {
            Ok(()) => Sw::OK.into(),
            Err(sw) => sw.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_blocks_pad_and_unpad() {
        assert_eq!(pad("123456"), *b"123456\xFF\xFF");
        assert_eq!(unpad(b"123456\xFF\xFF").as_deref(), Some("123456"));
        assert_eq!(unpad(b"12345678").as_deref(), Some("12345678"));
        assert_eq!(unpad(b"12345\xFF\xFF\xFF"), None);
        assert_eq!(unpad(b"1234a6\xFF\xFF"), None);
        assert_eq!(unpad(b"123456\xFF1"), None);
        assert_eq!(unpad(b"123456\xFF"), None);
        assert!(valid_pin("000000") && !valid_pin("12345") && !valid_pin("123456789"));
    }
}
