//! The module instance created by `C_Initialize`: slots, sessions, login
//! state and object lookup.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki_sys::*;

use super::object::Object;
use super::session::Session;
use super::slots::{Loaded, Slot, SlotProvider, SlotStatus};
use super::token::TokenInfo;
use super::{lock, Error, Result};

/// Everything `C_Initialize` sets up.
pub struct Module {
    /// Process that initialised the module (a forked child must re-initialise).
    pub pid: u32,
    providers: Vec<Box<dyn SlotProvider>>,
    slots: Mutex<Vec<Arc<Slot>>>,
    sessions: Mutex<HashMap<CK_SESSION_HANDLE, SessionEntry>>,
    removed: Mutex<HashSet<CK_SESSION_HANDLE>>,
    next_session: AtomicU64,
    next_object: AtomicU64,
    finalized: AtomicBool,
}

/// A session with the slot it lives on.
#[derive(Clone)]
pub struct SessionEntry {
    /// The session state.
    pub session: Arc<Mutex<Session>>,
    /// Its slot.
    pub slot: Arc<Slot>,
}

impl Module {
    /// Build the module and scan the slots once.
    pub fn new(providers: Vec<Box<dyn SlotProvider>>) -> Self {
        let m = Module {
            pid: std::process::id(),
            providers,
            slots: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            removed: Mutex::new(HashSet::new()),
            next_session: AtomicU64::new(1),
            next_object: AtomicU64::new(1),
            finalized: AtomicBool::new(false),
        };
        m.refresh(true);
        m
    }

    /// Stop: cancel waits and drop every session and token.
    pub fn finalize(&self) {
        self.finalized.store(true, Ordering::SeqCst);
        for p in &self.providers {
            p.cancel();
        }
        lock(&self.sessions).clear();
        for s in lock(&self.slots).iter() {
            lock(&s.state).loaded = None;
        }
    }

    /// Rescan the providers; `allow_new` lets new slots appear (only when
    /// the application asks for the slot list size).
    pub fn refresh(&self, allow_new: bool) {
        for (pi, p) in self.providers.iter().enumerate() {
            let statuses = p.scan();
            // Slots whose source vanished (a reader unplugged, a credential removed).
            let vanished: Vec<Arc<Slot>> = lock(&self.slots)
                .iter()
                .filter(|s| s.provider == pi && !statuses.iter().any(|st| st.name == s.name))
                .cloned()
                .collect();
            for slot in vanished {
                let gone = SlotStatus {
                    name: slot.name.clone(),
                    present: false,
                    events: lock(&slot.state).events,
                };
                if slot.apply(&gone) {
                    self.drop_sessions(slot.id);
                }
            }
            for status in statuses {
                let existing = lock(&self.slots)
                    .iter()
                    .find(|s| s.provider == pi && s.name == status.name)
                    .cloned();
                match existing {
                    Some(slot) if slot.apply(&status) => {
                        log::info!("slot {}: token removed", slot.id);
                        self.drop_sessions(slot.id);
                    }
                    Some(_) => {}
                    None if allow_new => {
                        let mut slots = lock(&self.slots);
                        let id = slots.len() as CK_SLOT_ID;
                        log::info!("slot {id}: {}", status.name);
                        slots.push(Arc::new(Slot::new(id, pi, &status)));
                    }
                    None => {}
                }
            }
        }
    }

    /// Forget a token after removal: its sessions are closed and reported
    /// as `CKR_DEVICE_REMOVED` until the application closes them.
    pub fn drop_sessions(&self, slot: CK_SLOT_ID) {
        let mut sessions = lock(&self.sessions);
        let gone: Vec<_> = sessions
            .iter()
            .filter(|(_, e)| e.slot.id == slot)
            .map(|(h, _)| *h)
            .collect();
        let mut removed = lock(&self.removed);
        for h in gone {
            sessions.remove(&h);
            removed.insert(h);
        }
    }

    /// Handle an error from a token: on removal, forget the token.
    pub fn note_error(&self, slot: &Slot, e: &Error) {
        if *e == Error::DeviceRemoved || *e == Error::TokenNotPresent {
            lock(&slot.state).loaded = None;
            self.drop_sessions(slot.id);
        }
    }

