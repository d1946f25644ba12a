"""Metrics port: a scraper with a 4 KiB receive buffer reading as fast as it can: is the scrape cut, when, where?
Holds (exit 0) when the body arrives whole, its last chunk included."""
import sys, time, threading, http.client, socket
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host
N = int(sys.argv[1]); RB = int(sys.argv[2])
h = Host("--idle-timeout", "never")
def bulk(keys, nt=4):
    def w(part):
        a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=60)
        for k in part: c.request("POST", "/actors/counter/" + k); c.getresponse().read()
    ts = [threading.Thread(target=w, args=(keys[i::nt],)) for i in range(nt)]; [t.start() for t in ts]; [t.join() for t in ts]
bulk(["A%05d" % i for i in range(N)])
full = len(h.scrape("?detail=full")); print("normal full scrape bytes", full)
host, port = h.metrics.rsplit(":", 1)
s = socket.create_connection((host, int(port))); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RB)
s.sendall(b"GET /metrics?detail=full HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
t0 = time.time(); n = 0; last = t0; gaps = []
while True:
    try: d = s.recv(65536)
    except Exception as e: print("recv error", e); break
    now = time.time(); gaps.append(now - last); last = now
    if not d: break
    n += len(d); tail = d[-10:]
print("rcvbuf=%d: got %d bytes in %.2fs, max gap between reads %.2fs, terminated properly: %s" % (RB, n, time.time() - t0, max(gaps), tail.endswith(b"0\r\n\r\n")))
sm = h.samples(); from ah import pick
print("scrapes_total", pick(sm, "actor_metrics_http_scrapes_total"), "aborted", pick(sm, "actor_metrics_http_scrapes_aborted_total"))
print("log:", [l[:250] for l in h.log().splitlines() if "WARN" in l or "ERROR" in l or "panic" in l][:5])
h.term()
sys.exit(0 if n > 0 and tail.endswith(b"0\r\n\r\n") else 1)
