"""Churn: distinct keys created, incremented, destroyed in a loop for S
seconds; sample RSS, descriptors, retained label sets every 5 s. With a short
retention everything must flatten; with the default retention the retained
sets must stay under the cap. Holds when no call fails, and from the first
sample to the last RSS grows under 16 MB, descriptors under 16, and the
retained label sets stay under the cap.

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
t0 = time.time(); rows = []
while time.time() - t0 < S:
    time.sleep(5)
    s = h.samples()
    ret = {dict(l)["state"]: int(v) for l, v in pick(s, "actor_metrics_retained_label_sets").items()}
    rows.append((h.rss_kb(), h.fds(), sum(ret.values())))
    print("t=%3ds cycles=%6d fails=%d RSS=%6d KB fds=%4d retained=%s removed=%d" % (
        time.time() - t0, done[0], fails[0], h.rss_kb(), h.fds(), ret,
        int(sum(pick(s, "actor_metrics_series_removed_total").values()))), flush=True)
stop.set(); [t.join() for t in ts]
h.term()
problems = []
if fails[0]: problems.append("%d failed calls" % fails[0])
if done[0] == 0: problems.append("no cycle completed")
if rows[-1][0] - rows[0][0] >= 16 * 1024: problems.append("RSS %d -> %d KB" % (rows[0][0], rows[-1][0]))
if rows[-1][1] - rows[0][1] >= 16: problems.append("fds %d -> %d" % (rows[0][1], rows[-1][1]))
if max(r[2] for r in rows) >= 80000: problems.append("retained label sets reached the cap")
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
