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

/// What a scan learnt of one file: its modification time and length, and the
/// credential id it holds (`None`: unreadable, already reported).
type Seen = (std::time::SystemTime, u64, Option<String>);

/// One slot per credential file.
pub struct SoftProvider {
    dir: Option<PathBuf>,
    config: Arc<crate::config::Config>,
    /// Files already parsed: applications list slots often, so a file is read
    /// again only when it changes.
    seen: std::sync::Mutex<std::collections::HashMap<PathBuf, Seen>>,
}

impl SoftProvider {
    /// A provider over the credential directory (`$DCRED_DATA_DIR/credentials`
    /// or `~/.local/share/dcred/credentials`).
    pub fn new(config: Arc<crate::config::Config>) -> Self {
        SoftProvider {
            dir: credential::default_dir(),
            config,
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
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
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut seen = crate::core::lock(&self.seen);
        seen.retain(|p, _| paths.contains(p));
        let mut out = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let stamp = (meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta.len());
            let id = match seen.get(&path) {
                Some((t, n, id)) if (*t, *n) == stamp => id.clone(),
                _ => {
                    let id = match credential::Credential::read(&path) {
                        Ok(c) => Some(c.id),
                        Err(e) => {
                            log::warn!("{}: {e}", path.display());
                            None
                        }
                    };
                    seen.insert(path, (stamp.0, stamp.1, id.clone()));
                    id
                }
            };
            if let Some(name) = id {
                out.push(SlotStatus {
                    name,
                    present: true,
                    events: 0,
                });
            }
        }
        out
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
