//! The workload every pod of the local cluster runs, in the spirit of agnhost netexec:
//! - TCP: a first line `whoami` gets `<pod-name> <client-ip>:<client-port>`; an HTTP request gets
//!   `/hostname`, `/clientip` or `/healthz` answered; anything else is echoed until the peer closes.
//! - UDP: a datagram `whoami` gets the same reply as over TCP; anything else is echoed.
//!
//! The listeners are made in the pod's namespace (see [`crate::netns::within`]) and served here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

/// Who this server answers as, and whether `/healthz` says healthy.
#[derive(Debug)]
pub struct Identity {
    pub pod: String,
    pub healthy: AtomicBool,
}

impl Identity {
    pub fn new(pod: &str) -> Arc<Self> {
        Arc::new(Identity {
            pod: pod.to_owned(),
            healthy: AtomicBool::new(true),
        })
    }

    fn whoami(&self, peer: SocketAddr) -> String {
        format!("{} {}\n", self.pod, peer)
    }
}

/// The protocols a container port may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// Binds `[::]:port` (which takes IPv4 too) in the current thread's namespace, non-blocking, ready to
/// be handed to the runtime.
pub fn bind(protocol: Protocol, port: u16) -> std::io::Result<Bound> {
    let any6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    let any4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port));
    // Where IPv6 is switched off, fall back to IPv4 only.
    bind_at(protocol, any6).or_else(|_| bind_at(protocol, any4))
}

fn bind_at(protocol: Protocol, addr: SocketAddr) -> std::io::Result<Bound> {
    Ok(match protocol {
        Protocol::Tcp => {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Bound::Tcp(l)
        }
        Protocol::Udp => {
            let s = std::net::UdpSocket::bind(addr)?;
            s.set_nonblocking(true)?;
            Bound::Udp(s)
        }
    })
}

#[derive(Debug)]
pub enum Bound {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// Serves every bound socket until the returned set is dropped or aborted.
pub fn serve(sockets: Vec<Bound>, identity: Arc<Identity>) -> std::io::Result<JoinSet<()>> {
    let mut tasks = JoinSet::new();
    for socket in sockets {
        match socket {
            Bound::Tcp(l) => {
                let listener = TcpListener::from_std(l)?;
                tasks.spawn(serve_tcp(listener, identity.clone()));
            }
            Bound::Udp(s) => {
                let socket = UdpSocket::from_std(s)?;
                tasks.spawn(serve_udp(socket, identity.clone()));
            }
        }
    }
    Ok(tasks)
}

async fn serve_tcp(listener: TcpListener, identity: Arc<Identity>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(handle_tcp(stream, peer, identity.clone()));
                }
                Err(e) => tracing::debug!(error = %e, "accept failed"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle_tcp(stream: TcpStream, peer: SocketAddr, identity: Arc<Identity>) {
    let peer = unmap(peer);
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    if reader.read_line(&mut first).await.is_err() {
        return;
    }
    let reply = if first.trim_end() == "whoami" {
        identity.whoami(peer)
    } else if let Some(path) = http_path(&first) {
        http_reply(&identity, path, peer)
    } else {
        // Echo: the first line and what was read past it, then everything else until the peer closes.
        let buffered = reader.buffer().to_vec();
        let mut stream = reader.into_inner();
        if stream.write_all(first.as_bytes()).await.is_err()
            || stream.write_all(&buffered).await.is_err()
        {
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            if stream.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
        return;
    };
    let mut stream = reader.into_inner();
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn http_path(request_line: &str) -> Option<&str> {
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET" | "HEAD"), Some(path)) => Some(path),
        _ => None,
    }
}

fn http_reply(identity: &Identity, path: &str, peer: SocketAddr) -> String {
    let (status, body) = match path {
        "/hostname" => ("200 OK", identity.pod.clone()),
        "/clientip" => ("200 OK", peer.to_string()),
        "/healthz" if identity.healthy.load(Ordering::Relaxed) => ("200 OK", "ok".to_owned()),
        "/healthz" => ("503 Service Unavailable", "unhealthy".to_owned()),
        _ => ("404 Not Found", "not found".to_owned()),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn serve_udp(socket: UdpSocket, identity: Arc<Identity>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let request = &buf[..n];
        let trimmed = request.strip_suffix(b"\n").unwrap_or(request);
        let result = if trimmed == b"whoami" {
            let reply = identity.whoami(unmap(peer));
            socket.send_to(reply.as_bytes(), peer).await
        } else {
            socket.send_to(request, peer).await
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "udp reply failed");
        }
    }
}

/// An IPv4 client seen on a dual-stack socket shows as ::ffff:a.b.c.d; report it as a.b.c.d.
fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_whoami_http_and_echo_over_tcp_and_udp() {
        let tcp = bind(Protocol::Tcp, 0).expect("bind tcp");
        let udp = bind(Protocol::Udp, 0).expect("bind udp");
        let (Bound::Tcp(l), Bound::Udp(u)) = (&tcp, &udp) else {
            panic!("wrong kinds");
        };
        let tcp_port = l.local_addr().expect("addr").port();
        let udp_port = u.local_addr().expect("addr").port();
        let identity = Identity::new("pod-a");
        let _tasks = serve(vec![tcp, udp], identity.clone()).expect("serve");

        let mut s = TcpStream::connect(("127.0.0.1", tcp_port))
            .await
            .expect("connect");
        s.write_all(b"whoami\n").await.expect("write");
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.expect("read");
        let local = s.local_addr().expect("local");
        assert_eq!(reply, format!("pod-a {local}\n"));

        let mut s = TcpStream::connect(("127.0.0.1", tcp_port))
            .await
            .expect("connect");
        s.write_all(b"GET /hostname HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.expect("read");
        assert!(reply.starts_with("HTTP/1.1 200 OK") && reply.ends_with("pod-a"));

        identity.healthy.store(false, Ordering::Relaxed);
        let mut s = TcpStream::connect(("127.0.0.1", tcp_port))
            .await
            .expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.expect("read");
        assert!(reply.starts_with("HTTP/1.1 503"));

        let mut s = TcpStream::connect(("127.0.0.1", tcp_port))
            .await
            .expect("connect");
        s.write_all(b"hello\nworld").await.expect("write");
        s.shutdown().await.expect("shutdown");
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.expect("read");
        assert_eq!(reply, "hello\nworld");

        let c = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        c.send_to(b"whoami", ("127.0.0.1", udp_port))
            .await
            .expect("send");
        let mut buf = [0u8; 128];
        let n = c.recv(&mut buf).await.expect("recv");
        let local = c.local_addr().expect("local");
        assert_eq!(&buf[..n], format!("pod-a {local}\n").as_bytes());
        c.send_to(b"ping", ("127.0.0.1", udp_port))
            .await
            .expect("send");
        let n = c.recv(&mut buf).await.expect("recv");
        assert_eq!(&buf[..n], b"ping");
    }
}
