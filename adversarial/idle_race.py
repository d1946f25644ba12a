"""--idle-timeout 100ms (the minimum; 1ms until a6da482): actors go to sleep between nearly every call, so calls
race with the idle stop. Every increment must run exactly once (final value ==
200 answers) and none may fail.
"""
import threading, collections
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
print("OK" if all(vals[k] == ok[k] for k in keys) and not bad else "PROBLEM")
h.term()
