//! Protocol engine throughput: masking, decoding, UTF-8 validation.
//!
//! `cargo bench --bench proto`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tower_ws::__bench::{
    apply_mask, apply_mask_bytewise, decode_all, decode_chunks, masked_frames, masked_mixed_text,
};

fn masking(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for size in [16usize, 1024, 64 * 1024, 1 << 20] {
        let mut buf = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("chunked/{size}"), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), [1, 2, 3, 4]));
        });
        g.bench_function(format!("bytewise/{size}"), |b| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf), [1, 2, 3, 4]));
        });
    }
    g.finish();
}

fn decoding(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, size, count, text) in [
        ("binary-16B", 16usize, 4096usize, false),
        ("text-1KiB", 1024, 256, true),
        ("binary-1MiB", 1 << 20, 1, false),
        ("text-64KiB", 64 << 10, 4, true),
    ] {
        let input = masked_frames(size, count, text);
        g.throughput(Throughput::Bytes((size * count) as u64));
        g.bench_function(name, |b| b.iter(|| decode_all(black_box(&input))));
    }
    // Text with a two-byte character in every 17 bytes, arriving in 4 KiB reads: the
    // incremental UTF-8 path (the wsbench `h` scenario's shape).
    let input = masked_mixed_text(64 << 10, 4);
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("mixed-text-64KiB-in-4KiB-reads", |b| {
        b.iter(|| decode_chunks(black_box(&input), 4096));
    });
    g.finish();
}

criterion_group!(benches, masking, decoding);
criterion_main!(benches);
