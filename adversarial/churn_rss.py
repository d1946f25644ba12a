"""Churn: distinct keys created, incremented, destroyed in a loop for S
seconds; sample RSS, descriptors, retained label sets every 5 s. With a short
retention everything must flatten; with the default retention the retained
sets must stay under the cap.

python3 churn_rss.py [seconds] [host flags...]
"""
import sys, threading, time, http.client, itertools
from ah import Host, pick
S = float(sys.argv[1]) if len(sys.argv) > 1 else 40
h = Host(*sys.argv[2:])
stop = threading.Event(); ctr = itertools.count(); done = [0]; fails = [0]
def w():
    a, p = h.app.rsplit(":", 1); c = http.client.HTTPConnection(a, int(p), timeout=30)
    while not stop.is_set():
        k = "c%d" % next(ctr)
        for m, path, b in [("POST", "/actors/counter/" + k, None), ("POST", "/actors/counter/%s/actions/increment" % k, "{}"),
                           ("DELETE", "/actors/counter/" + k, None)]:
            c.request(m, path, body=b); r = c.getresponse(); r.read()
            if r.status != 200: fails[0] += 1
        done[0] += 1
ts = [threading.Thread(target=w) for _ in range(6)]
[t.start() for t in ts]
t0 = time.time()
while time.time() - t0 < S:
    time.sleep(5)
    s = h.samples()
    ret = {dict(l)["state"]: int(v) for l, v in pick(s, "actor_metrics_retained_label_sets").items()}
    print("t=%3ds cycles=%6d fails=%d RSS=%6d KB fds=%4d retained=%s removed=%d" % (
        time.time() - t0, done[0], fails[0], h.rss_kb(), h.fds(), ret,
        int(sum(pick(s, "actor_metrics_series_removed_total").values()))), flush=True)
stop.set(); [t.join() for t in ts]
h.term()
