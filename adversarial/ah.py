"""Shared helpers for the adversarial repro scripts: start an actor-host on
ephemeral ports, call its app API, scrape and parse /metrics.

Usage from a script in this folder:  from ah import Host, parse
"""
import atexit
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import http.client
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("ACTOR_HOST", os.path.join(ROOT, "target/release/actor-host"))


_started = []


@atexit.register
def _reap():
    # a script that dies half-way must not leave a host behind
    for p in _started:
        if p.poll() is None:
            p.kill()
            p.wait()


class Host:
    def __init__(self, *args, data_dir=None, workload="none", env=None, wait_ready=True):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="adv-")
        self.stderr_path = tempfile.mktemp(prefix="adv-stderr-")
        self.stderr = open(self.stderr_path, "wb")
        cmd = [BIN, "--app-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
               "--data-dir", self.data_dir, "--workload", workload] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env={**os.environ, **(env or {})})
        _started.append(self.proc)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"app=(\S+) metrics=(\S+)", line)
        if not m:
            self.proc.wait(5)
            raise RuntimeError("no listening line: %r stderr=%s" % (line, open(self.stderr_path).read()))
        self.app = m.group(1)
        self.metrics = m.group(2)
        self.pid = self.proc.pid
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=30):
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                s, _ = self.get_m("/readyz")
                if s == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("not ready")

    def _req(self, addr, method, path, body=None, headers=None, timeout=30):
        h, p = addr.rsplit(":", 1)
        c = http.client.HTTPConnection(h, int(p), timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def app_req(self, method, path, body=None, headers=None, timeout=30):
        return self._req(self.app, method, path, body, headers, timeout)

    def get_m(self, path, headers=None, timeout=60):
        return self._req(self.metrics, "GET", path, None, headers, timeout)

    def create(self, key, name="counter"):
        s, d = self.app_req("POST", "/actors/%s/%s" % (name, q(key)))
        return s, _j(d)

    def call(self, key, action, payload=None, name="counter"):
        body = json.dumps(payload) if payload is not None else ""
        s, d = self.app_req("POST", "/actors/%s/%s/actions/%s" % (name, q(key), action), body)
        return s, _j(d)

    def sleep(self, key, name="counter"):
        s, d = self.app_req("POST", "/actors/%s/%s/sleep" % (name, q(key)))
        return s, _j(d)

    def destroy(self, key, name="counter"):
        s, d = self.app_req("DELETE", "/actors/%s/%s" % (name, q(key)))
        return s, _j(d)

    def scrape(self, query=""):
        s, d = self.get_m("/metrics" + query)
        assert s == 200, (s, d[:300])
        return d.decode()

    def samples(self, query=""):
        return parse(self.scrape(query))

    def rss_kb(self):
        for line in open("/proc/%d/status" % self.pid):
            if line.startswith("VmRSS"):
                return int(line.split()[1])

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def term(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def log(self):
        self.stderr.flush()
        return open(self.stderr_path, errors="replace").read()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.kill()


def q(key):
    return urllib.parse.quote(key, safe="")


def _j(d):
    try:
        return json.loads(d)
    except Exception:
        return d


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LBL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(v):
    return v.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')


def parse(text):
    """{(name, frozenset(labels)): float} of a text scrape."""
    out = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            raise ValueError("unparsable line %r" % line)
        labels = frozenset((k, unescape(v)) for k, v in LBL.findall(m.group(3) or ""))
        key = (m.group(1), labels)
        if key in out:
            raise ValueError("duplicate sample %r" % line)
        out[key] = float(m.group(4))
    return out


def pick(samples, name, **labels):
    """Samples of `name` whose labels include `labels`: {frozenset: value}."""
    want = set(labels.items())
    return {l: v for (n, l), v in samples.items() if n == name and want <= set(l)}


def one(samples, name, **labels):
    got = pick(samples, name, **labels)
    if len(got) != 1:
        raise AssertionError("%s %s: %d samples: %s" % (name, labels, len(got), got))
    return next(iter(got.values()))
