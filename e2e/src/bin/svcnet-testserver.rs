//! `svcnet-testserver`: the e2e test server as a program of its own, for clusters where pods run real
//! images (kind: the svcnet image carries it; e2e/kind/run.sh). On the local cluster the node agent
//! serves the same protocol itself. Serves whoami / HTTP / echo on `--tcp` and `--udp` ports and
//! answers as `$POD_NAME`; with no port it idles (a client pod to exec probes in).
//!
//! `svcnet-testserver probe tcp|udp|http [--timeout-ms=N] [--from=PORT] [--path=P] ADDR` sends one
//! probe from where it runs and prints one line, `ok ...` or `fail <why> ...` (see
//! `svcnet_e2e::probe`): the e2e prober runs it in pods through `kubectl exec`.

use clap::{Parser, Subcommand};
use svcnet_e2e::probe::{Probe, outcome_line};
use svcnet_e2e::testserver::{self, Identity, Protocol};

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    tcp: Vec<u16>,
    #[arg(long)]
    udp: Vec<u16>,
    #[arg(long, env = "POD_NAME", default_value = "testserver")]
    name: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Send one probe and print its outcome.
    Probe {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Probe { args }) = cli.command {
        let probe = Probe::parse_args(&args).map_err(anyhow::Error::msg)?;
        let outcome = tokio::task::spawn_blocking(move || probe.run()).await?;
        println!("{}", outcome_line(&outcome));
        return Ok(());
    }
    if cli.tcp.is_empty() && cli.udp.is_empty() {
        // As a container's PID 1, SIGTERM is ignored unless handled: handle it, so the pod ends fast.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            result = tokio::signal::ctrl_c() => result?,
        }
        return Ok(());
    }
    let mut bound = Vec::new();
    for port in &cli.tcp {
        bound.push(testserver::bind(Protocol::Tcp, *port)?);
    }
    for port in &cli.udp {
        bound.push(testserver::bind(Protocol::Udp, *port)?);
    }
    let mut servers = testserver::serve(bound, Identity::new(&cli.name))?;
    // The servers run until the process is stopped; one ending is a failure.
    if let Some(ended) = servers.join_next().await {
        ended?;
    }
    anyhow::bail!("a server stopped")
}
