//! nft text for the IR: one command a line, as `nft -f -` reads it (and as knftables writes it).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ir::{
    Action, BaseHook, ChainType, ElemKey, Element, Entry, Hook, KeyType, Match, Rule, SetDef,
    SetKind, TABLE, Value, Verdict,
};
use crate::model::{Family, LoadBalancing};
use crate::transaction::Op;

/// One operation as a line of nft text.
pub fn op(family: Family, op: &Op) -> String {
    let f = family.nft();
    match op {
        Op::AddTable => format!("add table {f} {TABLE} {{ comment \"rules for svcnet-proxy\" ; }}"),
        Op::DeleteTable => format!("delete table {f} {TABLE}"),
        Op::AddChain(chain) => match &chain.base {
            Some(base) => format!(
                "add chain {f} {TABLE} {} {{ {} }}",
                chain.name,
                base_hook(base)
            ),
            None => format!("add chain {f} {TABLE} {}", chain.name),
        },
        Op::FlushChain(name) => format!("flush chain {f} {TABLE} {name}"),
        Op::DeleteChain(name) => format!("delete chain {f} {TABLE} {name}"),
        Op::AddRule { chain, rule: r } => {
            format!("add rule {f} {TABLE} {chain} {}", rule(family, r))
        }
        Op::AddSet(def) => set_decl(family, def),
        Op::DeleteSet(name) => format!("delete set {f} {TABLE} {name}"),
        Op::AddElement(e) => format!("add element {f} {TABLE} {} {{ {} }}", e.set, element(e)),
        Op::DeleteElement(e) => {
            // Deleting takes the key only.
            format!(
                "delete element {f} {TABLE} {} {{ {} }}",
                e.set,
                elem_key(&e.key)
            )
        }
    }
}

fn base_hook(base: &BaseHook) -> String {
    let chain_type = match base.chain_type {
        ChainType::Filter => "filter",
        ChainType::Nat => "nat",
    };
    let hook = match base.hook {
        Hook::Prerouting => "prerouting",
        Hook::Input => "input",
        Hook::Forward => "forward",
        Hook::Output => "output",
        Hook::Postrouting => "postrouting",
    };
    format!("type {chain_type} hook {hook} priority {} ;", base.priority)
}

fn set_decl(family: Family, def: &SetDef) -> String {
    let (ip, addr) = (family.nft(), family.addr_type());
    let mut body = match (def.kind, def.key) {
        // No `type` names numgen's 32-bit integer, so the key is declared by expressions. The
        // value says `tcp dport` (the same bytes for UDP and SCTP): nft 1.0.6 reads a declared
        // `ip daddr . th dport` back from the kernel as conflicting protocols and then refuses
        // every rule that uses the map.
        (SetKind::EndpointMap, key) => {
            let entry = match key {
                KeyType::ProtoPortIndex => "meta l4proto . th dport".to_owned(),
                _ => format!("{ip} daddr . meta l4proto . th dport"),
            };
            format!("typeof {entry} . numgen random mod 1 : {ip} daddr . tcp dport ;")
        }
        (kind, key) => {
            let key = match key {
                KeyType::Addr | KeyType::Net => addr.to_owned(),
                KeyType::AddrProtoPort | KeyType::AddrProtoPortIndex => {
                    format!("{addr} . inet_proto . inet_service")
                }
                KeyType::ProtoPort | KeyType::ProtoPortIndex => {
                    "inet_proto . inet_service".to_owned()
                }
                KeyType::AddrPair => format!("{addr} . {addr}"),
            };
            if kind == SetKind::VerdictMap {
                format!("type {key} : verdict ;")
            } else {
                format!("type {key} ;")
            }
        }
    };
    if def.key == KeyType::Net {
        body.push_str(" flags interval ;");
    }
    if let Some(timeout) = def.timeout_seconds {
        let _ = write!(body, " flags dynamic,timeout ; timeout {timeout}s ;");
    }
    if let Some(comment) = &def.comment {
        let _ = write!(body, " comment \"{comment}\" ;");
    }
    let kind = if def.kind == SetKind::Set {
        "set"
    } else {
        "map"
    };
    format!("add {kind} {ip} {TABLE} {} {{ {body} }}", def.name)
}

fn element(e: &Element) -> String {
    match &e.value {
        Some(Value::Verdict(v)) => format!("{} : {}", elem_key(&e.key), verdict(v)),
        Some(Value::Target(addr, port)) => format!("{} : {addr} . {port}", elem_key(&e.key)),
        None => elem_key(&e.key),
    }
}

