//! One probe of test traffic: connect to a target, ask `whoami` (TCP or UDP) or GET a path, and say
//! what came back or how it failed. The same code runs in the test process (inside a network
//! namespace of the local cluster) and as `svcnet-testserver probe` inside a pod that a test reaches
//! through the API (`kubectl exec`, on kind), so a probe has a command line and a one-line answer.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `whoami` over TCP.
    Tcp,
    /// `whoami` in one datagram from `source_port` (0: any).
    Udp { source_port: u16 },
    /// `GET path` over HTTP/1.1.
    Http { path: String },
}

/// A probe: what to ask of which target, and how long to wait for each step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub ask: Ask,
    pub target: SocketAddr,
    pub timeout: Duration,
}

/// How a probe failed, as far as a test cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Connection refused (TCP RST, or ICMP port unreachable for UDP).
    Refused,
    /// No answer within the timeout (dropped, or black-holed).
    Timeout,
    /// ICMP host or network unreachable, or no route.
    Unreachable,
    /// Anything else (the message says what).
    Other,
}

impl Failure {
    fn of(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::ConnectionRefused => Failure::Refused,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Failure::Timeout,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Failure::Unreachable,
            _ => Failure::Other,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Failure::Refused => "refused",
            Failure::Timeout => "timeout",
            Failure::Unreachable => "unreachable",
            Failure::Other => "other",
        }
    }

    fn from_word(word: &str) -> Option<Self> {
        [
            Failure::Refused,
            Failure::Timeout,
            Failure::Unreachable,
            Failure::Other,
        ]
        .into_iter()
        .find(|f| f.word() == word)
    }
}

/// A probe's result: the text the server sent, or how it failed and why.
pub type Outcome = Result<String, (Failure, String)>;

impl Probe {
    /// The arguments of `svcnet-testserver probe` that run this probe.
    pub fn args(&self) -> Vec<String> {
        let mut args = match &self.ask {
            Ask::Tcp => vec!["tcp".to_owned()],
            Ask::Udp { source_port } => vec!["udp".to_owned(), format!("--from={source_port}")],
            Ask::Http { path } => vec!["http".to_owned(), format!("--path={path}")],
        };
        args.push(format!("--timeout-ms={}", self.timeout.as_millis()));
        args.push(self.target.to_string());
        args
    }

    /// Parses what [`args`](Self::args) wrote.
    pub fn parse_args(args: &[String]) -> Result<Self, String> {
        let (kind, rest) = args.split_first().ok_or("probe: tcp, udp or http")?;
        let (target, options) = rest.split_last().ok_or("probe: no target address")?;
        let target: SocketAddr = target
            .parse()
            .map_err(|e| format!("probe target {target:?}: {e}"))?;
        let mut timeout = Duration::from_secs(2);
        let mut source_port = 0;
        let mut path = "/".to_owned();
        for option in options {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| format!("probe option {option:?}: want --key=value"))?;
            let bad = |e: std::num::ParseIntError| format!("probe option {option:?}: {e}");
            match key {
                "--timeout-ms" => timeout = Duration::from_millis(value.parse().map_err(bad)?),
                "--from" => source_port = value.parse().map_err(bad)?,
                "--path" => path = value.to_owned(),
                _ => return Err(format!("probe option {option:?} is unknown")),
            }
        }
        let ask = match kind.as_str() {
            "tcp" => Ask::Tcp,
            "udp" => Ask::Udp { source_port },
            "http" => Ask::Http { path },
            other => return Err(format!("probe {other:?}: want tcp, udp or http")),
        };
        Ok(Probe {
            ask,
            target,
            timeout,
        })
    }

    /// Runs the probe from the calling thread's network namespace.
    pub fn run(&self) -> Outcome {
        self.exchange()
            .map_err(|e| (Failure::of(e.kind()), e.to_string()))
    }

    fn exchange(&self) -> std::io::Result<String> {
        let request = match &self.ask {
            Ask::Tcp => "whoami\n".to_owned(),
            Ask::Http { path } => format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.target
            ),
            Ask::Udp { source_port } => return self.datagram(*source_port),
        };
        let mut stream = TcpStream::connect_timeout(&self.target, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.write_all(request.as_bytes())?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    }

    fn datagram(&self, source_port: u16) -> std::io::Result<String> {
        let socket = UdpSocket::bind(any_address(self.target.ip(), source_port))?;
        socket.set_read_timeout(Some(self.timeout))?;
        socket.connect(self.target)?;
        socket.send(b"whoami")?;
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// The unspecified address of `like`'s family, with `port`: where a socket to `like` binds.
pub fn any_address(like: IpAddr, port: u16) -> SocketAddr {
    match like {
        IpAddr::V4(_) => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, port)),
        IpAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)),
    }
}

