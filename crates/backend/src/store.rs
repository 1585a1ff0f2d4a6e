//! The embedded SQLite store: device records and the audit log, with a
//! versioned schema (`PRAGMA user_version`) migrated forward at open.
//!
//! A record is keyed by SHA-256 of the device handle, so the database never
//! holds the handle itself. It stores a keyed MAC of `Q` (never `Q`), the KWK
//! wrapped under the master key (NULL once revoked), the count of consecutive
//! failures and the state. Failure counting is one atomic statement:
//! `UPDATE … SET failures = failures + 1, state = CASE … END WHERE … AND
//! state = 'active' RETURNING …` — N concurrent failures are counted N times
//! and nothing is counted past the lock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::{Error, Result};

/// Schema migrations, in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    // 1: device records and audit log
    "CREATE TABLE devices (
        id BLOB PRIMARY KEY,
        q_mac BLOB NOT NULL,
        kwk_wrapped BLOB,
        failures INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL CHECK (state IN ('active', 'locked', 'revoked')),
        piv_cert BLOB,
        piv_not_after INTEGER,
        piv_revoked INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        device TEXT,
        event TEXT NOT NULL,
        detail TEXT
    );",
    // 2: escrowed key-management keys, per user (SHA-256 of the PIV certificate's subject)
    "CREATE TABLE escrow (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id BLOB NOT NULL,
        cert BLOB NOT NULL,
        key_wrapped BLOB NOT NULL,
        current INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX escrow_user ON escrow (user_id);",
];

/// State of a device record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Usable.
    Active,
    /// Locked after too many failures (or by an administrator).
    Locked,
    /// Revoked: the KWK is destroyed.
    Revoked,
}

impl State {
    fn parse(s: &str) -> Result<State> {
        match s {
            "active" => Ok(State::Active),
            "locked" => Ok(State::Locked),
            "revoked" => Ok(State::Revoked),
            other => Err(Error::Store(format!("unknown state {other}"))),
        }
    }

    /// Name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Locked => "locked",
            State::Revoked => "revoked",
        }
    }
}

