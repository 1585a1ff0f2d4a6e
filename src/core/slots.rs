//! Slots: where tokens appear. A [`SlotProvider`] (PC/SC readers; later the
//! derived-credential store) reports presence without device I/O; the core
//! keeps stable slot ids and loads a token on first use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki_sys::*;

use super::object::Object;
use super::token::Token;
use super::{lock, Result};

/// What a provider knows of one of its slots, without device I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    /// Provider-unique name (the PC/SC reader name).
    pub name: String,
    /// A token is present.
    pub present: bool,
    /// Insertion/removal counter.
    pub events: u32,
}

/// A source of slots.
pub trait SlotProvider: Send + Sync {
    /// The slots and their presence; no device I/O.
    fn scan(&self) -> Vec<SlotStatus>;

    /// Block until a slot's state differs from `known`, `timeout` passes
    /// (`Ok(false)`), or [`SlotProvider::cancel`] is called (`Err(Cancelled)`).
    fn wait_change(&self, known: &[SlotStatus], timeout: Duration) -> Result<bool>;

    /// Interrupt a blocked [`SlotProvider::wait_change`] (from `C_Finalize`).
    fn cancel(&self);

    /// Load the token in a slot (device I/O: reads the card).
    fn open(&self, name: &str) -> Result<Arc<dyn Token>>;

    /// Description for `CK_SLOT_INFO`.
    fn description(&self, name: &str) -> String;

    /// Whether tokens can be removed (`CKF_REMOVABLE_DEVICE`) and are hardware.
    fn removable(&self) -> bool;
}

/// A token that has been loaded into a slot, with its object handles.
pub struct Loaded {
    /// The token.
    pub token: Arc<dyn Token>,
    /// Token objects with their handles (private ones are renumbered at logout).
    pub objects: Mutex<Vec<(CK_OBJECT_HANDLE, Arc<Object>)>>,
    /// The user is logged in (PKCS#11 login state is per token per application).
    pub logged_in: AtomicBool,
}

impl Loaded {
    /// Is the user logged in?
    pub fn user(&self) -> bool {
        self.logged_in.load(Ordering::SeqCst)
    }
}

/// Mutable state of a slot.
#[derive(Default)]
pub struct SlotState {
    /// Token present, as last scanned.
    pub present: bool,
    /// Event counter, as last scanned.
    pub events: u32,
    /// The loaded token, if any.
    pub loaded: Option<Arc<Loaded>>,
    /// State last reported by `C_WaitForSlotEvent`.
    pub reported: Option<(bool, u32)>,
    /// The card inserted at this event count is not one of ours (no PIV
    /// application): the slot shows no token until the next insertion.
    pub unrecognized: Option<u32>,
}

impl SlotState {
    /// A usable token is in the slot (as far as known without card I/O).
    pub fn token_present(&self) -> bool {
        self.present && self.unrecognized != Some(self.events)
    }
}

/// One slot.
pub struct Slot {
    /// `CK_SLOT_ID`.
    pub id: CK_SLOT_ID,
    /// Provider index.
    pub provider: usize,
    /// Provider-unique name.
    pub name: String,
    /// Mutable state (held briefly, never across device I/O).
    pub state: Mutex<SlotState>,
    /// Serialises token loading (held across the card reads).
    pub load_lock: Mutex<()>,
}

impl Slot {
    /// A new slot.
    pub fn new(id: CK_SLOT_ID, provider: usize, status: &SlotStatus) -> Self {
        Slot {
            id,
            provider,
            name: status.name.clone(),
            state: Mutex::new(SlotState {
                present: status.present,
                events: status.events,
                loaded: None,
                reported: Some((status.present, status.events)),
                unrecognized: None,
            }),
            load_lock: Mutex::new(()),
        }
    }

    /// Apply a fresh scan; returns true if the loaded token must be dropped.
    pub fn apply(&self, status: &SlotStatus) -> bool {
        let mut st = lock(&self.state);
        let removed = st.present && !status.present;
        // pcscd counts insertions and removals: a jump of two or more while
        // present means the card was swapped between two scans.
        let swapped = st.present && status.present && status.events.wrapping_sub(st.events) >= 2;
        st.present = status.present;
        st.events = status.events;
        if removed || swapped {
            st.loaded = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(present: bool, events: u32) -> SlotStatus {
        SlotStatus {
            name: "r".into(),
            present,
            events,
        }
    }

    #[test]
    fn an_unrecognized_card_hides_until_the_next_insertion() {
        let slot = Slot::new(0, 0, &status(true, 1));
        assert!(lock(&slot.state).token_present());
        {
            let mut st = lock(&slot.state);
            st.unrecognized = Some(st.events);
        }
        assert!(!lock(&slot.state).token_present());
        slot.apply(&status(false, 2));
        slot.apply(&status(true, 3));
        assert!(
            lock(&slot.state).token_present(),
            "a new card is tried again"
        );
    }

    #[test]
    fn removal_and_swap_drop_the_token() {
        let slot = Slot::new(0, 0, &status(true, 1));
        assert!(!slot.apply(&status(true, 1)), "no change");
        assert!(slot.apply(&status(true, 3)), "swapped between two scans");
        assert!(slot.apply(&status(false, 4)), "removed");
        assert!(!slot.apply(&status(false, 4)));
    }
}
