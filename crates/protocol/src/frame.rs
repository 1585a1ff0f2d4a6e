//! Framing: a 4-byte big-endian length, then a JSON body of at most
//! [`MAX_FRAME`](crate::MAX_FRAME) bytes. Versions are checked before the
//! body is interpreted, so a newer peer gets a clear refusal.

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{MAX_FRAME, VERSION};

/// Framing errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced a frame larger than the limit.
    TooLarge(usize),
    /// The peer speaks another protocol version.
    Version(u16),
    /// The body is not a valid message.
    Malformed(String),
    /// Reading or writing failed (including timeouts).
    Io(std::io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME}"),
            FrameError::Version(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks {VERSION})"
            ),
            FrameError::Malformed(e) => write!(f, "malformed message: {e}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Encode a message as one frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let body =
        Zeroizing::new(serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?);
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 4));
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parse a frame body, checking the version first.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    #[derive(Deserialize)]
    struct Envelope {
        version: u16,
    }
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if env.version != VERSION {
        return Err(FrameError::Version(env.version));
    }
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// The body length announced by a 4-byte header, checked against the limit.
pub fn body_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let n = u32::from_be_bytes(header) as usize;
    if n > MAX_FRAME {
        return Err(FrameError::TooLarge(n));
    }
    Ok(n)
}

/// Read one frame body (blocking; the stream's timeouts apply).
pub fn read_frame(r: &mut impl Read) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header)?;
    let mut body = Zeroizing::new(vec![0u8; body_len(header)?]);
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Write one message as a frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Request, RequestBody, Response, ResponseBody};

    #[test]
    fn round_trip_through_a_stream() {
        let req = Request {
            version: VERSION,
            body: RequestBody::Activate {
                handle: vec![9u8; 32].as_slice().into(),
                q: vec![4u8; 65].as_slice().into(),
                sig: vec![1u8; 64].as_slice().into(),
            },
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let body = read_frame(&mut buf.as_slice()).unwrap();
        let back: Request = decode(&body).unwrap();
        match back.body {
            RequestBody::Activate { handle, .. } => assert_eq!(handle.0, vec![9u8; 32]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_frames_are_refused_before_reading() {
        let header = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(body_len(header), Err(FrameError::TooLarge(_))));
        let mut stream = header.to_vec();
        stream.extend_from_slice(b"{}");
        assert!(matches!(
            read_frame(&mut stream.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn unknown_version_is_refused_clearly() {
        let e = decode::<Response>(br#"{"version":7,"type":"refused"}"#).unwrap_err();
        assert!(matches!(e, FrameError::Version(7)));
        assert!(e.to_string().contains("version 7"));
        let ok: Response = decode(br#"{"version":1,"type":"refused"}"#).unwrap();
        assert!(matches!(ok.body, ResponseBody::Refused));
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert!(matches!(
            decode::<Request>(b"not json"),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Request>(br#"{"version":1,"type":"bogus"}"#),
            Err(FrameError::Malformed(_))
        ));
        let mut s: &[u8] = &[0, 0, 0, 10, b'{'];
        assert!(matches!(read_frame(&mut s), Err(FrameError::Io(_))));
    }
}
