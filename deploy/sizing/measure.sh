#!/usr/bin/env bash
# Measures what a series costs in Prometheus, VictoriaMetrics and vmagent, on
# a synthetic target shaped like actor-host's per-actor series
# (synthetic-target.py). Figures in deploy/README.md ("Sizing") come from it.
#
#   deploy/sizing/measure.sh ACTORS [MINUTES] [SERIES_PER_ACTOR]
#
# Scrapes ACTORS x SERIES_PER_ACTOR (default 16) series every 10 s for MINUTES
# (default 5) with one Prometheus (standalone) and with vmagent writing into a
# single-node VictoriaMetrics, at the same time, then prints one line per
# program. Run it at two sizes and take the difference, so each program's
# fixed footprint cancels out. Needs Debian's prometheus and victoria-metrics
# packages and python3; uses ports 19200-19203 (BASE_PORT to change).
set -euo pipefail
actors=${1:?usage: measure.sh ACTORS [MINUTES] [SERIES_PER_ACTOR]}
minutes=${2:-5}
per_actor=${3:-16}
base=${BASE_PORT:-19200}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 "$here/synthetic-target.py" "$base" "$actors" "$per_actor" & pids+=($!)
cat > "$work/scrape.yml" <<CONF
global:
  scrape_interval: 10s
  scrape_timeout: 10s
scrape_configs:
  - job_name: synthetic
    static_configs:
      - targets: ['127.0.0.1:$base']
CONF
prometheus --config.file="$work/scrape.yml" --storage.tsdb.path="$work/prometheus" \
  --web.listen-address="127.0.0.1:$((base + 1))" --log.level=error & pids+=($!)
victoria-metrics -storageDataPath="$work/vm" -httpListenAddr="127.0.0.1:$((base + 2))" -loggerLevel=ERROR & pids+=($!)
sleep 1
vmagent -promscrape.config="$work/scrape.yml" -remoteWrite.url="http://127.0.0.1:$((base + 2))/api/v1/write" \
  -remoteWrite.tmpDataPath="$work/vmagent" -httpListenAddr="127.0.0.1:$((base + 3))" -loggerLevel=ERROR \
  -promscrape.maxScrapeSize=1GB & pids+=($!)
sleep $((minutes * 60))

metric() { # port name: the first sample of `name` on that program's own /metrics
  # (awk reads to the end: an early exit would fail curl, and pipefail the script)
  curl -s "127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n && !seen { print $2; seen = 1 }'
}
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
curl -s "127.0.0.1:$((base + 2))/internal/force_flush" >/dev/null
prom_series=$(metric $((base + 1)) prometheus_tsdb_head_series)
prom_rss=$(metric $((base + 1)) process_resident_memory_bytes)
# (a query over all of them would hit -search.maxUniqueTimeseries, 300k by default)
vm_series=$(curl -s "127.0.0.1:$((base + 2))/api/v1/series/count" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0])')
vm_rss=$(metric $((base + 2)) process_resident_memory_bytes)
vm_rows=$(curl -s "127.0.0.1:$((base + 2))/metrics" | awk '/^vm_rows\{type="(storage\/(small|big))"\}/ { s += $2 } END { print s }')
vm_disk=$(du -sb "$work/vm" | cut -f1)
agent_rss=$(metric $((base + 3)) process_resident_memory_bytes)
agent_ok=$(curl -s "127.0.0.1:$((base + 3))/metrics" | awk '/^vm_promscrape_scrapes_total\{status_code="200"\}/ { print $2 }')
agent_failed=$(metric $((base + 3)) vm_promscrape_scrapes_failed_total)
echo "actors=$actors series_per_actor=$per_actor minutes=$minutes scrape=10s"
echo "prometheus        head_series=$prom_series rss_mb=$(mb "$prom_rss")"
echo "victoria-metrics  series=$vm_series rss_mb=$(mb "$vm_rss") disk_mb=$(mb "$vm_disk") rows=$vm_rows"
echo "vmagent           rss_mb=$(mb "$agent_rss") scrapes_ok=$agent_ok scrapes_failed=$agent_failed"
