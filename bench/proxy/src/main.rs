//! `svcnet-bench-proxy`: svcnet-proxy and upstream kube-proxy (nftables mode) on the same Services
//! (docs/benchmarks.md, "Proxy"). `bench/proxy/run.sh` brings up a local cluster and runs `measure`:
//! for each size, the Services and their EndpointSlices are created, then each proxy in turn starts in
//! a node's namespace, does its first full sync, and applies one-endpoint changes. `report` writes
//! the section. `rules` writes svcnet-proxy's transactions for the same Services without a cluster,
//! to time the kernel's part alone.

mod measure;
mod population;
mod proc_stats;
mod report;
mod rules;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Proxy benchmark: svcnet-proxy next to kube-proxy's nftables mode")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure both proxies at each size on the cluster in `--state-dir`.
    Measure(measure::Args),
    /// Write svcnet-proxy's full-sync and one-change transactions for the Services, no cluster needed.
    Rules(rules::Args),
    /// Print the section (and put it into the doc with `--doc`).
    Report {
        #[arg(long)]
        results: PathBuf,
        /// The machine, date and commit line printed above the tables.
        #[arg(long, default_value = "")]
        header: String,
        /// Replace the "## Proxy" section of this markdown file (or append it).
        #[arg(long)]
        doc: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Measure(args) => measure::run(args).await,
        Command::Rules(args) => rules::run(&args),
        Command::Report {
            results,
            header,
            doc,
        } => report::run(&results, &header, doc.as_deref()),
    }
}
