//! Test tools (feature `testing`): a fake nft that applies transactions to an in-memory table
//! with the kernel's reference checks, and a packet tracer over a table.

mod fake;
mod trace;

pub use fake::FakeNft;
pub use trace::{Origin, Outcome, Packet, Tracer};
