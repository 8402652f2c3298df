//! Protocol engine throughput: masking, decoding, UTF-8 validation.
//!
//! `cargo bench --bench proto`

#![allow(missing_docs)] // criterion_group! generates an undocumented function.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tower_ws::__bench::{
    apply_mask, apply_mask_bytewise, decode_all, decode_chunks, masked_frames, masked_mixed,
    masked_mixed_text, mixed_text,
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

/// The same bytes decoded as text and as binary messages, 256 KiB of messages per
/// iteration: what the UTF-8 check adds to a message (the bar: text at most 1.3x binary).
/// ASCII (as most JSON is) and mixed text (one two-byte `é` in every 17 bytes, so no 64-byte
/// block is ASCII: the SIMD check's slow path, and wsbench's `h`); whole messages at once,
/// and arriving in 4 KiB reads.
fn text_vs_binary(c: &mut Criterion) {
    let mut g = c.benchmark_group("text-vs-binary");
    for (label, size) in [
        ("1KiB", 1usize << 10),
        ("16KiB", 16 << 10),
        ("64KiB", 64 << 10),
    ] {
        let count = (256 << 10) / size;
        for (kind, input) in [
            ("binary", masked_frames(size, count, false)),
            ("ascii-text", masked_frames(size, count, true)),
            ("mixed-binary", masked_mixed(size, count, false)),
            ("mixed-text", masked_mixed(size, count, true)),
        ] {
            g.throughput(Throughput::Bytes(input.len() as u64));
            g.bench_function(format!("{kind}-{label}"), |b| {
                b.iter(|| decode_all(black_box(&input)));
            });
            g.bench_function(format!("{kind}-{label}-in-4KiB-reads"), |b| {
                b.iter(|| decode_chunks(black_box(&input), 4096));
            });
        }
    }
    g.finish();
}

/// The ways a checked payload can become text, on 64 KiB of the mixed text: the SIMD check
/// alone (what the decoder does, handing out the payload's own bytes), the check and a copy
/// into a `String` (what it did before), and the check followed by std's `from_utf8` (what a
/// copy-free hand-off costs without `unsafe`).
fn text_handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("text-handoff");
    let payload = mixed_text(64 << 10);
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("simd-check", |b| {
        b.iter(|| simdutf8::basic::from_utf8(black_box(&payload)).is_ok());
    });
    g.bench_function("simd-check+copy", |b| {
        b.iter(|| {
            let text = simdutf8::basic::from_utf8(black_box(&payload)).unwrap();
            let mut s = String::with_capacity(text.len());
            s.push_str(text);
            s
        });
    });
    g.bench_function("simd-check+std-check", |b| {
        b.iter(|| {
            simdutf8::basic::from_utf8(black_box(&payload)).unwrap();
            std::str::from_utf8(black_box(&payload)).is_ok()
        });
    });
    g.finish();
}

criterion_group!(benches, masking, decoding, text_vs_binary, text_handoff);
criterion_main!(benches);
