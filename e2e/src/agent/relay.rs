//! The apiserver, reachable from inside a namespace: a listener there whose connections are piped to
//! the apiserver on 127.0.0.1 of the root namespace. Nothing leaves the machine.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::netns;

/// Aborts the relay when dropped.
#[derive(Debug)]
pub struct Relay(JoinHandle<()>);

impl Drop for Relay {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listens on `listen` inside `netns_name` and pipes every connection to `target` (root namespace).
pub async fn start(netns_name: &str, listen: SocketAddr, target: SocketAddr) -> Result<Relay> {
    let std_listener = netns::within_async(netns_name, move || {
        let l = std::net::TcpListener::bind(listen)?;
        l.set_nonblocking(true)?;
        Ok(l)
    })
    .await?;
    let listener = TcpListener::from_std(std_listener)?;
    Ok(Relay(tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                // This connect runs on a runtime thread, so it is made in the root namespace.
                match TcpStream::connect(target).await {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "relay could not reach the apiserver"),
                }
            });
        }
    })))
}

/// The other way round: listens on `listen` in the root namespace and pipes every connection to
/// `target` as seen from inside `netns_name` (e.g. a Service address, through that node's svcnet-proxy
/// rules). How the apiserver, which runs in the root namespace, reaches a webhook served by pods.
pub async fn start_into(listen: SocketAddr, netns_name: &str, target: SocketAddr) -> Result<Relay> {
    let listener = TcpListener::bind(listen).await?;
    let netns_name = netns_name.to_owned();
    Ok(Relay(tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let netns_name = netns_name.clone();
            tokio::spawn(async move {
                let connected = netns::within_async(&netns_name, move || {
                    let s = std::net::TcpStream::connect_timeout(
                        &target,
                        std::time::Duration::from_secs(5),
                    )?;
                    s.set_nonblocking(true)?;
                    Ok(s)
                })
                .await;
                match connected.and_then(|s| Ok(TcpStream::from_std(s)?)) {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                    Err(e) => tracing::warn!(%target, error = %e, "relay could not connect"),
                }
            });
        }
    })))
}
