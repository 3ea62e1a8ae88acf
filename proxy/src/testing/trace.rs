//! A packet tracer over a compiled [`Table`]: where does the first packet of a new connection
//! end up?
//!
//! Paths (see docs/proxy-ruleset.md): from an interface, prerouting chains run, then input
//! (destination local after DNAT) or forward + postrouting. From a local process, output chains
//! run, then postrouting, or input when the destination is local (the packet loops back; NAT is
//! not re-run). Base chains of a hook run in priority order. Load-balancing (`numgen`, `jhash`)
//! is explored arm by arm, so a trace returns every possible outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::ir::{Action, ElemKey, Entry, Hook, Match, Table, Value, Verdict};
use crate::model::{Protocol, ProxyConfig};

/// Where the packet comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A process in the node's network namespace (output path).
    LocalProcess,
    /// A pod or another host, through an interface (prerouting).
    Interface,
}

/// The first packet of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: Protocol,
    pub dport: u16,
    pub origin: Origin,
    /// The destination is a local address of the node (besides the configured node IPs, e.g. a
    /// load-balancer VIP bound on the node).
    pub dst_is_local: bool,
}

impl Packet {
    /// A TCP packet arriving on an interface (from a pod or from outside).
    pub fn tcp(src: IpAddr, dst: IpAddr, dport: u16) -> Self {
        Packet {
            src,
            dst,
            proto: Protocol::Tcp,
            dport,
            origin: Origin::Interface,
            dst_is_local: false,
        }
    }

    /// The same packet, over UDP.
    pub fn udp(self) -> Self {
        Packet {
            proto: Protocol::Udp,
            ..self
        }
    }

    /// The same packet, sent by a process on the node.
    pub fn from_local_process(self) -> Self {
        Packet {
            origin: Origin::LocalProcess,
            ..self
        }
    }
}

/// Where the packet ends up.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Sent to an endpoint; `masquerade` says whether its source is rewritten to the node's.
    Dnat {
        addr: IpAddr,
        port: u16,
        masquerade: bool,
    },
    Reject,
    Drop,
    /// Untouched by our table.
    Accept,
}

/// Walks a table.
#[derive(Debug)]
pub struct Tracer<'a> {
    table: &'a Table,
    node_ips: Vec<IpAddr>,
    remembered: BTreeMap<String, BTreeSet<IpAddr>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Go on with the next rule.
    Continue,
    /// The current chain is done (`return`, or a `goto` whose target ran off its end); its
    /// caller goes on.
    EndChain,
    Accept,
    Drop,
    Reject,
}

struct Ctx<'p> {
    packet: &'p Packet,
    src: IpAddr,
    dst: IpAddr,
    dport: u16,
    mark: u32,
    dnat: bool,
    masquerade: bool,
    pick: usize,
    arms: Option<usize>,
    depth: usize,
}

impl<'a> Tracer<'a> {
    pub fn new(table: &'a Table, config: &ProxyConfig) -> Self {
        Tracer {
            table,
            node_ips: config.node_ips.clone(),
            remembered: BTreeMap::new(),
        }
    }

    /// Pretend `src` is already in affinity set `set` (as an earlier connection would leave it).
    pub fn remember(&mut self, set: &str, src: IpAddr) {
        self.remembered
            .entry(set.to_owned())
            .or_default()
            .insert(src);
    }

    /// Every outcome the packet can have, sorted.
    pub fn trace(&self, packet: &Packet) -> Vec<Outcome> {
        let (first, arms) = self.run(packet, 0);
        let mut outcomes = BTreeSet::from([first]);
        for pick in 1..arms.unwrap_or(1) {
            outcomes.insert(self.run(packet, pick).0);
        }
        outcomes.into_iter().collect()
    }

    fn run(&self, packet: &Packet, pick: usize) -> (Outcome, Option<usize>) {
        let mut ctx = Ctx {
            packet,
            src: packet.src,
            dst: packet.dst,
            dport: packet.dport,
            mark: 0,
            dnat: false,
            masquerade: false,
            pick,
            arms: None,
            depth: 0,
        };
        let outcome = match self.walk(&mut ctx) {
            Flow::Drop => Outcome::Drop,
            Flow::Reject => Outcome::Reject,
            _ if ctx.dnat => Outcome::Dnat {
                addr: ctx.dst,
                port: ctx.dport,
                masquerade: ctx.masquerade,
            },
            _ => Outcome::Accept,
        };
        (outcome, ctx.arms)
    }

