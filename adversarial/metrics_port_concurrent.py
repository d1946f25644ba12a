"""40 clients x 6 scrapes at once, mixed text/protobuf/gzip, every other one cut
after 20 KB: scrapes_total must grow by the completed ones exactly,
aborted_total by the cut ones, and 503s count in neither. Exits 1 otherwise.

python3 metrics_port_concurrent.py
"""
import sys, time, socket, threading, gzip, http.client
from ah import Host, parse, one
from mass_create import run
from proto_vs_text import PB
h = Host("--per-actor-detail", "full")
run(h.app, 1000, 8, prefix="k")
mh, mp = h.metrics.rsplit(":", 1); mp = int(mp)
def counters():
    s = parse(h.get_m("/metrics?detail=off")[1].decode())
    return one(s, "actor_metrics_http_scrapes_total"), one(s, "actor_metrics_http_scrapes_aborted_total")
hdrs = ["", "Accept-Encoding: gzip\r\n", "Accept: %s\r\n" % PB, "Accept: %s\r\nAccept-Encoding: gzip\r\n" % PB]
res = {"done": 0, "abort": 0, "503": 0, "err": []}; lock = threading.Lock()
def worker(i):
    for j in range(6):
        s = socket.create_connection((mh, mp), timeout=30); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.sendall(("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % hdrs[(i + j) % 4]).encode())
        abort = (i + j) % 2 == 0
        data = b""
        while True:
            x = s.recv(65536)
            if not x: break
            data += x
            if data.startswith(b"HTTP/1.1 503"):
                continue
            if abort and len(data) > 20000: break
        s.close()
        with lock:
            if data.startswith(b"HTTP/1.1 503"): res["503"] += 1
            elif abort: res["abort"] += 1
            elif data.endswith(b"\r\n0\r\n\r\n"): res["done"] += 1
            else: res["err"].append(data[-20:])
c0, a0 = counters()
ts = [threading.Thread(target=worker, args=(i,)) for i in range(40)]; [t.start() for t in ts]; [t.join() for t in ts]
time.sleep(1.5)
c1, a1 = counters()
print(res, "scrapes +%d (want %d), aborted +%d (want %d)" % (c1 - c0 - 1, res["done"], a1 - a0, res["abort"]), "RSS %d MB" % (h.rss_kb() // 1024))
h.kill()
ok = c1 - c0 - 1 == res["done"] and a1 - a0 == res["abort"] and not res["err"] and res["done"] > 0
print("OK" if ok else "PROBLEM")
sys.exit(0 if ok else 1)
