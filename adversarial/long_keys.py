"""Keys past the 256-byte label limit: cut at a char boundary, distinct, still
selectable with ?actor_key= by their whole form and by the cut form shown in
Prometheus; promtool clean (when installed); truncated counter counts."""
import shutil, subprocess, sys
from ah import Host, pick, one
h = Host()
keys = ["é" * 300, "é" * 299 + "x", "a" * 256, "a" * 257, "a" * 258, "✓" * 340 + "ab", "ab" + "😀" * 100]
for k in keys:
    s, b = h.create(k); assert s == 200, (len(k.encode()), s, b)
sm = h.samples()
labels = [dict(l)["actor_key"] for l in pick(sm, "actor_active")]
print("label lengths (bytes):", sorted(len(x.encode()) for x in labels), "distinct:", len(set(labels)))
trunc = one(sm, "actor_metrics_label_values_truncated_total")
print("truncated_total:", trunc)
problems = []
if len(set(labels)) != len(keys): problems.append("%d distinct labels for %d keys" % (len(set(labels)), len(keys)))
if max(len(x.encode()) for x in labels) > 256: problems.append("a label value over 256 bytes")
if trunc != sum(1 for k in keys if len(k.encode()) > 256): problems.append("truncated_total %s" % trunc)
for k in keys:
    whole = h.scrape("?actor_key=" + __import__("urllib.parse").parse.quote(k))
    n_whole = whole.count("actor_active{")
    cut = [x for x in labels if x.startswith(k[:20]) and (x == k or "~" in x)]
    print("key %4d B: ?actor_key=<whole> -> %d actor(s)" % (len(k.encode()), n_whole))
    if n_whole != 1: problems.append("?actor_key=<whole %d B key> selects %d actors" % (len(k.encode()), n_whole))
if shutil.which("promtool"):
    r = subprocess.run(["promtool", "check", "metrics"], input=h.scrape("?detail=full").encode(), capture_output=True)
    print("promtool rc", r.returncode, r.stdout[:200], r.stderr[:200])
    if r.returncode != 0: problems.append("promtool rc %d" % r.returncode)
else:
    print("promtool not installed: its check skipped")
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
