"""Shared helpers of the metrics-port client scripts (stop 33): raw sockets with a chosen receive buffer,
timed GETs, the host's metrics-port sockets as `ss` sees them, its WARN lines."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import socket, time, subprocess, threading, http.client
from ah import Host, parse, pick
def bulk(h, keys, nt=4):
    def w(part):
        a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=60)
        for k in part: c.request("POST", "/actors/counter/" + k); c.getresponse().read()
    ts = [threading.Thread(target=w, args=(keys[i::nt],)) for i in range(nt)]; [t.start() for t in ts]; [t.join() for t in ts]
def held_conns(h):
    """server-side sockets of the metrics port, with state and send-q"""
    port = h.metrics.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-tnpi", "state", "all", "sport", "= :" + port], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if "pid=%d," % h.pid in l and not l.startswith("LISTEN")]
def timed_get(h, path, timeout=60):
    t0 = time.time()
    try:
        s, d = h.get_m(path, timeout=timeout); return s, time.time() - t0, len(d)
    except Exception as e:
        return repr(e), time.time() - t0, 0
def connect(h, rcvbuf=None):
    host, port = h.metrics.rsplit(":", 1)
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, int(port))); return s
def warns(h):
    return [l for l in h.log().splitlines() if " WARN " in l or " ERROR " in l or "panic" in l]
