//! `<state-dir>/node.json`: the node id the dispatcher gave this agent, so a restarted agent
//! rejoins as the same node instead of a new one. Written atomically (temp file, fsync,
//! rename). Small and rare, so plain blocking I/O.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The persisted node identity of an agent.
#[derive(Debug, Clone)]
pub struct NodeFile {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Contents {
    node_id: String,
}

impl NodeFile {
    /// The node file of the agent whose state lives in `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("node.json"),
        }
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored node id; `None` before the first session (no file, or an empty id).
    pub fn load(&self) -> io::Result<Option<String>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let contents: Contents = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", self.path.display()),
            )
        })?;
        Ok(Some(contents.node_id).filter(|id| !id.is_empty()))
    }

    /// Stores `node_id` durably.
    pub fn store(&self, node_id: &str) -> io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let contents = serde_json::to_vec_pretty(&Contents {
            node_id: node_id.to_string(),
        })
        .map_err(io::Error::other)?;
        {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&contents)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_the_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let file = NodeFile::in_state_dir(dir.path());
        assert_eq!(file.load().unwrap(), None);
        file.store("node-1").unwrap();
        assert_eq!(file.load().unwrap().as_deref(), Some("node-1"));
        file.store("node-2").unwrap();
        assert_eq!(
            NodeFile::in_state_dir(dir.path())
                .load()
                .unwrap()
                .as_deref(),
            Some("node-2")
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = NodeFile::in_state_dir(dir.path());
        fs::write(file.path(), b"{not json").unwrap();
        let err = file.load().unwrap_err();
        assert!(err.to_string().contains("node.json"), "{err}");
    }
}
