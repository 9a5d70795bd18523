//! The manager's `--metrics-addr` listener: the default Prometheus registry (manager and
//! in-process agent metrics alike) served by the agent crate's metrics endpoint.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Binds `addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(swarm_agent::metrics::serve(listener, shutdown));
    Ok((bound, task))
}
