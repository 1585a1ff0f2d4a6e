//! ISO 7816-4 command and response APDUs (short form with command chaining),
//! and status words with their SP 800-73-4 meanings.

use zeroize::Zeroizing;

use super::PivError;

/// A command APDU. The data may hold a PIN, so it is wiped on drop.
pub struct Command {
    /// Class byte (chaining bit added when needed).
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data.
    pub data: Zeroizing<Vec<u8>>,
    /// Expect response data (`Le = 00`).
    pub le: bool,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the data: it may be a PIN.
        write!(
            f,
            "Command(INS={:02X} P1={:02X} P2={:02X} Lc={})",
            self.ins,
            self.p1,
            self.p2,
            self.data.len()
        )
    }
}

impl Command {
    /// A command with data.
    pub fn new(ins: u8, p1: u8, p2: u8, data: Vec<u8>, le: bool) -> Self {
        Command {
            cla: 0,
            ins,
            p1,
            p2,
            data: Zeroizing::new(data),
            le,
        }
    }

    /// The short APDUs that carry this command, chained (CLA bit 0x10) when
    /// the data exceeds 255 bytes (ISO 7816-4 §5.3.3).
    pub fn short_apdus(&self) -> Vec<Zeroizing<Vec<u8>>> {
        let chunks: Vec<&[u8]> = if self.data.is_empty() {
            vec![&[][..]]
        } else {
            self.data.chunks(255).collect()
        };
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut a = Zeroizing::new(Vec::with_capacity(chunk.len() + 6));
                let cla = if i < last { self.cla | 0x10 } else { self.cla };
                a.extend_from_slice(&[cla, self.ins, self.p1, self.p2]);
                if !chunk.is_empty() {
                    a.push(chunk.len() as u8);
                    a.extend_from_slice(chunk);
                }
                if i == last && self.le {
                    a.push(0);
                }
                a
            })
            .collect()
    }
}

/// Status words (SP 800-73-4 Part 2, Table 6 and §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWord {
    /// 90 00.
    Success,
    /// 61 xx: more response bytes available.
    MoreData(u8),
    /// 6C xx: wrong Le, xx is the right one.
    WrongLe(u8),
    /// 63 Cx: verification failed, x tries left.
    VerifyFailed(u8),
    /// 69 83: the reference data (PIN) is blocked.
    Blocked,
    /// 69 82: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// 6A 82: file or data object not found.
    NotFound,
    /// 6A 80: incorrect parameter in the data field.
    IncorrectData,
    /// 6A 88: referenced data (key) not found.
    ReferenceNotFound,
    /// 6D 00 / 6E 00: instruction or class not supported.
    NotSupported,
    /// Anything else.
    Other(u16),
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        match sw {
            0x9000 => StatusWord::Success,
            0x6100..=0x61ff => StatusWord::MoreData(sw as u8),
            0x6c00..=0x6cff => StatusWord::WrongLe(sw as u8),
            0x63c0..=0x63cf => StatusWord::VerifyFailed((sw & 0x0f) as u8),
            0x6983 => StatusWord::Blocked,
            0x6982 => StatusWord::SecurityStatusNotSatisfied,
            0x6a82 => StatusWord::NotFound,
            0x6a80 => StatusWord::IncorrectData,
            0x6a88 => StatusWord::ReferenceNotFound,
            0x6d00 | 0x6e00 => StatusWord::NotSupported,
            other => StatusWord::Other(other),
        }
    }
}

/// A response APDU.
pub struct Response {
    /// Response data (may be key-derived: wiped on drop).
    pub data: Zeroizing<Vec<u8>>,
    /// Status.
    pub sw: StatusWord,
}

impl Response {
    /// Split raw bytes into data and status word.
    pub fn parse(raw: &[u8]) -> Result<Self, PivError> {
        if raw.len() < 2 {
            return Err(PivError::Malformed("response shorter than a status word"));
        }
        let (data, sw) = raw.split_at(raw.len() - 2);
        Ok(Response {
            data: Zeroizing::new(data.to_vec()),
            sw: StatusWord::from(u16::from_be_bytes([sw[0], sw[1]])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaining_splits_long_data() {
        let c = Command::new(0x87, 0x07, 0x9a, vec![1u8; 300], true);
        let parts = c.short_apdus();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0][0], 0x10);
        assert_eq!(parts[0][4], 255);
        assert_eq!(parts[0].len(), 5 + 255);
        assert_eq!(parts[1][0], 0x00);
        assert_eq!(parts[1][4], 45);
        assert_eq!(*parts[1].last().unwrap(), 0);
    }

    #[test]
    fn case1_and_case2() {
        let c = Command::new(0x20, 0x00, 0x80, vec![], false);
        assert_eq!(&c.short_apdus()[0][..], &[0, 0x20, 0, 0x80]);
        let c = Command::new(0xc0, 0, 0, vec![], true);
        assert_eq!(&c.short_apdus()[0][..], &[0, 0xc0, 0, 0, 0]);
    }

    #[test]
    fn status_words() {
        assert_eq!(StatusWord::from(0x63c2), StatusWord::VerifyFailed(2));
        assert_eq!(StatusWord::from(0x6110), StatusWord::MoreData(0x10));
        assert!(Response::parse(&[0x90]).is_err());
        let r = Response::parse(&[1, 2, 0x90, 0]).unwrap();
        assert_eq!((&r.data[..], r.sw), (&[1u8, 2][..], StatusWord::Success));
    }

    #[test]
    fn debug_never_shows_data() {
        let c = Command::new(0x20, 0, 0x80, b"123456\xff\xff".to_vec(), false);
        assert!(!format!("{c:?}").contains("49"));
    }
}