    /// Slot ids, optionally only those with a token.
    pub fn slot_list(&self, token_present: bool) -> Vec<CK_SLOT_ID> {
        lock(&self.slots)
            .iter()
            .filter(|s| !token_present || lock(&s.state).token_present())
            .map(|s| s.id)
            .collect()
    }

    /// A slot by id.
    pub fn slot(&self, id: CK_SLOT_ID) -> Result<Arc<Slot>> {
        lock(&self.slots)
            .get(usize::try_from(id).map_err(|_| Error::SlotIdInvalid(id))?)
            .cloned()
            .ok_or(Error::SlotIdInvalid(id))
    }

    /// Slot description, manufacturer-independent flags and presence.
    pub fn slot_info(&self, id: CK_SLOT_ID) -> Result<(String, CK_FLAGS)> {
        let slot = self.slot(id)?;
        let p = &self.providers[slot.provider];
        let mut flags = 0;
        if lock(&slot.state).token_present() {
            flags |= CKF_TOKEN_PRESENT;
        }
        if p.removable() {
            flags |= CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
        }
        Ok((p.description(&slot.name), flags))
    }

    /// The loaded token of a slot, loading it (reading the card) if needed.
    pub fn loaded(&self, slot: &Slot) -> Result<Arc<Loaded>> {
        if let Some(l) = self.current(slot)? {
            return Ok(l);
        }
        let _guard = lock(&slot.load_lock);
        if let Some(l) = self.current(slot)? {
            return Ok(l);
        }
        let token = match self.providers[slot.provider].open(&slot.name) {
            Ok(t) => t,
            Err(Error::TokenNotRecognized) => {
                log::info!("slot {}: the card is not a PIV card; no token", slot.id);
                let mut st = lock(&slot.state);
                st.unrecognized = Some(st.events);
                return Err(Error::TokenNotRecognized);
            }
            Err(e) => {
                log::warn!("slot {}: cannot read the token: {e}", slot.id);
                return Err(e);
            }
        };
        let objects = token
            .objects()
            .into_iter()
            .map(|o| (self.next_object.fetch_add(1, Ordering::SeqCst), Arc::new(o)))
            .collect();
        let loaded = Arc::new(Loaded {
            token,
            objects: Mutex::new(objects),
            logged_in: AtomicBool::new(false),
        });
        let mut st = lock(&slot.state);
        if !st.present {
            return Err(Error::TokenNotPresent);
        }
        st.loaded = Some(loaded.clone());
        Ok(loaded)
    }

    fn current(&self, slot: &Slot) -> Result<Option<Arc<Loaded>>> {
        let st = lock(&slot.state);
        if !st.present {
            return Err(Error::TokenNotPresent);
        }
        if !st.token_present() {
            return Err(Error::TokenNotRecognized);
        }
        Ok(st.loaded.clone())
    }

    /// Token information for a slot.
    pub fn token_info(&self, id: CK_SLOT_ID) -> Result<TokenInfo> {
        let slot = self.slot(id)?;
        let loaded = self.loaded(&slot)?;
        Ok(loaded.token.info())
    }

