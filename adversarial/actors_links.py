"""Area 2: weird keys fail; /actors/top?by=error_ratio rows' scrape paths and /actors page
links must each give that actor's full series and no other."""
import sys, time, json, re, html, urllib.parse
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, parse, pick, q
h = Host("--promotion-tick", "1s", "--promotion-window", "5s", "--promotion-min-calls", "5")
keys = ["t~ilde", "~", "~~", "pc%41t", "%", "a&b=c", "&actor_id_gen=1:1", "h#sh", "#", "sp ace", " ", "uni-é✓😀",
        "L" * 300, "L" * 299 + "~", "~" * 200, "é" * 200, "q?x=1", "+plus", "sl/ash", "a\"b", "<b>x</b>", "a\\b", "1:1"]
ids = {}
problems = []
for i, k in enumerate(keys):
    s, d = h.create(k)
    if s != 200: problems.append("create %r: %s %r" % (k, s, d)); continue
    ids[k] = "%s:%s" % (d["actor_id"], d["generation"])
    for j in range(10 + i):
        h.call(k, "fail", {})
    h.call(k, "increment", {})
time.sleep(3)
s, d = h.get_m("/actors/top?by=error_ratio&n=100")
top = json.loads(d); rows = top["rows"]
print("rows", len(rows), "keys", len(keys)); print(json.dumps(rows[0])[:600])
def check(path, k, where):
    s, d = h.get_m(path)
    if s != 200: problems.append("%s %r: %s -> %s %r" % (where, k, path, s, d[:100])); return
    smp = parse(d.decode())
    igs = {dict(l).get("actor_id_gen") for (n, l) in smp}
    if igs != {ids[k]}: problems.append("%s %r: %s -> id_gens %s expected %s" % (where, k, path, igs, ids[k]))
    c = pick(smp, "actor_action_calls_total"); e = pick(smp, "actor_action_errors_total")
    i = keys.index(k)
    if list(c.values()) != [11 + i] or list(e.values()) != [10 + i]:
        problems.append("%s %r: calls %s errors %s expected %d/%d" % (where, k, c, e, 11 + i, 10 + i))
    if not any(n.endswith("_bucket") for (n, l) in smp): problems.append("%s %r: not full detail" % (where, k))
byig = {}
for r in rows:
    ig = r.get("actor_id_gen"); byig[ig] = r
    k = [kk for kk, v in ids.items() if v == ig]
    if not k: problems.append("row for unknown %s" % ig); continue
    check(r["scrape"], k[0], "top")
for k, ig in ids.items():
    if ig not in byig: problems.append("key %r (%s) missing from top" % (k, ig))
s, d = h.get_m("/actors")
page = d.decode()
links = re.findall(r'href="([^"]*)"', page)
print("page links", len(links), links[:3])
seen = set()
for l in links:
    path = html.unescape(l)
    m = re.match(r"/metrics\?actor_id_gen=(.*)$", path)
    if not m: print("other link", l); continue
    ig = urllib.parse.unquote(m.group(1)); seen.add(ig)
    k = [kk for kk, v in ids.items() if v == ig]
    if not k: problems.append("page link unknown %r" % l); continue
    check(path, k[0], "page")
print("page covered", len(seen), "of", len(ids))
# also ?actor_key= with raw key for each
for k in keys:
    check("/metrics?actor_key=" + q(k), k, "by_key")
h.term()
print("PROBLEMS (%d):" % len(problems) if problems else "OK", *[p[:300] for p in problems[:40]], sep="\n")
