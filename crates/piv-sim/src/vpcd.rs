//! The vsmartcard `vpcd` transport. The card is a TCP client of the vpcd reader driver loaded
//! in pcscd (port 35963 for reader slot 0, 35964 for slot 1). Both directions carry
//! `length (2 bytes, big-endian) || payload`. A 1-byte payload from vpcd is a control code
//! (0 power off, 1 power on, 2 reset, 4 get ATR); anything longer is a command APDU, answered
//! with the response APDU. Closing the socket removes the card; connecting inserts it.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::card::Card;
use crate::exchange::Exchange;
use crate::state::write_atomic;

/// Historical bytes of the ATR.
const HISTORICAL: &[u8; 8] = b"dcredPIV";
/// How often to retry connecting, and how often a blocked read checks for a stop request.
const POLL: Duration = Duration::from_millis(200);

/// The ATR: `3B 88 80 01` (T=0 and T=1 offered, 8 historical bytes), historical bytes, TCK.
pub fn atr() -> Vec<u8> {
    let mut atr = vec![0x3B, 0x80 | HISTORICAL.len() as u8, 0x80, 0x01];
    atr.extend_from_slice(HISTORICAL);
    let tck = atr[1..].iter().fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// vpcd host, normally 127.0.0.1.
    pub host: String,
    /// vpcd port: 35963 + reader slot number.
    pub port: u16,
    /// Serve one connection only: no retry when vpcd is not up, exit when it closes.
    pub once: bool,
    /// File that receives the number of APDUs answered, rewritten after each APDU.
    pub count_file: Option<PathBuf>,
    /// Fault injection for timeout tests: never answer an APDU with this INS
    /// (the card hangs until stopped).
    pub stall_ins: Option<u8>,
    /// Fault injection: behave as a card without the PIV application (every
    /// SELECT by name is answered 6A 82).
    pub not_piv: bool,
}

/// Why serving stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum VpcdError {
    /// Connecting failed (with `--once`).
    Connect(String, io::Error),
    /// The connection failed while serving.
    Io(io::Error),
}

impl fmt::Display for VpcdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VpcdError::Connect(addr, e) => write!(f, "cannot connect to vpcd at {addr}: {e}"),
            VpcdError::Io(e) => write!(f, "vpcd connection: {e}"),
        }
    }
}

impl std::error::Error for VpcdError {}

/// How an interruptible read ended.
enum Filled {
    Full,
    Closed,
    Stopped,
}

/// Serves `card` to vpcd until `stop` is set (or, with `once`, until the connection ends).
pub fn serve(card: &mut Card, opts: &Options, stop: &AtomicBool) -> Result<(), VpcdError> {
    let addr = format!("{}:{}", opts.host, opts.port);
    let mut exchange = Exchange::new();
    let mut waiting_logged = false;
    write_count(opts, 0);
    while !stop.load(Ordering::SeqCst) {
        let stream = match TcpStream::connect(&addr) {
            Ok(s) => s,
            Err(e) if opts.once => return Err(VpcdError::Connect(addr, e)),
            Err(e) => {
                if !waiting_logged {
                    eprintln!("piv-sim: waiting for vpcd at {addr} ({e})");
                    waiting_logged = true;
                }
                std::thread::sleep(POLL);
                continue;
            }
        };
        waiting_logged = false;
        eprintln!("piv-sim: connected to vpcd at {addr} (card inserted)");
        card.reset();
        exchange.reset();
        let result = serve_connection(stream, card, &mut exchange, opts, stop);
        card.reset();
        exchange.reset();
        match result {
            Ok(()) => eprintln!("piv-sim: vpcd connection closed"),
            Err(e) if opts.once => return Err(VpcdError::Io(e)),
            Err(e) => eprintln!("piv-sim: vpcd connection lost: {e}"),
        }
        if opts.once {
            break;
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

fn serve_connection(
    mut stream: TcpStream,
    card: &mut Card,
    exchange: &mut Exchange,
    opts: &Options,
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_read_timeout(Some(POLL))?;
    stream.set_nodelay(true)?;
    loop {
        let mut len = [0u8; 2];
        match read_full(&mut stream, &mut len, stop)? {
            Filled::Full => {}
            Filled::Closed | Filled::Stopped => return Ok(()),
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match read_full(&mut stream, &mut msg, stop)? {
            Filled::Full => {}
            Filled::Closed | Filled::Stopped => return Ok(()),
        }
        let reply = match msg.as_slice() {
            [] => None,
            [0] | [1] | [2] => {
                // Power off, power on, reset: the security status is lost.
                card.reset();
                exchange.reset();
                None
            }
            [4] => Some(atr()),
            [other] => {
                eprintln!("piv-sim: unknown vpcd control {other}");
                None
            }
            apdu if opts.not_piv && apdu.get(1) == Some(&0xa4) && apdu.get(2) == Some(&0x04) => {
                write_count(opts, exchange.count());
                Some(vec![0x6a, 0x82])
            }
            apdu if opts.stall_ins.is_some() && apdu.get(1).copied() == opts.stall_ins => {
                eprintln!("piv-sim: stalling on INS {:02X} (fault injection)", apdu[1]);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(POLL);
                }
                return Ok(());
            }
            apdu => {
                let (header, resp) = exchange.transmit(apdu, card);
                let sw = resp.get(resp.len().saturating_sub(2)..).unwrap_or_default();
                let n = exchange.count();
                match header {
                    Some([cla, ins, p1, p2]) => eprintln!(
                        "piv-sim: #{n} {cla:02X} {ins:02X} {p1:02X} {p2:02X} -> {:02X?}",
                        sw
                    ),
                    None => eprintln!("piv-sim: #{n} malformed APDU -> {sw:02X?}"),
                }
                write_count(opts, n);
                zeroize::Zeroize::zeroize(&mut msg);
                Some(resp)
            }
        };
        if let Some(reply) = reply {
            let len = u16::try_from(reply.len())
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, "response too long"))?;
            let mut frame = Vec::with_capacity(reply.len() + 2);
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&reply);
            stream.write_all(&frame)?;
            zeroize::Zeroize::zeroize(&mut frame);
        }
    }
}

