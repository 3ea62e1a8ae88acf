//! `svcnet-bench-endpointslice`: the EndpointSlice controller benchmark (docs/benchmarks.md,
//! "EndpointSlice controller"). `bench/endpointslice/run.sh` brings up a simulated local cluster per
//! controller, starts the controller as an addon and runs `measure`; then `report` puts both results
//! side by side.

mod measure;
mod probe;
mod report;
mod tracker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "EndpointSlice controller benchmark: svcnet-controller next to upstream's")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the controller running as addon `--addon` beside the cluster in `--state-dir`.
    Measure(measure::Args),
    /// Print the side-by-side table (and put it into the doc with `--doc`).
    Report {
        #[arg(long)]
        svcnet: PathBuf,
        #[arg(long)]
        upstream: PathBuf,
        /// The machine and date line printed above the table.
        #[arg(long, default_value = "")]
        header: String,
        /// Replace the generated part of "## EndpointSlice controller" in this markdown file.
        #[arg(long)]
        doc: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Measure(args) => measure::run(args).await,
        Command::Report {
            svcnet,
            upstream,
            header,
            doc,
        } => report::run(&svcnet, &upstream, &header, doc.as_deref()),
    }
}
