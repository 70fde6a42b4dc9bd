//! The `bora` command: a thin entry point over the library.
//!
//! - `bora run WORKFLOW.yaml`: run one execution on the embedded default
//!   (SQLite), showing tasks as they start and end, and print its output.
//! - `bora worker --db PATH`: run the worker loop on an existing database
//!   (for example to finish executions after a crash).
//! - `bora serve [--listen ADDR] [--db PATH]`: the Mistral v2 REST API
//!   and the workers in one process.
//! - `bora bench SCENARIO`: the benchmarks (see README).
//! - `bora workflow-create FILE`, `bora execution-list`, ...: a client of
//!   the Mistral v2 API in python-mistralclient's vocabulary (see
//!   `client/`).

mod bench;
mod client;
mod run;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "bora",
    version,
    about = "Mistral v2 workflows, on any OpenStack cloud"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one workflow execution on the embedded default and print its output.
    Run(run::RunArgs),
    /// Run workers on a database until stopped (or until nothing runs).
    Worker(run::WorkerArgs),
    /// Serve the Mistral v2 REST API and run the workers.
    Serve(serve::ServeArgs),
    /// Run a benchmark scenario and print its numbers as JSON.
    Bench(bench::BenchArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("BORA_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Worker(args) => run::worker(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Bench(args) => bench::bench(args).await,
            Command::Client(command) => client::run(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
