//! Derived-credential slots: one per credential file enrolled on this machine
//! (`dcred enroll`). Slots are found without network I/O; the back-end is
//! contacted only at `C_Login` (activation) and `C_SetPIN`.

pub mod token;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dcred_protocol::credential;

use crate::core::slots::{SlotProvider, SlotStatus};
use crate::core::{Error, Result, Token};

/// One slot per credential file.
pub struct SoftProvider {
    dir: Option<PathBuf>,
    config: Arc<crate::config::Config>,
}

impl SoftProvider {
    /// A provider over the credential directory (`$DCRED_DATA_DIR/credentials`
    /// or `~/.local/share/dcred/credentials`).
    pub fn new(config: Arc<crate::config::Config>) -> Self {
        SoftProvider {
            dir: credential::default_dir(),
            config,
        }
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{id}.json")))
    }
}

impl SlotProvider for SoftProvider {
    fn scan(&self) -> Vec<SlotStatus> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        credential::list(dir)
            .into_iter()
            .filter_map(|(path, c)| match c {
                Ok(c) => Some(SlotStatus {
                    name: c.id,
                    present: true,
                    events: 0,
                }),
                Err(e) => {
                    log::warn!("{}: {e}", path.display());
                    None
                }
            })
            .collect()
    }

    fn wait_change(&self, _known: &[SlotStatus], _timeout: Duration) -> Result<bool> {
        // Credential files are rescanned on every wait round; nothing to block on.
        Ok(false)
    }

    fn cancel(&self) {}

    fn open(&self, name: &str) -> Result<Arc<dyn Token>> {
        let path = self.path(name).ok_or(Error::TokenNotPresent)?;
        let cred = credential::Credential::read(&path).map_err(|e| {
            log::warn!("{}: {e}", path.display());
            Error::TokenNotPresent
        })?;
        Ok(Arc::new(token::SoftToken::new(cred, self.config.clone())?))
    }

    fn description(&self, name: &str) -> String {
        format!("dcred derived credential {name}")
    }

    fn removable(&self) -> bool {
        false
    }
}
