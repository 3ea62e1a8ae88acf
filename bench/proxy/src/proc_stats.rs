//! A process's memory and CPU time from /proc.

use anyhow::{Context, Result};

/// Resident memory now and at its peak (VmRSS, VmHWM), in MiB.
pub fn memory_mib(pid: i32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid}"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{key} of process {pid}"))
    };
    Ok((kib("VmRSS:")? / 1024.0, kib("VmHWM:")? / 1024.0))
}

/// User plus system CPU time, in seconds (clock ticks of `ticks_per_second`).
pub fn cpu_seconds(pid: i32, ticks_per_second: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid}"))?;
    // Fields after the command name (which may hold spaces) start past the last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 2..])
        .context("malformed /proc/pid/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of the line, 11 and 12 counted from the state (field 3).
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields
            .get(i)
            .context("short /proc/pid/stat")?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / ticks_per_second)
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn ticks_per_second() -> Result<f64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let (rss, peak) = memory_mib(pid).unwrap();
        assert!(rss > 0.0 && peak >= rss);
        assert!(cpu_seconds(pid, ticks_per_second().unwrap()).unwrap() >= 0.0);
    }
}
