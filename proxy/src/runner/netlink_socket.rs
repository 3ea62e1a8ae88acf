//! The thin edge for element batches (`crate::netlink`): one netlink socket per batch, send, wait
//! for the kernel's answer to every message. The kernel applies the batch whole or not at all.

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::Error;
use crate::netlink::Batch;

const NLMSG_ERROR: u16 = 2;
const HEADER: usize = 16;

/// Sends `batch` and returns once every element message is acknowledged, or the first error the
/// kernel reports (the batch is then rolled back).
pub fn send(batch: &Batch) -> Result<(), Error> {
    let fail = |what: &str, e: std::io::Error| Error::Nft(format!("netlink {what}: {e}"));
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| fail("socket", e))?;
    socket.bind_auto().map_err(|e| fail("bind", e))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| fail("connect", e))?;
    socket.send(&batch.bytes, 0).map_err(|e| fail("send", e))?;
    let mut waiting: std::collections::BTreeSet<u32> = batch.acked.iter().copied().collect();
    while !waiting.is_empty() {
        let mut buf = Vec::with_capacity(64 * 1024);
        let n = socket.recv(&mut buf, 0).map_err(|e| fail("recv", e))?;
        let mut at = 0;
        while at + HEADER <= n {
            let word = |i: usize| {
                buf.get(at + i..at + i + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_ne_bytes)
            };
            let len = usize::try_from(word(0)).unwrap_or(usize::MAX);
            let msg_type = u16::try_from(word(4) & 0xffff).unwrap_or_default();
            let seq = word(8);
            if len < HEADER {
                break;
            }
            if msg_type == NLMSG_ERROR {
                let code = i32::from_ne_bytes(word(HEADER).to_ne_bytes());
                if code != 0 {
                    let e = std::io::Error::from_raw_os_error(-code);
                    return Err(Error::Nft(format!(
                        "the kernel refused element message {seq}: {e}"
                    )));
                }
                waiting.remove(&seq);
            }
            at += len.next_multiple_of(4);
        }
    }
    Ok(())
}
