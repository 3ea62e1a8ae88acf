//! `svcnet-bench-webhook`: the allocation webhook benchmark (docs/benchmarks.md, "Allocation
//! webhook"). `bench/webhook/run.sh` brings up a fresh local cluster per setup (no webhook, one
//! svcnet-controller replica, two), starts the replicas as addons and runs `measure`; then `report`
//! puts the setups side by side.

mod measure;
mod report;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    about = "Allocation webhook benchmark: Service creations with and without svcnet's webhook"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install svcnet's CRDs on the cluster in `--state-dir` and wait until they serve.
    InstallCrds {
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Measure one setup on the cluster in `--state-dir`.
    Measure(measure::Args),
    /// Print the section (and put it into the doc with `--doc`).
    Report {
        /// The results of each setup, in the order of the table (none first: the ratios use it).
        #[arg(long = "result", required = true)]
        results: Vec<PathBuf>,
        /// The machine, date and commit line printed above the table.
        #[arg(long, default_value = "")]
        header: String,
        /// Replace the "## Allocation webhook" section of this markdown file (or append it).
        #[arg(long)]
        doc: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::InstallCrds { state_dir } => {
            let state = svcnet_e2e::inventory::StateDir::new(state_dir);
            let client = svcnet_e2e::kit::client::from_kubeconfig(&state.kubeconfig()).await?;
            svcnet_e2e::kit::crds::install(&client).await?;
            Ok(())
        }
        Command::Measure(args) => measure::run(args).await,
        Command::Report {
            results,
            header,
            doc,
        } => report::run(&results, &header, doc.as_deref()),
    }
}
