//! The transport trait (one implementation over PC/SC, others in tests) and
//! the single place where command chaining and `61xx`/`6Cxx` are handled.

use zeroize::Zeroizing;

use super::apdu::{Command, Response, StatusWord};
use super::PivError;

/// Sends one short APDU and returns the raw response (data || SW1 SW2).
pub trait Transport {
    /// Exchange one APDU.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, PivError>;
}

/// Upper bound on a reassembled response (largest PIV object is ~12 KB).
const MAX_RESPONSE: usize = 64 * 1024;

/// Send a command (chained if long) and collect the whole response,
/// following `61xx` with GET RESPONSE and `6Cxx` with a corrected Le.
pub fn transceive(t: &mut dyn Transport, cmd: &Command) -> Result<Response, PivError> {
    let parts = cmd.short_apdus();
    let last = parts.len() - 1;
    let mut resp = None;
    for (i, apdu) in parts.iter().enumerate() {
        let r = Response::parse(&t.transmit(apdu)?)?;
        if i < last && r.sw != StatusWord::Success {
            return Ok(r);
        }
        resp = Some((r, apdu));
    }
    let (mut r, apdu) = resp.ok_or(PivError::Malformed("no APDU sent"))?;
    if let StatusWord::WrongLe(le) = r.sw {
        let mut again = Zeroizing::new(apdu.to_vec());
        if let Some(l) = again.last_mut() {
            *l = le;
        }
        r = Response::parse(&t.transmit(&again)?)?;
    }
    let mut data = std::mem::take(&mut r.data);
    while let StatusWord::MoreData(n) = r.sw {
        r = Response::parse(&t.transmit(&[0x00, 0xc0, 0x00, 0x00, n])?)?;
        data.extend_from_slice(&r.data);
        if data.len() > MAX_RESPONSE {
            return Err(PivError::Malformed("response too long"));
        }
    }
    Ok(Response { data, sw: r.sw })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A transport that replays canned responses and records commands.
    pub struct Replay {
        pub answers: VecDeque<Vec<u8>>,
        pub sent: Vec<Vec<u8>>,
    }

    impl Replay {
        pub fn new(answers: &[&[u8]]) -> Self {
            Replay {
                answers: answers.iter().map(|a| a.to_vec()).collect(),
                sent: Vec::new(),
            }
        }
    }

    impl Transport for Replay {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, PivError> {
            self.sent.push(apdu.to_vec());
            self.answers
                .pop_front()
                .map(Zeroizing::new)
                .ok_or(PivError::Removed)
        }
    }

    #[test]
    fn get_response_is_followed() {
        let mut t = Replay::new(&[&[1, 2, 0x61, 0x02], &[3, 4, 0x90, 0x00]]);
        let r = transceive(
            &mut t,
            &Command::new(0xcb, 0x3f, 0xff, vec![0x5c, 1, 0x7e], true),
        )
        .unwrap();
        assert_eq!(&r.data[..], &[1, 2, 3, 4]);
        assert_eq!(t.sent[1], vec![0, 0xc0, 0, 0, 2]);
    }

    #[test]
    fn wrong_le_is_retried() {
        let mut t = Replay::new(&[&[0x6c, 0x05], &[9, 9, 9, 9, 9, 0x90, 0x00]]);
        let r = transceive(&mut t, &Command::new(0xfd, 0, 0, vec![], true)).unwrap();
        assert_eq!(r.data.len(), 5);
        assert_eq!(t.sent[1], vec![0, 0xfd, 0, 0, 5]);
    }

    #[test]
    fn chaining_stops_on_error() {
        let mut t = Replay::new(&[&[0x6a, 0x80]]);
        let r = transceive(&mut t, &Command::new(0x87, 7, 0x9a, vec![0; 300], true)).unwrap();
        assert_eq!(r.sw, StatusWord::IncorrectData);
        assert_eq!(t.sent.len(), 1);
    }

    #[test]
    fn endless_61xx_is_bounded() {
        let mut answers = Vec::new();
        let chunk: Vec<u8> = [vec![0u8; 255], vec![0x61, 0xff]].concat();
        for _ in 0..300 {
            answers.push(chunk.clone());
        }
        let refs: Vec<&[u8]> = answers.iter().map(|a| a.as_slice()).collect();
        let mut t = Replay::new(&refs);
        assert!(transceive(&mut t, &Command::new(0xcb, 0x3f, 0xff, vec![], true)).is_err());
    }
}
