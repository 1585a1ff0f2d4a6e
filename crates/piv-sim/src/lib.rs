//! A virtual PIV card (NIST SP 800-73-4 card edge) that plugs into the real pcscd through the
//! vsmartcard `vpcd` reader driver, for testing PIV software without hardware.
//!
//! **Test tooling only.** The state file holds the PIN, PUK, management key and private keys
//! in the clear, and the private-key operations make no side-channel claims.
//!
//! Layers, top to bottom:
//! - [`cli`]: `piv-sim provision` and `piv-sim run`;
//! - [`vpcd`]: the TCP transport to vpcd (ATR, power control, APDUs);
//! - [`exchange`]: command chaining and `61 xx` / GET RESPONSE;
//! - [`card`]: the PIV Card Application (SELECT, GET/PUT DATA, VERIFY, GENERAL AUTHENTICATE…);
//! - [`keys`], [`mgmt`]: asymmetric keys and the management key;
//! - [`objects`], [`tlv`], [`apdu`]: PIV data objects and the codecs;
//! - [`state`], [`provision`]: the persistent state file and how it is built.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apdu;
pub mod card;
pub mod cli;
pub mod exchange;
pub mod keys;
pub mod mgmt;
pub mod objects;
pub mod provision;
pub mod state;
pub mod tlv;
pub mod vpcd;
