//! Content encoding: gzip when asked, the same text either way.

mod common;

use actor_metrics_server::FnSource;
use common::*;
use hyper::{Method, StatusCode};

#[tokio::test]
async fn gzip_body_equals_the_plain_body() {
    // A fixed source, so both scrapes see the same text.
    let m = small_metrics();
    let text = m.render();
    let (_server, addr) = serve(FnSource(move |out: &mut String| out.push_str(&text))).await;
    let plain = get(addr, "/metrics").await;
    assert_eq!(plain.header("content-encoding"), None);
    let gzipped = ["gzip", "deflate, gzip;q=0.8", "*", "br;q=1.0, gzip;q=0.5"];
    let identity = ["gzip;q=0", "identity", "deflate", "*;q=0", "gzip;q=0, *"];
    for (accept, gzip) in gzipped
        .map(|a| (a, true))
        .into_iter()
        .chain(identity.map(|a| (a, false)))
    {
        let r = send(
            addr,
            Method::GET,
            "/metrics",
            &[("accept-encoding", accept)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("vary"), Some("accept-encoding"));
        if gzip {
            assert_eq!(r.header("content-encoding"), Some("gzip"), "{accept}");
            assert_eq!(gunzip(&r.body), plain.text(), "{accept}");
        } else {
            assert_eq!(r.header("content-encoding"), None, "{accept}");
            assert_eq!(r.text(), plain.text(), "{accept}");
        }
    }
}
