"""Demo running: OpenMetrics scrape, exemplars on action duration buckets, reference parser."""
from netclients import *
from prometheus_client.openmetrics.parser import text_string_to_metric_families
h = Host(workload="demo")
time.sleep(3)
for q in ["", "?detail=full", "?detail=off", "?promoted=1"]:
    s, d = h.get_m("/metrics" + q, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    txt = d.decode()
    ex = [l for l in txt.splitlines() if " # {" in l]
    exa = [l for l in ex if l.startswith("actor_type_action_duration_seconds")]
    try:
        fams = list(text_string_to_metric_families(txt)); ok = "parsed %d families" % len(fams)
        nex = sum(1 for f in fams for smp in f.samples if smp.exemplar)
        ok += ", %d exemplars" % nex
    except Exception as e:
        ok = "PARSE ERROR %r" % e
    print(q or "(default)", s, len(d), "exemplar lines", len(ex), "on actor_type_action_duration", len(exa), ok, "eof", txt.endswith("# EOF\n"))
    if exa: print("  e.g.", exa[0][:250])
    print("  names with exemplars:", sorted(set(l.split("{")[0].split(" ")[0] for l in ex)))
print("warns", warns(h)[:5])
print("rc", h.term())
