#!/usr/bin/env python3
"""Run every finding/check script in this folder against one actor-host
binary and say, per finding, whether it held.

    python3 adversarial/run_all.py [-v] [NAME ...]

ACTOR_HOST=/path/to/actor-host picks the binary (default: target/release/
actor-host under the repo root; build it with `cargo build --release -p
actor-host`). NAME runs only the scripts whose name contains it; -v prints
each script's output, not only that of the ones that failed.

Each script decides for itself: exit 0 = the finding's check held, exit 1 =
it failed (its printed evidence says how). A script that needs a tool
(Prometheus, VictoriaMetrics) or root (a tmpfs) is skipped, with the reason,
when that is missing. Durations are the short ones the checks still mean
something at; each script runs under a timeout.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.environ.get("ACTOR_HOST", os.path.join(ROOT, "target/release/actor-host"))

# (script, args, timeout seconds, needs: tools on PATH, or "root")
CHECKS = [
    ("catalogue_restore.py", [], 60, []),
    ("broken_actor_storm.py", ["5"], 60, []),
    ("queue_unbounded.py", [], 60, []),
    ("slow_reader.py", ["400", "260", "5"], 90, []),
    ("sigterm_inflight.py", [], 60, []),
    ("external_lock_stall.py", [], 60, []),
    ("stdout_epipe.sh", [], 30, []),
    ("idle_generations.py", ["100ms", "50", "0.15"], 60, []),
    ("durability_kill.py", ["3", "KILL"], 90, []),
    ("durability_kill.py", ["2", "TERM"], 90, []),
    ("lifecycle_race.py", ["8"], 90, []),
    ("exact_metrics.py", [], 60, []),
    ("proto_vs_text.py", [], 60, []),
    ("prom_ingest.py", [], 90, ["prometheus"]),
    ("vm_ingest.py", [], 90, ["victoria-metrics", "vmagent"]),
    ("flipflop.py", ["-", "10"], 60, []),
    ("scrape_memory.py", ["5000"], 180, []),
    ("churn_rss.py", ["15", "--retention", "2s", "--sweep-interval", "1s"], 60, []),
    ("overflow.py", [], 60, []),
    ("inbox_flood.py", [], 60, []),
    ("idle_race.py", [], 90, []),
    ("disk_full.py", [], 120, ["root"]),
    ("fd_exhaust.py", [], 90, []),
    ("http_raw.py", [], 120, []),
    ("long_keys.py", [], 60, []),
    ("nul_keys.py", [], 60, []),
    ("metrics_port_attack.py", ["1000"], 240, []),
    ("metrics_port_attack2.py", ["1000", "skip-write-timeout"], 180, []),
    ("metrics_port_concurrent.py", [], 120, []),
    ("probe_starvation.py", ["300", "10"], 90, []),
    ("scrape_small_window.py", ["300", "4096"], 240, []),
    ("scrape_stop_reading.py", ["300"], 120, []),
]


def missing(needs):
    for n in needs:
        if n == "root":
            if os.geteuid() != 0:
                return "needs root for tmpfs"
        elif shutil.which(n) is None:
            return "needs %s" % n
    return None


def main():
    verbose = "-v" in sys.argv[1:]
    only = [a for a in sys.argv[1:] if a != "-v"]
    if not os.access(BIN, os.X_OK):
        print("no actor-host binary at %s: build it with `cargo build --release -p actor-host`"
              " (from %s), or point ACTOR_HOST at one" % (BIN, ROOT), file=sys.stderr)
        return 2
    print("binary: %s" % BIN, flush=True)
    env = {**os.environ, "ACTOR_HOST": os.path.abspath(BIN), "PYTHONUNBUFFERED": "1"}
    passed = failed = skipped = 0
    failures = []
    for script, args, timeout, needs in CHECKS:
        if only and not any(o in script for o in only):
            continue
        name = " ".join([script] + args)
        why = missing(needs)
        if why:
            skipped += 1
            print("%-58s skipped (%s)" % (name, why), flush=True)
            continue
        cmd = (["sh"] if script.endswith(".sh") else [sys.executable]) + [os.path.join(HERE, script)] + args
        t = time.time()
        # its own process group, so a timeout also ends the hosts it started
        p = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
            out, rc = out.decode(errors="replace"), p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            out, rc = out.decode(errors="replace") + "\n[timed out after %ds]" % timeout, None
        secs = time.time() - t
        if rc == 0:
            passed += 1
            print("%-58s held (%.0fs)" % (name, secs), flush=True)
        else:
            failed += 1
            failures.append(name)
            print("%-58s FAILED (%s, %.0fs)" % (name, "timeout" if rc is None else "exit %d" % rc, secs), flush=True)
        if verbose or rc != 0:
            print("    " + out.rstrip().replace("\n", "\n    "), flush=True)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
