"""Flood one actor's inbox (capacity 1024) behind a slow action: the overflow
must be refused (status?), actor_inbox_depth{inbox="action"} must track the
queue and come back to 0; then sleep the actor with a full inbox.
"""
import threading, time, collections, http.client
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
print("inbox_depth after drain:", pick(sm, "actor_inbox_depth", inbox="action"))
h.term()
