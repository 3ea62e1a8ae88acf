//! `svcnet-testserver probe`, the command the kind suite runs in pods through `kubectl exec`, against
//! `svcnet-testserver` itself on loopback: the command line and the one-line answer the prober
//! parses are the ones the traffic tests rely on there. Needs no cluster.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use svcnet_e2e::probe::{Ask, Failure, Outcome, Probe, parse_outcome};
use svcnet_e2e::wait::poll_for;
use svcnet_e2e::{Error, Result};

const BIN: &str = env!("CARGO_BIN_EXE_svcnet-testserver");

/// Stops the server we started, by its own handle, whatever the test's outcome.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn probe(ask: Ask, target: SocketAddr) -> Result<Outcome> {
    let probe = Probe {
        ask,
        target,
        timeout: Duration::from_secs(2),
    };
    let out = Command::new(BIN).arg("probe").args(probe.args()).output()?;
    if !out.status.success() {
        return Err(Error::invalid(
            "svcnet-testserver probe",
            String::from_utf8_lossy(&out.stderr),
        ));
    }
    parse_outcome(&String::from_utf8_lossy(&out.stdout)).map_err(|e| Error::invalid("probe", e))
}

#[tokio::test]
async fn the_probe_command_asks_the_test_server_over_tcp_udp_and_http() -> Result<()> {
    let port = free_port()?;
    let _server = Server(
        Command::new(BIN)
            .args([format!("--tcp={port}"), format!("--udp={port}")])
            .arg("--name=probed")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = poll_for(
        "the test server to answer",
        Duration::from_secs(30),
        || async { probe(Ask::Tcp, target).ok().and_then(Result::ok) },
    )
    .await?;
    assert!(tcp.starts_with("probed 127.0.0.1:"), "{tcp:?}");

    let udp = probe(Ask::Udp { source_port: 0 }, target)?;
    assert!(
        matches!(&udp, Ok(text) if text.starts_with("probed 127.0.0.1:")),
        "{udp:?}"
    );

    let http = probe(
        Ask::Http {
            path: "/hostname".into(),
        },
        target,
    )?;
    assert!(
        matches!(&http, Ok(text) if text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\nprobed")),
        "{http:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_probe_command_reports_a_refused_connection() -> Result<()> {
    let target = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let outcome = probe(Ask::Tcp, target)?;
    assert!(matches!(outcome, Err((Failure::Refused, _))), "{outcome:?}");
    Ok(())
}
