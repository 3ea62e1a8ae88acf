//! The apiserver, reachable from inside a node namespace: a listener on 127.0.0.1:<port> there, whose
//! connections are piped to 127.0.0.1:<port> of the root namespace. Nothing leaves the machine.

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

pub async fn start(netns_name: &str, port: u16) -> Result<Relay> {
    let std_listener = netns::within_async(netns_name, move || {
        let l = std::net::TcpListener::bind(("127.0.0.1", port))?;
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
                match TcpStream::connect(("127.0.0.1", port)).await {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "relay could not reach the apiserver"),
                }
            });
        }
    })))
}
