//! The Helm chart against the real apiserver: every manifest it renders (default values, and with
//! cert-manager's resources left out since the local cluster has no cert-manager) is accepted by a
//! server-side dry-run apply, which runs the apiserver's full validation, defaulting and admission
//! (the CRDs' schemas and CEL rules included) without persisting anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use svcnet_e2e::Result;
use svcnet_e2e::kit::client::connect;
use svcnet_e2e::kit::crds;
use svcnet_e2e::kit::namespace::with_namespace;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .env(
            "KUBECONFIG",
            svcnet_e2e::inventory::StateDir::from_env().kubeconfig(),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)?;
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(svcnet_e2e::Error::invalid(
            format!("{} {}", program.display(), args.join(" ")),
            format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
        ));
    }
    Ok(stdout)
}

#[tokio::test]
#[ignore = "needs the local cluster: run `make test-e2e`"]
async fn the_rendered_chart_passes_a_server_side_dry_run() -> Result<()> {
    let client = connect().await?;
    crds::install(&client).await?;
    let bin = svcnet_e2e::kit::install::tools_dir()?;
    with_namespace(&client, "chart", |ns| async move {
        let chart = repo().join("charts/svcnet");
        let rendered = run(
            &bin.join("helm"),
            &[
                "template",
                "svcnet-e2e",
                &chart.display().to_string(),
                "--namespace",
                &ns.name,
            ],
            None,
        )?;
        let applied = run(
            &bin.join("kubectl"),
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=svcnet-e2e",
                "-f",
                "-",
            ],
            Some(rendered.as_bytes()),
        )?;
        for kind in [
            "deployment.apps/svcnet-e2e-controller",
            "daemonset.apps/svcnet-e2e-proxy",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/svcnet-e2e",
            "svcnetconfig.svcnet.dev/default",
        ] {
            assert!(
                applied.contains(&format!("{kind} serverside-applied (server dry run)")),
                "{kind} in:\n{applied}"
            );
        }
        Ok(())
    })
    .await
}