/// Rewrites the APDU count file, if there is one.
fn write_count(opts: &Options, n: u64) {
    if let Some(path) = &opts.count_file {
        if let Err(e) = write_atomic(path, format!("{n}\n").as_bytes(), 0o644) {
            eprintln!("piv-sim: cannot write {}: {e}", path.display());
        }
    }
}

/// vpcd writes the 2-byte length and the APDU with two `send` calls and leaves Nagle's
/// algorithm on, so its second write waits for our ACK of the first; with delayed ACKs that
/// costs ~40 ms per APDU. Asking the kernel to ACK at once (re-armed after every read, since
/// Linux may leave quick-ACK mode by itself) removes the stall.
fn quick_ack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}

/// Fills `buf`, waking up every [`POLL`] to look at `stop`.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<Filled> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::SeqCst) {
            return Ok(Filled::Stopped);
        }
        let read = stream.read(&mut buf[filled..]);
        quick_ack(stream);
        match read {
            Ok(0) => return Ok(Filled::Closed),
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Filled::Full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn atr_has_valid_tck() {
        let atr = atr();
        assert_eq!(atr[..4], [0x3B, 0x88, 0x80, 0x01]);
        assert_eq!(atr.len(), 13);
        assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0);
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn read_frame(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).unwrap();
        buf
    }

    /// Plays vpcd: ATR, power on, SELECT, then closes; the card exits (`once`).
    #[test]
    fn speaks_the_vpcd_protocol() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("piv-sim-vpcd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let count = dir.join("count");
        let opts = Options {
            host: "127.0.0.1".into(),
            port,
            once: true,
            count_file: Some(count.clone()),
            stall_ins: None,
            not_piv: false,
        };
        let card_thread = std::thread::spawn(move || {
            let mut card = Card::new(crate::state::State::default(), None).unwrap();
            serve(&mut card, &opts, &AtomicBool::new(false))
        });
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&frame(&[4])).unwrap();
        assert_eq!(read_frame(&mut s), atr());
        s.write_all(&frame(&[1])).unwrap();
        let select = [0, 0xA4, 4, 0, 9, 0xA0, 0, 0, 3, 8, 0, 0, 0x10, 0];
        s.write_all(&frame(&select)).unwrap();
        let resp = read_frame(&mut s);
        assert_eq!(resp[0], 0x61);
        assert_eq!(resp[resp.len() - 2..], [0x90, 0x00]);
        s.write_all(&frame(&[0, 0xC0, 0, 0])).unwrap();
        assert_eq!(read_frame(&mut s), vec![0x69, 0x85]);
        drop(s);
        card_thread.join().unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "2\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The card starts before vpcd listens, retries, reconnects after a drop, and stops
    /// when asked.
    #[test]
    fn retries_and_reconnects_until_stopped() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let card_stop = std::sync::Arc::clone(&stop);
        let opts = Options {
            host: "127.0.0.1".into(),
            port,
            once: false,
            count_file: None,
            stall_ins: None,
            not_piv: false,
        };
        let card_thread = std::thread::spawn(move || {
            let mut card = Card::new(crate::state::State::default(), None).unwrap();
            serve(&mut card, &opts, &card_stop)
        });
        std::thread::sleep(Duration::from_millis(450));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&frame(&[4])).unwrap();
            assert_eq!(read_frame(&mut s), atr());
        }
        stop.store(true, Ordering::SeqCst);
        card_thread.join().unwrap().unwrap();
    }
}
