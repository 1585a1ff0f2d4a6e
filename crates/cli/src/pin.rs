//! Reading PINs: from the terminal without echo, or from a file / standard
//! input for scripts. PINs are held in `Zeroizing` strings.

use std::io::BufRead;
use std::path::Path;

use zeroize::Zeroizing;

use crate::CliError;

/// Lines of a PIN file ('-' = standard input), trailing newlines removed.
pub fn lines(path: &Path) -> Result<Vec<Zeroizing<String>>, CliError> {
    let text = Zeroizing::new(if path == Path::new("-") {
        let mut s = String::new();
        for line in std::io::stdin().lock().lines() {
            s.push_str(&line?);
            s.push('\n');
        }
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError(format!("{}: {e}", path.display())))?
    });
    Ok(text
        .lines()
        .map(|l| Zeroizing::new(l.to_string()))
        .collect())
}

/// Prompt on the terminal.
pub fn prompt(what: &str) -> Result<Zeroizing<String>, CliError> {
    rpassword::prompt_password(format!("{what}: "))
        .map(Zeroizing::new)
        .map_err(|e| CliError(format!("cannot read the {what} from the terminal: {e}")))
}

/// The derived-credential PIN policy: digits only, at least `min` of them.
pub fn check_policy(pin: &str, min: usize) -> Result<(), CliError> {
    if pin.len() < min || pin.len() > 64 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CliError(format!(
            "the derived PIN must be {min} to 64 digits"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_policy("123456", 6).is_ok());
        assert!(check_policy("12345", 6).is_err());
        assert!(check_policy("12345a", 6).is_err());
        assert!(check_policy("12345678", 8).is_ok());
    }
}
