//! A scrape is streamed: its memory does not grow with its size, and a client
//! that hangs up mid-body stops the rendering.
//!
//! Memory is measured exactly, with a counting global allocator: the peak of
//! live heap bytes during a scrape, over the live bytes before it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actor_metrics::{ScrapeRequest, labels::LabelEnum};
use actor_metrics_server::{Chunks, MetricsSource, Scraped};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Reads a whole response off a raw socket into a fixed buffer, counting bytes
/// (the client itself allocates nothing per byte).
async fn read_all_counting(addr: std::net::SocketAddr, request: &[u8]) -> usize {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_adds_at_most_16_mib_whatever_its_size() {
    let m = full_metrics();
    let ty = m.actor_type("counter");
    let inc = ty.action("increment");
    let actors: Vec<_> = (0..20_000)
        .map(|i| {
            let a = ty.register(&i.to_string(), Some(1), &format!("user-{i}"));
            a.record_action(&inc, Duration::from_millis(2), true);
            for &k in actor_metrics::labels::StatementKind::ALL {
                a.sqlite_statement_duration_seconds(k).observe(0.001);
            }
            a
        })
        .collect();
    let (_server, addr) = serve(m.clone()).await;
    // Warm up: one scrape builds the actors' cached label blocks (kept, not per scrape).
    read_all_counting(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    for (request, what) in [
        (&b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..], "identity"),
        (
            &b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"[..],
            "gzip",
        ),
    ] {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let got = read_all_counting(addr, request).await;
        let added = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        eprintln!("{what}: {} MiB on the wire, peak +{} KiB", got / MIB, added / 1024);
        if what == "identity" {
            assert!(got > 64 * MIB, "the scrape is large: {got} bytes");
        }
        assert!(added <= 16 * MIB, "{what}: a scrape added {added} bytes");
    }
    drop(actors);
}

/// A source of `chunks` chunks of 64 KiB that counts how many it produced.
struct Endless {
    produced: Arc<AtomicUsize>,
    registry: prometheus::Registry,
}

impl MetricsSource for Endless {
    fn scrape(self: Arc<Self>, _: &ScrapeRequest) -> Scraped {
        let produced = self.produced.clone();
        let chunks: Chunks = Box::new((0..10_000).map(move |_| {
            produced.fetch_add(1, Ordering::SeqCst);
            let mut chunk = Vec::with_capacity(64 * 1024);
            while chunk.len() < 64 * 1024 {
                chunk.extend_from_slice(b"# filler line of a scrape that never ends\n");
            }
            chunk
        }));
        Scraped {
            format: actor_metrics::Format::Text,
            chunks,
        }
    }
    fn registry(&self) -> Option<prometheus::Registry> {
        Some(self.registry.clone())
    }
}

fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .map_or(0.0, |f| f.get_metric()[0].get_counter().get_value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_stops_the_render() {
    let produced = Arc::new(AtomicUsize::new(0));
    let registry = prometheus::Registry::new();
    let (_server, addr) = serve(Endless {
        produced: produced.clone(),
        registry: registry.clone(),
    })
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = 0;
    while read < MIB {
        read += s.read(&mut buf).await.unwrap();
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&registry, "actor_metrics_http_scrapes_aborted_total") < 1.0 {
        assert!(Instant::now() < deadline, "the render was not dropped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let n = produced.load(Ordering::SeqCst);
    // What the socket buffers held, not the 10,000 chunks (625 MiB) of the body.
    assert!(n < 200, "{n} chunks rendered after a 1 MiB read");
    assert_eq!(counter(&registry, "actor_metrics_http_scrapes_total"), 0.0);
    assert_eq!(
        produced.load(Ordering::SeqCst),
        n,
        "nothing renders after the drop"
    );
}
