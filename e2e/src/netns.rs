//! Network namespaces and links, through iproute2, and code that runs inside a namespace.
//!
//! Only a dedicated thread ever enters another namespace (`setns`), so the async runtime's threads
//! always stay in the namespace the process started in.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result};

/// Where `ip netns add` puts its namespaces.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Runs a command and returns its stdout; a non-zero exit is an error carrying stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program).args(args).output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// `ip [-n netns] args...`
pub fn ip(netns: Option<&str>, args: &[&str]) -> Result<String> {
    let mut full = Vec::with_capacity(args.len() + 2);
    if let Some(ns) = netns {
        full.extend(["-n", ns]);
    }
    full.extend_from_slice(args);
    run("ip", &full)
}

pub fn add(name: &str) -> Result<()> {
    ip(None, &["netns", "add", name]).map(drop)
}

/// Deletes a namespace (and with it every link inside it); a namespace that is already gone is fine.
pub fn delete(name: &str) -> Result<()> {
    if !exists(name) {
        return Ok(());
    }
    ip(None, &["netns", "delete", name]).map(drop)
}

/// Sets a sysctl inside a namespace.
pub fn sysctl(netns: &str, key: &str, value: &str) -> Result<()> {
    let setting = format!("{key}={value}");
    exec(netns, &["sysctl", "-q", "-w", setting.as_str()]).map(drop)
}

/// `ip netns exec <netns> <command...>`: runs a program inside a namespace, returns its stdout.
pub fn exec(netns: &str, command: &[&str]) -> Result<String> {
    let mut args = vec!["netns", "exec", netns];
    args.extend_from_slice(command);
    run("ip", &args)
}

/// Switches off IPv6 duplicate address detection for links created in the namespace from now on:
/// our addresses are planned, and a link-local address still "tentative" delays the first packets.
pub fn skip_ipv6_dad(netns: &str) -> Result<()> {
    sysctl(netns, "net.ipv6.conf.default.accept_dad", "0")?;
    sysctl(netns, "net.ipv6.conf.all.accept_dad", "0")
}

/// Runs `f` on a fresh thread that has entered the namespace `name`. Sockets that `f` creates belong to
/// that namespace for good, and may then be used from any thread.
pub fn within<T, F>(name: &str, f: F) -> Result<T>
where
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let netns = name.to_owned();
    let file = File::open(path(name)).map_err(|source| Error::Netns {
        netns: netns.clone(),
        source,
    })?;
    let handle = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || -> std::io::Result<T> {
            setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            f()
        })?;
    let joined = handle
        .join()
        .map_err(|_| Error::invalid(format!("thread in {netns}"), "panicked"))?;
    joined.map_err(|source| Error::Netns { netns, source })
}

/// Like [`within`], for async callers: the blocking thread does not hold up the runtime.
pub async fn within_async<T, F>(name: &str, f: F) -> Result<T>
where
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || within(&name, f))
        .await
        .map_err(|e| Error::invalid("netns task", e))?
}
