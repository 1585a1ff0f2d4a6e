//! `dcred-backend`: see the library's `cli` module.
fn main() {
    std::process::exit(dcred_backend::cli::main(std::env::args().skip(1).collect()));
}
