//! Command line: `piv-sim provision ...` and `piv-sim run ...` (hand-rolled parsing).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::card::Card;
use crate::provision::{provision, ProvisionOptions, SlotSpec};
use crate::state::unhex;
use crate::{mgmt, vpcd};

/// Usage text.
pub const USAGE: &str = "\
piv-sim: a virtual PIV card (SP 800-73-4) for the vsmartcard vpcd reader. TEST TOOLING ONLY:
the state file holds the PIN, PUK, management key and private keys in the clear.

USAGE:
  piv-sim provision --state FILE [--pin 123456] [--puk 12345678] [--pin-retries 3]
                    [--puk-retries 3] [--label TEXT] [--serial N]
                    [--mgmt-key HEX [--mgmt-alg 3des|aes128|aes192|aes256]]
                    [--slot 9a|9c|9d|9e|82..95 [--key key.pem] [--cert cert.pem]]...
      Creates FILE, or updates it (slots are added or replaced; the CHUID and CCC keep
      their random identifiers). Keys: PEM PKCS#8, PKCS#1 or SEC1, or DER; RSA 1024/2048,
      EC P-256/P-384. Certificates: PEM or DER. Defaults: PIN 123456, PUK 12345678,
      3 retries, 3DES management key 010203040506070801020304050607080102030405060708.

  piv-sim run --state FILE [--host 127.0.0.1] [--port 35963] [--count-file F] [--once]
              [--stall-ins HEX] [--not-piv]
      Connects to vpcd (port 35963 + reader slot) and serves the card, retrying every
      200 ms while vpcd is not up or after the connection drops. --stall-ins: never answer
      APDUs with that INS (fault injection for timeout tests); --not-piv: answer every
      SELECT with 6A82, like a card without the PIV application. --once: connect once,
      exit when the connection ends. --count-file: the number of APDUs answered, rewritten
      after each APDU. Logs each APDU header and status word to stderr. Exits on SIGTERM.
";

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(()) => 0,
        Err(CliError::Usage(msg)) => {
            eprintln!("piv-sim: {msg}\n\n{USAGE}");
            2
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("piv-sim: {msg}");
            1
        }
    }
}

/// Why the command line failed.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// Bad arguments (message).
    Usage(String),
    /// The command failed (message).
    Failed(String),
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn run(args: Vec<String>) -> Result<(), CliError> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("provision") => {
            let opts = parse_provision(args)?;
            let state = provision(&opts).map_err(|e| CliError::Failed(e.to_string()))?;
            eprintln!(
                "piv-sim: provisioned {} (keys: {}; objects: {})",
                opts.state.display(),
                state.keys.keys().cloned().collect::<Vec<_>>().join(" "),
                state.objects.keys().cloned().collect::<Vec<_>>().join(" ")
            );
            Ok(())
        }
        Some("run") => {
            let (state, opts) = parse_run(args)?;
            let mut card = Card::open(state).map_err(|e| CliError::Failed(e.to_string()))?;
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(sig, Arc::clone(&stop))
                    .map_err(|e| CliError::Failed(format!("cannot handle signals: {e}")))?;
            }
            vpcd::serve(&mut card, &opts, &stop).map_err(|e| CliError::Failed(e.to_string()))?;
            eprintln!("piv-sim: stopped");
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(usage(format!("unknown command {other:?}"))),
        None => Err(usage("missing command")),
    }
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, CliError> {
    args.next()
        .ok_or_else(|| usage(format!("{flag} needs a value")))
}

fn number<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, CliError> {
    s.parse()
        .map_err(|_| usage(format!("{flag}: {s:?} is not a valid number")))
}

fn key_ref(s: &str) -> Result<u8, CliError> {
    let slot = unhex(s)
        .and_then(|b| <[u8; 1]>::try_from(b).ok())
        .map(|[b]| b)
        .filter(|&b| crate::objects::is_key_slot(b));
    slot.ok_or_else(|| usage(format!("--slot {s}: expected 9a, 9c, 9d, 9e or 82..95")))
}

fn mgmt_alg(s: &str) -> Result<u8, CliError> {
    match s.to_ascii_lowercase().as_str() {
        "3des" | "tdes" | "03" => Ok(mgmt::ALG_3DES),
        "aes128" | "08" => Ok(mgmt::ALG_AES128),
        "aes192" | "0a" => Ok(mgmt::ALG_AES192),
        "aes256" | "0c" => Ok(mgmt::ALG_AES256),
        _ => Err(usage(format!(
            "--mgmt-alg {s}: expected 3des, aes128, aes192 or aes256"
        ))),
    }
}

