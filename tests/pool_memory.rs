//! The per-thread read-buffer pool never holds more than its budget (8 MiB per thread),
//! measured with a counting allocator: a test binary of its own, one test, so nothing else
//! allocates meanwhile.
//!
//! Before, the pool checked `BytesMut::capacity()`, which is only what remains after a message
//! is split off the front, not the allocation behind it: sixteen sockets that each received one
//! 15 MiB frame left about 260 MiB allocated after every socket was dropped.

mod support;

use std::alloc::System;
use std::time::Duration;

use futures_util::StreamExt;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::io::AsyncWriteExt;
use tower_ws::{Config, Role, WebSocket};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The pool's stated budget per thread.
const BUDGET: usize = 8 << 20;

fn live(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

#[test]
fn large_frames_leave_no_more_than_the_pool_budget_behind() {
    // One thread: every socket lends its buffer to the same pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let region = Region::new(GLOBAL);
        let frame = support::masked_frame(0x82, &vec![0xab; 15 << 20]);
        let mut sockets = Vec::new();
        for _ in 0..16 {
            let (a, mut peer) = tokio::io::duplex(1 << 20);
            let mut ws = WebSocket::from_raw(a, Role::Server, &Config::default());
            let (got, _) = tokio::join!(ws.next(), async {
                peer.write_all(&frame).await.unwrap();
            });
            let msg = got.unwrap().unwrap();
            assert_eq!(msg.into_data().len(), 15 << 20);
            // The socket waits for more: its read buffer goes back to the pool.
            assert!(
                tokio::time::timeout(Duration::from_millis(1), ws.next())
                    .await
                    .is_err()
            );
            sockets.push((ws, peer));
        }
        drop(frame);
        drop(sockets);
        let left = live(&region);
        eprintln!("live after dropping every socket: {} KiB", left / 1024);
        assert!(
            left <= (BUDGET + (1 << 20)) as isize,
            "{} MiB still allocated; the pool's budget is {} MiB",
            left >> 20,
            BUDGET >> 20
        );
    });
}
