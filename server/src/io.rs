//! A connection whose writes may stall for at most a bounded time: a client
//! that stops reading a response is cut, and its connection slot (and the
//! scrape's snapshot) freed, instead of being held for as long as it likes.
//!
//! Progress is what the client acknowledges, not only what a write hands the
//! kernel: with megabytes queued the kernel reports the socket writable only
//! once a good part of the queue has drained, which a client steadily reading
//! through a small receive window may take longer than the timeout to do.
//! Since a client can also acknowledge a trickle for hours, a response must
//! reach it within the longest delivery time too, whatever its pace: the
//! connection is cut once its send queue has held bytes, without emptying,
//! for that long.
//!
//! The close lingers: the socket is kept until the client has acknowledged
//! every byte of the response, under the same bounds. Closed at once, a
//! socket with a response still queued is left to the kernel, which gives it
//! up after its zero-window probes (~100 s) and cuts the tail off a slow
//! reader's response with no error on either side. A connection the client
//! reset ends its close at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How often a lingering close looks whether the client has acknowledged
/// everything: how late, at most, it lets go of a delivered connection.
const LINGER_POLL: Duration = Duration::from_millis(100);

/// A stalled connection is looked at this many times per timeout, so it is
/// cut at most a `1/STALL_LOOKS` of the timeout late.
const STALL_LOOKS: u32 = 8;

/// What a stream can tell of the bytes it was given to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// This many not yet acknowledged by the peer.
    Unacked(usize),
    /// The peer reset the connection: nothing more will be delivered.
    Reset,
    /// It cannot tell: then only writes count as progress, and a close does
    /// not wait.
    Unknown,
}

/// A stream that can tell how its sending stands, and be cut for good.
pub(crate) trait Delivery {
    fn sent(&self) -> Sent;
    /// Makes closing reset the connection, dropping what is queued: a cut
    /// connection closed gracefully would leave its queue to the kernel for
    /// as long as the client answers its probes.
    fn reset_on_close(&self);
    /// The client's address, for the log.
    fn peer(&self) -> Option<std::net::SocketAddr>;
}

impl Delivery for TcpStream {
    fn reset_on_close(&self) {
        if let Err(e) = self.set_zero_linger() {
            tracing::debug!(error = %e, "SO_LINGER 0 on a cut metrics connection failed");
        }
    }

    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer_addr().ok()
    }

    #[cfg(target_os = "linux")]
    fn sent(&self) -> Sent {
        use std::os::fd::AsRawFd;
        /// `TCP_CLOSE` of the kernel's `tcp_states.h`.
        const TCP_CLOSE: u8 = 7;
        let fd = self.as_raw_fd();
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ on a socket) writes one int into
        // `queued`; the descriptor is open while `self` is borrowed.
        if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) } != 0 {
            return Sent::Unknown;
        }
        let queued = usize::try_from(queued).unwrap_or(0);
        // Everything acknowledged (the FIN's byte at most): the common case,
        // one call. A connection closed by both sides is in TCP_CLOSE too;
        // only a closed one with bytes outstanding was reset.
        if queued <= 1 {
            return Sent::Unacked(queued);
        }
        let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, plain
        // integers valid zeroed.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        // SAFETY: zeroed, and written by the kernel if at all.
        if rc == 0 && unsafe { info.assume_init() }.tcpi_state == TCP_CLOSE {
            return Sent::Reset;
        }
        Sent::Unacked(queued)
    }

    #[cfg(not(target_os = "linux"))]
    fn sent(&self) -> Sent {
        Sent::Unknown
    }
}

/// How long a client may take: to acknowledge anything at all, and to take a
/// whole response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) write_timeout: Duration,
    pub(crate) max_delivery: Duration,
}

/// `inner` with deadlines on the client's progress, and a close that waits
/// for the client to acknowledge the response.
pub(crate) struct TimedWrites<T> {
    inner: T,
    bounds: Bounds,
    /// Since when the send queue has held bytes without emptying: set by a
    /// write, cleared by a look that finds it empty.
    busy_since: Option<Instant>,
    /// Armed while a write (or the close) waits on the client; cleared when a
    /// write goes through.
    stalled: Option<Stall>,
    /// The write side is shut: the close lingers.
    shut: bool,
    /// While the close lingers, when to look at the queue next (none before
    /// the first look, which is at once).
    next_look: Option<Pin<Box<Sleep>>>,
    /// Counts the connections cut.
    cut: IntCounter,
}

