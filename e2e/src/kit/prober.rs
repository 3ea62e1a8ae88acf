//! Sends test traffic from a node, a pod or the outside client, and says which pod answered and
//! which client address that pod saw. Only addresses inside the cluster's namespaces are ever used.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns;

/// What the test server answered to `whoami`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The name of the pod that answered.
    pub pod: String,
    /// The client address (ip:port) that pod saw.
    pub client: SocketAddr,
}

impl Reply {
    fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split_whitespace();
        let (Some(pod), Some(client)) = (parts.next(), parts.next()) else {
            return Err(Error::invalid("whoami reply", format!("{text:?}")));
        };
        let client = client
            .parse()
            .map_err(|e| Error::invalid("whoami reply", format!("{text:?}: {e}")))?;
        Ok(Reply {
            pod: pod.to_owned(),
            client,
        })
    }
}

/// A place to send traffic from: a network namespace of the cluster.
#[derive(Debug, Clone)]
pub struct Prober {
    netns: String,
    timeout: Duration,
}

impl Prober {
    pub fn from_netns(netns: impl Into<String>) -> Self {
        Prober {
            netns: netns.into(),
            timeout: Duration::from_secs(2),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects over TCP, asks `whoami`, and returns the answer.
    pub async fn tcp(&self, target: SocketAddr) -> Result<Reply> {
        let timeout = self.timeout;
        let text = netns::within_async(&self.netns, move || {
            let mut stream = TcpStream::connect_timeout(&target, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            stream.write_all(b"whoami\n")?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            Ok(reply)
        })
        .await?;
        Reply::parse(&text)
    }

    /// A plain HTTP GET; returns the status code and the body.
    pub async fn http_get(&self, target: SocketAddr, path: &str) -> Result<(u16, String)> {
        let timeout = self.timeout;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        let text = netns::within_async(&self.netns, move || {
            let mut stream = TcpStream::connect_timeout(&target, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            stream.write_all(request.as_bytes())?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply)?;
            Ok(reply)
        })
        .await?;
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::invalid("http reply", format!("{text:?}")))?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        Ok((status, body))
    }

    /// Opens a TCP connection from the namespace (for tests that keep one open across a change).
    pub async fn connect(&self, target: SocketAddr) -> Result<TcpStream> {
        let timeout = self.timeout;
        let stream = netns::within_async(&self.netns, move || {
            let stream = TcpStream::connect_timeout(&target, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            Ok(stream)
        })
        .await?;
        Ok(stream)
    }

    /// Sends a `whoami` datagram and returns the answer.
    pub async fn udp(&self, target: SocketAddr) -> Result<Reply> {
        self.udp_from(target, 0).await
    }

    /// Like [`udp`](Self::udp) from source port `port` (0: any): every datagram from one port is
    /// one conntrack flow, as a DNS client or a statsd sender keeps.
    pub async fn udp_from(&self, target: SocketAddr, port: u16) -> Result<Reply> {
        let timeout = self.timeout;
        let text = netns::within_async(&self.netns, move || {
            let bind: SocketAddr = if target.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], port))
            } else {
                SocketAddr::from(([0u16; 8], port))
            };
            let socket = UdpSocket::bind(bind)?;
            socket.set_read_timeout(Some(timeout))?;
            socket.connect(target)?;
            socket.send(b"whoami")?;
            let mut buf = [0u8; 512];
            let n = socket.recv(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })
        .await?;
        Reply::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whoami_replies() {
        let r = Reply::parse("web-1 172.18.0.200:41234\n").ok();
        assert_eq!(
            r,
            Some(Reply {
                pod: "web-1".into(),
                client: SocketAddr::from(([172, 18, 0, 200], 41234)),
            })
        );
        assert!(Reply::parse("garbage").is_err());
    }
}
