"""Keep-alive idle: after one /healthz on keep-alive, when does the server close? And a connection that sends nothing?"""
import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from netclients import *
h = Host(workload="none")
def when_closed(s, limit=20):
    t0 = time.time(); s.settimeout(limit)
    try:
        while True:
            d = s.recv(65536)
            if not d: return "EOF after %.2fs" % (time.time() - t0)
    except Exception as e: return "%r after %.2fs" % (e, time.time() - t0)
s = connect(h); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); time.sleep(0.3); print("resp", s.recv(4096)[:40])
print("idle keep-alive after /healthz:", when_closed(s))
s = connect(h); print("no bytes at all:", when_closed(s))
s = connect(h); s.shutdown(socket.SHUT_WR); print("immediate SHUT_WR:", when_closed(s))
s = connect(h); s.sendall(b"GET /metr"); s.shutdown(socket.SHUT_WR); print("partial + SHUT_WR:", when_closed(s))
s = connect(h); s.sendall(b"GET /metr"); print("partial, open:", when_closed(s))
print("rc", h.term())
