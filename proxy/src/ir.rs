//! The structured form of a ruleset: what the compiler builds, the renderer writes as nft text,
//! and the fake nft and the packet tracer read. Only the shapes this crate emits exist here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{Family, LoadBalancing, Protocol};

/// The table every rule lives in (`ip svcnet` / `ip6 svcnet`).
pub const TABLE: &str = "svcnet";

/// A chain's type, for base chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChainType {
    Filter,
    Nat,
}

/// A netfilter hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

/// What makes a chain a base chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseHook {
    pub chain_type: ChainType,
    pub hook: Hook,
    /// Numeric, never a keyword: nft 1.0.6 refuses `priority dstnat` on the output hook.
    pub priority: i32,
}

/// A verdict, in a rule or as the value of a verdict map element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Jump(String),
    Goto(String),
    Return,
    Accept,
    Drop,
}

impl Verdict {
    /// The chain this verdict continues in, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            Verdict::Jump(chain) | Verdict::Goto(chain) => Some(chain),
            _ => None,
        }
    }
}

/// The value of a map element.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// A verdict map's: where the packet goes on.
    Verdict(Verdict),
    /// An endpoint map's: where DNAT sends the packet.
    Target(IpAddr, u16),
}

impl Value {
    /// The chain this value continues in, if any.
    pub fn target_chain(&self) -> Option<&str> {
        match self {
            Value::Verdict(v) => v.target(),
            Value::Target(..) => None,
        }
    }
}

/// What a packet's endpoint lookup is keyed by, besides the endpoint's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `ip daddr . meta l4proto . th dport`: a ClusterIP, external or load-balancer IP.
    Destination,
    /// `meta l4proto . th dport`: a NodePort, on whichever local address it came in.
    NodePort,
}

/// One match expression of a rule (all of a rule's matches must hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Match {
    /// `ct state new`
    CtStateNew,
    /// `ip saddr <nets>` (one net, or an anonymous set)
    SaddrIn(Vec<IpNet>),
    /// `ip saddr != <nets>`
    SaddrNotIn(Vec<IpNet>),
    /// `ip saddr @<set>`
    SaddrInSet(String),
    /// `ip saddr . ip daddr @<set>`
    SaddrDaddrInSet(String),
    /// `ip daddr <addr>`
    Daddr(IpAddr),
    /// `ip daddr <nets>`
    DaddrIn(Vec<IpNet>),
    /// `ip daddr != <nets>`
    DaddrNotIn(Vec<IpNet>),
    /// `ip daddr @<set>`
    DaddrInSet(String),
    /// `<proto> dport <port>`
    Dport(Protocol, u16),
    /// `meta l4proto <proto>`
    L4Proto(Protocol),
    /// `fib saddr type local`
    FibSaddrLocal,
    /// `fib daddr type local`
    FibDaddrLocal,
    /// `mark and <bit> == 0`
    MarkClear(u32),
    /// `ct status dnat`: the connection's destination was rewritten.
    CtStatusDnat,
}

/// What a rule does when its matches hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Verdict(Verdict),
    /// `reject` (only valid in filter chains on input/forward/output).
    Reject,
    /// `ip daddr . meta l4proto . th dport vmap @<map>`
    VmapAddrProtoPort(String),
    /// `meta l4proto . th dport vmap @<map>`
    VmapProtoPort(String),
    /// `numgen random|inc mod N vmap { i : goto <chain>, ... }`, or `jhash ip saddr mod N ...`
    LoadBalance {
        mode: LoadBalancing,
        targets: Vec<String>,
    },
    /// `mark set mark or <bit>`
    MarkSet(u32),
    /// `mark set mark xor <bit>`
    MarkToggle(u32),
    /// `masquerade [fully-random]`
    Masquerade {
        fully_random: bool,
    },
    /// `update @<set> { ip saddr }`
    RememberSaddr(String),
    /// `dnat to <addr>:<port>` (after a `meta l4proto` match)
    Dnat {
        addr: IpAddr,
        port: u16,
    },
    /// `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N offset K map @<map>`
    /// (or `numgen inc`, `jhash ip saddr`; the key starts `meta l4proto . th dport` for
    /// NodePorts; the key holds the protocol): load balancing and DNAT in one rule, the
    /// endpoint from a map shared by every Service. An endpoint that changes is an element that
    /// changes, and the table holds no anonymous map per Service (the kernel's cost of those
    /// grows with the square of their number).
    DnatFromMap {
        mode: LoadBalancing,
        count: u32,
        offset: u32,
        entry: Entry,
        map: String,
    },
}

