//! Durable checkpoints: how far a source got in its input.
//!
//! One small file per source instance, `<data dir>/sources/<name>.<ext>`,
//! replaced atomically (write a temporary file, fsync it, rename, fsync
//! the directory) so that a crash leaves either the old or the new
//! checkpoint, never a torn one. Without a data directory the checkpoint
//! lives in memory: a reconnect within the process resumes, a restart
//! starts over (as the rest of the state does).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("checkpoint {path} is unreadable ({message}); remove it to start the source over")]
    Corrupt { path: String, message: String },
}

/// One source's checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: Option<PathBuf>,
    memory: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Checkpoint {
    /// A checkpoint kept in `dir` (when there is one) under `file`.
    pub fn new(dir: Option<PathBuf>, file: &str) -> Checkpoint {
        Checkpoint {
            path: dir.map(|d| d.join(file)),
            memory: Arc::new(Mutex::new(None)),
        }
    }

    /// In memory only (tests, no data directory).
    pub fn memory() -> Checkpoint {
        Checkpoint::new(None, "")
    }

    fn shown(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(memory)".into())
    }

    /// The stored value; `None` if there is none yet. A file that exists
    /// but does not parse is an error, never a silent start-over.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, CheckpointError> {
        let bytes = match &self.path {
            None => self.memory.lock().clone(),
            Some(p) => match std::fs::read(p) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(CheckpointError::Io {
                        path: self.shown(),
                        source,
                    })
                }
            },
        };
        let Some(bytes) = bytes else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CheckpointError::Corrupt {
                path: self.shown(),
                message: e.to_string(),
            })
    }

    /// Stores `value` durably (fsynced file and directory).
    pub fn save<T: Serialize>(&self, value: &T) -> Result<(), CheckpointError> {
        let bytes = serde_json::to_vec(value).map_err(|e| CheckpointError::Corrupt {
            path: self.shown(),
            message: e.to_string(),
        })?;
        let Some(path) = &self.path else {
            *self.memory.lock() = Some(bytes);
            return Ok(());
        };
        let io = |source| CheckpointError::Io {
            path: self.shown(),
            source,
        };
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        let tmp = PathBuf::from(name);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reopen_and_refuses_a_corrupt_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Checkpoint::new(Some(dir.path().join("sources")), "a.pos");
        assert_eq!(c.load::<u64>().expect("load"), None);
        c.save(&42u64).expect("save");
        let again = Checkpoint::new(Some(dir.path().join("sources")), "a.pos");
        assert_eq!(again.load::<u64>().expect("load"), Some(42));
        std::fs::write(dir.path().join("sources/a.pos"), b"{torn").expect("write");
        let err = again.load::<u64>().expect_err("corrupt");
        assert!(err.to_string().contains("unreadable"), "{err}");
        let m = Checkpoint::memory();
        m.save(&7u64).expect("save");
        assert_eq!(m.clone().load::<u64>().expect("load"), Some(7));
    }
}
