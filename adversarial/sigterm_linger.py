"""SIGTERM with N silent lingering clients (Connection: close scrape in the send queue, never read) and one
stalled big scrape in the write path. Exit time, exit code, log lines.  args: [n_linger] [actors]"""
from netclients import *
NL = int(sys.argv[1]) if len(sys.argv) > 1 else 100; NA = int(sys.argv[2]) if len(sys.argv) > 2 else 300
h = Host("--idle-timeout", "never", workload="none")
bulk(h, ["T%04d" % i for i in range(NA)])
keep = []
for b in range(0, NL, 30):
    for i in range(min(30, NL - b)):
        s = connect(h, rcvbuf=2048); s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); keep.append(s)
    time.sleep(1)
big = connect(h, rcvbuf=4096); big.sendall(b"GET /metrics?detail=full HTTP/1.1\r\nHost: x\r\n\r\n"); big.recv(10000)
time.sleep(2)
print("host fds", h.fds(), "server sockets", len(held_conns(h)))
t0 = time.time(); h.proc.send_signal(15)
try: rc = h.proc.wait(60)
except subprocess.TimeoutExpired: rc = "still running after 60 s"; h.kill()
print("exit %s after %.1f s" % (rc, time.time() - t0))
for l in h.log().splitlines()[-12:]: print("  ", l[:220])
