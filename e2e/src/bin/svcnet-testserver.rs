//! `svcnet-testserver`: the e2e test server as a program of its own, for clusters where pods run real
//! images (kind: the svcnet image carries it; e2e/kind/run.sh). On the local cluster the node agent
//! serves the same protocol itself. Serves whoami / HTTP / echo on `--tcp` and `--udp` ports and
//! answers as `$POD_NAME`.

use clap::Parser;
use svcnet_e2e::testserver::{self, Identity, Protocol};

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    tcp: Vec<u16>,
    #[arg(long)]
    udp: Vec<u16>,
    #[arg(long, env = "POD_NAME", default_value = "testserver")]
    name: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