fn elem_key(key: &ElemKey) -> String {
    match key {
        ElemKey::Addr(ip) => ip.to_string(),
        ElemKey::Net(net) => net.to_string(),
        ElemKey::AddrProtoPort(ip, proto, port) => format!("{ip} . {} . {port}", proto.as_str()),
        ElemKey::ProtoPort(proto, port) => format!("{} . {port}", proto.as_str()),
        ElemKey::AddrPair(a, b) => format!("{a} . {b}"),
        ElemKey::AddrProtoPortIndex(ip, proto, port, i) => {
            format!("{ip} . {} . {port} . {i}", proto.as_str())
        }
        ElemKey::ProtoPortIndex(proto, port, i) => format!("{} . {port} . {i}", proto.as_str()),
    }
}

/// A verdict as nft writes it.
pub fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Jump(chain) => format!("jump {chain}"),
        Verdict::Goto(chain) => format!("goto {chain}"),
        Verdict::Return => "return".to_owned(),
        Verdict::Accept => "accept".to_owned(),
        Verdict::Drop => "drop".to_owned(),
    }
}

/// A rule's text (what follows `add rule ip svcnet <chain>`).
pub fn rule(family: Family, rule: &Rule) -> String {
    let ip = family.nft();
    let mut parts: Vec<String> = rule.matches.iter().map(|m| match_text(ip, m)).collect();
    parts.push(action(ip, &rule.action));
    parts.join(" ")
}

fn nets(nets: &[IpNet]) -> String {
    match nets {
        [one] => one.to_string(),
        many => format!(
            "{{ {} }}",
            many.iter()
                .map(IpNet::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn match_text(ip: &str, m: &Match) -> String {
    match m {
        Match::CtStateNew => "ct state new".to_owned(),
        Match::SaddrIn(n) => format!("{ip} saddr {}", nets(n)),
        Match::SaddrNotIn(n) => format!("{ip} saddr != {}", nets(n)),
        Match::SaddrInSet(set) => format!("{ip} saddr @{set}"),
        Match::SaddrDaddrInSet(set) => format!("{ip} saddr . {ip} daddr @{set}"),
        Match::Daddr(addr) => format!("{ip} daddr {addr}"),
        Match::DaddrIn(n) => format!("{ip} daddr {}", nets(n)),
        Match::DaddrNotIn(n) => format!("{ip} daddr != {}", nets(n)),
        Match::DaddrInSet(set) => format!("{ip} daddr @{set}"),
        Match::Dport(proto, port) => format!("{} dport {port}", proto.as_str()),
        Match::L4Proto(proto) => format!("meta l4proto {}", proto.as_str()),
        Match::FibSaddrLocal => "fib saddr type local".to_owned(),
        Match::FibDaddrLocal => "fib daddr type local".to_owned(),
        Match::MarkClear(bit) => format!("mark and {bit:#x} == 0"),
        Match::CtStatusDnat => "ct status dnat".to_owned(),
    }
}

fn socket(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The expression that picks an endpoint's index.
fn selector(ip: &str, mode: LoadBalancing) -> String {
    match mode {
        LoadBalancing::Random => "numgen random".to_owned(),
        LoadBalancing::RoundRobin => "numgen inc".to_owned(),
        LoadBalancing::SourceHash => format!("jhash {ip} saddr"),
    }
}

fn action(ip: &str, a: &Action) -> String {
    match a {
        Action::Verdict(v) => verdict(v),
        Action::Reject => "reject".to_owned(),
        Action::VmapAddrProtoPort(map) => {
            format!("{ip} daddr . meta l4proto . th dport vmap @{map}")
        }
        Action::VmapProtoPort(map) => format!("meta l4proto . th dport vmap @{map}"),
        Action::LoadBalance { mode, targets } => {
            let arms: Vec<String> = targets
                .iter()
                .enumerate()
                .map(|(i, t)| format!("{i} : goto {t}"))
                .collect();
            format!(
                "{} mod {} vmap {{ {} }}",
                selector(ip, *mode),
                targets.len(),
                arms.join(", ")
            )
        }
        Action::DnatFromMap {
            mode,
            count,
            offset,
            entry,
            map,
        } => {
            let entry = match entry {
                Entry::Destination => format!("{ip} daddr . meta l4proto . th dport"),
                Entry::NodePort => "meta l4proto . th dport".to_owned(),
            };
            let offset = if *offset == 0 {
                String::new()
            } else {
                format!(" offset {offset}")
            };
            format!(
                "dnat {ip} to {entry} . {} mod {count}{offset} map @{map}",
                selector(ip, *mode)
            )
        }
        Action::MarkSet(bit) => format!("mark set mark or {bit:#x}"),
        Action::MarkToggle(bit) => format!("mark set mark xor {bit:#x}"),
        Action::Masquerade { fully_random: true } => "masquerade fully-random".to_owned(),
        Action::Masquerade {
            fully_random: false,
        } => "masquerade".to_owned(),
        Action::RememberSaddr(set) => format!("update @{set} {{ {ip} saddr }}"),
        Action::Dnat { addr, port } => format!("dnat to {}", socket(addr, *port)),
    }
}
