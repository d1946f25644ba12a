"""The counter's queue is held in memory, unbounded, and dropped on sleep:
(1) RSS grows by the size of every enqueued message, with no cap;
(2) messages acknowledged {"queued":true} are gone after the actor sleeps
    (explicit sleep, idle timeout, LRU eviction at --max-live-actors, restart).

(F3, until a6da482.) Holds now when: an enqueue past the 1 MiB queue bound is
refused with 503 naming the limits, RSS grows by well under the refused
total, and the acked message is still there after the idle sleep.

python3 queue_unbounded.py [n_messages]
"""
import json, sys, time
from ah import Host
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
h = Host("--idle-timeout", "2s")
h.create("q")
rss0 = h.rss_kb()
refused = None
body = json.dumps({"message": "x" * 1000000})
t = time.time()
acked = 0
for i in range(N):
    s, d = h.app_req("POST", "/actors/counter/q/actions/enqueue", body)
    if s != 200:   # a bounded queue refuses (since a6da482)
        print("enqueue %d refused: %d %s" % (i + 1, s, d.decode().strip()[:160]))
        refused = (s, d.decode())
        break
    acked += 1
rss1 = h.rss_kb()
print("enqueued %d x 1 MB in %.1fs: RSS %d MB -> %d MB" % (acked, time.time() - t, rss0 // 1024, rss1 // 1024))
s = h.samples()
print("actor_queue_depth:", [v for (n, l), v in s.items() if n == "actor_queue_depth"])
# idle timeout: the queue does not keep the actor awake
time.sleep(3.5)
print("after idle timeout, GET /actors:", h.app_req("GET", "/actors")[1].decode().strip())
asleep = h.app_req("GET", "/actors")[1].decode().strip()
s, d = h.call("q", "dequeue")
print("dequeue after idle sleep:", s, str(d)[:100])
print("RSS after sleep: %d MB" % (h.rss_kb() // 1024))
h.term()
problems = []
if refused is None or refused[0] != 503 or "queue is full" not in refused[1]:
    problems.append("no 503 'queue is full' within %d enqueues of 1 MB: %s" % (N, refused and refused[1][:100]))
if rss1 - rss0 > 64 * 1024:
    problems.append("RSS grew %d MB" % ((rss1 - rss0) // 1024))
if acked and (s != 200 or not isinstance(d, dict) or d.get("result", {}).get("message") != "x" * 1000000):
    problems.append("the acked message is not dequeued after the idle sleep: %s %s" % (s, str(d)[:100]))
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
