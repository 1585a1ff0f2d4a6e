//! PC/SC: the slot provider (one slot per reader) and the card connection
//! that implements [`Transport`] inside a PC/SC transaction.

use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use super::token::PivToken;
use super::transport::Transport;
use super::PivError;
use crate::core::slots::{SlotProvider, SlotStatus};
use crate::core::{lock, Error, Result, Token};

fn pcsc_err(e: pcsc::Error) -> PivError {
    match e {
        pcsc::Error::RemovedCard
        | pcsc::Error::NoSmartcard
        | pcsc::Error::ReaderUnavailable
        | pcsc::Error::UnknownReader
        | pcsc::Error::UnpoweredCard
        | pcsc::Error::UnresponsiveCard => PivError::Removed,
        pcsc::Error::Timeout => PivError::Timeout,
        other => PivError::Pcsc(other.to_string()),
    }
}

/// Total APDUs this process has sent (for measurements in the log).
pub static APDUS_SENT: AtomicU64 = AtomicU64::new(0);

/// A connection to the card in one reader. Dropping it leaves the card as
/// it is (no reset), so the card keeps its PIN state for other sessions.
pub struct Connection {
    card: Option<pcsc::Card>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        }
    }
}

impl Connection {
    /// Connect (shared) to the card in a reader.
    pub fn connect(ctx: &pcsc::Context, reader: &CString) -> std::result::Result<Self, PivError> {
        let card = ctx
            .connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(pcsc_err)?;
        Ok(Connection { card: Some(card) })
    }

    /// Run `f` inside one PC/SC transaction, so no other application's APDU
    /// comes between ours. A reset by another application is recovered once
    /// (`reset` is then true for `f`: the PIN state is gone).
    pub fn with_transaction<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Transport, bool) -> std::result::Result<R, PivError>,
    ) -> std::result::Result<R, PivError> {
        let card = self.card.as_mut().ok_or(PivError::Removed)?;
        let mut was_reset = false;
        let tx = match card.transaction2() {
            Ok(tx) => tx,
            Err((card, pcsc::Error::ResetCard)) => {
                card.reconnect(
                    pcsc::ShareMode::Shared,
                    pcsc::Protocols::ANY,
                    pcsc::Disposition::LeaveCard,
                )
                .map_err(pcsc_err)?;
                was_reset = true;
                card.transaction().map_err(pcsc_err)?
            }
            Err((_, e)) => return Err(pcsc_err(e)),
        };
        let mut t = TxTransport { tx: &tx };
        let r = f(&mut t, was_reset);
        let _ = tx.end(pcsc::Disposition::LeaveCard);
        r
    }
}

/// A job for the card thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Runs card transactions on a thread of its own, so that a card or reader
/// that stops answering costs the caller at most `timeout` (PC/SC's
/// `SCardTransmit` has no timeout of its own). After a timeout the card is
/// reported wedged (`CKR_DEVICE_ERROR` at once) until the stuck transaction
/// returns.
pub struct CardWorker {
    jobs: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    inline: Mutex<Option<Connection>>,
    wedged: Arc<std::sync::atomic::AtomicBool>,
    timeout: Duration,
}

impl CardWorker {
    /// Start the worker for a connection. With `threads` false (the
    /// application forbade library threads) transactions run on the caller's
    /// thread, without a timeout.
    pub fn new(conn: Connection, timeout: Duration, threads: bool) -> Self {
        let wedged = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !threads {
            return CardWorker {
                jobs: Mutex::new(None),
                inline: Mutex::new(Some(conn)),
                wedged,
                timeout,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let flag = wedged.clone();
        let spawned = std::thread::Builder::new()
            .name("dcred-card".into())
            .spawn(move || {
                let mut conn = conn;
                for job in rx {
                    job(&mut conn);
                    flag.store(false, Ordering::SeqCst);
                }
            });
        match spawned {
            Ok(_) => CardWorker {
                jobs: Mutex::new(Some(tx)),
                inline: Mutex::new(None),
                wedged,
                timeout,
            },
            Err(e) => {
                log::error!("cannot start the card thread ({e}); card calls have no timeout");
                // The connection moved into the failed closure; the caller reconnects.
                CardWorker {
                    jobs: Mutex::new(None),
                    inline: Mutex::new(None),
                    wedged,
                    timeout,
                }
            }
        }
    }

    /// Run `f` on the card connection, within the timeout.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> std::result::Result<R, PivError> + Send + 'static,
    ) -> std::result::Result<R, PivError> {
        if let Some(conn) = lock(&self.inline).as_mut() {
            return f(conn);
        }
        if self.wedged.load(Ordering::SeqCst) {
            return Err(PivError::Timeout);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        lock(&self.jobs)
            .as_ref()
            .ok_or(PivError::Removed)?
            .send(job)
            .map_err(|_| PivError::Removed)?;
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                self.wedged.store(true, Ordering::SeqCst);
                log::error!(
                    "card did not answer within {} ms; reporting a device error",
                    self.timeout.as_millis()
                );
                Err(PivError::Timeout)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(PivError::Removed),
        }
    }
}

struct TxTransport<'a, 'b> {
    tx: &'a pcsc::Transaction<'b>,
}

impl Transport for TxTransport<'_, '_> {
    fn transmit(&mut self, apdu: &[u8]) -> std::result::Result<Zeroizing<Vec<u8>>, PivError> {
        let mut buf = Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]);
        APDUS_SENT.fetch_add(1, Ordering::Relaxed);
        let r = self.tx.transmit(apdu, &mut buf).map_err(pcsc_err)?;
        if apdu.len() > 1 {
            log::trace!("APDU INS={:02X} -> {} bytes", apdu[1], r.len());
        }
        Ok(Zeroizing::new(r.to_vec()))
    }
}

