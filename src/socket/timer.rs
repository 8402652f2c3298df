//! The socket's timers: keepalive (ping an idle peer, fail it if it stays silent), the close
//! deadline (how long the peer has to answer our close frame), and, with compression, the
//! release of idle compression state.
//!
//! Keepalive and the close deadline share one sleep: once a close frame is queued, by any path,
//! the timer turns toward the close deadline and keepalive stops. The timers only tell the
//! socket what is due; the socket queues the ping, fails the connection or releases the state.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// With context takeover, compression state idle this long goes back to the pool, leaving only
/// the LZ77 windows with the connection.
#[cfg(feature = "deflate")]
const RELEASE_COMPRESSION_AFTER: Duration = Duration::from_secs(1);

/// What happens when the keepalive or close timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerMode {
    /// Keepalive: check for traffic since the last tick.
    Idle,
    /// Keepalive: a ping is out; the peer must send something before the deadline.
    AwaitingPong,
    /// Closing: the peer must answer (or take our bytes) before the deadline.
    Closing,
}

#[derive(Debug)]
struct Timer {
    sleep: Pin<Box<Sleep>>,
    mode: TimerMode,
}

/// What keepalive asks of the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keepalive {
    /// Nothing is due.
    Quiet,
    /// The peer was silent for an interval: send a ping (the pong deadline now runs).
    Ping,
    /// The peer stayed silent past the pong deadline: fail the connection.
    TimedOut,
}

/// The keepalive or close timer, and the compression release timer.
#[derive(Debug, Default)]
pub(super) struct Timers {
    /// Keepalive, then (once our close frame is queued) the close deadline.
    timer: Option<Timer>,
    /// Any frame since the last keepalive tick.
    seen: bool,
    /// Fires to release idle compression state (context takeover only).
    #[cfg(feature = "deflate")]
    release: Option<Pin<Box<Sleep>>>,
    /// A message went either way since the release timer was armed.
    #[cfg(feature = "deflate")]
    active: bool,
}

impl Timers {
    /// Turns the timer (shared with keepalive, which stops) toward the close deadline, unless
    /// it already runs toward it. Outside a runtime (a close queued by `start_send` from a
    /// plain thread) there is no timer to make: the next poll makes it.
    pub(super) fn start_close(&mut self, close_timeout: Duration) {
        match &mut self.timer {
            Some(t) if t.mode == TimerMode::Closing => {}
            Some(t) => {
                t.mode = TimerMode::Closing;
                t.sleep.as_mut().reset(Instant::now() + close_timeout);
            }
            None if tokio::runtime::Handle::try_current().is_ok() => {
                self.timer = Some(Timer {
                    sleep: Box::pin(tokio::time::sleep(close_timeout)),
                    mode: TimerMode::Closing,
                });
            }
            None => {}
        }
    }

    /// Whether the close deadline (armed with our close frame) has passed; registers for its
    /// wake-up otherwise.
    pub(super) fn close_timed_out(
        &mut self,
        cx: &mut Context<'_>,
        close_timeout: Duration,
    ) -> bool {
        self.start_close(close_timeout);
        match &mut self.timer {
            Some(t) if t.mode == TimerMode::Closing => t.sleep.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }

    /// Drives keepalive with pings every `interval` of silence and `pong_timeout` for the
    /// answer (call only while no close frame is queued).
    pub(super) fn poll_keepalive(
        &mut self,
        cx: &mut Context<'_>,
        interval: Duration,
        pong_timeout: Duration,
    ) -> Keepalive {
        let timer = self.timer.get_or_insert_with(|| Timer {
            sleep: Box::pin(tokio::time::sleep(interval)),
            mode: TimerMode::Idle,
        });
        if timer.mode == TimerMode::Closing || timer.sleep.as_mut().poll(cx).is_pending() {
            return Keepalive::Quiet;
        }
        let now = Instant::now();
        if std::mem::take(&mut self.seen) {
            timer.mode = TimerMode::Idle;
            timer.sleep.as_mut().reset(now + interval);
            // Register the new deadline with this task.
            let _ = timer.sleep.as_mut().poll(cx);
            return Keepalive::Quiet;
        }
        match timer.mode {
            TimerMode::Idle => {
                timer.mode = TimerMode::AwaitingPong;
                timer.sleep.as_mut().reset(now + pong_timeout);
                Keepalive::Ping
            }
            TimerMode::AwaitingPong | TimerMode::Closing => Keepalive::TimedOut,
        }
    }

    /// A frame from the peer: it proves the peer alive, so an outstanding keepalive ping is
    /// answered and the next one is due an interval from now.
    #[inline]
    pub(super) fn on_frame(&mut self, ping_interval: Option<Duration>) {
        self.seen = true;
        if let (Some(t), Some(interval)) = (&mut self.timer, ping_interval) {
            if t.mode == TimerMode::AwaitingPong {
                t.mode = TimerMode::Idle;
                t.sleep.as_mut().reset(Instant::now() + interval);
                self.seen = false;
            }
        }
    }

    /// A message went either way: compression state in use is not idle.
    #[cfg(feature = "deflate")]
    #[inline]
    pub(super) fn mark_active(&mut self) {
        self.active = true;
    }

    /// With context takeover, whether compression state (`holding`) has been idle for
    /// [`RELEASE_COMPRESSION_AFTER`] and should go back to the per-thread pool now; registers
    /// for the timer's wake-up otherwise.
    #[cfg(feature = "deflate")]
    pub(super) fn poll_release(&mut self, cx: &mut Context<'_>, holding: bool) -> bool {
        if !holding {
            self.release = None;
            return false;
        }
        let timer = self
            .release
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(RELEASE_COMPRESSION_AFTER)));
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        if std::mem::take(&mut self.active) {
            timer
                .as_mut()
                .reset(Instant::now() + RELEASE_COMPRESSION_AFTER);
            let _ = timer.as_mut().poll(cx);
            return false;
        }
        self.release = None;
        true
    }
}
