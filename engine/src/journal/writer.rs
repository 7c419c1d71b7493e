//! The journal writer: the thread that drains the core's ring into the file, with the fsync
//! policy, and opening (recovering) a journal at start.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Contents, HEADER_LEN, JournalError, Record, encode, header, parse};
use crate::instrument::Registry;
use crate::ring::Ring;

/// When the writer makes written records durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `fdatasync` after every record: nothing acknowledged is ever lost, slowest.
    Every,
    /// `fdatasync` every `batch_records` records or `batch_ms` ms, whichever comes first.
    #[default]
    Batched,
    /// Never sync: records reach the OS at once (they survive a process crash, not a power cut).
    Off,
}

/// `[journal]` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The journal file; created when missing, appended to (after recovery) when present.
    pub path: PathBuf,
    /// Sync policy.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Records per sync under `batched`.
    #[serde(default = "default_batch_records")]
    pub batch_records: u32,
    /// Longest a written record waits for its sync under `batched`, in ms.
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
    /// Slots of the ring from the core to the writer (a power of two).
    #[serde(default = "default_ring")]
    pub ring: usize,
}

fn default_batch_records() -> u32 {
    64
}
fn default_batch_ms() -> u64 {
    5
}
fn default_ring() -> usize {
    65_536
}

impl JournalConfig {
    /// A config with defaults for everything but the path.
    pub fn new(path: impl Into<PathBuf>, fsync: FsyncPolicy) -> Self {
        Self {
            path: path.into(),
            fsync,
            batch_records: default_batch_records(),
            batch_ms: default_batch_ms(),
            ring: default_ring(),
        }
    }

    /// Checks the numbers.
    ///
    /// # Errors
    /// One line naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if self.ring < 2 || !self.ring.is_power_of_two() {
            return Err(format!("journal.ring = {}: ring capacity must be a power of two ≥ 2", self.ring));
        }
        if self.batch_records == 0 {
            return Err("journal.batch_records must be at least 1".into());
        }
        Ok(())
    }
}

/// Counters of the writer, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Records written this run.
    pub records: AtomicU64,
    /// Bytes written this run.
    pub bytes: AtomicU64,
    /// Syncs done this run.
    pub fsyncs: AtomicU64,
    /// Set when a write failed: the run must stop, it can no longer journal.
    pub failed: AtomicBool,
}

/// Appends records to a journal file: the writer thread's side.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    registry: Arc<Registry>,
    cfg: JournalConfig,
    seq: u64,
    buf: Vec<u8>,
    unsynced: u32,
    unsynced_since: Option<Instant>,
    stats: Arc<JournalStats>,
}

/// What opening a journal found.
#[derive(Debug)]
pub struct Opened {
    /// The writer, positioned after the last whole record.
    pub writer: JournalWriter,
    /// The records found, for [`rebuild`](super::rebuild).
    pub contents: Contents,
}

impl JournalWriter {
    /// Opens (or creates) the journal, reads it, truncates a torn tail, and positions the writer
    /// after the last whole record.
    ///
    /// # Errors
    /// As [`read`](super::read): a corrupt or foreign journal is refused, never overwritten.
    pub fn open(cfg: &JournalConfig, registry: Arc<Registry>) -> Result<Opened, JournalError> {
        let path = cfg.path.clone();
        let io = |source| JournalError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut contents = parse(&bytes, &registry)?;
        if contents.torn.is_some() || bytes.len() < HEADER_LEN {
            let keep = if bytes.len() < HEADER_LEN { 0 } else { contents.valid_len };
            file.set_len(keep).map_err(io)?;
            if keep == 0 {
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                file.write_all(&header()).map_err(io)?;
                contents.valid_len = HEADER_LEN as u64;
            }
            file.sync_all().map_err(io)?;
            if keep == 0 {
                // A new file: make its directory entry durable too, or a power cut could lose it.
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let writer = Self {
            file,
            path,
            registry,
            cfg: cfg.clone(),
            seq: contents.last_seq,
            buf: Vec::with_capacity(64 * 1024),
            unsynced: 0,
            unsynced_since: None,
            stats: Arc::new(JournalStats::default()),
        };
        Ok(Opened { writer, contents })
    }

    /// The counters (shared; they keep counting while the writer runs).
    pub fn stats(&self) -> Arc<JournalStats> {
        Arc::clone(&self.stats)
    }

    /// Encodes `rec` into the write buffer (written by the next [`JournalWriter::flush`]).
    pub fn append(&mut self, rec: &Record) {
        self.seq += 1;
        let before = self.buf.len();
        encode(rec, self.seq, &self.registry, &mut self.buf);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add((self.buf.len() - before) as u64, Ordering::Relaxed);
        self.unsynced += 1;
        self.unsynced_since.get_or_insert_with(Instant::now);
    }

    /// Writes the buffer to the file and syncs as the policy says is due.
    ///
    /// # Errors
    /// [`JournalError::Io`] when the write or the sync fails.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        let io = |source| JournalError::Io { path: self.path.clone(), source };
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(io)?;
            self.buf.clear();
        }
        let due = match self.cfg.fsync {
            FsyncPolicy::Off => false,
            FsyncPolicy::Every => self.unsynced > 0,
            FsyncPolicy::Batched => {
                self.unsynced >= self.cfg.batch_records
                    || self.unsynced_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(self.cfg.batch_ms))
            }
        };
        if due {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(|source| JournalError::Io { path: self.path.clone(), source })?;
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.unsynced = 0;
        self.unsynced_since = None;
        Ok(())
    }

    /// The writer thread's loop: drains `ring` until `stop` is set and the ring is empty, then
    /// writes and (unless the policy is `off`) syncs everything. The core pushes losslessly, so
    /// after a write error the loop keeps draining (sets [`JournalStats::failed`]) rather than
    /// stall the core; the run must stop on that flag.
    ///
    /// # Errors
    /// The first write error.
    pub fn run(mut self, ring: &Ring<Record>, stop: &AtomicBool) -> Result<(), JournalError> {
        let mut first_error = None;
        loop {
            let stopping = stop.load(Ordering::Acquire);
            let mut n = 0;
            while let Some(rec) = ring.pop() {
                if first_error.is_none() {
                    self.append(&rec);
                    // Under `every` each record is written and synced on its own; under `batched`
                    // a burst is synced every `batch_records` records, not only at its end.
                    let due = match self.cfg.fsync {
                        FsyncPolicy::Every => true,
                        FsyncPolicy::Batched => self.unsynced >= self.cfg.batch_records,
                        FsyncPolicy::Off => false,
                    };
                    if due && let Err(e) = self.flush() {
                        self.stats.failed.store(true, Ordering::Release);
                        first_error = Some(e);
                    }
                }
                n += 1;
                if n == 4_096 {
                    break;
                }
            }
            if first_error.is_none()
                && let Err(e) = self.flush()
            {
                self.stats.failed.store(true, Ordering::Release);
                first_error = Some(e);
            }
            if stopping && ring.is_empty() {
                break;
            }
            if n == 0 {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if self.cfg.fsync != FsyncPolicy::Off && self.unsynced > 0 {
            self.sync()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_and_version() {
        assert_eq!(&header(), b"XBJOURNL\x01\0\0\0\0\0\0\0");
    }
}
