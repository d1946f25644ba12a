#!/usr/bin/env python3
"""A scrape target shaped like actor-host's per-actor series, for sizing a TSDB.

    synthetic-target.py PORT ACTORS [SERIES_PER_ACTOR]

Serves ACTORS label sets (actor_id_gen, actor_key, envoy_key, as actor-host
writes them) times SERIES_PER_ACTOR counter families (default 16) on
http://127.0.0.1:PORT/metrics. Every scrape moves each counter by a small
per-series step, like a busy host, so the TSDB compresses real changes rather
than constants. Used by measure.sh.
"""

import http.server
import itertools
import sys

FAMILIES = [
    "actor_active", "actor_queue_depth", "actor_queue_messages_sent_total",
    "actor_queue_messages_received_total", "actor_connections_active",
    "actor_connections_total", "actor_sqlite_commits_total",
    "actor_sqlite_rollbacks_total", "actor_sqlite_busy_total",
    "actor_sqlite_wal_pages_total", "actor_action_calls_total",
    "actor_action_errors_total", "actor_action_duration_seconds_count",
    "actor_action_duration_seconds_sum", "actor_sqlite_commit_duration_seconds_count",
    "actor_sqlite_commit_duration_seconds_sum",
]


def main() -> None:
    port, actors = int(sys.argv[1]), int(sys.argv[2])
    per_actor = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    families = [FAMILIES[i % len(FAMILIES)] + ("" if i < len(FAMILIES) else f"_{i}")
                for i in range(per_actor)]
    label_sets = [
        f'{{actor_id_gen="{a}:1",actor_key="user-{a:08d}",envoy_key="actor-host-7d9f8c6b5-x2k4q:1"}}'
        for a in range(actors)
    ]
    steps = [a % 7 for a in range(actors)]
    scrapes = itertools.count()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            n = next(scrapes)
            parts = []
            for family in families:
                parts.extend(f"{family}{labels} {n * step}\n"
                             for labels, step in zip(label_sets, steps))
            body = "".join(parts).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
