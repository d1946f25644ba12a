"""SIGTERM's WARN 'metrics connections still open after the shutdown grace ... open=N': does N count connections
that already ended? N idle connections opened then closed by the client (ended), 1 stalled lingering one, SIGTERM. args: N"""
import sys; sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from netclients import *
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
h = Host("--idle-timeout", "never", workload="none")
idle = [connect(h) for _ in range(N)]
st = connect(h, rcvbuf=2048); st.sendall(b"GET /metrics?detail=off HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(1)
for s in idle: s.close()
time.sleep(2)
print("host-side metrics sockets now: %d (ss), fds %d" % (len(held_conns(h)), h.fds()))
t0 = time.time(); rc = h.term(30)
print("rc %s after %.2fs" % (rc, time.time() - t0))
for l in warns(h): print("  ", l[:220])
