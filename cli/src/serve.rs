//! `bora serve`: the Mistral v2 REST API and the workers in one process, on
//! the embedded SQLite database. Stops gracefully on SIGINT or SIGTERM.

use anyhow::Context;
use bora::embedded::Embedded;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8989")]
    pub listen: String,
    /// SQLite database file (created when missing).
    #[arg(long, default_value = "bora.db")]
    pub db: PathBuf,
    /// Worker loops moving executions forward.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Seconds a received message stays hidden from other workers; after a
    /// crash, work in flight comes back after this long.
    #[arg(long, default_value_t = 900.0)]
    pub visibility_timeout: f64,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut embedded = Embedded::open(&args.db, None)
        .with_context(|| format!("cannot open database {}", args.db.display()))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "bora: Mistral v2 API on http://{} (database {})",
        listener.local_addr()?,
        args.db.display()
    );
    let workers = embedded.worker_settings(args.workers, args.visibility_timeout);
    bora::api::serve(listener, &embedded, workers, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
