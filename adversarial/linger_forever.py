"""The lingering close never gives up. Clients ask for a `Connection: close` scrape (~50 KB, fits in the
host's send queue) through a 2 KiB receive window and then either keep the socket and never read (mode
`silent`) or reset it (mode `reset`, SO_LINGER 0 close: the client is gone). Batches of 30 (under the 32
scrape permits). Then watch: are the connections cut after the 30 s write timeout with a WARN line? can a
normal client still scrape /metrics?   args: mode n_clients observe_seconds"""
from netclients import *
MODE = sys.argv[1]; NC = int(sys.argv[2]); OBS = float(sys.argv[3])
h = Host("--idle-timeout", "never", workload="none")
print("normal scrape bytes:", len(h.scrape())); fd0 = h.fds(); print("host fds idle", fd0)
keep = []
for b in range(0, NC, 30):
    batch = []
    for i in range(min(30, NC - b)):
        s = connect(h, rcvbuf=2048); s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); batch.append(s)
    time.sleep(1.0)
    if MODE == "reset":
        for s in batch:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"); s.close()
    else:
        keep += batch
print("%d clients done (%s); host fds %d (idle %d)" % (NC, MODE, h.fds(), fd0), flush=True)
def cpu():
    f = open("/proc/%d/stat" % h.pid).read().split(")")[1].split(); return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
t0 = time.time(); c0 = cpu()
while True:
    m = timed_get(h, "/metrics", timeout=8); hz = timed_get(h, "/healthz", timeout=8)
    print("t=%5.1fs host fds=%d (+%d) /metrics %s in %.2fs (%d B), /healthz %s in %.2fs, WARN lines %d, host cpu %.1f%%, RSS %d kB" % (
        time.time() - t0, h.fds(), h.fds() - fd0, m[0], m[1], m[2], hz[0], hz[1], len(warns(h)), 100 * (cpu() - c0) / max(time.time() - t0, 0.01), h.rss_kb()), flush=True)
    if time.time() - t0 > OBS: break
    time.sleep(15)
if keep:
    s = keep[0]; got = b""; s.settimeout(10)
    while True:
        d = s.recv(65536)
        if not d: break
        got += d
    print("after %.0f s, one silent client reads: %d bytes, last chunk present %s" % (time.time() - t0, len(got), got.endswith(b"0\r\n\r\n")))
w = warns(h); print("WARN/ERROR lines: %d" % len(w)); [print("  ", l[:300]) for l in w[:3]]
print("rc", h.term())
