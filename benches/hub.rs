//! One message to 10,000 sockets: prepared once (the hub) against encoded, and compressed,
//! by each socket.
//!
//! `cargo bench --bench hub --features hub`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tower_ws::__bench::Fanout;
use tower_ws::Utf8Bytes;

const SOCKETS: usize = 10_000;

/// A JSON-like event of about 512 bytes.
fn event() -> Utf8Bytes {
    let mut text = String::from(r#"{"type":"trade","venue":"XNAS","symbol":"ACME","trades":["#);
    let mut i = 0u32;
    while text.len() < 500 {
        text.push_str(&format!(
            r#"{{"px":{}.{:02},"qty":{}}},"#,
            100 + i % 7,
            i * 37 % 100,
            i * 13 % 500
        ));
        i += 1;
    }
    text.push_str("{}]}");
    text.into()
}

fn fanout(c: &mut Criterion) {
    let msg = event();
    let mut g = c.benchmark_group("fanout-10k");
    g.sample_size(20);
    g.throughput(Throughput::Elements(SOCKETS as u64));
    for deflate in [false, true] {
        if deflate && cfg!(not(feature = "deflate")) {
            continue;
        }
        let name = if deflate { "deflate" } else { "plain" };
        let mut f = Fanout::new(SOCKETS, deflate);
        g.bench_function(format!("per-socket/{name}"), |b| {
            b.iter(|| f.per_socket(black_box(&msg)));
        });
        let mut f = Fanout::new(SOCKETS, deflate);
        g.bench_function(format!("prepared/{name}"), |b| {
            b.iter(|| f.prepared(black_box(&msg)));
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