    fn walk(&self, ctx: &mut Ctx<'_>) -> Flow {
        let first = match ctx.packet.origin {
            Origin::Interface => Hook::Prerouting,
            Origin::LocalProcess => Hook::Output,
        };
        let flow = self.run_hook(first, ctx);
        if matches!(flow, Flow::Drop | Flow::Reject) {
            return flow;
        }
        let local = self.dst_is_local(ctx);
        let rest: &[Hook] = match (ctx.packet.origin, local) {
            (Origin::Interface, true) => &[Hook::Input],
            (Origin::Interface, false) => &[Hook::Forward, Hook::Postrouting],
            (Origin::LocalProcess, true) => &[Hook::Postrouting, Hook::Input],
            (Origin::LocalProcess, false) => &[Hook::Postrouting],
        };
        for hook in rest {
            let flow = self.run_hook(*hook, ctx);
            if matches!(flow, Flow::Drop | Flow::Reject) {
                return flow;
            }
        }
        Flow::Accept
    }

    fn run_hook(&self, hook: Hook, ctx: &mut Ctx<'_>) -> Flow {
        let mut chains: Vec<_> = self
            .table
            .chains
            .values()
            .filter_map(|c| c.base.filter(|b| b.hook == hook).map(|b| (b.priority, c)))
            .collect();
        chains.sort_by_key(|(priority, chain)| (*priority, chain.name.clone()));
        for (_, chain) in chains {
            let flow = self.run_chain(&chain.name, ctx);
            if matches!(flow, Flow::Drop | Flow::Reject) {
                return flow;
            }
        }
        Flow::Accept
    }

    fn dst_is_local(&self, ctx: &Ctx<'_>) -> bool {
        self.node_ips.contains(&ctx.dst) || (!ctx.dnat && ctx.packet.dst_is_local)
    }

    fn in_set(&self, set: &str, ip: IpAddr) -> bool {
        let remembered = self.remembered.get(set).is_some_and(|s| s.contains(&ip));
        let stored = self.table.sets.get(set).is_some_and(|s| {
            s.elements.keys().any(|k| match k {
                ElemKey::Addr(a) => *a == ip,
                ElemKey::Net(n) => n.contains(&ip),
                _ => false,
            })
        });
        remembered || stored
    }

    fn matches(&self, m: &Match, ctx: &Ctx<'_>) -> bool {
        match m {
            Match::CtStateNew => true,
            Match::SaddrIn(nets) => nets.iter().any(|n| n.contains(&ctx.src)),
            Match::SaddrNotIn(nets) => !nets.iter().any(|n| n.contains(&ctx.src)),
            Match::SaddrInSet(set) => self.in_set(set, ctx.src),
            Match::Daddr(a) => ctx.dst == *a,
            Match::DaddrIn(nets) => nets.iter().any(|n| n.contains(&ctx.dst)),
            Match::DaddrNotIn(nets) => !nets.iter().any(|n| n.contains(&ctx.dst)),
            Match::DaddrInSet(set) => self.in_set(set, ctx.dst),
            Match::Dport(proto, port) => ctx.packet.proto == *proto && ctx.dport == *port,
            Match::L4Proto(proto) => ctx.packet.proto == *proto,
            Match::FibSaddrLocal => self.node_ips.contains(&ctx.src),
            Match::FibDaddrLocal => self.dst_is_local(ctx),
            Match::MarkClear(bit) => ctx.mark & bit == 0,
            Match::CtStatusDnat => ctx.dnat,
            Match::SaddrDaddrInSet(set) => self.table.sets.get(set).is_some_and(|s| {
                s.elements
                    .contains_key(&ElemKey::AddrPair(ctx.src, ctx.dst))
            }),
        }
    }

