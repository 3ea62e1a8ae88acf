//! Starting the cluster's long-running processes detached, and stopping them by id.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::Result;
use crate::inventory::ProcessRecord;

/// Starts `program args` in its own process group (so it outlives `svcnet-cluster up` and a terminal's
/// Ctrl-C), with stdout and stderr appended to `logs/<name>.log`.
pub fn spawn(name: &str, program: &Path, args: &[String], logs: &Path) -> Result<ProcessRecord> {
    spawn_in(name, program, args, logs, None, &[])
}

/// Like [`spawn`], inside network namespace `netns` when given (through `ip netns exec`, which execs).
pub fn spawn_in(
    name: &str,
    program: &Path,
    args: &[String],
    logs: &Path,
    netns: Option<&str>,
    env: &[(&str, &Path)],
) -> Result<ProcessRecord> {
    fs::create_dir_all(logs)?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(logs.join(format!("{name}.log")))?;
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    };
    let child = command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    ProcessRecord::of(name, child.id())
}

/// Sends SIGTERM, waits up to `grace` for the process to go, then SIGKILL. Only the recorded process is
/// signalled: a pid that now belongs to another process is left alone.
pub fn stop(record: &ProcessRecord, grace: Duration) {
    if !record.is_alive() {
        return;
    }
    let pid = Pid::from_raw(record.pid);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while record.is_alive() && Instant::now() < deadline {
        reap(pid);
        std::thread::sleep(Duration::from_millis(50));
    }
    if record.is_alive() {
        let _ = kill(pid, Signal::SIGKILL);
        while record.is_alive() {
            reap(pid);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Collects the exit status when the process is our own child (else it would stay a zombie).
fn reap(pid: Pid) {
    let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
}
