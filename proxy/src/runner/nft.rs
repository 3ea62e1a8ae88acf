//! The thin edge to the kernel: one `nft -f -` per transaction, and `--cleanup`.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::Error;
use crate::model::Family;

/// Runs `nft -f -` with `script` on stdin; nft applies the whole file atomically or nothing.
pub async fn apply(script: &str) -> Result<(), Error> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| Error::Nft(format!("writing to nft: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Nft(format!("waiting for nft: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Nft(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

/// Deletes svcnet's tables (and nothing else); a table that is not there is fine.
pub async fn cleanup() -> Result<(), Error> {
    for family in [Family::V4, Family::V6] {
        let script = format!("destroy table {} svcnet\n", family.nft());
        if apply(&script).await.is_err() {
            // nft before 1.0.8 has no `destroy`: add-then-delete is idempotent there.
            let script = format!(
                "add table {0} svcnet\ndelete table {0} svcnet\n",
                family.nft()
            );
            apply(&script).await?;
        }
    }
    Ok(())
}

/// Deletes UDP conntrack entries DNATed to endpoints that are gone, through the `conntrack` tool (one
/// call per endpoint and destination). Exit status 1 with nothing deleted is normal; a missing tool or
/// another failure is logged and the sync goes on (the rules are right; only old flows linger).
pub async fn delete_stale_flows(flows: &[crate::conntrack::StaleFlows]) {
    for f in flows {
        let args = crate::conntrack::delete_args(f);
        match Command::new("conntrack")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
        {
            Ok(out) if out.status.success() || out.status.code() == Some(1) => {
                tracing::info!(args = ?args, "stale UDP flows deleted");
            }
            Ok(out) => tracing::warn!(
                args = ?args,
                error = %String::from_utf8_lossy(&out.stderr).trim(),
                "conntrack failed"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot run conntrack"),
        }
    }
}
