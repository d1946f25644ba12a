"""Flood one actor's inbox (capacity 1024) behind a slow action: the overflow
must be refused (status?), actor_inbox_depth{inbox="action"} must track the
queue and come back to 0; then sleep the actor with a full inbox.
Holds when exactly 1,024 waiting calls answer 200, the rest 503 "inbox is
full", and the depth is back to 0.
"""
import sys, threading, time, collections, http.client
from ah import Host, pick, one
h = Host()
h.create("f")
st = collections.Counter()
def slow(): st[("slow", h.call("f", "slow", {"ms": 3000})[0])] += 1
threading.Thread(target=slow).start()
time.sleep(0.3)
def get():
    try:
        s, b = h.call("f", "get"); st[(s, str(b)[:60] if s != 200 else "")] += 1
    except Exception as e:
        st[type(e).__name__] += 1
ts = [threading.Thread(target=get) for _ in range(1100)]
[t.start() for t in ts]
time.sleep(1.5)
sm = h.samples()
print("inbox_depth{action} during flood:", pick(sm, "actor_inbox_depth", inbox="action"))
print("actor_type_inbox_depth{action}:", pick(sm, "actor_type_inbox_depth", inbox="action", actor_name="counter"))
[t.join() for t in ts]
sm = h.samples()
print("statuses:", st)
after = pick(sm, "actor_inbox_depth", inbox="action")
print("inbox_depth after drain:", after)
h.term()
problems = []
if st[(200, "")] != 1024: problems.append("%d calls 200, want 1024 (the inbox capacity)" % st[(200, "")])
other = {k: n for k, n in st.items() if k != (200, "") and k[0] != "slow" and not (k[0] == 503 and "inbox is full" in k[1])}
if other: problems.append("other answers: %s" % other)
if st[("slow", 200)] != 1: problems.append("the slow call: %s" % {k: n for k, n in st.items() if k[0] == "slow"})
if any(after.values()): problems.append("inbox depth after drain %s" % after)
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