/// A wait on the client: when to look again at what it has yet to
/// acknowledge, what that was at the last look, and when it last went down.
struct Stall {
    next_look: Pin<Box<Sleep>>,
    unacked: Option<usize>,
    progress_at: Instant,
}

impl<T> TimedWrites<T> {
    pub(crate) fn new(inner: T, bounds: Bounds, cut: IntCounter) -> Self {
        TimedWrites {
            inner,
            bounds,
            busy_since: None,
            stalled: None,
            shut: false,
            next_look: None,
            cut,
        }
    }
}

fn reset() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "the client reset the connection before it had the whole response",
    )
}

impl<T: Delivery> TimedWrites<T> {
    /// Counts and logs a cut; the error that ends the connection.
    fn cut(&self, unacked: Option<usize>, why: String) -> io::Error {
        self.cut.inc();
        self.inner.reset_on_close();
        match self.inner.peer() {
            Some(peer) => {
                tracing::warn!(%peer, unacked, "metrics client cut: {why}; resetting its connection")
            }
            None => tracing::warn!(
                unacked,
                "metrics client cut: {why}; resetting its connection"
            ),
        }
        io::Error::new(io::ErrorKind::TimedOut, why)
    }

    fn too_slow(&self, unacked: Option<usize>) -> io::Error {
        let max = self.bounds.max_delivery;
        self.cut(
            unacked,
            format!("its response did not reach it within {max:?}"),
        )
    }

    /// Before a write: a queue found empty ends the busy time.
    fn before_write(&mut self) {
        if self.busy_since.is_some() && self.inner.sent() == Sent::Unacked(0) {
            self.busy_since = None;
        }
    }

