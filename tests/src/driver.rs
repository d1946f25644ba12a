//! Load on one actor from the test: a thread calling actions on a `counter`
//! actor at a steady pace, as a misbehaving client or a bad actor's traffic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Host;

/// Calls `(action, body)` pairs in turn on the counter actor `key` every
/// `every` until dropped. Answers are not checked: errors are the point of
/// `fail`, and a full queue is the point of `enqueue`.
pub struct Driver {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Driver {
    /// Starts the thread.
    pub fn start(
        app: SocketAddr,
        key: &str,
        calls: &'static [(&'static str, &'static str)],
        every: Duration,
    ) -> Driver {
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicU32::new(0));
        let url = format!("http://{app}/actors/counter/{key}/actions/");
        let thread = {
            let (stop, made) = (stop.clone(), made.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Acquire) {
                    let (action, body) = calls[n % calls.len()];
                    let _ = ureq::post(&format!("{url}{action}"))
                        .set("content-type", "application/json")
                        .send_string(body);
                    n += 1;
                    made.fetch_add(1, Ordering::Relaxed);
                    // Pacing a load generator, not waiting for a condition.
                    std::thread::sleep(every);
                }
            })
        };
        Driver {
            stop,
            calls: made,
            thread: Some(thread),
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Creates the counter actor `key` (or finds it created), failing the test
/// on any other answer.
pub fn create_counter(host: &Host, key: &str) {
    let (status, body) = host.post(&format!("/actors/counter/{key}"), "{}");
    assert!(
        status == 200 || status == 201,
        "create {key}: {status} {body}"
    );
}
