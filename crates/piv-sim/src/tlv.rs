//! BER-TLV codec (ISO/IEC 7816-4 §5.2, as profiled by SP 800-73-4 Part 2 §3).
//!
//! Tags are kept as `u32` holding their encoded bytes big-endian (`0x5FC102`, `0x7C`), which is
//! how SP 800-73-4 writes them. Reading goes through a cursor ([`Reader`]) that never indexes
//! past its slice: every length is checked before use.

use std::fmt;

/// An error met while reading BER-TLV data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlvError {
    /// The data ended inside a tag, a length or a value (offset where it happened).
    Truncated(usize),
    /// A length field uses a form this codec does not accept (more than 3 length bytes,
    /// or the indefinite form `80`).
    BadLength(usize),
    /// A tag is longer than 3 bytes.
    BadTag(usize),
    /// A different tag was found where one was required (the tag found).
    UnexpectedTag(u32),
    /// Bytes were left over after the last expected element.
    TrailingData(usize),
}

impl fmt::Display for TlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlvError::Truncated(at) => write!(f, "BER-TLV data truncated at offset {at}"),
            TlvError::BadLength(at) => write!(f, "unsupported BER-TLV length at offset {at}"),
            TlvError::BadTag(at) => write!(f, "BER-TLV tag too long at offset {at}"),
            TlvError::UnexpectedTag(t) => write!(f, "unexpected BER-TLV tag {t:X}"),
            TlvError::TrailingData(n) => write!(f, "{n} trailing bytes after BER-TLV data"),
        }
    }
}

impl std::error::Error for TlvError {}

/// One decoded element: its tag and a borrowed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag, encoded bytes read big-endian (`0x53`, `0x5FC102`).
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

/// A cursor over BER-TLV encoded bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` from its beginning.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// True when every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), TlvError> {
        match self.buf.len().saturating_sub(self.pos) {
            0 => Ok(()),
            n => Err(TlvError::TrailingData(n)),
        }
    }

    fn byte(&mut self) -> Result<u8, TlvError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(TlvError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], TlvError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(TlvError::Truncated(self.pos))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn tag(&mut self) -> Result<u32, TlvError> {
        let start = self.pos;
        let first = self.byte()?;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // Subsequent tag bytes: bit 8 set means another byte follows.
            loop {
                if self.pos - start >= 3 {
                    return Err(TlvError::BadTag(start));
                }
                let b = self.byte()?;
                tag = (tag << 8) | u32::from(b);
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        Ok(tag)
    }

    fn length(&mut self) -> Result<usize, TlvError> {
        let start = self.pos;
        let first = self.byte()?;
        match first {
            0x00..=0x7F => Ok(usize::from(first)),
            0x81..=0x83 => {
                let n = usize::from(first & 0x7F);
                Ok(self
                    .take(n)?
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)))
            }
            _ => Err(TlvError::BadLength(start)),
        }
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, TlvError> {
        let tag = self.tag()?;
        let len = self.length()?;
        let value = self.take(len)?;
        Ok(Tlv { tag, value })
    }

    /// Reads the next element and requires it to carry `tag`.
    pub fn expect(&mut self, tag: u32) -> Result<&'a [u8], TlvError> {
        let tlv = self.read()?;
        if tlv.tag == tag {
            Ok(tlv.value)
        } else {
            Err(TlvError::UnexpectedTag(tlv.tag))
        }
    }
}

/// Decodes every element of `buf` (one nesting level).
pub fn parse_all(buf: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.read()?);
    }
    Ok(out)
}

/// Decodes `buf` as exactly one element with `tag` and returns its value.
pub fn parse_single(buf: &[u8], tag: u32) -> Result<&[u8], TlvError> {
    let mut r = Reader::new(buf);
    let value = r.expect(tag)?;
    r.finish()?;
    Ok(value)
}

/// Appends the encoding of `tag` to `out`.
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|&&b| b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a definite-form length (short form below 128, else `81`/`82`/`83`).
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Appends one element.
pub fn push(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    push_tag(out, tag);
    push_len(out, value.len());
    out.extend_from_slice(value);
}

/// Encodes one element.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push(&mut out, tag, value);
    out
}

/// Returns the value of the first element with `tag` among `items`.
pub fn find<'a>(items: &[Tlv<'a>], tag: u32) -> Option<&'a [u8]> {
    items.iter().find(|t| t.tag == tag).map(|t| t.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_lengths_and_tags() {
        for len in [0usize, 1, 127, 128, 255, 256, 1000, 70000] {
            let value = vec![0xAB; len];
            for tag in [0x53u32, 0x7F49, 0x5FC102] {
                let enc = encode(tag, &value);
                assert_eq!(parse_single(&enc, tag).unwrap(), &value[..]);
            }
        }
        assert_eq!(encode(0x5FC102, &[1]), vec![0x5F, 0xC1, 0x02, 0x01, 0x01]);
        assert_eq!(encode(0x7C, &[0; 200])[..3], [0x7C, 0x81, 200]);
        assert_eq!(encode(0x7C, &[0; 300])[..4], [0x7C, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn parses_general_authenticate_template() {
        let data = [0x7C, 0x06, 0x82, 0x00, 0x81, 0x02, 0xDE, 0xAD];
        let inner = parse_single(&data, 0x7C).unwrap();
        let items = parse_all(inner).unwrap();
        assert_eq!(find(&items, 0x82), Some(&[][..]));
        assert_eq!(find(&items, 0x81), Some(&[0xDE, 0xAD][..]));
        assert_eq!(find(&items, 0x85), None);
    }

    #[test]
    fn rejects_malformed_input() {
        assert_eq!(parse_all(&[0x53]), Err(TlvError::Truncated(1)));
        assert_eq!(parse_all(&[0x53, 0x05, 1, 2]), Err(TlvError::Truncated(2)));
        assert_eq!(parse_all(&[0x53, 0x80]), Err(TlvError::BadLength(1)));
        assert_eq!(
            parse_all(&[0x53, 0x84, 0, 0, 0, 1]),
            Err(TlvError::BadLength(1))
        );
        assert_eq!(
            parse_all(&[0x5F, 0xC1, 0x82, 0x83, 0]),
            Err(TlvError::BadTag(0))
        );
        assert_eq!(parse_all(&[0x5F]), Err(TlvError::Truncated(1)));
        assert_eq!(
            parse_single(&[0x53, 0, 0], 0x53),
            Err(TlvError::TrailingData(1))
        );
        assert_eq!(
            parse_single(&[0x54, 0], 0x53),
            Err(TlvError::UnexpectedTag(0x54))
        );
        // Huge declared length must not overflow or panic.
        assert!(parse_all(&[0x53, 0x83, 0xFF, 0xFF, 0xFF]).is_err());
    }
}