    fn verdict(&self, v: &Verdict, ctx: &mut Ctx<'_>) -> Flow {
        match v {
            Verdict::Jump(chain) => self.run_chain(chain, ctx),
            Verdict::Goto(chain) => match self.run_chain(chain, ctx) {
                // The goto'd chain ran off its end: so does the chain that went there.
                Flow::Continue => Flow::EndChain,
                flow => flow,
            },
            Verdict::Return => Flow::EndChain,
            Verdict::Accept => Flow::Accept,
            Verdict::Drop => Flow::Drop,
        }
    }

    /// Runs a chain; `Continue` means it ran off its end or returned.
    fn run_chain(&self, name: &str, ctx: &mut Ctx<'_>) -> Flow {
        let Some(chain) = self.table.chains.get(name) else {
            return Flow::Drop;
        };
        ctx.depth += 1;
        if ctx.depth > 64 {
            return Flow::Drop;
        }
        let mut result = Flow::Continue;
        for rule in &chain.rules {
            if !rule.matches.iter().all(|m| self.matches(m, ctx)) {
                continue;
            }
            let step = match &rule.action {
                Action::Verdict(v) => self.verdict(v, ctx),
                Action::Reject => Flow::Reject,
                Action::VmapAddrProtoPort(map) => self.lookup(
                    map,
                    ElemKey::AddrProtoPort(ctx.dst, ctx.packet.proto, ctx.dport),
                    ctx,
                ),
                Action::VmapProtoPort(map) => {
                    self.lookup(map, ElemKey::ProtoPort(ctx.packet.proto, ctx.dport), ctx)
                }
                Action::LoadBalance { targets, .. } => {
                    ctx.arms = Some(targets.len());
                    match targets.get(ctx.pick % targets.len().max(1)) {
                        Some(target) => self.verdict(&Verdict::Goto(target.clone()), ctx),
                        None => Flow::Continue,
                    }
                }
                Action::MarkSet(bit) => {
                    ctx.mark |= bit;
                    Flow::Continue
                }
                Action::MarkToggle(bit) => {
                    ctx.mark ^= bit;
                    Flow::Continue
                }
                Action::Masquerade { .. } => {
                    ctx.masquerade = true;
                    Flow::Accept
                }
                Action::RememberSaddr(_) => Flow::Continue,
                Action::Dnat { addr, port } => Self::dnat(ctx, *addr, *port),
                Action::DnatFromMap {
                    count,
                    offset,
                    entry,
                    map,
                    ..
                } => {
                    ctx.arms = usize::try_from(*count).ok();
                    let index = u32::try_from(ctx.pick % (*count).max(1) as usize)
                        .unwrap_or_default()
                        + offset;
                    let key = match entry {
                        Entry::Destination => {
                            ElemKey::AddrProtoPortIndex(ctx.dst, ctx.packet.proto, ctx.dport, index)
                        }
                        Entry::NodePort => {
                            ElemKey::ProtoPortIndex(ctx.packet.proto, ctx.dport, index)
                        }
                    };
                    match self.value(map, &key) {
                        Some(Value::Target(addr, port)) => Self::dnat(ctx, addr, port),
                        // Nothing under this key: the rule does not apply.
                        _ => Flow::Continue,
                    }
                }
            };
            match step {
                Flow::Continue => {}
                Flow::EndChain => break,
                flow => {
                    result = flow;
                    break;
                }
            }
        }
        ctx.depth -= 1;
        result
    }

    fn dnat(ctx: &mut Ctx<'_>, addr: IpAddr, port: u16) -> Flow {
        ctx.dst = addr;
        ctx.dport = port;
        ctx.dnat = true;
        Flow::Accept
    }

    fn value(&self, map: &str, key: &ElemKey) -> Option<Value> {
        self.table
            .sets
            .get(map)
            .and_then(|s| s.elements.get(key).cloned().flatten())
    }

    fn lookup(&self, map: &str, key: ElemKey, ctx: &mut Ctx<'_>) -> Flow {
        match self.value(map, &key) {
            Some(Value::Verdict(v)) => self.verdict(&v, ctx),
            _ => Flow::Continue,
        }
    }
}
