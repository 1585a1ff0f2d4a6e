//! The `dcred` command: enroll a derived credential from a PIV card, list,
//! remove, change its PIN.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod card;
mod enroll;
mod pin;

use std::path::PathBuf;

use dcred_protocol::credential::{self, Credential};

const USAGE: &str = "\
dcred: derived credentials (NIST SP 800-157) from a PIV card.

USAGE:
  dcred enroll --backend HOST:PORT --trust-anchor CERT [--module LIB] [--reader NAME | --token LABEL]
               [--card-pin-file F] [--pin-file F] [--label TEXT] [--min-pin-len 6]
               [--iterations N] [--key-type p256|rsa2048]
      Proves possession of the PIV card (its 9A key signs the TLS-bound challenge),
      makes the derived keys, receives their certificates and the escrowed
      key-management keys, and stores the credential (keys wrapped under a KWK that
      only the back-end keeps); derived keys are P-256 (default) or RSA-2048.
      PINs are read from the terminal, or from a file
      (one line; '-' is standard input) for scripts.
  dcred list
  dcred change-pin ID [--pin-file F]     (old and new PIN: two lines in the file)
  dcred remove ID
Credentials live in $DCRED_DATA_DIR/credentials or ~/.local/share/dcred/credentials.
The card is used through a PKCS#11 module: --module, $DCRED_MODULE, or the dcred
module next to this program.";

/// CLI errors (messages for the user; never a PIN or key).
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// Parsed options.
#[derive(Debug, Default)]
pub struct Opts {
    backend: Option<String>,
    trust_anchor: Option<PathBuf>,
    module: Option<PathBuf>,
    token: Option<String>,
    reader: Option<String>,
    card_pin_file: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    label: Option<String>,
    min_pin_len: usize,
    iterations: u32,
    rsa: bool,
    rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<Opts, CliError> {
    let mut o = Opts {
        min_pin_len: 6,
        iterations: dcred_protocol::devicekey::DEFAULT_ITERATIONS,
        ..Opts::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || {
            it.next()
                .cloned()
                .ok_or_else(|| CliError(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--backend" => o.backend = Some(v()?),
            "--trust-anchor" => o.trust_anchor = Some(v()?.into()),
            "--module" => o.module = Some(v()?.into()),
            "--token" => o.token = Some(v()?),
            "--reader" => o.reader = Some(v()?),
            "--card-pin-file" => o.card_pin_file = Some(v()?.into()),
            "--pin-file" => o.pin_file = Some(v()?.into()),
            "--label" => o.label = Some(v()?),
            "--key-type" => {
                o.rsa = match v()?.as_str() {
                    "p256" => false,
                    "rsa2048" => true,
                    other => return Err(CliError(format!("--key-type {other}: p256 or rsa2048"))),
                }
            }
            "--min-pin-len" => {
                o.min_pin_len = v()?
                    .parse()
                    .ok()
                    .filter(|n| (4..=64).contains(n))
                    .ok_or_else(|| CliError("--min-pin-len takes 4 to 64".into()))?
            }
            "--iterations" => {
                o.iterations = v()?
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| CliError("--iterations takes a positive number".into()))?
            }
            s if s.starts_with("--") => return Err(CliError(format!("unknown option {s}"))),
            s => o.rest.push(s.to_string()),
        }
    }
    Ok(o)
}

/// Entry point; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let Some((cmd, rest)) = args.split_first() else {
        println!("{USAGE}");
        return 2;
    };
    let r = parse(rest).and_then(|o| match cmd.as_str() {
        "enroll" => enroll::enroll(&o),
        "list" => list(),
        "remove" => remove(&o),
        "change-pin" => enroll::change_pin(&o),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(CliError(format!("unknown command {other}\n\n{USAGE}"))),
    });
    match r {
        Ok(()) => 0,
        Err(CliError(m)) => {
            eprintln!("dcred: {m}");
            1
        }
    }
}

fn dir() -> Result<PathBuf, CliError> {
    credential::default_dir()
        .ok_or_else(|| CliError("no data directory (set DCRED_DATA_DIR)".into()))
}

fn list() -> Result<(), CliError> {
    for (path, c) in credential::list(&dir()?) {
        match c {
            Ok(c) => println!("{}  {}  (back-end {})", c.id, c.label, c.backend.address),
            Err(e) => println!("{}: {e}", path.display()),
        }
    }
    Ok(())
}

/// Find a stored credential by id (or unique prefix).
fn find(id: &str) -> Result<(PathBuf, Credential), CliError> {
    let found: Vec<_> = credential::list(&dir()?)
        .into_iter()
        .filter_map(|(p, c)| c.ok().map(|c| (p, c)))
        .filter(|(_, c)| !id.is_empty() && c.id.starts_with(id))
        .collect();
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(CliError(format!("no credential {id}"))),
        _ => Err(CliError(format!("{id} matches several credentials"))),
    }
}

fn remove(o: &Opts) -> Result<(), CliError> {
    let [id] = o.rest.as_slice() else {
        return Err(CliError("remove needs a credential id".into()));
    };
    let (path, c) = find(id)?;
    std::fs::remove_file(&path)?;
    eprintln!(
        "dcred: removed {} ({}); revoke it on the back-end to kill it everywhere",
        c.id, c.label
    );
    Ok(())
}
