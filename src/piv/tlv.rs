//! BER-TLV as used by ISO 7816-4 and SP 800-73-4 (tags of up to three bytes,
//! definite lengths of up to three bytes), read through a cursor that never
//! indexes past its input.

use super::PivError;

/// A cursor over a sequence of TLVs.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Read TLVs from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// Nothing left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn byte(&mut self) -> Result<u8, PivError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(PivError::Malformed("TLV truncated"))?;
        self.rest = rest;
        Ok(b)
    }

    /// The next `(tag, value)`.
    pub fn next_tlv(&mut self) -> Result<(u32, &'a [u8]), PivError> {
        let first = self.byte()?;
        let mut tag = first as u32;
        if first & 0x1f == 0x1f {
            for _ in 0..2 {
                let b = self.byte()?;
                tag = (tag << 8) | b as u32;
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let l0 = self.byte()?;
        let len = match l0 {
            0..=0x7f => l0 as usize,
            0x81 => self.byte()? as usize,
            0x82 => ((self.byte()? as usize) << 8) | self.byte()? as usize,
            0x83 => {
                ((self.byte()? as usize) << 16)
                    | ((self.byte()? as usize) << 8)
                    | self.byte()? as usize
            }
            _ => return Err(PivError::Malformed("TLV length form")),
        };
        if len > self.rest.len() {
            return Err(PivError::Malformed("TLV value truncated"));
        }
        let (value, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok((tag, value))
    }

    /// Find the first TLV with `tag` at this level (skipping others).
    pub fn find(mut self, tag: u32) -> Result<Option<&'a [u8]>, PivError> {
        while !self.is_empty() {
            let (t, v) = self.next_tlv()?;
            if t == tag {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// Encode a length.
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xffff => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Encode one TLV (tag of one to three bytes).
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    if tag > 0xffff {
        out.push((tag >> 16) as u8);
    }
    if tag > 0xff {
        out.push((tag >> 8) as u8);
    }
    out.push(tag as u8);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_lengths() {
        for n in [0usize, 1, 127, 128, 255, 256, 1000, 70000] {
            let v = vec![7u8; n];
            let enc = encode(0x53, &v);
            let mut r = Reader::new(&enc);
            let (t, got) = r.next_tlv().unwrap();
            assert_eq!((t, got.len()), (0x53, n));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn multi_byte_tags() {
        let enc = encode(0x5fc105, &[1, 2]);
        assert_eq!(enc[..3], [0x5f, 0xc1, 0x05]);
        assert_eq!(
            Reader::new(&enc).next_tlv().unwrap(),
            (0x5fc105, &[1u8, 2][..])
        );
        let enc = encode(0x7f49, &[9]);
        assert_eq!(Reader::new(&enc).next_tlv().unwrap(), (0x7f49, &[9u8][..]));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x53u8][..],
            &[0x53, 0x82, 0x01],
            &[0x53, 0x05, 1, 2],
            &[0x5f],
            &[0x53, 0x84, 0, 0, 0, 0],
        ] {
            assert!(Reader::new(bad).next_tlv().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn find_skips_other_tags() {
        let mut buf = encode(0x70, &[1]);
        buf.extend(encode(0x71, &[2]));
        assert_eq!(Reader::new(&buf).find(0x71).unwrap(), Some(&[2u8][..]));
        assert_eq!(Reader::new(&buf).find(0x72).unwrap(), None);
    }
}
