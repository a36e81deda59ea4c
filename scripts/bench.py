#!/usr/bin/env python3
"""Citaflow benchmark: the platform against this machine's own limits, in one run.

Run through `./dev bench` (full) or `./dev bench --short` (CI: a few seconds per part, fails
only on errors, never on timing). Needs the stack from `./dev up` (.run/stack.env).

1. Kafka ceiling: Kafka's ProducerPerformance / ConsumerPerformance (same jars as the broker),
   record size of a booking command, acks=all, on a scratch topic shaped like booking.requests.
2. PostgreSQL ceilings: booking-processor's `decision-ceiling`, which calls the processor's own
   decision code for random creates across many doctors, at the processor's concurrency (one
   caller per partition), three ways: one command per transaction (`decide`, what a lone
   command costs), a full batch per transaction (`decide_batch` with `processor.batch_max`
   commands, the processor at its best: the ceiling the platform is judged against), and the
   table's own limit (multi-row inserts of confirmed appointments under the exclusion
   constraint, no rules: no design can beat it).
3. Citaflow: `citaflow load` against the running platform, stepping the offered rate up until
   latency or errors break; per step the achieved decided bookings/s, HTTP p50/p99, 202-to-final
   p50/p99/p99.9, CPU and peak RSS of each service, and the CPU milliseconds each component
   (its whole process tree: services, PostgreSQL, Kafka, the registry, Mailpit, the SMS sink)
   and the load generator spent per decided booking.
   Per step also the processor's mean batch size (its `citaflow_processor_batch_size`).
4. Ratios: sustained decided bookings/s over each ceiling; latency at half the sustained rate;
   each figure against the goal of issue #14.
5. Free slots: `citaflow bench-availability` fills one center's agenda through the API (8
   doctors, 4 weeks, 2,000 confirmed appointments) and times `GET /availability` for a week
   with all its doctors. `--only availability` runs just this part and rewrites its section
   of docs/benchmarks.md, leaving the rest as the last full run wrote it.

Writes .run/bench/result.json, docs/benchmarks.md and docs/benchmarks-latency.svg.
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / ".run"
OUT = RUN / "bench"


def env():
    values = dict(os.environ)
    path = RUN / "stack.env"
    if not path.exists():
        sys.exit("bench: .run/stack.env is missing: run ./dev up first")
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line[len("export "):].split("=", 1)
            values.setdefault(key, value.strip("'"))
    return values


def log(message):
    print(f"[bench] {message}", flush=True)


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


# ---------------------------------------------------------------------------- free slots
AVAILABILITY_START = "<!-- availability -->"
AVAILABILITY_END = "<!-- /availability -->"


def availability_bench(e, short):
    """`citaflow bench-availability`: its JSON report."""
    cmd = [ROOT / "target" / e["BENCH_PROFILE"] / "citaflow", "bench-availability", "--api-url", e["CITAFLOW_DEV_API_URL"]]
    if short:
        cmd += ["--doctors", "2", "--weeks", "1", "--appointments", "40", "--requests", "20"]
    login_env = dict(e, CITAFLOW_USERNAME=e.get("CITAFLOW_DEV_ADMIN_USERNAME", "admin"),
                     CITAFLOW_PASSWORD=e["CITAFLOW_DEV_ADMIN_PASSWORD"])
    return json.loads(run(cmd, env=login_env))


def availability_markdown(a, m=None, profile=None):
    when = f" (run {m['date']}, build profile `{profile}`; reproduce with `./dev bench --only availability`)" if m else ""
    return "\n".join([
        AVAILABILITY_START,
        "## Free-slot search",
        "",
        f"`GET /availability` for one center's week with all its {a['doctors']} doctors, over an agenda of "
        f"{a['appointments_confirmed']} confirmed appointments in {a['weeks']} weeks booked through the API{when}: "
        f"the week has {a['week_slots']} half-hour slots, {a['week_free_slots']} of them free. "
        f"{a['requests']} requests one at a time after 20 not timed:",
        "",
        "| p50 ms | p90 ms | p99 ms | max ms | target |",
        "| --- | --- | --- | --- | --- |",
        f"| {a['p50_ms']:.2f} | {a['p90_ms']:.2f} | **{a['p99_ms']:.2f}** | {a['max_ms']:.2f} | p99 ≤ 20 ms |",
        AVAILABILITY_END,
        "",
    ])


def write_availability_section(path, section):
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if AVAILABILITY_START in text and AVAILABILITY_END in text:
        head, rest = text.split(AVAILABILITY_START, 1)
        tail = rest.split(AVAILABILITY_END, 1)[1].lstrip("\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


# ---------------------------------------------------------------------------- Kafka ceiling
def kafka_ceiling(e, records, record_size, partitions):
    libs = e["CITAFLOW_DEV_KAFKA_LIBS"]
    java = ["java", "-Xmx384m", f"-Dlog4j2.configurationFile={e['CITAFLOW_DEV_KAFKA_TOOLS_LOG4J']}", "-cp", f"{libs}/*"]
    bootstrap = e["CITAFLOW__KAFKA__BOOTSTRAP_SERVERS"]
    topic = f"bench.requests.{uuid.uuid4().hex[:8]}"
    run(java + ["org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap, "--create",
                "--topic", topic, "--partitions", str(partitions), "--replication-factor", "1"])
    try:
        out = run(java + ["org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                          "--num-records", str(records), "--record-size", str(record_size), "--throughput", "-1",
                          "--command-property", f"bootstrap.servers={bootstrap}", "acks=all",
                          "enable.idempotence=true", "linger.ms=2"])
        line = [l for l in out.splitlines() if "records/sec" in l][-1]
        produce = float(re.search(r"([\d.]+) records/sec", line).group(1))
        p99 = float(re.search(r"([\d.]+) ms 99th", line).group(1))
        out = run(java + ["org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
                          "--topic", topic, "--num-records", str(records), "--timeout", "60000"])
        rows = [l for l in out.splitlines() if l[:2].isdigit()]
        fields = [f.strip() for f in rows[-1].split(",")]
        consume = float(fields[5])
    finally:
        subprocess.run(java + ["org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap,
                               "--delete", "--topic", topic], capture_output=True)
    return {"records": records, "record_size": record_size, "partitions": partitions,
            "produce_records_per_s": produce, "produce_p99_ms": p99, "consume_records_per_s": consume}


# ------------------------------------------------------------------------- PostgreSQL ceiling
def postgres_ceiling(e, clients, seconds, batch):
    """The processor's own decision transactions (booking-processor's `decision-ceiling`), run by
    `clients` concurrent callers for `seconds`, each way in a scratch database of its own: one
    command per transaction, `batch` per transaction, and raw inserts of `batch` rows."""
    pg = Path(e["CITAFLOW_DEV_PG_BIN"])
    admin = e["CITAFLOW_DEV_ADMIN_DATABASE_URL"]
    target = ROOT / "target" / e["BENCH_PROFILE"]
    out = {"clients": clients, "seconds": seconds, "batch": batch}
    for name, flags in (("single", ["--batch", "1"]), ("batched", ["--batch", str(batch)]),
                        ("raw", ["--raw", str(batch)])):
        db = f"citaflow_bench_{uuid.uuid4().hex[:8]}"
        db_url = admin.rsplit("/", 1)[0] + "/" + db
        run([pg / "psql", admin, "-qc", f"CREATE DATABASE {db}"])
        try:
            bin_env = dict(e, CITAFLOW__DATABASE__URL=db_url)
            run([target / "ingest-api", "migrate"], env=bin_env)
            printed = run([target / "decision-ceiling", "--clients", str(clients), "--seconds", str(seconds)] + flags,
                          env=bin_env)
            result = json.loads(printed.strip().splitlines()[-1])
        finally:
            subprocess.run([pg / "psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], capture_output=True)
        out[name] = {"per_s": result["decisions_per_s"], "latency_avg_ms": result["latency_avg_ms"]}
    return out


def pg_superuser(e, sql):
    """Runs `sql` as the stack's PostgreSQL superuser (over its unix socket); None if it cannot."""
    pg = Path(e["CITAFLOW_DEV_PG_BIN"])
    done = subprocess.run([pg / "psql", "-h", str(RUN / "postgres" / "sock"), "-p", e.get("CITAFLOW_DEV_PG_PORT", "5432"),
                           "-U", "postgres", "-d", "citaflow", "-AtqF", "\t", "-c", sql],
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def pg_statements_reset(e):
    """Starts counting statements afresh (pg_stat_statements, preloaded by ./dev's PostgreSQL)."""
    return pg_superuser(e, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()") is not None


def pg_statements_top(e, decided, limit=12):
    """The statements PostgreSQL spent most execution time on since the reset: calls and
    execution milliseconds per decided booking, mean ms and rows per call."""
    out = pg_superuser(e, f"""
        SELECT calls, total_exec_time, mean_exec_time, rows,
               left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
          FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'citaflow')
         ORDER BY total_exec_time DESC LIMIT {limit}""")
    if not out or not decided:
        return None
    rows = []
    for line in out.strip().splitlines():
        calls, total, mean, nrows, query = line.split("\t", 4)
        rows.append({"calls_per_booking": int(calls) / decided, "exec_ms_per_booking": float(total) / decided,
                     "mean_ms": float(mean), "rows_per_call": int(nrows) / max(1, int(calls)), "query": query})
    return rows


def processor_batches(e):
    """(batches, commands in them) the processor has decided so far, from its /metrics."""
    url = e.get("CITAFLOW_DEV_PROCESSOR_URL")
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=3) as response:
            text = response.read().decode()
    except (OSError, TypeError):
        return (0.0, 0.0)
    def total(name):
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name + "{") or l.startswith(name + " "))
    return (total("citaflow_processor_batch_size_count"), total("citaflow_processor_batch_size_sum"))