/// A device record.
#[derive(Clone)]
pub struct Record {
    /// SHA-256 of the handle.
    pub id: Vec<u8>,
    /// HMAC of `Q`.
    pub q_mac: Vec<u8>,
    /// Wrapped KWK (None once revoked).
    pub kwk_wrapped: Option<Vec<u8>>,
    /// Consecutive failures.
    pub failures: u32,
    /// State.
    pub state: State,
    /// Originating PIV certificate's expiry (unix seconds), if known.
    pub piv_not_after: Option<i64>,
    /// The originating PIV certificate, DER, if known.
    pub piv_cert: Option<Vec<u8>>,
    /// The originating PIV certificate is revoked.
    pub piv_revoked: bool,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("id", &short_id(&self.id))
            .field("failures", &self.failures)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The printable record id (hex of the first 8 bytes of the handle's hash).
pub fn short_id(id: &[u8]) -> String {
    id.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The store. Each operation uses its own connection, so threads never share one.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// Open (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let s = Store {
            path: path.to_path_buf(),
        };
        let mut c = s.conn()?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        let version: u32 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(Error::Store(format!(
                "database schema {version} is newer than this back-end ({})",
                MIGRATIONS.len()
            )));
        }
        let tx = c.transaction()?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        }
        tx.commit()?;
        Ok(s)
    }

    fn conn(&self) -> Result<Connection> {
        let c = Connection::open(&self.path)?;
        c.busy_timeout(Duration::from_secs(10))?;
        Ok(c)
    }

    /// Schema version.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .conn()?
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Register a new device record.
    pub fn register(
        &self,
        id: &[u8],
        q_mac: &[u8],
        kwk_wrapped: &[u8],
        piv_cert: Option<&[u8]>,
        piv_not_after: Option<i64>,
    ) -> Result<()> {
        let t = now();
        self.conn()?
            .execute(
                "INSERT INTO devices (id, q_mac, kwk_wrapped, failures, state, piv_cert, piv_not_after, created, updated)
                 VALUES (?1, ?2, ?3, 0, 'active', ?4, ?5, ?6, ?6)",
                params![id, q_mac, kwk_wrapped, piv_cert, piv_not_after, t],
            )
            .map_err(|e| Error::Store(format!("cannot register the device: {e}")))?;
        Ok(())
    }

    /// A record by id.
    pub fn get(&self, id: &[u8]) -> Result<Option<Record>> {
        self.conn()?
            .query_row(
                "SELECT id, q_mac, kwk_wrapped, failures, state, piv_not_after, piv_revoked, piv_cert FROM devices WHERE id = ?1",
                params![id],
                row_to_record,
            )
            .optional()?
            .transpose()
    }

    /// Count one failure atomically; at `limit` the record locks. Returns the
    /// new count and state, or `None` if the record was not active.
    pub fn count_failure(&self, id: &[u8], limit: u32) -> Result<Option<(u32, State)>> {
        let r = self
            .conn()?
            .query_row(
                "UPDATE devices
                 SET failures = failures + 1,
                     state = CASE WHEN failures + 1 >= ?2 THEN 'locked' ELSE state END,
                     updated = ?3
                 WHERE id = ?1 AND state = 'active'
                 RETURNING failures, state",
                params![id, limit, now()],
                |row| Ok((row.get::<_, u32>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        r.map(|(f, s)| Ok((f, State::parse(&s)?))).transpose()
    }

    /// Reset the failure counter after a success (only an active record).
    pub fn reset_failures(&self, id: &[u8]) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE devices SET failures = 0, updated = ?2 WHERE id = ?1 AND state = 'active'",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// Replace `Q` (PIN change): only if the old MAC still matches and the
    /// record is active, in one statement.
    pub fn replace_q(&self, id: &[u8], old_mac: &[u8], new_mac: &[u8]) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE devices SET q_mac = ?3, failures = 0, updated = ?4
             WHERE id = ?1 AND q_mac = ?2 AND state = 'active'",
            params![id, old_mac, new_mac, now()],
        )?;
        Ok(n == 1)
    }

    /// Administrative lock.
    pub fn lock(&self, id: &[u8]) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE devices SET state = 'locked', updated = ?2 WHERE id = ?1 AND state = 'active'",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// Administrative unlock: back to active with no failures.
    pub fn unlock(&self, id: &[u8]) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE devices SET state = 'active', failures = 0, updated = ?2 WHERE id = ?1 AND state = 'locked'",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// Revoke: the wrapped KWK is destroyed, the credential is dead everywhere.
    pub fn revoke(&self, id: &[u8]) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE devices SET state = 'revoked', kwk_wrapped = NULL, updated = ?2 WHERE id = ?1 AND state != 'revoked'",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// Every record.
    pub fn list(&self) -> Result<Vec<Record>> {
        let c = self.conn()?;
        let mut st = c.prepare(
            "SELECT id, q_mac, kwk_wrapped, failures, state, piv_not_after, piv_revoked, piv_cert FROM devices ORDER BY created",
        )?;
        let rows = st.query_map([], row_to_record)?;
        rows.map(|r| r.map_err(Error::from).and_then(|x| x))
            .collect()
    }

    /// Resolve a printed (short) or full hex id to a record id.
    pub fn resolve(&self, printed: &str) -> Result<Vec<u8>> {
        let matches: Vec<Vec<u8>> = self
            .list()?
            .into_iter()
            .filter(|r| {
                let full: String = r.id.iter().map(|b| format!("{b:02x}")).collect();
                !printed.is_empty() && full.starts_with(&printed.to_ascii_lowercase())
            })
            .map(|r| r.id)
            .collect();
        match matches.len() {
            1 => Ok(matches.into_iter().next().unwrap_or_default()),
            0 => Err(Error::Usage(format!("no device record {printed}"))),
            _ => Err(Error::Usage(format!(
                "{printed} matches several records; give more digits"
            ))),
        }
    }

    /// Escrow a key-management key for a user. A new current key retires the previous one.
    pub fn escrow_add(
        &self,
        user_id: &[u8],
        cert: &[u8],
        key_wrapped: &[u8],
        current: bool,
    ) -> Result<()> {
        let mut c = self.conn()?;
        let tx = c.transaction()?;
        if current {
            tx.execute(
                "UPDATE escrow SET current = 0 WHERE user_id = ?1",
                params![user_id],
            )?;
        }
        tx.execute(
            "INSERT INTO escrow (user_id, cert, key_wrapped, current, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, cert, key_wrapped, current, now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A user's escrowed keys, current first, then retired ones newest first.
    pub fn escrow_for(&self, user_id: &[u8]) -> Result<Vec<EscrowRow>> {
        let c = self.conn()?;
        let mut st = c.prepare(
            "SELECT cert, key_wrapped, current FROM escrow WHERE user_id = ?1 ORDER BY current DESC, seq DESC",
        )?;
        let rows = st.query_map(params![user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }

    /// Append an audit event.
    pub fn audit(&self, device: Option<&[u8]>, event: &str, detail: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO audit (at, device, event, detail) VALUES (?1, ?2, ?3, ?4)",
            params![now(), device.map(short_id), event, detail],
        )?;
        Ok(())
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEvent>> {
        let c = self.conn()?;
        let mut st =
            c.prepare("SELECT at, device, event, COALESCE(detail, '') FROM audit ORDER BY seq")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.map(|r| r.map_err(Error::from)).collect()
    }
}

/// An escrowed key: (certificate DER, wrapped PKCS#8, current).
pub type EscrowRow = (Vec<u8>, Vec<u8>, bool);

/// One audit event: (unix time, printed record id, event, detail).
pub type AuditEvent = (i64, Option<String>, String, String);

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Record>> {
    let state: String = row.get(4)?;
    Ok(State::parse(&state).map(|state| Record {
        id: row.get(0).unwrap_or_default(),
        q_mac: row.get(1).unwrap_or_default(),
        kwk_wrapped: row.get(2).unwrap_or_default(),
        failures: row.get(3).unwrap_or_default(),
        state,
        piv_not_after: row.get(5).unwrap_or_default(),
        piv_revoked: row.get::<_, i64>(6).unwrap_or_default() != 0,
        piv_cert: row.get(7).unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db.sqlite")).unwrap();
        (d, s)
    }

    #[test]
    fn migrations_apply_once_and_reopen() {
        let (d, s) = store();
        assert_eq!(s.schema_version().unwrap(), 2);
        let s2 = Store::open(&d.path().join("db.sqlite")).unwrap();
        assert_eq!(s2.schema_version().unwrap(), 2);
    }

    #[test]
    fn a_version_1_database_is_migrated_forward() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("db.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.pragma_update(None, "user_version", 1).unwrap();
            c.execute(
                "INSERT INTO devices (id, q_mac, kwk_wrapped, state, created, updated) VALUES (x'01', x'02', x'03', 'active', 0, 0)",
                [],
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), 2);
        assert!(
            s.get(&[1]).unwrap().is_some(),
            "records survive the migration"
        );
        s.escrow_add(b"u", b"cert", b"key", true).unwrap();
        s.escrow_add(b"u", b"cert2", b"key2", true).unwrap();
        let e = s.escrow_for(b"u").unwrap();
        assert_eq!((e[0].0.as_slice(), e[0].2), (&b"cert2"[..], true));
        assert_eq!((e[1].0.as_slice(), e[1].2), (&b"cert"[..], false));
    }

    #[test]
    fn newer_schema_is_refused() {
        let (d, s) = store();
        s.conn()
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let e = Store::open(&d.path().join("db.sqlite")).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn counting_locks_at_the_limit_and_stops() {
        let (_d, s) = store();
        s.register(b"id", b"mac", b"kwk", None, None).unwrap();
        assert_eq!(s.count_failure(b"id", 3).unwrap(), Some((1, State::Active)));
        assert_eq!(s.count_failure(b"id", 3).unwrap(), Some((2, State::Active)));
        assert_eq!(s.count_failure(b"id", 3).unwrap(), Some((3, State::Locked)));
        assert_eq!(s.count_failure(b"id", 3).unwrap(), None);
        assert_eq!(s.get(b"id").unwrap().unwrap().failures, 3);
        assert!(
            !s.reset_failures(b"id").unwrap(),
            "a locked record stays locked"
        );
        assert!(s.unlock(b"id").unwrap());
        assert_eq!(s.get(b"id").unwrap().unwrap().failures, 0);
    }

    #[test]
    fn two_hundred_parallel_failures_count_exactly_to_the_limit() {
        let (_d, s) = store();
        s.register(b"id", b"mac", b"kwk", None, None).unwrap();
        let counted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..200 {
                scope.spawn(|| {
                    if s.count_failure(b"id", 10).unwrap().is_some() {
                        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        let r = s.get(b"id").unwrap().unwrap();
        assert_eq!((r.failures, r.state), (10, State::Locked));
        assert_eq!(counted.into_inner(), 10, "exactly the limit was counted");
    }

    #[test]
    fn revoke_destroys_the_wrapped_kwk() {
        let (_d, s) = store();
        s.register(b"id", b"mac", b"kwk", None, None).unwrap();
        assert!(s.revoke(b"id").unwrap());
        let r = s.get(b"id").unwrap().unwrap();
        assert_eq!((r.state, r.kwk_wrapped), (State::Revoked, None));
        assert!(!s.unlock(b"id").unwrap());
        assert!(
            s.register(b"id", b"mac", b"kwk", None, None).is_err(),
            "no re-use of a handle"
        );
    }

    #[test]
    fn pin_change_needs_the_old_mac() {
        let (_d, s) = store();
        s.register(b"id", b"old", b"kwk", None, None).unwrap();
        assert!(!s.replace_q(b"id", b"wrong", b"new").unwrap());
        assert!(s.replace_q(b"id", b"old", b"new").unwrap());
        assert_eq!(s.get(b"id").unwrap().unwrap().q_mac, b"new");
    }

    #[test]
    fn audit_and_resolve() {
        let (_d, s) = store();
        s.register(&[0xab; 32], b"m", b"k", None, None).unwrap();
        s.audit(Some(&[0xab; 32]), "activate", "ok").unwrap();
        let log = s.audit_log().unwrap();
        assert_eq!(log[0].1.as_deref(), Some("abababababababab"));
        assert_eq!(s.resolve("abab").unwrap(), vec![0xab; 32]);
        assert!(s.resolve("cd").is_err());
    }
}
