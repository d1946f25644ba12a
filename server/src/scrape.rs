//! One scrape of `/metrics`: what the query string asks for, and the streamed
//! body (the headers' part is `negotiate.rs`).
//!
//! The scrape is started (its snapshot taken) on the blocking pool before the
//! headers, since the source says then which format it writes; the body is
//! rendered one chunk at a time, each on the blocking pool, only when
//! hyper asks for the next frame: nothing is rendered ahead of the socket, no
//! store lock is held while the socket is slow, and when the client goes away
//! hyper drops the body, which drops the render. gzip is streamed too: each
//! chunk is compressed as it is rendered.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use actor_metrics::query::{pairs, shown};
use actor_metrics::{DetailLevel, ScrapeRequest};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::self_metrics::SelfMetrics;
use crate::source::Chunks;

/// The error a response body can end with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body of this server.
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// The `/metrics` query string, typed: `detail=off|core|full` (once),
/// `promoted=1|0` (`true`/`false` too; once), `actor_key=K` and
/// `actor_id_gen=G` (each repeatable). Other parameters are
/// ignored. A bad value is an error naming the valid ones; a key or id that is
/// not UTF-8 once percent-decoded is an error too (read lossily, it would
/// select nothing and say nothing). Each pair is decoded once, strictly where
/// the value names an actor.
pub(crate) fn parse_query(query: Option<&str>) -> Result<ScrapeRequest, String> {
    let mut request = ScrapeRequest::default();
    let mut promoted = false;
    for pair in pairs(query.unwrap_or("")) {
        let (name, raw, bytes) = (&*pair.name, pair.raw, pair.bytes);
        let value = |bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|_| {
                format!(
                    "{}={} is not UTF-8 once percent-decoded",
                    shown(name),
                    shown(raw)
                )
            })
        };
        match name {
            "detail" => {
                if request.detail.is_some() {
                    return Err("detail is given more than once".into());
                }
                // The level's own error names the valid ones; a long value
                // is shown cut (and so is no level).
                let level: DetailLevel = shown(&String::from_utf8_lossy(&bytes))
                    .parse()
                    .map_err(|e| format!("{e}"))?;
                request.detail = Some(level);
            }
            "promoted" => {
                if std::mem::replace(&mut promoted, true) {
                    return Err("promoted is given more than once".into());
                }
                request.promoted = match &bytes[..] {
                    b"1" | b"true" => true,
                    b"0" | b"false" => false,
                    _ => {
                        return Err(format!(
                            "promoted={} is not a flag; valid values: 1, true, 0, false",
                            shown(raw)
                        ));
                    }
                };
            }
            "actor_key" => request.actor_keys.push(value(bytes)?),
            "actor_id_gen" => request.actor_id_gens.push(value(bytes)?),
            _ => {}
        }
    }
    Ok(request)
}

/// Compressed bytes gathered before a gzip body sends a frame.
const GZIP_FRAME: usize = 64 * 1024;

/// One scrape being rendered: the source's chunks, the gzip stream, and what
/// the self-metrics need. Dropped before the end, it counts as aborted.
pub(crate) struct Render {
    chunks: Chunks,
    gzip: Option<flate2::write::GzEncoder<Vec<u8>>>,
    bytes: u64,
    started: Instant,
    finished: bool,
    selfm: Arc<SelfMetrics>,
    /// This scrape's place among those in flight.
    _permit: OwnedSemaphorePermit,
}

impl Render {
    /// The render of `chunks`, a scrape the source has started.
    pub(crate) fn new(
        chunks: Chunks,
        gzip: bool,
        started: Instant,
        selfm: Arc<SelfMetrics>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Render {
            chunks,
            gzip: gzip
                .then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())),
            bytes: 0,
            started,
            finished: false,
            selfm,
            _permit: permit,
        }
    }

    /// The next piece of the body, or `None` when the scrape is complete. Runs
    /// on the blocking pool (it renders and compresses).
    fn step(&mut self) -> Option<Vec<u8>> {
        // A gzip scrape's last piece is the stream's tail, sent after `finish`;
        // the body then asks once more, and that must not count it again.
        if self.finished {
            return None;
        }
        loop {
            let Some(chunk) = self.chunks.next() else {
                return self.finish();
            };
            self.bytes += chunk.len() as u64;
            let Some(gz) = &mut self.gzip else {
                return Some(chunk);
            };
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(&chunk);
            // Text compresses ~12 to 1: send a frame once a chunk's worth of
            // compressed bytes is ready, not a few KB per rendered chunk, so a
            // scrape costs a tenth of the blocking-pool trips and writes.
            if gz.get_ref().len() >= GZIP_FRAME {
                return Some(std::mem::take(gz.get_mut()));
            }
        }
    }

    fn finish(&mut self) -> Option<Vec<u8>> {
        self.finished = true;
        self.selfm.scrapes.inc();
        self.selfm.bytes.inc_by(self.bytes);
        self.selfm
            .duration
            .observe(self.started.elapsed().as_secs_f64());
        // Writing into a Vec cannot fail.
        let tail = self.gzip.take().and_then(|gz| gz.finish().ok());
        tail.filter(|t| !t.is_empty())
    }
}