# ------------------------------------------------------------------------ service resources
SERVICES = ["ingest-api", "booking-processor", "notifier-email"]
# Everything whose CPU a booking costs, in the order the cost table prints it.
COMPONENTS = ["ingest-api", "booking-processor", "notifier-email", "notifier-sms", "postgres",
              "kafka", "registry", "mailpit", "sms-sink"]


def pids(names=SERVICES):
    """PIDs of the running components, from the launcher (`./dev pids`: process-compose's list)."""
    out = subprocess.run([ROOT / "dev", "pids"], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        name, pid = line.split()
        if name in names and Path(f"/proc/{pid}").exists():
            found[name] = int(pid)
    return found


def tree_cpu_seconds(root):
    """CPU seconds of `root` and all its descendants: the live ones' own time, and what the
    exited ones left in their parents' `cutime`/`cstime` (PostgreSQL's backends, the JVM's
    helper processes)."""
    parent, spent = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parent[pid] = int(fields[1])
        spent[pid] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += spent.get(pid, 0)
        todo.extend(child for child, p in parent.items() if p == pid)
    return total / os.sysconf("SC_CLK_TCK")


class Cost:
    """CPU seconds each component (its whole process tree) and the load generator (this
    script's children) spend while a step runs."""

    def __init__(self, components):
        self.components = components

    def __enter__(self):
        self.cpu0 = {name: tree_cpu_seconds(pid) for name, pid in self.components.items()}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children0 = usage.ru_utime + usage.ru_stime
        return self

    def __exit__(self, *exc):
        self.seconds = {name: tree_cpu_seconds(pid) - self.cpu0[name]
                        for name, pid in self.components.items()}
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.seconds["load generator"] = usage.ru_utime + usage.ru_stime - self.children0

    def per_booking_ms(self, decided):
        """CPU milliseconds per decided booking of each part, and the total."""
        if not decided:
            return {}
        out = {name: round(1000 * secs / decided, 3) for name, secs in self.seconds.items()}
        out["total"] = round(sum(v for v in out.values()), 3)
        return out


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """CPU and peak RSS of each service while a step runs."""

    def __init__(self, services):
        self.services = services
        self.peak = {name: 0.0 for name in services}
        self.stop = threading.Event()

    def __enter__(self):
        self.cpu0 = {name: cpu_seconds(pid) for name, pid in self.services.items()}
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def loop(self):
        while not self.stop.is_set():
            for name, pid in self.services.items():
                try:
                    self.peak[name] = max(self.peak[name], rss_mb(pid))
                except OSError:
                    pass
            self.stop.wait(0.2)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        wall = time.monotonic() - self.t0
        self.result = {
            name: {"cpu_percent": round(100 * (cpu_seconds(pid) - self.cpu0[name]) / wall, 1),
                   "peak_rss_mb": round(self.peak[name], 1)}
            for name, pid in self.services.items()
        }


# ------------------------------------------------------------------------------- Citaflow
def decided_count(e):
    """Commands decided so far in the platform's database."""
    pg = Path(e["CITAFLOW_DEV_PG_BIN"])
    return int(run([pg / "psql", e["CITAFLOW__DATABASE__URL"], "-Atc", "SELECT count(*) FROM processed_commands"]).strip())


def pending_count(e):
    pg = Path(e["CITAFLOW_DEV_PG_BIN"])
    return int(run([pg / "psql", e["CITAFLOW__DATABASE__URL"], "-Atc",
                    "SELECT count(*) FROM appointments WHERE status = 'pending'"]).strip())


def notifier_lag(e):
    """Events the email notifier has still to handle (its consumer lag), None if unknown."""
    url = e.get("CITAFLOW_DEV_NOTIFIER_EMAIL_URL")
    if not url:
        return None
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return None
    lags = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("citaflow_consumer_lag{")]
    return sum(lags) if lags else None


