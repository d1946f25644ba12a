"""A real Prometheus (2.42, --enable-feature=native-histograms, so it scrapes
protobuf) and a second one scraping text, both against one host with odd keys.
Every per-actor and aggregate value Prometheus stores must equal the host's
own text scrape; histogram_count of the native per-actor histogram must equal
the call count; scrapes must be up.

python3 prom_ingest.py
"""
import json, os, sys, subprocess, tempfile, time, urllib.parse, urllib.request, random
from ah import Host, pick, one
KEYS = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'cr\rret', 'tab\tt', 'nul\x00byte', 'uni✓é', 'a/b', '{}=,', 'x' * 1000, ' lead', 'trail ']
h = Host("--retention", "10m")
for k in KEYS:
    s, b = h.create(k); assert s == 200, (k, s, b)
    for i in range(random.randint(1, 5)):
        h.call(k, "increment", {"by": 3})
    h.call(k, "fail"); h.call(k, "slow", {"ms": 30})
h.sleep('x' * 1000)
procs = []; ports = {}
for name, feat in [("native", ["--enable-feature=native-histograms"]), ("text", [])]:
    d = tempfile.mkdtemp(prefix="prom-")
    cfg = os.path.join(d, "p.yml")
    open(cfg, "w").write("""global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: ah
    static_configs: [{targets: ['%s']}]
""" % h.metrics)
    port = random.randint(20000, 30000); ports[name] = port
    procs.append(subprocess.Popen(["prometheus", "--config.file", cfg, "--storage.tsdb.path", d + "/data",
                                   "--web.listen-address", "127.0.0.1:%d" % port] + feat,
                                  stdout=subprocess.DEVNULL, stderr=open(d + "/log", "w")))
    print(name, "prometheus log:", d + "/log")
def query(port, qs):
    u = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.parse.quote(qs))
    return json.load(urllib.request.urlopen(u, timeout=10))["data"]["result"]
time.sleep(6)
text = h.scrape()
host = h.samples()
problems = []
for name, port in ports.items():
    up = query(port, "up")
    print(name, "up:", [r["value"][1] for r in up], "samples scraped:", [r["value"][1] for r in query(port, "scrape_samples_scraped")])
    if [r["value"][1] for r in up] != ["1"]:
        problems.append("%s: up %s" % (name, up))
    for fam in ["actor_action_calls_total", "actor_action_errors_total", "actor_active", "actor_sqlite_commits_total"]:
        got = {}
        for r in query(port, fam):
            m = r["metric"]; got[(m["actor_id_gen"], m["actor_key"])] = float(r["value"][1])
        want = {(dict(l)["actor_id_gen"], dict(l)["actor_key"]): v for l, v in pick(host, fam).items()}
        if got != want:
            problems.append("%s %s: prometheus %s\n   host %s" % (name, fam, sorted(got.items())[:20], sorted(want.items())[:20]))
    tc = query(port, 'sum(actor_type_action_calls_total)')
    want = sum(pick(host, "actor_type_action_calls_total").values())
    if not tc or float(tc[0]["value"][1]) != want:
        problems.append("%s: sum(actor_type_action_calls_total) %s != %s" % (name, tc, want))
nat = query(ports["native"], "histogram_count(actor_action_duration_seconds)")
got = {r["metric"]["actor_key"]: float(r["value"][1]) for r in nat}
want = {dict(l)["actor_key"]: v for l, v in pick(host, "actor_action_calls_total").items()}
print("native histogram_count per key matches calls:", got == want, len(got))
if got != want:
    problems.append("native histogram_count %s != calls %s" % (got, want))
q99 = query(ports["native"], 'histogram_quantile(0.5, actor_action_duration_seconds{actor_key="plain"})')
print("p50 of plain (native):", q99)
for p in procs:
    p.terminate(); p.wait()
h.term()
print("PROBLEMS:" if problems else "OK", *problems, sep="\n")
sys.exit(1 if problems else 0)
