"""The documented VictoriaMetrics pipeline (vmagent scrapes the text format ->
VictoriaMetrics) against a host with odd but valid actor keys: is every
per-actor series stored with the right key and value, and is the scrape up?

python3 vm_ingest.py
"""
import json, os, sys, random, subprocess, tempfile, time, urllib.parse, urllib.request
from ah import Host, pick
KEYS = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'cr\rret', 'tab\tt', 'nul\x00byte', 'uni✓é', 'a/b', '{}=,', ' lead', 'trail ', 'hash#x', 'x' * 600]
h = Host()
for i, k in enumerate(KEYS):
    s, b = h.create(k); assert s == 200
    h.call(k, "increment", {"by": 1}); h.call(k, "get")
d = tempfile.mkdtemp(prefix="vm-")
vmp, agp = random.randint(30000, 35000), random.randint(35001, 40000)
open(d + "/scrape.yml", "w").write("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: ah\n    static_configs: [{targets: ['%s']}]\n" % h.metrics)
vm = subprocess.Popen(["victoria-metrics", "-storageDataPath", d + "/vm", "-httpListenAddr", "127.0.0.1:%d" % vmp, "-search.latencyOffset", "0s"],
                      stdout=open(d + "/vm.log", "w"), stderr=subprocess.STDOUT)
ag = subprocess.Popen(["vmagent", "-promscrape.config", d + "/scrape.yml", "-remoteWrite.url", "http://127.0.0.1:%d/api/v1/write" % vmp,
                       "-remoteWrite.tmpDataPath", d + "/ag", "-httpListenAddr", "127.0.0.1:%d" % agp],
                      stdout=open(d + "/ag.log", "w"), stderr=subprocess.STDOUT)
def q(expr):
    urllib.request.urlopen("http://127.0.0.1:%d/internal/force_flush" % vmp, timeout=5).read()
    u = "http://127.0.0.1:%d/api/v1/query?query=%s" % (vmp, urllib.parse.quote(expr))
    return json.load(urllib.request.urlopen(u, timeout=10))["data"]["result"]
ok = False
try:
    time.sleep(12)
    host = h.samples()
    want = {(dict(l)["actor_key"]): v for l, v in pick(host, "actor_action_calls_total").items()}
    got = {}
    for r in q("actor_action_calls_total"):
        got[r["metric"].get("actor_key")] = float(r["value"][1])
    print("up:", [r["value"][1] for r in q('up{job="ah"}')], "scraped samples:", [r["value"][1] for r in q('scrape_samples_scraped{job="ah"}')], "host text samples:", len(host))
    for k in sorted(set(want) | set(got), key=repr):
        if want.get(k) != got.get(k):
            print("  MISMATCH key %r: host %s, VictoriaMetrics %s" % (k, want.get(k), got.get(k)))
    print("stored keys:", sorted(map(repr, got))[:20])
    print("OK" if want == got else "PROBLEM")
    ok = want == got and all(r["value"][1] == "1" for r in q('up{job="ah"}'))
    errs = [l for l in open(d + "/ag.log") if "error" in l.lower() or "cannot" in l.lower()]
    print("vmagent errors:", errs[:3])
finally:
    ag.terminate(); vm.terminate(); ag.wait(); vm.wait(); h.term()
sys.exit(0 if ok else 1)