def cpu_busy(seconds=2.0):
    """Share of the machine's CPU time that was busy over the next `seconds`."""
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return idle, sum(fields)
    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def settle(e, limit=180):
    """Waits until the platform is at rest before a step: the notifier has caught up with
    earlier steps (bookings are already drained by load_step) and the machine is mostly idle
    again (after a saturating step PostgreSQL's autovacuum and checkpoints, Kafka's segment
    work and the JVMs' collections run on for a while)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not notifier_lag(e) and cpu_busy() < 0.25:
            return
        time.sleep(0.5)
    log(f"  not at rest after {limit}s (notifier lag {notifier_lag(e)}, CPU {100 * cpu_busy():.0f} % busy); going on")


def load_step(e, rate, seconds, concurrency):
    """One step of `citaflow load`; answers its report and the decisions/s the platform made
    while it ran (counted in the database)."""
    out = OUT / f"load-{rate}.json"
    cmd = [ROOT / "target" / e["BENCH_PROFILE"] / "citaflow", "load", "--api-url", e["CITAFLOW_DEV_API_URL"],
           "--rate", str(rate), "--duration", f"{seconds}s", "--concurrency", str(concurrency),
           "--doctors", "200", "--patients", "400", "--out", str(out), "--quiet"]
    login_env = dict(e, CITAFLOW_USERNAME=e.get("CITAFLOW_DEV_ADMIN_USERNAME", "admin"),
                     CITAFLOW_PASSWORD=e["CITAFLOW_DEV_ADMIN_PASSWORD"])
    before = decided_count(e)
    run(cmd, env=login_env)
    finished = time.monotonic()
    report = json.loads(out.read_text())
    # Decisions of this step: over its send window plus the time the platform needed after it
    # to drain what was accepted.
    deadline = finished + 60
    while pending_count(e) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    report["decided"] = decided_count(e) - before
    report["decided_window_secs"] = report["summary"]["send_window_secs"] + (time.monotonic() - finished)
    return report


def summarize_step(rate, report, resources):
    """Maps the load generator's report onto the benchmark's columns."""
    summary = report["summary"]
    http = report["latency_ms"]["all"]
    final = report.get("to_final", {}).get("client_ms") or {}
    if not final.get("count"):
        final = {}  # no request of this step was followed: no figure, rather than 0 ms
    window = summary["send_window_secs"] or 1
    return {
        "offered_rate": rate,
        "achieved_rate": summary["achieved_rate"],
        "accepted_bookings_per_s": summary["accepted_bookings"] / window,
        "decided_per_s": report["decided"] / (report["decided_window_secs"] or 1),
        "http_p50_ms": http.get("p50"),
        "http_p99_ms": http.get("p99"),
        "final_p50_ms": final.get("p50"),
        "final_p99_ms": final.get("p99"),
        "final_p999_ms": final.get("p999"),
        "errors": summary["errors"],
        "dropped": summary["dropped"],
        "resources": resources,
    }


def mean_batch(before, after):
    batches, commands = after[0] - before[0], after[1] - before[1]
    return commands / batches if batches > 0 else None


def broken(step, rate):
    """A step breaks when it falls behind the offered rate (drops), errors, or latency explodes."""
    return (step["errors"] > 0 or step["achieved_rate"] < 0.95 * rate or step["dropped"] > 0.01 * rate
            or (step["http_p99_ms"] or 0) > 1000)


# ------------------------------------------------------------------------------- reporting
def svg_chart(steps, path):
    width, height, pad = 640, 360, 50
    rates = [s["offered_rate"] for s in steps] or [1]
    values = [v for s in steps for v in (s["http_p99_ms"], s["final_p99_ms"]) if v is not None] or [1]
    max_x, max_y = max(rates) * 1.05, max(values) * 1.15

    def xy(x, y):
        return pad + (width - 2 * pad) * x / max_x, height - pad - (height - 2 * pad) * y / max_y

    def line(key, color):
        points = [xy(s["offered_rate"], s[key]) for s in steps if s[key] is not None]
        poly = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{poly}"/>{dots}'

    ticks = "".join(
        f'<text x="{xy(r, 0)[0]:.1f}" y="{height - pad + 18}" font-size="11" text-anchor="middle">{r}</text>' for r in rates)
    y_ticks = "".join(
        f'<text x="{pad - 6}" y="{xy(0, max_y * i / 4)[1] + 4:.1f}" font-size="11" text-anchor="end">{max_y * i / 4:.0f}</text>'
        for i in range(5))
    path.write_text(f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{width / 2}" y="22" font-size="14" text-anchor="middle">Citaflow latency (p99) against offered rate</text>
<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>
{ticks}{y_ticks}
<text x="{width / 2}" y="{height - 12}" font-size="12" text-anchor="middle">offered bookings/s</text>
<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})" text-anchor="middle">ms</text>
{line("http_p99_ms", "#1f77b4")}{line("final_p99_ms", "#d62728")}
<text x="{width - pad - 150}" y="{pad}" font-size="12" fill="#1f77b4">HTTP p99</text>
<text x="{width - pad - 150}" y="{pad + 16}" font-size="12" fill="#d62728">202 → final p99</text>
</svg>
""")


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem_kb = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")))
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "os": platform.platform(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def verdict(met):
    return "met" if met else "**not met**"


def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result):
    m, k, p = result["machine"], result["kafka"], result["postgres"]
    lines = [
        "# Benchmarks",
        "",
        f"Latest run: {m['date']}, {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}; "
        f"build profile `{result['profile']}`; reproduce with `./dev bench`.",
        "",
        "## Ceilings of the parts underneath (same machine, same run)",
        "",
        "| Part | Measure | Result |",
        "| --- | --- | --- |",
        f"| Kafka | ProducerPerformance, {k['records']} records of {k['record_size']} B, acks=all, {k['partitions']} partitions | {k['produce_records_per_s']:.0f} records/s (p99 {k['produce_p99_ms']:.0f} ms) |",
        f"| Kafka | ConsumerPerformance | {k['consume_records_per_s']:.0f} records/s |",
        f"| PostgreSQL | the processor's decision transaction, one command per transaction (decision-ceiling), {p['clients']} clients, {p['seconds']} s | {p['single']['per_s']:.0f} decisions/s (avg {p['single']['latency_avg_ms']:.1f} ms a transaction) |",
        f"| PostgreSQL | **batched**: the processor's batch transaction, {p['batch']} commands per transaction, {p['clients']} clients, {p['seconds']} s | **{p['batched']['per_s']:.0f} decisions/s** (avg {p['batched']['latency_avg_ms']:.1f} ms a transaction) |",
        f"| PostgreSQL | the table's own limit: multi-row inserts of {p['batch']} confirmed appointments under the exclusion constraint, no rules, {p['clients']} clients | {p['raw']['per_s']:.0f} rows/s (avg {p['raw']['latency_avg_ms']:.1f} ms an insert) |",
        "",
        "## Citaflow, stepping the offered rate",
        "",
        "| Offered req/s | Achieved req/s | Decided commands/s | HTTP p50 ms | HTTP p99 ms | 202→final p50 | p99 | p99.9 | Errors | mean batch | ingest-api CPU% / peak MB | processor CPU% / peak MB | notifier CPU% / peak MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [(str(s["offered_rate"]), s) for s in result["steps"]]
    if result.get("half_step"):
        rows.append((f"{result['half_step']['offered_rate']} (half)", result["half_step"]))
    for label, s in rows:
        res = s["resources"]

        def r(name):
            v = res.get(name)
            return f"{v['cpu_percent']:.0f} / {v['peak_rss_mb']:.0f}" if v else "–"

        lines.append(
            f"| {label} | {fmt(s['achieved_rate'])} | {fmt(s['decided_per_s'])} | {fmt(s['http_p50_ms'])} | "
            f"{fmt(s['http_p99_ms'])} | {fmt(s['final_p50_ms'])} | {fmt(s['final_p99_ms'])} | {fmt(s['final_p999_ms'])} | "
            f"{s['errors']} | {fmt(s.get('mean_batch'))} | {r('ingest-api')} | {r('booking-processor')} | {r('notifier-email')} |")
    cost_rows = [(label, s["cpu_ms_per_booking"]) for label, s in rows if s.get("cpu_ms_per_booking")]
    if cost_rows:
        parts = [p for p in COMPONENTS + ["load generator"] if p in cost_rows[0][1]]
        lines += [
            "",
            "## Where the cost is: CPU milliseconds per decided booking",
            "",
            "Each component's whole process tree (PostgreSQL's backends, the JVMs' threads), and the "
            "load generator, over a step, divided by the bookings decided in it.",
            "",
            "| Offered req/s | " + " | ".join(parts) + " | total |",
            "| --- | " + " | ".join("---" for _ in parts) + " | --- |",
        ]
        for label, c in cost_rows:
            lines.append(f"| {label} | " + " | ".join(f"{c[p]:.2f}" for p in parts) + f" | {c['total']:.2f} |")
    ratios = result["ratios"]
    top = ratios.get("top_step")
    if top and top.get("pg_statements"):
        lines += [
            "",
            f"## Where PostgreSQL's time goes at the best sustained step ({top['offered_rate']} req/s offered)",
            "",
            "`pg_stat_statements` over that step: the statements with the most execution time, per decided "
            "booking (execution only: parsing, commits and the WAL come on top).",
            "",
            "| calls / booking | exec ms / booking | mean ms | rows / call | statement |",
            "| --- | --- | --- | --- | --- |",
        ]
        for st in top["pg_statements"]:
            query = st["query"].replace("|", "\\|")
            lines.append(f"| {st['calls_per_booking']:.2f} | {st['exec_ms_per_booking']:.3f} | {st['mean_ms']:.3f} | "
                         f"{st['rows_per_call']:.1f} | `{query}` |")
    lines += [
        "",
        "## Against the targets",
        "",
        f"- Sustained decided bookings/s: **{fmt(ratios['sustained_decided_per_s'])}** "
        f"(goal ≥ 3,000; first milestone 1,500: {verdict(ratios['sustained_decided_per_s'] >= 3000)}, "
        f"milestone {verdict(ratios['sustained_decided_per_s'] >= 1500)}).",
        f"- At that step: {top['errors'] if top else '–'} errors (goal 0), 202→final p99 {fmt(top['final_p99_ms'] if top else None)} ms "
        f"(goal ≤ 1,000: {verdict(bool(top) and top['errors'] == 0 and (top['final_p99_ms'] or 1e9) <= 1000)}).",
        f"- It is {fmt(100 * ratios['of_postgres'], 0)} % of the batched PostgreSQL ceiling "
        f"(goal ≥ 50 %: {verdict(ratios['of_postgres'] >= 0.5)}), {fmt(100 * ratios['of_postgres_single'], 0)} % of the "
        f"one-per-transaction ceiling, {fmt(100 * ratios['of_table_limit'], 1)} % of the table's own limit and "
        f"{fmt(100 * ratios['of_kafka_produce'], 1)} % of Kafka's produce ceiling.",
        f"- At half the sustained rate (a step at {fmt(ratios['half_rate'], 0)} req/s, half the offered rate of the best sustained step): HTTP p99 "
        f"{fmt(ratios['half_http_p99_ms'])} ms (goal ≤ 10: {verdict((ratios['half_http_p99_ms'] or 1e9) <= 10)}), "
        f"202→final p99 {fmt(ratios['half_final_p99_ms'])} ms (goal ≤ 100: {verdict((ratios['half_final_p99_ms'] or 1e9) <= 100)}).",
        "- Idle RSS per service, freshly started (MB): " + ", ".join(f"{n} {v:.0f}" for n, v in result["idle_rss_mb"].items()) + " (target ≤ 50).",
        "- Peak RSS per service over all steps (MB): " + ", ".join(
            f"{n} {max((st['resources'].get(n) or {}).get('peak_rss_mb', 0) for st in result['steps']):.0f}"
            for n in result["idle_rss_mb"]) + " (target ≤ 200).",
        "",
        "![latency against offered rate](benchmarks-latency.svg)",
        "",
        availability_markdown(result["availability"], m, result["profile"]),
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="CI variant: small and quick, fails only on errors")
    parser.add_argument("--profile", default=os.environ.get("BENCH_PROFILE", "debug"), help="target/<profile> binaries in use")
    parser.add_argument("--rates", default="100,200,400,600,800,1200,1600,2400,3200", help="offered rates to step through")
    parser.add_argument("--step-seconds", type=int, default=20)
    parser.add_argument("--only", choices=["availability"], help="run one part and rewrite only its section of docs/benchmarks.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    e = env()
    e["BENCH_PROFILE"] = args.profile
    if args.only == "availability":
        log("free-slot search (citaflow bench-availability)")
        a = availability_bench(e, args.short)
        log(f"  p50 {a['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} ms over {a['appointments_confirmed']} appointments")
        (OUT / "availability.json").write_text(json.dumps(a, indent=2))
        if not args.short:
            write_availability_section(ROOT / "docs" / "benchmarks.md", availability_markdown(a, machine(), args.profile))
            log(f"wrote {ROOT / 'docs' / 'benchmarks.md'}")
        print("bench: 1 passed, 0 failed")
        return
    partitions = int(e.get("CITAFLOW_DEV_REQUEST_PARTITIONS", "6"))
    rates = [20, 40] if args.short else [int(r) for r in args.rates.split(",")]
    step_seconds = 3 if args.short else args.step_seconds

    services = pids()
    if set(services) != set(SERVICES):
        sys.exit(f"bench: services not running ({sorted(services)}): run ./dev up")
    idle = {name: round(rss_mb(pid), 1) for name, pid in services.items()}
    components = pids(COMPONENTS)

    log("Kafka ceiling (ProducerPerformance / ConsumerPerformance)")
    kafka = kafka_ceiling(e, 20_000 if args.short else 300_000, 260, partitions)
    log(f"  produce {kafka['produce_records_per_s']:.0f}/s, consume {kafka['consume_records_per_s']:.0f}/s")
    batch_max = int(e.get("CITAFLOW__PROCESSOR__BATCH_MAX", "64"))
    log(f"PostgreSQL ceilings (the processor's decision transactions: 1 and {batch_max} per transaction; raw inserts)")
    postgres = postgres_ceiling(e, partitions, 3 if args.short else 15, batch_max)
    log(f"  one per transaction {postgres['single']['per_s']:.0f}/s, batched {postgres['batched']['per_s']:.0f}/s, "
        f"table limit {postgres['raw']['per_s']:.0f} rows/s")

    # Warm up (connections, caches, the JVMs' JIT) with steps that are not recorded: Kafka's
    # broker needs tens of seconds of traffic before its produce latency settles (measured:
    # HTTP p99 at 200/s of 34 ms right after a short warm-up, 8-9 ms once warm).
    for rate, seconds in ([(50, 2)] if args.short else [(50, 10), (100, 15), (200, 15)]):
        log(f"warm-up at {rate}/s for {seconds}s (not recorded)")
        load_step(e, rate, seconds, 64)

    steps = []
    for rate in rates:
        settle(e, limit=15 if args.short else 180)
        log(f"Citaflow at {rate}/s for {step_seconds}s")
        batches0 = processor_batches(e)
        counting = not args.short and pg_statements_reset(e)
        with Cost(components) as cost, Sampler(services) as sampler:
            report = load_step(e, rate, step_seconds, max(64, rate // 2))
        step = summarize_step(rate, report, sampler.result)
        step["mean_batch"] = mean_batch(batches0, processor_batches(e))
        step["pg_statements"] = pg_statements_top(e, report["decided"]) if counting else None
        step["cpu_ms_per_booking"] = cost.per_booking_ms(report["decided"])
        steps.append(step)
        log(f"  achieved {fmt(step['achieved_rate'])}/s, HTTP p99 {fmt(step['http_p99_ms'])} ms, "
            f"final p99 {fmt(step['final_p99_ms'])} ms, errors {step['errors']}")
        if args.short and step["errors"]:
            sys.exit(f"bench: errors at {rate}/s: {json.dumps(report)[:2000]}")
        if not args.short and broken(step, rate):
            log("  the platform is saturated: stopping here")
            break

    held = [s for s in steps if not broken(s, s["offered_rate"])]
    best = max(held, key=lambda s: s["decided_per_s"], default=None)
    sustained = best["decided_per_s"] if best else 0.0
    # Latency at half the sustained rate: a step of its own at half the offered rate of the
    # best sustained step (so it decides about half as many bookings per second).
    half_step = None
    half = best["offered_rate"] / 2 if best else 0
    if best:
        half_rate = max(1, round(half))
        settle(e, limit=15 if args.short else 180)
        log(f"Citaflow at half the sustained rate, {half_rate}/s for {step_seconds}s")
        batches0 = processor_batches(e)
        with Cost(components) as cost, Sampler(services) as sampler:
            report = load_step(e, half_rate, step_seconds, max(64, half_rate // 2))
        half_step = summarize_step(half_rate, report, sampler.result)
        half_step["mean_batch"] = mean_batch(batches0, processor_batches(e))
        half_step["cpu_ms_per_booking"] = cost.per_booking_ms(report["decided"])
        log(f"  HTTP p99 {fmt(half_step['http_p99_ms'])} ms, final p99 {fmt(half_step['final_p99_ms'])} ms, "
            f"errors {half_step['errors']}")
        if args.short and half_step["errors"]:
            sys.exit(f"bench: errors at {half_rate}/s: {json.dumps(report)[:2000]}")
    log("free-slot search (citaflow bench-availability)")
    availability = availability_bench(e, args.short)
    log(f"  p50 {availability['p50_ms']:.2f} ms, p99 {availability['p99_ms']:.2f} ms")
    result = {
        "availability": availability,
        "machine": machine(),
        "profile": args.profile,
        "short": args.short,
        "kafka": kafka,
        "postgres": postgres,
        "steps": steps,
        "half_step": half_step,
        "idle_rss_mb": idle,
        "ratios": {
            "sustained_decided_per_s": sustained,
            "of_postgres": sustained / postgres["batched"]["per_s"] if postgres["batched"]["per_s"] else 0,
            "of_postgres_single": sustained / postgres["single"]["per_s"] if postgres["single"]["per_s"] else 0,
            "of_table_limit": sustained / postgres["raw"]["per_s"] if postgres["raw"]["per_s"] else 0,
            "top_step": best,
            "of_kafka_produce": sustained / kafka["produce_records_per_s"] if kafka["produce_records_per_s"] else 0,
            "half_rate": half,
            "half_step": half_step["offered_rate"] if half_step else None,
            "half_http_p99_ms": half_step["http_p99_ms"] if half_step else None,
            "half_final_p99_ms": half_step["final_p99_ms"] if half_step else None,
        },
    }
    (OUT / "result.json").write_text(json.dumps(result, indent=2))
    target = OUT if args.short else ROOT / "docs"
    target.mkdir(exist_ok=True)
    (target / "benchmarks.md").write_text(markdown(result))
    svg_chart(steps, target / "benchmarks-latency.svg")
    log(f"wrote {OUT / 'result.json'}, {target / 'benchmarks.md'}, {target / 'benchmarks-latency.svg'}")
    print("bench: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