/// The one line `svcnet-testserver probe` prints: `ok <reply, newlines escaped>` or
/// `fail <refused|timeout|unreachable|other> <message>`.
pub fn outcome_line(outcome: &Outcome) -> String {
    match outcome {
        Ok(text) => format!("ok {}", escape(text)),
        Err((failure, message)) => format!("fail {} {}", failure.word(), escape(message)),
    }
}

/// Parses [`outcome_line`]'s output.
pub fn parse_outcome(line: &str) -> Result<Outcome, String> {
    let line = line.trim_end_matches('\n');
    if let Some(text) = line.strip_prefix("ok ") {
        return Ok(Ok(unescape(text)));
    }
    let rest = line
        .strip_prefix("fail ")
        .ok_or_else(|| format!("probe answer {line:?}: want ok or fail"))?;
    let (word, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let failure = Failure::from_word(word)
        .ok_or_else(|| format!("probe answer {line:?}: unknown failure"))?;
    Ok(Err((failure, unescape(message))))
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_survives_its_command_line() {
        let probes = [
            Probe {
                ask: Ask::Tcp,
                target: "10.96.0.10:80".parse().unwrap(),
                timeout: Duration::from_millis(1500),
            },
            Probe {
                ask: Ask::Udp { source_port: 40053 },
                target: "[fd00:10:96::a]:53".parse().unwrap(),
                timeout: Duration::from_secs(2),
            },
            Probe {
                ask: Ask::Http {
                    path: "/healthz?x=1".into(),
                },
                target: "172.18.0.11:32000".parse().unwrap(),
                timeout: Duration::from_millis(500),
            },
        ];
        for probe in probes {
            assert_eq!(Probe::parse_args(&probe.args()), Ok(probe));
        }
        assert!(Probe::parse_args(&["ping".into(), "1.2.3.4:5".into()]).is_err());
        assert!(
            Probe::parse_args(&["tcp".into(), "--bogus=1".into(), "1.2.3.4:5".into()]).is_err()
        );
        assert!(Probe::parse_args(&["tcp".into()]).is_err());
    }

    #[test]
    fn an_outcome_survives_its_line() {
        let outcomes: [Outcome; 4] = [
            Ok("web-1 10.244.1.3:41234\n".into()),
            Ok("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into()),
            Err((Failure::Refused, "Connection refused (os error 111)".into())),
            Err((Failure::Timeout, String::new())),
        ];
        for outcome in outcomes {
            let line = outcome_line(&outcome);
            assert!(!line.contains('\n'), "{line:?}");
            assert_eq!(parse_outcome(&line), Ok(outcome));
        }
        assert!(parse_outcome("garbage").is_err());
        assert!(parse_outcome("fail sideways why").is_err());
    }

    #[test]
    fn a_closed_loopback_port_is_refused() {
        // Bind then drop, so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let probe = Probe {
            ask: Ask::Tcp,
            target: SocketAddr::from(([127, 0, 0, 1], port)),
            timeout: Duration::from_secs(2),
        };
        assert!(matches!(probe.run(), Err((Failure::Refused, _))));
    }
}
