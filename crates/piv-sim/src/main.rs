//! `piv-sim`: a virtual PIV card for the vsmartcard vpcd reader (test tooling).

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(piv_sim::cli::main(std::env::args().skip(1).collect()));
}
