#!/usr/bin/env python3
"""Compares the exposition of two actor-host binaries, values aside: every
HELP/TYPE line and every series shape (name, label names, enum label values)
at detail off, core and full, on the demo workload.

Usage: compare_exposition.py OLD_BINARY NEW_BINARY (issue 19: the demo's
exposition before and after the restructuring)."""
import subprocess, time, urllib.request, re, sys, socket, tempfile
def port():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
def run(binary):
    mp, ap = port(), port()
    d=tempfile.mkdtemp()
    p=subprocess.Popen([binary,"--data-dir",d,"--metrics-addr",f"127.0.0.1:{mp}","--app-addr",f"127.0.0.1:{ap}","--envoy-key","cmp","--duration","20s","--progress-every","0s"],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    time.sleep(6)
    out={}
    for lvl in ["off","core","full"]:
        for fmt in ["text"]:
            t=urllib.request.urlopen(f"http://127.0.0.1:{mp}/metrics?detail={lvl}").read().decode()
            meta=set(l for l in t.splitlines() if l.startswith("# "))
            series=set()
            for l in t.splitlines():
                if l.startswith("#") or not l: continue
                m=re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s',l)
                name=m.group(1); labels=m.group(2) or ""
                names=tuple(re.findall(r'([a-zA-Z_]+)="',labels))
                # per-actor identity varies with generations: keep label names and enum labels
                enum=tuple(sorted((k,v) for k,v in re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"',labels) if k not in ("actor_id_gen","actor_key","envoy_key")))
                series.add((name,names,enum))
            out[lvl]=(meta,series)
    p.terminate(); p.wait()
    return out
old=run(sys.argv[1]); new=run(sys.argv[2])
for lvl in ["off","core","full"]:
    om,os_=old[lvl]; nm,ns=new[lvl]
    print(f"== {lvl}: HELP/TYPE lines old {len(om)} new {len(nm)}; series shapes old {len(os_)} new {len(ns)}")
    for x in sorted(om-nm): print("  only old meta:",x[:150])
    for x in sorted(nm-om): print("  only new meta:",x[:150])
    for x in sorted(os_-ns)[:15]: print("  only old series:",x)
    for x in sorted(ns-os_)[:15]: print("  only new series:",x)