/// One rule: matches, then one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub action: Action,
}

impl Rule {
    pub fn new(matches: Vec<Match>, action: Action) -> Self {
        Rule { matches, action }
    }

    /// A rule with no match.
    pub fn always(action: Action) -> Self {
        Rule {
            matches: Vec::new(),
            action,
        }
    }

    /// The chains this rule jumps or goes to.
    pub fn chain_refs(&self) -> Vec<&str> {
        match &self.action {
            Action::Verdict(v) => v.target().into_iter().collect(),
            Action::LoadBalance { targets, .. } => targets.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The sets and maps this rule reads or writes.
    pub fn set_refs(&self) -> Vec<&str> {
        let mut refs: Vec<&str> = self
            .matches
            .iter()
            .filter_map(|m| match m {
                Match::SaddrInSet(set) | Match::DaddrInSet(set) | Match::SaddrDaddrInSet(set) => {
                    Some(set.as_str())
                }
                _ => None,
            })
            .collect();
        match &self.action {
            Action::VmapAddrProtoPort(map)
            | Action::VmapProtoPort(map)
            | Action::RememberSaddr(map)
            | Action::DnatFromMap { map, .. } => refs.push(map),
            _ => {}
        }
        refs
    }
}

/// A chain: regular, or a base chain when `base` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseHook>,
    pub rules: Vec<Rule>,
}

/// The key type of a set or map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// One address (`ipv4_addr`).
    Addr,
    /// Address ranges (`ipv4_addr` with `flags interval`).
    Net,
    /// `ipv4_addr . inet_proto . inet_service`
    AddrProtoPort,
    /// `inet_proto . inet_service`
    ProtoPort,
    /// `ipv4_addr . ipv4_addr`
    AddrPair,
    /// `ip daddr . meta l4proto . th dport . numgen ...` (an endpoint map's key)
    AddrProtoPortIndex,
    /// `meta l4proto . th dport . numgen ...` (an endpoint map's key)
    ProtoPortIndex,
}

/// What the elements of a set or map carry besides their key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKind {
    /// Keys only.
    Set,
    /// Keys and verdicts.
    VerdictMap,
    /// Keys and DNAT targets of one protocol (`ip daddr . tcp dport`).
    EndpointMap(Protocol),
}

/// A named set or verdict map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDef {
    pub name: String,
    pub key: KeyType,
    pub kind: SetKind,
    /// `flags dynamic,timeout ; timeout <N>s` (ClientIP affinity).
    pub timeout_seconds: Option<u32>,
    pub comment: Option<String>,
}

/// The key of one element of a set or map.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ElemKey {
    Addr(IpAddr),
    Net(IpNet),
    AddrProtoPort(IpAddr, Protocol, u16),
    ProtoPort(Protocol, u16),
    AddrPair(IpAddr, IpAddr),
    AddrProtoPortIndex(IpAddr, Protocol, u16, u32),
    ProtoPortIndex(Protocol, u16, u32),
}

/// One element: a set's key, or a map's key and value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Element {
    pub set: String,
    pub key: ElemKey,
    pub value: Option<Value>,
}

/// A named set or map with its elements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub def: SetDef,
    pub elements: BTreeMap<ElemKey, Option<Value>>,
}

/// A whole table: what the kernel holds after a transaction (see `testing::FakeNft`) or what a
/// full sync writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub family: Family,
    pub chains: BTreeMap<String, Chain>,
    pub sets: BTreeMap<String, Set>,
}

impl Table {
    pub fn new(family: Family) -> Self {
        Table {
            family,
            chains: BTreeMap::new(),
            sets: BTreeMap::new(),
        }
    }

    /// Every chain name some rule or map element refers to.
    pub fn referenced_chains(&self) -> BTreeSet<&str> {
        let from_rules = self
            .chains
            .values()
            .flat_map(|c| c.rules.iter().flat_map(Rule::chain_refs));
        let from_maps = self.sets.values().flat_map(|s| {
            s.elements
                .values()
                .flatten()
                .filter_map(Value::target_chain)
        });
        from_rules.chain(from_maps).collect()
    }

    /// Every set or map name some rule refers to.
    pub fn referenced_sets(&self) -> BTreeSet<&str> {
        self.chains
            .values()
            .flat_map(|c| c.rules.iter().flat_map(Rule::set_refs))
            .collect()
    }
}
