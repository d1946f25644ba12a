"""--idle-timeout 100ms (the minimum; 1ms until a6da482): actors go to sleep between nearly every call, so calls
race with the idle stop. Every increment must run exactly once (final value ==
200 answers). A 503 "all 3 live actors are busy" (--max-live-actors 3, 5 keys)
is the documented answer when no slot can be freed, not a problem; any other
failure is.
"""
import sys, threading, collections
from ah import Host
h = Host("--idle-timeout", "100ms", "--max-live-actors", "3")  # 1ms until a6da482; 100ms is now the minimum
keys = ["i%d" % i for i in range(5)]
for k in keys: h.create(k)
ok = collections.Counter(); bad = collections.Counter()
def w(n):
    for j in range(150):
        k = keys[(n + j) % len(keys)]
        s, b = h.call(k, "increment")
        if s == 200: ok[k] += 1
        else: bad[(s, str(b)[:80])] += 1
ts = [threading.Thread(target=w, args=(i,)) for i in range(10)]
[t.start() for t in ts]; [t.join() for t in ts]
vals = {k: h.call(k, "get")[1]["result"]["value"] for k in keys}
print("acked:", dict(ok)); print("values:", vals); print("errors:", bad)
print("generations:", {k: h.create(k)[1]["generation"] for k in keys})
other = {k: n for k, n in bad.items() if not (k[0] == 503 and "busy" in k[1])}
held = all(vals[k] == ok[k] for k in keys) and not other
print("OK" if held else "PROBLEM", other or "")
h.term()
sys.exit(0 if held else 1)