/// Parses the arguments after `provision`.
pub fn parse_provision(
    mut args: impl Iterator<Item = String>,
) -> Result<ProvisionOptions, CliError> {
    let mut opts = ProvisionOptions::default();
    let mut state = None;
    let mut mgmt_key = None;
    let mut alg = mgmt::ALG_3DES;
    while let Some(flag) = args.next() {
        let v = value(&mut args, &flag)?;
        match flag.as_str() {
            "--state" => state = Some(PathBuf::from(v)),
            "--pin" => opts.pin = Some(v),
            "--puk" => opts.puk = Some(v),
            "--pin-retries" => opts.pin_retries = Some(number(&v, &flag)?),
            "--puk-retries" => opts.puk_retries = Some(number(&v, &flag)?),
            "--label" => opts.label = Some(v),
            "--serial" => opts.serial = Some(number(&v, &flag)?),
            "--mgmt-key" => {
                mgmt_key = Some(unhex(&v).ok_or_else(|| usage("--mgmt-key: expected hex"))?)
            }
            "--mgmt-alg" => alg = mgmt_alg(&v)?,
            "--slot" => opts.slots.push(SlotSpec {
                key_ref: key_ref(&v)?,
                ..SlotSpec::default()
            }),
            "--key" | "--cert" => {
                let slot = opts
                    .slots
                    .last_mut()
                    .ok_or_else(|| usage(format!("{flag} must follow --slot")))?;
                let target = if flag == "--key" {
                    &mut slot.key
                } else {
                    &mut slot.cert
                };
                if target.replace(PathBuf::from(v)).is_some() {
                    return Err(usage(format!("{flag} given twice for one --slot")));
                }
            }
            _ => return Err(usage(format!("unknown option {flag}"))),
        }
    }
    opts.state = state.ok_or_else(|| usage("--state is required"))?;
    opts.mgmt_key = mgmt_key.map(|k| (alg, k));
    Ok(opts)
}

/// Parses the arguments after `run`.
pub fn parse_run(
    mut args: impl Iterator<Item = String>,
) -> Result<(PathBuf, vpcd::Options), CliError> {
    let mut state = None;
    let mut opts = vpcd::Options {
        host: "127.0.0.1".into(),
        port: 35963,
        once: false,
        count_file: None,
        stall_ins: None,
        not_piv: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--once" => opts.once = true,
            "--state" => state = Some(PathBuf::from(value(&mut args, &flag)?)),
            "--host" => opts.host = value(&mut args, &flag)?,
            "--port" => opts.port = number(&value(&mut args, &flag)?, &flag)?,
            "--count-file" => opts.count_file = Some(PathBuf::from(value(&mut args, &flag)?)),
            "--not-piv" => opts.not_piv = true,
            "--stall-ins" => {
                let v = value(&mut args, &flag)?;
                let ins = u8::from_str_radix(&v, 16)
                    .map_err(|_| usage(format!("{flag} takes a hex byte, not {v}")))?;
                opts.stall_ins = Some(ins);
            }
            _ => return Err(usage(format!("unknown option {flag}"))),
        }
    }
    let state = state.ok_or_else(|| usage("--state is required"))?;
    Ok((state, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> impl Iterator<Item = String> {
        s.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_provision_options() {
        let o = parse_provision(args(
            "--state s.json --pin 111111 --slot 9a --key a.pem --cert a.crt --slot 83 --cert b.der \
             --mgmt-alg aes128 --mgmt-key 000102030405060708090a0b0c0d0e0f",
        ))
        .unwrap();
        assert_eq!(o.state, PathBuf::from("s.json"));
        assert_eq!(o.pin.as_deref(), Some("111111"));
        assert_eq!(o.slots.len(), 2);
        assert_eq!(o.slots[0].key_ref, 0x9A);
        assert_eq!(o.slots[1].key, None);
        assert_eq!(o.slots[1].cert, Some(PathBuf::from("b.der")));
        assert_eq!(
            o.mgmt_key.as_ref().map(|(a, k)| (*a, k.len())),
            Some((0x08, 16))
        );
        assert!(parse_provision(args("--pin 1")).is_err());
        assert!(parse_provision(args("--state s --key a.pem")).is_err());
        assert!(parse_provision(args("--state s --slot 9b")).is_err());
        assert!(parse_provision(args("--state s --slot 9a --key a --key b")).is_err());
    }

    #[test]
    fn parses_run_options() {
        let (s, o) = parse_run(args("--state s.json --port 35964 --once --count-file c")).unwrap();
        assert_eq!(s, PathBuf::from("s.json"));
        assert_eq!(
            (o.port, o.once, o.host.as_str()),
            (35964, true, "127.0.0.1")
        );
        assert!(parse_run(args("--port 1")).is_err());
        assert!(parse_run(args("--state s --port x")).is_err());
        assert_eq!(main(vec!["bogus".into()]), 2);
    }
}