impl Drop for Render {
    fn drop(&mut self) {
        if !self.finished {
            self.selfm.aborted.inc();
        }
    }
}

/// The streamed body of one scrape. `renders` bounds the chunks rendered at
/// once across all scrapes (one per core), so scrapes never starve the host.
pub(crate) fn body(render: Render, renders: Arc<Semaphore>) -> Body {
    enum State {
        Rendering(Box<Render>),
        Done,
    }
    let stream = futures::stream::unfold(State::Rendering(Box::new(render)), move |state| {
        let renders = renders.clone();
        async move {
            let State::Rendering(mut render) = state else {
                return None;
            };
            // Closed only if the server is gone; then the body ends as cut.
            let Ok(permit) = renders.acquire_owned().await else {
                let e: BoxError = "the metrics server is shutting down".into();
                return Some((Err(e), State::Done));
            };
            let stepped = tokio::task::spawn_blocking(move || {
                let piece = render.step();
                drop(permit);
                (render, piece)
            })
            .await;
            match stepped {
                Ok((render, Some(piece))) => Some((
                    Ok(Frame::data(Bytes::from(piece))),
                    State::Rendering(render),
                )),
                Ok((_, None)) => None,
                // A render that panicked ends the body with an error, so the
                // client sees a cut response, never a short but valid scrape.
                Err(e) => {
                    tracing::error!(error = %e, "rendering the scrape failed");
                    let e: BoxError = Box::new(e);
                    Some((Err(e), State::Done))
                }
            }
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

/// A whole body in one piece.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings() {
        assert_eq!(parse_query(None), Ok(ScrapeRequest::default()));
        assert_eq!(parse_query(Some("debug=1&")), Ok(ScrapeRequest::default()));
        let r = parse_query(Some(
            "detail=full&actor_key=a%2Fb&actor_key=c+d&actor_id_gen=7%3A2",
        ))
        .unwrap();
        assert_eq!(r.detail, Some(DetailLevel::Full));
        assert_eq!(r.actor_keys, ["a/b", "c d"]);
        assert_eq!(r.actor_id_gens, ["7:2"]);
        assert_eq!(
            parse_query(Some("detail=everything")),
            Err("unknown detail level \"everything\"; valid levels: off, core, full".into())
        );
        assert!(parse_query(Some("detail=core&detail=full")).is_err());
        // Not UTF-8 once decoded: an error, not a key that selects nothing.
        assert_eq!(
            parse_query(Some("actor_key=ok&actor_key=%FF")),
            Err("actor_key=%FF is not UTF-8 once percent-decoded".into())
        );
        assert!(parse_query(Some("actor_id_gen=1%3A%C3")).is_err());
        // A real U+FFFD, and other parameters' bytes, are fine.
        let r = parse_query(Some("actor_key=%EF%BF%BD&other=%FF")).unwrap();
        assert_eq!(r.actor_keys, ["\u{FFFD}"]);
        // The promoted actors: a flag, once.
        for (query, promoted) in [
            ("promoted=1", true),
            ("promoted=true", true),
            ("promoted=0", false),
        ] {
            let r = parse_query(Some(query)).unwrap();
            assert_eq!(r.promoted, promoted, "{query}");
            assert_eq!(r.selects_actors(), promoted, "{query}");
        }
        assert_eq!(
            parse_query(Some("promoted=yes")),
            Err("promoted=yes is not a flag; valid values: 1, true, 0, false".into())
        );
        assert!(parse_query(Some("promoted=1&promoted=1")).is_err());
        // A huge bad value is not echoed whole.
        for name in ["promoted", "detail", "actor_key"] {
            let value = if name == "actor_key" { "%FF" } else { "9" }.repeat(10_000);
            let e = parse_query(Some(&format!("{name}={value}"))).unwrap_err();
            let bytes = if name == "actor_key" { 30_000 } else { 10_000 };
            assert!(
                e.len() < 200 && e.contains(&format!("({bytes} bytes)")),
                "{e}"
            );
        }
    }
}
