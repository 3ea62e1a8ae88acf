//! What the local cluster created, by id: processes (pid and start time), network namespaces and files.
//! `down` removes exactly what is written here, never anything found by a name pattern.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A process we started; the start time (clock ticks since boot, from /proc) tells it apart from a
/// later process that reuses the pid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRecord {
    pub name: String,
    pub pid: i32,
    pub start_ticks: u64,
}

impl ProcessRecord {
    pub fn of(name: &str, pid: u32) -> Result<Self> {
        let pid = i32::try_from(pid).map_err(|e| Error::invalid("pid", e))?;
        let start_ticks = start_ticks(pid)
            .ok_or_else(|| Error::invalid(name, format!("process {pid} exited at once")))?;
        Ok(ProcessRecord {
            name: name.to_owned(),
            pid,
            start_ticks,
        })
    }

    /// True while the very process we started is alive (not a zombie, not a reused pid).
    pub fn is_alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// Field 22 of /proc/<pid>/stat, or None when the process is gone or a zombie.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it start past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    pub index: u8,
    pub zone: String,
    pub netns: String,
    pub ipv4: String,
    pub ipv6: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inventory {
    pub cluster_id: String,
    pub api_port: u16,
    pub dual_stack: bool,
    pub simulated: bool,
    pub processes: Vec<ProcessRecord>,
    /// Namespaces made by `up` (fabric, nodes, outside); pod namespaces are listed in `pods_dir`.
    pub netns: Vec<String>,
    pub nodes: Vec<NodeRecord>,
    pub outside_netns: Option<String>,
    pub fabric_netns: Option<String>,
}

/// The state directory: `e2e/.state` by default.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// `SVCNET_STATE_DIR`, or `e2e/.state` of this checkout.
    pub fn from_env() -> Self {
        match std::env::var_os("SVCNET_STATE_DIR") {
            Some(dir) => StateDir::new(dir),
            None => StateDir::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".state")),
        }
    }

    pub fn inventory_path(&self) -> PathBuf {
        self.root.join("inventory.json")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// One empty file per pod namespace, named after it, written by the node agents.
    pub fn pods_dir(&self) -> PathBuf {
        self.root.join("pod-netns")
    }
    /// One file per process a node agent started for a pod (`<pid>` holding its start ticks).
    pub fn pod_processes_dir(&self) -> PathBuf {
        self.root.join("pod-processes")
    }

    /// An exclusive lock on the inventory (released when dropped), for read-modify-write changes
    /// made by concurrent addon starts and stops.
    pub fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        fs::create_dir_all(&self.root)?;
        let file = fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("inventory.lock"))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::invalid("inventory lock", e))
    }

    pub fn load(&self) -> Result<Option<Inventory>> {
        match fs::read(self.inventory_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::invalid(self.inventory_path().display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes atomically, so a crash never leaves half an inventory.
    pub fn save(&self, inventory: &Inventory) -> Result<()> {
        fs::create_dir_all(&self.root)?;
        let tmp = self.root.join("inventory.json.tmp");
        let json =
            serde_json::to_vec_pretty(inventory).map_err(|e| Error::invalid("inventory", e))?;
        fs::write(&tmp, json)?;
        fs::rename(tmp, self.inventory_path())?;
        Ok(())
    }

    /// Pod namespaces the node agents recorded.
    pub fn pod_netns(&self) -> Vec<String> {
        list_names(&self.pods_dir())
    }

    /// Pod processes the node agents recorded.
    pub fn pod_processes(&self) -> Vec<ProcessRecord> {
        list_names(&self.pod_processes_dir())
            .into_iter()
            .filter_map(|name| {
                let pid = name.parse().ok()?;
                let text = fs::read_to_string(self.pod_processes_dir().join(&name)).ok()?;
                let start_ticks = text.trim().parse().ok()?;
                Some(ProcessRecord {
                    name: format!("pod process {pid}"),
                    pid,
                    start_ticks,
                })
            })
            .collect()
    }
}

fn list_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcessRecord::of("me", std::process::id()).expect("own stat");
        assert!(me.is_alive());
        let impostor = ProcessRecord {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!impostor.is_alive());
    }
}
