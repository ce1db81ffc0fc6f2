//! The hot path without the network:
//! - `decide_blocked`: the general pipeline (`Handler::decide`: hickory
//!   parse, policy, `Message` answer, encode) on blocked queries, with the
//!   per-school counters attached and without (the cost of statistics);
//! - `fast_path`: the same blocked queries through `dns::fast::answer`
//!   (question parsed in place, answer written as bytes) — question
//!   parsing, policy and answer building together.
//!
//! Run: `cargo bench --bench pipeline`.

use arc_swap::ArcSwap;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edudns::dns::handler::{Step, Transport};
use edudns::dns::{Handler, Upstream};
use edudns::policy::clock::SystemClock;
use edudns::stats::Stats;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

fn handler(with_stats: bool) -> Handler {
    let config = edudns::config::load_embedded().expect("embedded config");
    let upstream = Upstream::new(&config.upstream).expect("resolver");
    let stats = Arc::new(Stats::new());
    let mut snapshot = edudns::snapshot::build(config, 1).expect("snapshot");
    if with_stats {
        snapshot.counters = stats.table_for(&snapshot.config);
    }
    Handler::new(
        Arc::new(ArcSwap::from_pointee(snapshot)),
        upstream,
        Arc::new(SystemClock),
        stats,
    )
}

fn packets() -> Vec<Vec<u8>> {
    [
        "pornhub.com.",
        "www.bet365.com.",
        "x.y.roblox.com.",
        "m.facebook.com.",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        let mut m = Message::new(i as u16, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    })
    .collect()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let packets = packets();
    let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut group = c.benchmark_group("decide_blocked");
    group.throughput(Throughput::Elements(packets.len() as u64));
    for (label, with_stats) in [("without_stats", false), ("with_stats", true)] {
        let handler = handler(with_stats);
        group.bench_function(label, |b| {
            b.iter(|| {
                for packet in &packets {
                    match handler.decide(black_box(packet), src, Transport::Udp) {
                        Step::Reply(reply) => {
                            black_box(reply);
                        }
                        Step::Forward(_) => panic!("blocked names never forward"),
                    }
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("fast_path");
    group.throughput(Throughput::Elements(packets.len() as u64));
    let handler = handler(true);
    let mut out = vec![0u8; edudns::dns::fast::MAX_ANSWER];
    group.bench_function("blocked", |b| {
        b.iter(|| {
            for packet in &packets {
                match edudns::dns::fast::answer(&handler, black_box(packet), src, &mut out) {
                    edudns::dns::fast::Fast::Reply(n) => {
                        black_box(&out[..n]);
                    }
                    other => panic!("blocked names are answered by the fast path: {other:?}"),
                }
            }
        })
    });
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