    /// After a write: a write that went through is progress, and starts the
    /// busy time if none runs; one that waits, a look at the client.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => self.check(cx),
            Poll::Ready(Ok(n)) if n > 0 => {
                self.stalled = None;
                let now = Instant::now();
                let since = *self.busy_since.get_or_insert(now);
                if now.duration_since(since) >= self.bounds.max_delivery {
                    return Poll::Ready(Err(self.too_slow(None)));
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// While waiting on the client: `Ready(Err)` once it has acknowledged
    /// nothing for the write timeout, has been taking its response for the
    /// longest delivery time, or has reset the connection.
    fn check<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let Bounds {
            write_timeout,
            max_delivery,
        } = self.bounds;
        let look_every = write_timeout / STALL_LOOKS;
        let stall = self.stalled.get_or_insert_with(|| Stall {
            next_look: Box::pin(tokio::time::sleep(look_every)),
            unacked: match self.inner.sent() {
                Sent::Unacked(n) => Some(n),
                Sent::Reset | Sent::Unknown => None,
            },
            progress_at: Instant::now(),
        });
        loop {
            ready!(stall.next_look.as_mut().poll(cx));
            let now = Instant::now();
            let unacked = match self.inner.sent() {
                Sent::Reset => return Poll::Ready(Err(reset())),
                Sent::Unacked(n) => Some(n),
                Sent::Unknown => None,
            };
            if let (Some(before), Some(unacked)) = (stall.unacked, unacked)
                && unacked < before
            {
                stall.progress_at = now;
            }
            stall.unacked = unacked;
            let busy_since = *self.busy_since.get_or_insert(stall.progress_at);
            if now.duration_since(stall.progress_at) >= write_timeout {
                let why = format!("its acknowledgements did not advance for {write_timeout:?}");
                return Poll::Ready(Err(self.cut(unacked, why)));
            }
            if now.duration_since(busy_since) >= max_delivery {
                return Poll::Ready(Err(self.too_slow(unacked)));
            }
            let next = (now + look_every)
                .min(stall.progress_at + write_timeout)
                .min(busy_since + max_delivery);
            stall.next_look.as_mut().reset(next);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Delivery + Unpin> AsyncWrite for TimedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.before_write();
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.before_write();
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// A flush that goes through is no progress of the client's (hyper
    /// flushes at every wake-up, the close's included).
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.check(cx),
            ready => ready,
        }
    }

    /// Shuts the write side, then stays pending until the client has
    /// acknowledged every byte, under the same bounds as a write.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.shut = true;
            self.stalled = None;
        }
        loop {
            // The FIN takes a byte of sequence space: at 1 every byte of the
            // response has been acknowledged, and the FIN is the kernel's.
            match self.inner.sent() {
                Sent::Unacked(0..=1) | Sent::Unknown => return Poll::Ready(Ok(())),
                Sent::Reset => return Poll::Ready(Err(reset())),
                Sent::Unacked(_) => {}
            }
            if let Poll::Ready(cut) = self.check(cx) {
                return Poll::Ready(cut);
            }
            let next_look = self
                .next_look
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_POLL)));
            ready!(next_look.as_mut().poll(cx));
            next_look.as_mut().reset(Instant::now() + LINGER_POLL);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;

    /// A connected pair where the server can queue far more than the client's
    /// 4 KiB receive buffer takes: a response the client has yet to read.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpSocket::new_v4().unwrap();
        listener.set_send_buffer_size(4 << 20).unwrap();
        listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listener.listen(1).unwrap();
        let client = TcpSocket::new_v4().unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        let (client, accepted) = tokio::join!(
            client.connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        (accepted.unwrap().0, client.unwrap())
    }

    const BOUNDS: Bounds = Bounds {
        write_timeout: Duration::from_secs(30),
        max_delivery: Duration::from_secs(300),
    };

    /// A server side with [`BOUNDS`], its client, and its counter of cuts.
    async fn waiting_on_the_client() -> (TimedWrites<TcpStream>, TcpStream, IntCounter) {
        let (server, client) = pair().await;
        let cut = counter();
        let server = TimedWrites::new(server, BOUNDS, cut.clone());
        (server, client, cut)
    }

    /// The write of `sent`, polled until it waits on the client (the queue
    /// is full); time is paused from then on.
    async fn waiting_write<'a>(
        server: &'a mut TimedWrites<TcpStream>,
        sent: &'a [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + 'a>> {
        let mut write = Box::pin(server.write_all(sent));
        assert!(
            futures::poll!(write.as_mut()).is_pending(),
            "the queue is full"
        );
        tokio::time::pause();
        write
    }

    fn counter() -> IntCounter {
        IntCounter::new("cut", "cut").unwrap()
    }

    fn response() -> Vec<u8> {
        (0..256 * 1024).map(|i: u32| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn close_waits_until_the_client_has_the_whole_response() {
        let (server, mut client) = pair().await;
        let cut = counter();
        let mut server = TimedWrites::new(server, BOUNDS, cut.clone());
        let sent = response();
        server.write_all(&sent).await.unwrap();
        let mut shutdown = std::pin::pin!(server.shutdown());
        assert!(
            futures::poll!(shutdown.as_mut()).is_pending(),
            "closed with {} bytes the client has not read",
            sent.len()
        );
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        shutdown.await.unwrap();
        assert!(
            reader.await.unwrap() == sent,
            "the client got the response whole, then EOF"
        );
        assert_eq!(cut.get(), 0);
    }

    #[tokio::test]
    async fn close_gives_up_when_the_client_reads_nothing_for_the_write_timeout() {
        let (server, mut client) = pair().await;
        let cut = counter();
        let timeout = BOUNDS.write_timeout;
        let mut server = TimedWrites::new(server, BOUNDS, cut.clone());
        server.write_all(&response()).await.unwrap();
        tokio::time::pause();
        let start = tokio::time::Instant::now();
        let err = server.shutdown().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("did not advance for 30s"), "{err}");
        let waited = start.elapsed();
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(1),
            "gave up after {waited:?}"
        );
        assert_eq!(cut.get(), 1);
        // Reset, not closed: the kernel keeps nothing queued for a client
        // that could answer its probes for as long as it likes.
        drop(server);
        let mut got = Vec::new();
        let read = client.read_to_end(&mut got).await;
        assert_eq!(
            read.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::ConnectionReset),
            "read {} bytes and an end, not a reset",
            got.len()
        );
    }

    /// A client reading through a small window, slower than the kernel
    /// reports the socket writable again, is not cut while it reads; once it
    /// stops, it is cut one timeout after its last read (not one timeout
    /// after the write began to wait).
    #[tokio::test]
    async fn a_client_is_cut_one_timeout_after_its_last_read_and_not_while_it_reads() {
        let (mut server, mut client, cut) = waiting_on_the_client().await;
        let sent = vec![7u8; 16 << 20];
        let mut write = waiting_write(&mut server, &sent).await;
        let mut got = vec![0u8; 64 * 1024];
        for window in 0..3 {
            // 64 KiB taken out of a queue of megabytes every 25 s: the
            // socket is not writable again, and the write still waits.
            tokio::time::advance(Duration::from_secs(20)).await;
            client.read_exact(&mut got).await.unwrap();
            tokio::time::advance(Duration::from_secs(5)).await;
            assert!(
                futures::poll!(write.as_mut()).is_pending(),
                "cut in window {window} while the client read"
            );
        }
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(
            futures::poll!(write.as_mut()).is_pending(),
            "cut 29 s after the last read"
        );
        assert_eq!(cut.get(), 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        let err = match futures::poll!(write.as_mut()) {
            Poll::Ready(Err(e)) => e,
            other => panic!("not cut 31 s after the last read: {other:?}"),
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(cut.get(), 1);
    }

    #[tokio::test]
    async fn close_of_a_drained_connection_does_not_wait() {
        let (server, mut client) = pair().await;
        let cut = counter();
        let mut server = TimedWrites::new(server, BOUNDS, cut.clone());
        server.write_all(b"short").await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        while matches!(server.inner.sent(), Sent::Unacked(n) if n > 0) {
            tokio::task::yield_now().await;
        }
        tokio::time::pause();
        let start = tokio::time::Instant::now();
        server.shutdown().await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(cut.get(), 0);
    }

    /// However steadily it reads, a client that takes longer than the
    /// longest delivery time to take a response is cut.
    #[tokio::test]
    async fn a_trickling_client_is_cut_at_the_longest_delivery_time() {
        let (mut server, mut client, cut) = waiting_on_the_client().await;
        let sent = vec![7u8; 16 << 20];
        let mut write = waiting_write(&mut server, &sent).await;
        let start = Instant::now();
        let mut got = vec![0u8; 64 * 1024];
        let err = loop {
            tokio::time::advance(Duration::from_secs(20)).await;
            client.read_exact(&mut got).await.unwrap();
            match futures::poll!(write.as_mut()) {
                Poll::Pending => {}
                Poll::Ready(Err(e)) => break e,
                Poll::Ready(Ok(())) => panic!("16 MiB taken 64 KiB at a time"),
            }
            assert!(start.elapsed() <= BOUNDS.max_delivery, "not cut in time");
        };
        assert!(start.elapsed() >= BOUNDS.max_delivery, "cut too early");
        assert!(
            err.to_string().contains("did not reach it within 300s"),
            "{err}"
        );
        assert_eq!(cut.get(), 1);
    }

    /// The delivery time is that of one response: a kept-alive connection
    /// whose queue empties between responses is never cut for its age.
    #[tokio::test]
    async fn a_connection_that_empties_its_queue_between_responses_is_not_cut() {
        let (mut server, mut client, cut) = waiting_on_the_client().await;
        tokio::time::pause();
        let mut got = [0u8; 1000];
        for _ in 0..10 {
            server.write_all(&[1u8; 1000]).await.unwrap();
            client.read_exact(&mut got).await.unwrap();
            while matches!(server.inner.sent(), Sent::Unacked(n) if n > 0) {
                tokio::task::yield_now().await;
            }
            tokio::time::advance(BOUNDS.max_delivery / 2).await;
        }
        server.write_all(&[1u8; 1000]).await.unwrap();
        assert_eq!(cut.get(), 0);
    }

    /// A client that resets the connection ends the close at once: no slot
    /// is held for a write timeout on its behalf.
    #[tokio::test]
    async fn close_ends_at_once_when_the_client_resets() {
        let (mut server, client, cut) = waiting_on_the_client().await;
        server.write_all(&response()).await.unwrap();
        client.set_zero_linger().unwrap();
        drop(client);
        while server.inner.sent() != Sent::Reset {
            tokio::task::yield_now().await;
        }
        tokio::time::pause();
        let start = Instant::now();
        let err = server.shutdown().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(cut.get(), 0, "a reset is the client's doing, not a cut");
    }
}
