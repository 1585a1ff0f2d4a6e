//! ISO/IEC 7816-4 command and response APDUs (short and extended length) and the status words
//! SP 800-73-4 Part 2 assigns to the PIV card commands.

use std::fmt;

/// A status word (SW1 SW2). The constants cite SP 800-73-4 Part 2 §3 and ISO/IEC 7816-4 §5.6.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sw(pub u16);

impl Sw {
    /// `90 00` — normal processing.
    pub const OK: Sw = Sw(0x9000);
    /// `67 00` — wrong length (malformed APDU).
    pub const WRONG_LENGTH: Sw = Sw(0x6700);
    /// `69 82` — security status not satisfied (PIN or management key missing).
    pub const SECURITY_STATUS: Sw = Sw(0x6982);
    /// `69 83` — authentication method blocked (PIN or PUK retry counter at zero).
    pub const BLOCKED: Sw = Sw(0x6983);
    /// `69 85` — conditions of use not satisfied (GET RESPONSE without pending data).
    pub const CONDITIONS: Sw = Sw(0x6985);
    /// `6A 80` — incorrect parameter in the command data field.
    pub const BAD_DATA: Sw = Sw(0x6A80);
    /// `6A 81` — function not supported.
    pub const FUNC_NOT_SUPPORTED: Sw = Sw(0x6A81);
    /// `6A 82` — data object or application not found.
    pub const NOT_FOUND: Sw = Sw(0x6A82);
    /// `6A 84` — not enough memory (a chained command grew too large).
    pub const NO_MEMORY: Sw = Sw(0x6A84);
    /// `6A 86` — incorrect parameters P1-P2.
    pub const BAD_P1P2: Sw = Sw(0x6A86);
    /// `6A 88` — referenced data (key or PIN reference) not found.
    pub const REF_NOT_FOUND: Sw = Sw(0x6A88);
    /// `6D 00` — instruction code not supported.
    pub const INS_NOT_SUPPORTED: Sw = Sw(0x6D00);
    /// `6E 00` — class not supported.
    pub const CLA_NOT_SUPPORTED: Sw = Sw(0x6E00);

    /// `63 Cx` — verification failed, `tries` attempts left (capped at 15).
    pub fn tries_left(tries: u8) -> Sw {
        Sw(0x63C0 | u16::from(tries.min(15)))
    }

    /// `61 xx` — `remaining` more bytes available with GET RESPONSE (`00` means 256 or more).
    pub fn more_data(remaining: usize) -> Sw {
        Sw(0x6100
            | if remaining > 0xFF {
                0
            } else {
                remaining as u16
            })
    }

    /// The two status bytes.
    pub fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

impl fmt::Display for Sw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A response: data field and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The response data (may be empty).
    pub data: Vec<u8>,
    /// The status word.
    pub sw: Sw,
}

impl Response {
    /// A response with data and `90 00`.
    pub fn ok(data: Vec<u8>) -> Self {
        Response { data, sw: Sw::OK }
    }

    /// A response with no data.
    pub fn status(sw: Sw) -> Self {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    /// Serializes as data || SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

impl From<Sw> for Response {
    fn from(sw: Sw) -> Self {
        Response::status(sw)
    }
}

/// Response data is never printed: it may hold key material.
impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} bytes, {})", self.data.len(), self.sw)
    }
}

/// Why a byte string is not a command APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApduError {
    /// Fewer than 4 header bytes.
    TooShort(usize),
    /// Lc/Le fields do not match the total length.
    BadLength(usize),
}

impl fmt::Display for ApduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApduError::TooShort(n) => write!(f, "APDU of {n} bytes is shorter than a header"),
            ApduError::BadLength(n) => write!(f, "APDU of {n} bytes has inconsistent Lc/Le"),
        }
    }
}

impl std::error::Error for ApduError {}

/// A parsed command APDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field.
    pub data: Vec<u8>,
    /// Expected response length; `None` when the APDU has no Le field.
    pub le: Option<usize>,
    /// True when the APDU used extended-length fields.
    pub extended: bool,
}

/// The data field is never printed: it may hold a PIN or key material.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, {} data bytes, le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le
        )
    }
}

