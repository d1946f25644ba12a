//! A connection whose writes may stall for at most a bounded time: a client
//! that stops reading a response is cut, and its connection slot (and the
//! scrape's snapshot) freed, instead of being held for as long as it likes.
//!
//! Progress is what the client acknowledges, not only what a write hands the
//! kernel: with megabytes queued the kernel reports the socket writable only
//! once a good part of the queue has drained, which a client steadily reading
//! through a small receive window may take longer than the timeout to do.
//!
//! The close lingers: the socket is kept until the client has acknowledged
//! every byte of the response, under the same bound. Closed at once, a socket
//! with a response still queued is left to the kernel, which gives it up after
//! its zero-window probes (~100 s) and cuts the tail off a slow reader's
//! response with no error on either side.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How often a lingering close looks at what the client has yet to acknowledge.
const LINGER_POLL: Duration = Duration::from_millis(20);

/// A stream that can tell how much of what was written the peer has not yet
/// acknowledged.
pub(crate) trait Unacked {
    /// Bytes written and not yet acknowledged; `None` when it cannot be told
    /// (then only writes count as progress, and a close does not wait).
    fn unacked(&self) -> Option<usize>;
}

impl Unacked for TcpStream {
    #[cfg(target_os = "linux")]
    fn unacked(&self) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ on a socket) writes one int through the
        // pointer, which points at `queued`; the descriptor is open while
        // `self` is borrowed.
        let rc = unsafe { libc::ioctl(self.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        (rc == 0).then(|| usize::try_from(queued).unwrap_or(0))
    }

    #[cfg(not(target_os = "linux"))]
    fn unacked(&self) -> Option<usize> {
        None
    }
}

/// `inner` with a deadline on writes that make no progress, and a close that
/// waits for the client to acknowledge the response.
pub(crate) struct TimedWrites<T> {
    inner: T,
    timeout: Duration,
    /// Armed while a write (or the close) waits on the client; cleared when a
    /// write goes through.
    stalled: Option<Stall>,
    /// Set once the write side is shut: when to look at the queue next
    /// (`None` before the first look, which is at once).
    linger: Option<Option<Pin<Box<Sleep>>>>,
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

/// A stalled connection is looked at this many times per timeout, so it is
/// cut at most a `1/STALL_LOOKS` of the timeout late.
const STALL_LOOKS: u32 = 8;

impl<T> TimedWrites<T> {
    pub(crate) fn new(inner: T, timeout: Duration, cut: IntCounter) -> Self {
        TimedWrites {
            inner,
            timeout,
            stalled: None,
            linger: None,
            cut,
        }
    }
}

impl<T: Unacked> TimedWrites<T> {
    /// While waiting on the client: `Ready(Err)` once it has acknowledged
    /// nothing for the timeout.
    fn check<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let (timeout, inner) = (self.timeout, &self.inner);
        let look_every = timeout / STALL_LOOKS;
        let stall = self.stalled.get_or_insert_with(|| Stall {
            next_look: Box::pin(tokio::time::sleep(look_every)),
            unacked: inner.unacked(),
            progress_at: Instant::now(),
        });
        loop {
            ready!(stall.next_look.as_mut().poll(cx));
            let now = Instant::now();
            let unacked = inner.unacked();
            if let (Some(before), Some(unacked)) = (stall.unacked, unacked)
                && unacked < before
            {
                stall.progress_at = now;
            }
            stall.unacked = unacked;
            if now.duration_since(stall.progress_at) >= timeout {
                self.cut.inc();
                tracing::warn!(
                    timeout = ?timeout,
                    unacked,
                    "a metrics client acknowledged nothing for the write timeout; cutting its connection"
                );
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {timeout:?}"),
                )));
            }
            let next = (now + look_every).min(stall.progress_at + timeout);
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

impl<T: AsyncWrite + Unacked + Unpin> AsyncWrite for TimedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.check(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.check(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.check(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }

    /// Shuts the write side, then stays pending until the client has
    /// acknowledged every byte; an error once it has acknowledged nothing
    /// for the write timeout.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.linger.is_none() {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.linger = Some(None);
            self.stalled = None;
        }
        loop {
            if let Some(Some(next_look)) = self.linger.as_mut() {
                ready!(next_look.as_mut().poll(cx));
            }
            // The FIN takes a byte of sequence space: at 1 every byte of the
            // response has been acknowledged, and the FIN is the kernel's.
            if matches!(self.inner.unacked(), None | Some(0..=1)) {
                return Poll::Ready(Ok(()));
            }
            if let Poll::Ready(cut) = self.check(cx) {
                return Poll::Ready(cut);
            }
            let next = Instant::now() + LINGER_POLL;
            match self.linger.as_mut() {
                Some(Some(next_look)) => next_look.as_mut().reset(next),
                _ => self.linger = Some(Some(Box::pin(tokio::time::sleep_until(next)))),
            }
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

    /// A server side with a 30 s write timeout, its client, and its counter
    /// of cuts.
    async fn waiting_on_the_client() -> (TimedWrites<TcpStream>, TcpStream, IntCounter) {
        let (server, client) = pair().await;
        let cut = counter();
        let server = TimedWrites::new(server, Duration::from_secs(30), cut.clone());
        (server, client, cut)
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
        let mut server = TimedWrites::new(server, Duration::from_secs(30), cut.clone());
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
        let (server, _client) = pair().await;
        let cut = counter();
        let timeout = Duration::from_secs(30);
        let mut server = TimedWrites::new(server, timeout, cut.clone());
        server.write_all(&response()).await.unwrap();
        tokio::time::pause();
        let start = tokio::time::Instant::now();
        let err = server.shutdown().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("read nothing for 30s"), "{err}");
        let waited = start.elapsed();
        assert!(
            waited >= timeout && waited < timeout + Duration::from_secs(1),
            "gave up after {waited:?}"
        );
        assert_eq!(cut.get(), 1);
    }

    /// A client reading through a small window, slower than the kernel
    /// reports the socket writable again, is not cut while it reads; once it
    /// stops, it is cut one timeout after its last read (not one timeout
    /// after the write began to wait).
    #[tokio::test]
    async fn a_client_is_cut_one_timeout_after_its_last_read_and_not_while_it_reads() {
        let (mut server, mut client, cut) = waiting_on_the_client().await;
        let sent = vec![7u8; 16 << 20];
        let mut write = std::pin::pin!(server.write_all(&sent));
        assert!(
            futures::poll!(write.as_mut()).is_pending(),
            "the queue is full"
        );
        tokio::time::pause();
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
        let mut server = TimedWrites::new(server, Duration::from_secs(30), cut.clone());
        server.write_all(b"short").await.unwrap();
        let mut got = [0u8; 5];
        client.read_exact(&mut got).await.unwrap();
        while server.inner.unacked().is_some_and(|n| n > 0) {
            tokio::task::yield_now().await;
        }
        tokio::time::pause();
        let start = tokio::time::Instant::now();
        server.shutdown().await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(cut.get(), 0);
    }
}