    /// Open a session.
    pub fn open_session(&self, id: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::SessionParallelNotSupported);
        }
        let slot = self.slot(id)?;
        self.loaded(&slot)?;
        let h = self.next_session.fetch_add(1, Ordering::SeqCst);
        let session = Session::new(id, flags & CKF_RW_SESSION != 0);
        lock(&self.sessions).insert(
            h,
            SessionEntry {
                session: Arc::new(Mutex::new(session)),
                slot,
            },
        );
        Ok(h)
    }

    /// Close a session.
    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        if lock(&self.sessions).remove(&h).is_some() || lock(&self.removed).remove(&h) {
            self.logout_if_last(h);
            Ok(())
        } else {
            Err(Error::SessionHandleInvalid)
        }
    }

    fn logout_if_last(&self, _closed: CK_SESSION_HANDLE) {
        // PKCS#11: closing the last session of a token logs the user out.
        let slots = lock(&self.slots).clone();
        let sessions = lock(&self.sessions);
        for s in slots {
            if !sessions.values().any(|e| e.slot.id == s.id) {
                if let Some(l) = lock(&s.state).loaded.clone() {
                    if l.logged_in.swap(false, Ordering::SeqCst) {
                        self.forget_private_handles(&l);
                        let _ = l.token.logout();
                    }
                }
            }
        }
    }

    /// Close every session of a slot.
    pub fn close_all(&self, id: CK_SLOT_ID) -> Result<()> {
        let slot = self.slot(id)?;
        lock(&self.sessions).retain(|_, e| e.slot.id != id);
        lock(&self.removed).clear();
        if let Some(l) = lock(&slot.state).loaded.clone() {
            if l.logged_in.swap(false, Ordering::SeqCst) {
                self.forget_private_handles(&l);
                let _ = l.token.logout();
            }
        }
        Ok(())
    }

    /// Look a session up, with its slot's token.
    pub fn session(&self, h: CK_SESSION_HANDLE) -> Result<(SessionEntry, Arc<Loaded>)> {
        let entry = lock(&self.sessions).get(&h).cloned();
        let Some(entry) = entry else {
            return Err(if lock(&self.removed).contains(&h) {
                Error::DeviceRemoved
            } else {
                Error::SessionHandleInvalid
            });
        };
        let loaded = lock(&entry.slot.state).loaded.clone();
        match loaded {
            Some(l) => Ok((entry, l)),
            None => {
                self.drop_sessions(entry.slot.id);
                Err(Error::DeviceRemoved)
            }
        }
    }

    /// `CK_SESSION_INFO` state and flags.
    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> Result<(CK_SLOT_ID, CK_STATE, CK_FLAGS)> {
        let (e, l) = self.session(h)?;
        let rw = lock(&e.session).rw;
        let state = match (rw, l.user()) {
            (false, false) => CKS_RO_PUBLIC_SESSION,
            (false, true) => CKS_RO_USER_FUNCTIONS,
            (true, false) => CKS_RW_PUBLIC_SESSION,
            (true, true) => CKS_RW_USER_FUNCTIONS,
        };
        let mut flags = CKF_SERIAL_SESSION;
        if rw {
            flags |= CKF_RW_SESSION;
        }
        Ok((e.slot.id, state, flags))
    }

    /// `C_Login`.
    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        let (e, l) = self.session(h)?;
        let r = match user {
            CKU_USER => {
                if l.user() {
                    return Err(Error::UserAlreadyLoggedIn);
                }
                l.token.login(pin).map(|()| {
                    l.logged_in.store(true, Ordering::SeqCst);
                })
            }
            CKU_CONTEXT_SPECIFIC => {
                let mut s = lock(&e.session);
                let op = s
                    .op_needing_context_login()
                    .ok_or(Error::OperationNotInitialized)?;
                let key = op
                    .key
                    .as_ref()
                    .and_then(|k| k.key.clone())
                    .ok_or(Error::OperationNotInitialized)?;
                l.token.check_context_pin(&key, pin).map(|()| {
                    op.context_pin = Some(zeroize::Zeroizing::new(pin.to_vec()));
                })
            }
            // CKU_SO (card administration) is not offered through PKCS#11.
            _ => Err(Error::UserTypeInvalid),
        };
        if let Err(err) = &r {
            self.note_error(&e.slot, err);
        }
        r
    }

    /// `C_Logout`.
    pub fn logout(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (e, l) = self.session(h)?;
        if !l.logged_in.swap(false, Ordering::SeqCst) {
            return Err(Error::UserNotLoggedIn);
        }
        lock(&e.session).end_all();
        self.forget_private_handles(&l);
        l.token.logout()
    }

    /// PKCS#11 3.0 §5.6.11: after a logout, handles to private objects stay
    /// invalid even if the user logs in again. Private objects get new handles.
    fn forget_private_handles(&self, l: &Loaded) {
        for (h, o) in lock(&l.objects).iter_mut() {
            if o.private {
                *h = self.next_object.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// End an operation after an error reported by the FFI layer (for example
    /// `CKR_ARGUMENTS_BAD`): such errors terminate the operation (PKCS#11 3.0 §5.8–5.14).
    pub fn end_op(&self, h: CK_SESSION_HANDLE, kind: super::session::OpKind) {
        if let Ok((e, _)) = self.session(h) {
            lock(&e.session).end(kind);
        }
    }

    /// `C_SetPIN`.
    pub fn set_pin(&self, h: CK_SESSION_HANDLE, old: &[u8], new: &[u8]) -> Result<()> {
        let (e, l) = self.session(h)?;
        if !lock(&e.session).rw {
            return Err(Error::SessionReadOnly);
        }
        let r = l.token.set_pin(old, new);
        if let Err(err) = &r {
            self.note_error(&e.slot, err);
        }
        r
    }

    /// Is an object visible in this session?
    fn visible(o: &Object, l: &Loaded) -> bool {
        !o.private || l.user()
    }

    /// An object by handle, as seen from a session.
    pub fn object(&self, h: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        let (e, l) = self.session(h)?;
        let s = lock(&e.session);
        let token_objects = lock(&l.objects);
        s.objects
            .iter()
            .chain(token_objects.iter())
            .find(|(h, o)| *h == oh && Self::visible(o, &l))
            .map(|(_, o)| o.clone())
            .ok_or(Error::ObjectHandleInvalid)
    }

    /// Add a session object; returns its handle.
    pub fn add_session_object(&self, h: CK_SESSION_HANDLE, o: Object) -> Result<CK_OBJECT_HANDLE> {
        let (e, _) = self.session(h)?;
        let oh = self.next_object.fetch_add(1, Ordering::SeqCst);
        lock(&e.session).objects.push((oh, Arc::new(o)));
        Ok(oh)
    }

    /// `C_DestroyObject` (session objects only; card objects are read-only here).
    pub fn destroy_object(&self, h: CK_SESSION_HANDLE, oh: CK_OBJECT_HANDLE) -> Result<()> {
        let (e, l) = self.session(h)?;
        let mut s = lock(&e.session);
        if let Some(i) = s.objects.iter().position(|(x, _)| *x == oh) {
            s.objects.remove(i);
            return Ok(());
        }
        if lock(&l.objects)
            .iter()
            .any(|(x, o)| *x == oh && Self::visible(o, &l))
        {
            // Token objects: a read-only session may not touch them at all;
            // in a read-write one, card objects still refuse to go.
            return Err(if s.rw {
                Error::ActionProhibited
            } else {
                Error::SessionReadOnly
            });
        }
        Err(Error::ObjectHandleInvalid)
    }

    /// `C_FindObjectsInit`.
    pub fn find_init(
        &self,
        h: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        let (e, l) = self.session(h)?;
        let mut s = lock(&e.session);
        if s.find.is_some() {
            return Err(Error::OperationActive);
        }
        let handles = lock(&l.objects)
            .iter()
            .chain(s.objects.iter())
            .filter(|(_, o)| Self::visible(o, &l) && o.matches(template))
            .map(|(h, _)| *h)
            .collect();
        s.find = Some(super::session::Find { handles, pos: 0 });
        Ok(())
    }

    /// `C_FindObjects`.
    pub fn find(&self, h: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let (e, _) = self.session(h)?;
        let mut s = lock(&e.session);
        let f = s.find.as_mut().ok_or(Error::OperationNotInitialized)?;
        let end = f.pos.saturating_add(max).min(f.handles.len());
        let out = f.handles[f.pos..end].to_vec();
        f.pos = end;
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let (e, _) = self.session(h)?;
        let found = lock(&e.session).find.take();
        found.map(|_| ()).ok_or(Error::OperationNotInitialized)
    }

    /// `C_WaitForSlotEvent`.
    pub fn wait_for_slot_event(&self, dont_block: bool) -> Result<CK_SLOT_ID> {
        loop {
            if self.finalized.load(Ordering::SeqCst) {
                return Err(Error::Cancelled);
            }
            self.refresh(false);
            let slots = lock(&self.slots).clone();
            for s in &slots {
                let mut st = lock(&s.state);
                let now = (st.present, st.events);
                if st.reported != Some(now) {
                    st.reported = Some(now);
                    return Ok(s.id);
                }
            }
            if dont_block {
                return Err(Error::NoEvent);
            }
            for (pi, p) in self.providers.iter().enumerate() {
                let known: Vec<SlotStatus> = slots
                    .iter()
                    .filter(|s| s.provider == pi)
                    .map(|s| {
                        let st = lock(&s.state);
                        SlotStatus {
                            name: s.name.clone(),
                            present: st.present,
                            events: st.events,
                        }
                    })
                    .collect();
                // Short waits so a provider without events cannot starve others;
                // the loop rescans either way.
                p.wait_change(&known, Duration::from_millis(500))?;
            }
        }
    }
}