impl Command {
    /// Parses the four ISO cases, short and extended (ISO/IEC 7816-4 §5.1).
    pub fn parse(raw: &[u8]) -> Result<Command, ApduError> {
        let n = raw.len();
        let (header, body) = match raw {
            [cla, ins, p1, p2, body @ ..] => ([*cla, *ins, *p1, *p2], body),
            _ => return Err(ApduError::TooShort(n)),
        };
        let [cla, ins, p1, p2] = header;
        let short_le = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let ext_le = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => 65536,
            v => usize::from(v),
        };
        let (data, le, extended): (&[u8], Option<usize>, bool) = match body {
            [] => (&[], None, false),
            [le] => (&[], Some(short_le(*le)), false),
            [0, hi, lo] => (&[], Some(ext_le(*hi, *lo)), true),
            [0, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if lc == 0 {
                    return Err(ApduError::BadLength(n));
                }
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest, None, true),
                    Some(2) => (&rest[..lc], Some(ext_le(rest[lc], rest[lc + 1])), true),
                    _ => return Err(ApduError::BadLength(n)),
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest, None, false),
                    Some(1) => (&rest[..lc], Some(short_le(rest[lc])), false),
                    _ => return Err(ApduError::BadLength(n)),
                }
            }
        };
        Ok(Command {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
            extended,
        })
    }

    /// True when CLA announces that more parts of a chain follow (ISO/IEC 7816-4 §5.1.1.1).
    pub fn chained(&self) -> bool {
        self.cla & 0x10 != 0
    }

    /// The most response data one answer may carry: Le, or 256 (short) / 65536 (extended)
    /// when the APDU has no Le field.
    pub fn max_response(&self) -> usize {
        match (self.le, self.extended) {
            (Some(le), _) => le,
            (None, false) => 256,
            (None, true) => 65536,
        }
    }
}

/// Wipes PIN and key bytes that travelled in a command.
impl Drop for Command {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_cases() {
        let c = Command::parse(&[0, 0xC0, 0, 0]).unwrap();
        assert_eq!((c.data.len(), c.le, c.extended), (0, None, false));
        let c = Command::parse(&[0, 0xFD, 0, 0, 0]).unwrap();
        assert_eq!(c.le, Some(256));
        let c = Command::parse(&[0, 0x20, 0, 0x80, 2, 1, 2]).unwrap();
        assert_eq!((c.data.clone(), c.le), (vec![1, 2], None));
        let c = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 2, 1, 2, 8]).unwrap();
        assert_eq!((c.data.clone(), c.le), (vec![1, 2], Some(8)));
        assert_eq!(c.max_response(), 8);
    }

    #[test]
    fn parses_extended_length() {
        let c = Command::parse(&[0, 0xCB, 0x3F, 0xFF, 0, 0, 0]).unwrap();
        assert_eq!((c.le, c.extended), (Some(65536), true));
        let mut raw = vec![0, 0x87, 7, 0x9A, 0, 1, 4];
        raw.extend(std::iter::repeat_n(0x55, 260));
        raw.extend([0, 0]);
        let c = Command::parse(&raw).unwrap();
        assert_eq!((c.data.len(), c.le, c.extended), (260, Some(65536), true));
        raw.truncate(raw.len() - 2);
        let c = Command::parse(&raw).unwrap();
        assert_eq!((c.data.len(), c.le), (260, None));
        assert_eq!(c.max_response(), 65536);
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        assert_eq!(Command::parse(&[0, 1, 2]), Err(ApduError::TooShort(3)));
        assert_eq!(
            Command::parse(&[0, 0xA4, 4, 0, 9, 1, 2]),
            Err(ApduError::BadLength(7))
        );
        assert_eq!(
            Command::parse(&[0, 0xA4, 4, 0, 1, 1, 2, 3]),
            Err(ApduError::BadLength(8))
        );
        assert_eq!(
            Command::parse(&[0, 0xA4, 4, 0, 0, 0, 0, 5]),
            Err(ApduError::BadLength(8))
        );
    }

    #[test]
    fn status_word_helpers() {
        assert_eq!(Sw::tries_left(2), Sw(0x63C2));
        assert_eq!(Sw::more_data(300), Sw(0x6100));
        assert_eq!(Sw::more_data(4), Sw(0x6104));
        assert_eq!(Response::ok(vec![1]).to_bytes(), vec![1, 0x90, 0]);
    }
}
