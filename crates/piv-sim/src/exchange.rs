//! The transmission layer between raw APDUs and the card application: command chaining
//! (CLA bit `0x10`, ISO/IEC 7816-4 §5.1.1.1) and long responses returned in pieces with
//! `61 xx` and GET RESPONSE (`00 C0 00 00 Le`, ISO/IEC 7816-4 §7.6.1), as a real card does.

use crate::apdu::{Command, Response, Sw};

/// INS of GET RESPONSE.
const INS_GET_RESPONSE: u8 = 0xC0;
/// Upper bound on a chained command's accumulated data.
const MAX_CHAIN: usize = 16 * 1024;

/// The card application behind the transmission layer: it sees whole commands only.
pub trait Application {
    /// Processes one complete (de-chained) command.
    fn process(&mut self, cmd: &Command) -> Response;
}

/// A chain being accumulated: INS P1 P2 of its parts and their data so far.
struct Chain {
    header: [u8; 3],
    data: Vec<u8>,
}

impl Chain {
    fn new(header: [u8; 3]) -> Self {
        Chain {
            header,
            data: Vec::new(),
        }
    }

    fn push(&mut self, part: &[u8]) -> Result<(), Sw> {
        if self.data.len() + part.len() > MAX_CHAIN {
            return Err(Sw::NO_MEMORY);
        }
        self.data.extend_from_slice(part);
        Ok(())
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

/// Reassembles chains, splits long answers, and counts APDUs.
#[derive(Default)]
pub struct Exchange {
    chain: Option<Chain>,
    pending: Vec<u8>,
    pending_sw: Option<Sw>,
    count: u64,
}

impl Exchange {
    /// A fresh layer with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any chain or pending response (card reset or power cycle).
    pub fn reset(&mut self) {
        self.chain = None;
        zeroize::Zeroize::zeroize(&mut self.pending);
        self.pending_sw = None;
    }

    /// APDUs answered so far, GET RESPONSE and chain parts included.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Answers one raw command APDU with raw response bytes (data || SW1 SW2), and reports
    /// the command header that was processed, for logging.
    pub fn transmit(
        &mut self,
        raw: &[u8],
        app: &mut impl Application,
    ) -> (Option<[u8; 4]>, Vec<u8>) {
        self.count += 1;
        let cmd = match Command::parse(raw) {
            Ok(cmd) => cmd,
            Err(_) => {
                self.reset();
                return (None, Response::status(Sw::WRONG_LENGTH).to_bytes());
            }
        };
        let header = [cmd.cla, cmd.ins, cmd.p1, cmd.p2];
        (Some(header), self.handle(cmd, app).to_bytes())
    }

    fn handle(&mut self, mut cmd: Command, app: &mut impl Application) -> Response {
        if cmd.ins == INS_GET_RESPONSE && cmd.cla & 0x10 == 0 {
            return self.next_piece(cmd.max_response());
        }
        self.pending.clear();
        self.pending_sw = None;
        let header = [cmd.ins, cmd.p1, cmd.p2];
        if cmd.chained() {
            let mut chain = match self.chain.take() {
                Some(chain) if chain.header == header => chain,
                _ => Chain::new(header),
            };
            if let Err(sw) = chain.push(&cmd.data) {
                return sw.into();
            }
            self.chain = Some(chain);
            return Response::status(Sw::OK);
        }
        // A command with another header than the chain's abandons the chain.
        if let Some(mut chain) = self.chain.take().filter(|c| c.header == header) {
            if let Err(sw) = chain.push(&cmd.data) {
                return sw.into();
            }
            cmd.data = std::mem::take(&mut chain.data);
        }
        let resp = app.process(&cmd);
        self.split(resp, cmd.max_response())
    }

    fn split(&mut self, resp: Response, max: usize) -> Response {
        if resp.data.len() <= max {
            return resp;
        }
        let Response { mut data, sw } = resp;
        let rest = data.split_off(max);
        self.pending = rest;
        self.pending_sw = Some(sw);
        Response {
            data,
            sw: Sw::more_data(self.pending.len()),
        }
    }

    fn next_piece(&mut self, max: usize) -> Response {
        let Some(final_sw) = self.pending_sw else {
            return Response::status(Sw::CONDITIONS);
        };
        let take = max.min(self.pending.len());
        let rest = self.pending.split_off(take);
        let data = std::mem::replace(&mut self.pending, rest);
        if self.pending.is_empty() {
            self.pending_sw = None;
            Response { data, sw: final_sw }
        } else {
            Response {
                data,
                sw: Sw::more_data(self.pending.len()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes the command data `p1` times, and records the commands it saw.
    #[derive(Default)]
    struct Echo {
        seen: Vec<(u8, usize)>,
    }

    impl Application for Echo {
        fn process(&mut self, cmd: &Command) -> Response {
            self.seen.push((cmd.ins, cmd.data.len()));
            Response::ok(cmd.data.repeat(usize::from(cmd.p1)))
        }
    }

    fn apdu(cla: u8, ins: u8, p1: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![cla, ins, p1, 0, data.len() as u8];
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reassembles_chains() {
        let mut ex = Exchange::new();
        let mut app = Echo::default();
        let (_, r) = ex.transmit(&apdu(0x10, 0x87, 1, &[1; 255]), &mut app);
        assert_eq!(r, vec![0x90, 0]);
        let (_, r) = ex.transmit(&apdu(0x10, 0x87, 1, &[2; 255]), &mut app);
        assert_eq!(r, vec![0x90, 0]);
        let (_, r) = ex.transmit(&apdu(0x00, 0x87, 1, &[3; 10]), &mut app);
        assert_eq!(app.seen, vec![(0x87, 520)]);
        // 520 bytes back with no Le: 256, then 61 00 ... GET RESPONSE.
        assert_eq!(r.len(), 258);
        assert_eq!(r[256..], [0x61, 0x00]);
        let (_, r) = ex.transmit(&[0, 0xC0, 0, 0], &mut app);
        assert_eq!(r.len(), 258);
        assert_eq!(r[256..], [0x61, 0x08]);
        let (_, r) = ex.transmit(&[0, 0xC0, 0, 0, 8], &mut app);
        assert_eq!(r[..8], [3; 8]);
        assert_eq!(r[8..], [0x90, 0x00]);
        let (_, r) = ex.transmit(&[0, 0xC0, 0, 0], &mut app);
        assert_eq!(r, vec![0x69, 0x85]);
        assert_eq!(ex.count(), 6);
    }

    #[test]
    fn short_le_splits_the_response() {
        let mut ex = Exchange::new();
        let mut app = Echo::default();
        let mut raw = apdu(0, 0xCB, 2, &[7; 10]);
        raw.push(4);
        let (_, r) = ex.transmit(&raw, &mut app);
        assert_eq!(r, vec![7, 7, 7, 7, 0x61, 16]);
        let (_, r) = ex.transmit(&[0, 0xC0, 0, 0, 16], &mut app);
        assert_eq!(r.len(), 18);
        assert_eq!(r[16..], [0x90, 0]);
    }

    #[test]
    fn other_command_abandons_chain_and_pending_data() {
        let mut ex = Exchange::new();
        let mut app = Echo::default();
        ex.transmit(&apdu(0x10, 0x87, 1, &[1; 5]), &mut app);
        let (_, r) = ex.transmit(&apdu(0, 0x20, 1, &[9; 2]), &mut app);
        assert_eq!(r, vec![9, 9, 0x90, 0]);
        assert_eq!(app.seen, vec![(0x20, 2)]);
        ex.transmit(&apdu(0, 0xCB, 2, &[1; 200]), &mut app);
        ex.transmit(&apdu(0, 0x20, 0, &[]), &mut app);
        let (_, r) = ex.transmit(&[0, 0xC0, 0, 0], &mut app);
        assert_eq!(r, vec![0x69, 0x85]);
    }

    #[test]
    fn malformed_apdu_is_wrong_length() {
        let mut ex = Exchange::new();
        let (h, r) = ex.transmit(&[0, 0xA4, 4, 0, 9, 1], &mut Echo::default());
        assert_eq!((h, r), (None, vec![0x67, 0x00]));
    }
}
