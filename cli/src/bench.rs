//! `bora bench`: placeholder filled below.
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct BenchArgs {
    pub scenario: String,
}

pub async fn bench(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
