//! `dcred`: see the library.
fn main() {
    std::process::exit(dcred_cli::main(std::env::args().skip(1).collect()));
}
