"""Area 2: /actors HTML with hostile keys: escaping, every link decodes to its own actor."""
import sys, time, re, html, urllib.parse, json
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
from ah import Host, parse, pick, q
h = Host("--promotion-tick", "1s", "--promotion-window", "5s", "--promotion-min-calls", "5", "--max-promoted", "3")
keys = ['"><script>alert(1)</script>', "</td><a href=x>", "'onmouseover='x", "k&amp;", "k&lt;", "a\u202eb", "\u0000nul" , "tab\tkey", "nl\nkey", "~overflow", "counter~overflow"]
ids = {}
for i, k in enumerate(keys):
    s, d = h.create(k)
    if s != 200: print("create", repr(k), s, d); continue
    ids[k] = "%s:%s" % (d["actor_id"], d["generation"])
    for j in range(20): h.call(k, "fail" if j % (i % 3 + 2) else "increment", {})
time.sleep(3)
page = h.get_m("/actors")[1].decode()
print("script tags:", page.lower().count("<script"), "| raw '<a href=x>':", "<a href=x>" in page)
links = [html.unescape(l) for l in re.findall(r'href="([^"]*)"', page)]
for l in links:
    m = re.match(r"/metrics\?actor_id_gen=(.*)$", l)
    if not m: continue
    ig = urllib.parse.unquote(m.group(1))
    s, d = h.get_m(l); sm = parse(d.decode())
    igs = {dict(x).get("actor_id_gen") for (n, x) in sm}
    k = [kk for kk, v in ids.items() if v == ig]
    print(l, "->", s, igs, "key", repr(k[0]) if k else None, "calls", list(pick(sm, "actor_action_calls_total").values()))
rows = json.loads(h.get_m("/actors/top?by=error_ratio&n=50")[1])["rows"]
print("top rows", len(rows), [(r["actor_key"], r["scrape"]) for r in rows][:12])
for k in ["~overflow", "counter~overflow"]:
    s, d = h.get_m("/metrics?actor_key=" + q(k)); print("by key", repr(k), s, {dict(x).get("actor_key") for (n, x) in parse(d.decode())})
s, d = h.get_m("/metrics?actor_id_gen=overflow"); print("id_gen=overflow", s, d[:200])
s, d = h.get_m("/metrics?promoted=1"); sm = parse(d.decode()); print("promoted=1 id_gens", {dict(x).get("actor_id_gen") for (n, x) in sm})
h.term()
