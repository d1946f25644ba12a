"""SIGTERM while calls are in flight: are they answered, and how long does the
host take to exit? A `slow` action (up to 600 s is accepted) is not bounded by
--shutdown-timeout nor by the app's 10 s grace.

(F5, until a6da482.) Holds now when: the host exits 0 within a few seconds
of SIGTERM (--shutdown-timeout 1s), the long action in flight is answered (503,
rolled back) instead of holding the exit, and /readyz is 503 while stopping.

python3 sigterm_inflight.py [slow_ms]
"""
import sys, threading, time
from ah import Host
MS = int(sys.argv[1]) if len(sys.argv) > 1 else 40000
h = Host("--shutdown-timeout", "1s")
h.create("s"); h.create("t")
res = {}
def slow(key, ms):
    t = time.time()
    try:
        res[key] = (h.call(key, "slow", {"ms": ms}), round(time.time() - t, 1))
    except Exception as e:
        res[key] = (type(e).__name__, round(time.time() - t, 1))
ths = [threading.Thread(target=slow, args=("s", MS)), threading.Thread(target=slow, args=("t", 2000))]
for t in ths: t.start()
time.sleep(0.5)
t0 = time.time()
h.proc.send_signal(15)
time.sleep(0.5)
try:
    rz = h.get_m("/readyz", timeout=5)
except Exception as e:
    rz = (type(e).__name__, b"")
print("readyz during shutdown:", rz)
try:
    print("new call during shutdown:", h.call("t", "get"))
except Exception as e:
    print("new call during shutdown:", type(e).__name__, e)
h.proc.wait()
took = time.time() - t0
print("exit code %s after %.1f s (slow action %d ms)" % (h.proc.returncode, took, MS))
for t in ths: t.join()
print(res)
print(h.log()[-800:])
problems = []
if h.proc.returncode != 0: problems.append("exit code %s" % h.proc.returncode)
if took > 10: problems.append("exit took %.1f s" % took)
if not isinstance(res["s"][0], tuple) or res["s"][0][0] != 503:
    problems.append("the long action in flight got %s, not a 503" % (res["s"],))
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
