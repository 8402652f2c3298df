//! Randomized robustness: arbitrary bytes never panic the decoder, and the socket delivers every
//! message intact over IO that returns short reads, short writes and `Pending` at random while
//! the application cancels receives.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_ws::__bench::{decode_chunks, masked_frames};
use tower_ws::{Config, Message, Role, WebSocket};

/// xorshift64: deterministic, so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn arbitrary_bytes_never_panic_the_decoder() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid = masked_frames(300, 4, true);
    for _ in 0..3000 {
        let input: Vec<u8> = if rng.below(2) == 0 {
            (0..rng.below(600)).map(|_| rng.next() as u8).collect()
        } else {
            // Valid frames with a few bytes flipped: deeper paths than pure noise.
            let mut v = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            v
        };
        let chunk = 1 + rng.below(64);
        // Whole or in chunks, the outcome is the same.
        assert_eq!(
            decode_chunks(&input, chunk),
            decode_chunks(&input, input.len())
        );
    }
}

/// In-memory IO that misbehaves at random but never loses or reorders bytes.
struct ChaosIo {
    input: Vec<u8>,
    pos: usize,
    output: Vec<u8>,
    rng: Rng,
}

impl AsyncRead for ChaosIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.rng.below(3) == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let left = this.input.len() - this.pos;
        if left == 0 {
            return Poll::Ready(Ok(())); // EOF
        }
        let n = (1 + this.rng.below(37)).min(left).min(buf.remaining());
        buf.put_slice(&this.input[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ChaosIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.rng.below(3) == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = (1 + self.rng.below(23)).min(data.len());
        self.output.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn chaotic_io_and_cancelled_receives_lose_nothing() {
    for seed in 1..=40u64 {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        for i in 0..20 {
            let text = format!("message {i} of seed {seed}: {}", "ü".repeat(rng.below(300)));
            if rng.below(2) == 0 {
                input.extend(support::masked_frame(0x81, text.as_bytes()));
            } else {
                let (a, b) = text.as_bytes().split_at(text.len() / 2);
                input.extend(support::masked_frame(0x01, a));
                input.extend(support::masked_frame(0x89, b"ping"));
                expected.push(Message::Ping(bytes::Bytes::from_static(b"ping")));
                input.extend(support::masked_frame(0x80, b));
            }
            expected.push(Message::text(text));
        }
        input.extend(support::masked_frame(0x88, &1000u16.to_be_bytes()));
        let io = ChaosIo {
            input,
            pos: 0,
            output: Vec::new(),
            rng: Rng(seed),
        };
        let mut ws = WebSocket::from_raw(io, Role::Server, &Config::default());
        let mut got = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(polls < 1_000_000, "seed {seed}: no progress");
            // Poll once and drop the future: a cancelled receive.
            match ws.next().now_or_never() {
                None => tokio::task::yield_now().await,
                Some(Some(Ok(Message::Close(_)))) => {}
                Some(Some(Ok(msg))) => got.push(msg),
                Some(Some(Err(e))) => panic!("seed {seed}: {e:?}"),
                Some(None) => break,
            }
        }
        assert_eq!(got, expected, "seed {seed}");
        // Every ping got its pong and the close its echo, in order, unmasked.
        let out = &ws.get_ref().output;
        let pongs = expected.iter().filter(|m| m.is_ping()).count();
        let mut want = Vec::new();
        for _ in 0..pongs {
            want.extend_from_slice(&[0x8a, 4]);
            want.extend_from_slice(b"ping");
        }
        want.extend_from_slice(&[0x88, 2, 0x03, 0xe8]);
        assert_eq!(out, &want, "seed {seed}");
    }
}