/// One slot per PC/SC reader.
pub struct PcscProvider {
    /// Context for listing, status and card connections.
    ctx: Mutex<Option<pcsc::Context>>,
    /// Separate context for blocking waits, so they never stall other calls
    /// and `C_Finalize` can cancel them.
    wait_ctx: Mutex<Option<pcsc::Context>>,
    config: Arc<crate::config::Config>,
}

impl PcscProvider {
    /// A provider; connecting to pcscd is attempted lazily and retried.
    pub fn new(config: Arc<crate::config::Config>) -> Self {
        PcscProvider {
            ctx: Mutex::new(None),
            wait_ctx: Mutex::new(None),
            config,
        }
    }

    fn context(slot: &Mutex<Option<pcsc::Context>>) -> Option<pcsc::Context> {
        let mut g = lock(slot);
        if let Some(c) = g.as_ref() {
            if c.is_valid().is_ok() {
                return Some(c.clone());
            }
        }
        match pcsc::Context::establish(pcsc::Scope::User) {
            Ok(c) => {
                *g = Some(c.clone());
                Some(c)
            }
            Err(e) => {
                log::debug!("PC/SC unavailable: {e}");
                *g = None;
                None
            }
        }
    }

    fn states(ctx: &pcsc::Context) -> Vec<pcsc::ReaderState> {
        let readers = match ctx.list_readers_owned() {
            Ok(r) => r,
            Err(pcsc::Error::NoReadersAvailable) => return Vec::new(),
            Err(e) => {
                log::warn!("cannot list PC/SC readers: {e}");
                return Vec::new();
            }
        };
        let mut states: Vec<_> = readers
            .into_iter()
            .map(|r| pcsc::ReaderState::new(r, pcsc::State::UNAWARE))
            .collect();
        if states.is_empty() {
            return states;
        }
        match ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => states,
            Err(e) => {
                log::warn!("cannot read PC/SC reader states: {e}");
                Vec::new()
            }
        }
    }

    fn status_of(rs: &pcsc::ReaderState) -> SlotStatus {
        let ev = rs.event_state();
        SlotStatus {
            name: rs.name().to_string_lossy().into_owned(),
            present: ev.contains(pcsc::State::PRESENT) && !ev.contains(pcsc::State::MUTE),
            events: rs.event_count(),
        }
    }
}

impl SlotProvider for PcscProvider {
    fn scan(&self) -> Vec<SlotStatus> {
        let Some(ctx) = Self::context(&self.ctx) else {
            return Vec::new();
        };
        Self::states(&ctx)
            .iter()
            .map(Self::status_of)
            .filter(|s| self.config.reader_allowed(&s.name))
            .collect()
    }

    fn wait_change(&self, known: &[SlotStatus], timeout: Duration) -> Result<bool> {
        let Some(ctx) = Self::context(&self.wait_ctx) else {
            std::thread::sleep(timeout);
            return Ok(false);
        };
        let mut states: Vec<_> = Self::states(&ctx)
            .into_iter()
            .filter(|s| self.config.reader_allowed(&s.name().to_string_lossy()))
            .collect();
        if states.len() != known.len()
            || states
                .iter()
                .map(Self::status_of)
                .zip(known)
                .any(|(a, b)| a != *b)
        {
            return Ok(true);
        }
        if states.is_empty() {
            std::thread::sleep(timeout);
            return Ok(false);
        }
        for s in states.iter_mut() {
            s.sync_current_state();
        }
        match ctx.get_status_change(timeout, &mut states) {
            Ok(()) => Ok(true),
            Err(pcsc::Error::Timeout) => Ok(false),
            Err(pcsc::Error::Cancelled) => Err(Error::Cancelled),
            Err(e) => Err(Error::DeviceError(format!("PC/SC wait: {e}"))),
        }
    }

    fn cancel(&self) {
        if let Some(c) = lock(&self.wait_ctx).as_ref() {
            let _ = c.cancel();
        }
    }

    fn open(&self, name: &str) -> Result<Arc<dyn Token>> {
        let ctx = Self::context(&self.ctx).ok_or(Error::TokenNotPresent)?;
        let reader = CString::new(name).map_err(|_| Error::GeneralError("reader name".into()))?;
        let before = APDUS_SENT.load(Ordering::Relaxed);
        let token = PivToken::open(&ctx, reader, self.config.clone())?;
        log::info!(
            "reader '{name}': PIV card loaded, {} APDUs",
            APDUS_SENT.load(Ordering::Relaxed) - before
        );
        Ok(Arc::new(token))
    }

    fn description(&self, name: &str) -> String {
        name.to_string()
    }

    fn removable(&self) -> bool {
        true
    }
}
