#!/usr/bin/env python3
"""API latency benchmark: list endpoints of `updraft serve` on a PostgreSQL with 1,000 DAGs and
100,000 task instances.

The issue's target: with 1,000 DAGs and 100,000 task instances in PostgreSQL, list DAGs, list
the runs of a DAG and list the task instances of a run each answer in under 20 ms median.

Data: 1,000 generated DAG files (`bench_api_0000` … `bench_api_0999`, a chain of 10 `empty`
tasks, `schedule: null`, two tags each) in a temp DAG folder; the server's DAG processor parses
them (we wait for `GET /api/v2/dags?limit=1` to report total_entries 1000), then 10 finished
manual runs per DAG (10,000 `dag_run` rows) and 10 successful task instances per run (100,000
`task_instance` rows, try 1, with start/end dates) are inserted with SQL through `psql`, on the
DAG's current version, followed by VACUUM ANALYZE (the state autovacuum would reach).

PostgreSQL comes from `scripts/pg-test-server.sh start --durable` (fsync on); the server gets a
random admin password and a fresh Fernet key. Each endpoint gets 20 warm-up requests then N
measured ones, one after another over ONE keep-alive HTTP connection with a JWT from
POST /auth/token; the time is from sending the request to having read the whole body. Every
response must be 200 with the expected total_entries, else that endpoint fails loudly (its path,
status and body) and the harness exits non-zero after the others.

Usage: bench/api.py [--requests 200] [--binary PATH]
Builds the release binary first unless --binary is given. Writes the figures as JSON to
bench/results/api-postgres-<UTC timestamp>.json and prints a markdown table. Helpers (server,
PostgreSQL, build, clean-up) are bench/engine.py's.
"""
import argparse, base64, datetime, glob, http.client, json, os, secrets, shutil, signal, subprocess, sys, tempfile, time
import urllib.parse

from engine import (REPO, BenchError, Server, build, free_port, git_commit, interrupt, proc_status, run_cleanups,
                    start_pg, stats, stop_pg)

N_DAGS, RUNS_PER_DAG, TASKS_PER_DAG = 1000, 10, 10
WARMUP = 20
TARGET_MS = 20.0  # median, for the list of DAGs, the runs of a DAG and the task instances of a run
PARSE_TIMEOUT_S = 300  # a debug build parses 1,000 files in seconds; this is for a loaded machine
PROBE = 500  # the DAG whose runs and last run's task instances are listed

def dag_id(i):
    return f"bench_api_{i:04d}"

def run_id(i, n):
    """Run n of DAG i, as LOAD_SQL names it: logical date 2026-01-01 + n days + i minutes."""
    ld = datetime.datetime(2026, 1, 1) + datetime.timedelta(days=n, minutes=i)
    return f"manual__{ld.isoformat()}+00:00"

# The endpoints: (name, path, expected total_entries and items on the page, or None for a single
# object; the kind with a target, or None).
def endpoints():
    probe_dag = dag_id(PROBE)
    run = f"/dags/{probe_dag}/dagRuns/{urllib.parse.quote(run_id(PROBE, RUNS_PER_DAG - 1), safe='')}"
    return [
        ("list DAGs", "/dags?limit=50", (N_DAGS, 50), "dags"),
        ("list DAGs, offset 500, by -dag_id", "/dags?limit=50&offset=500&order_by=-dag_id", (N_DAGS, 50), "dags"),
        ("list runs of a DAG", f"/dags/{probe_dag}/dagRuns?limit=50", (RUNS_PER_DAG, RUNS_PER_DAG), "runs"),
        ("list runs of all DAGs (~), by -logical_date", "/dags/~/dagRuns?limit=50&order_by=-logical_date",
         (N_DAGS * RUNS_PER_DAG, 50), None),
        ("list task instances of a run", f"{run}/taskInstances", (TASKS_PER_DAG, TASKS_PER_DAG), "tis"),
        ("list task instances of all runs (~/~)", "/dags/~/dagRuns/~/taskInstances?limit=50",
         (N_DAGS * RUNS_PER_DAG * TASKS_PER_DAG, 50), None),
        ("get one run (reference)", run, None, None),
    ]

# --- DAG files and SQL -------------------------------------------------------------------------

def dag_yaml(i):
    tasks = []
    for t in range(TASKS_PER_DAG):
        dep = f"\n    depends_on: [t{t - 1:02d}]" if t else ""
        tasks.append(f"  - id: t{t:02d}\n    operator: empty{dep}")
    head = [f"dag_id: {dag_id(i)}", "schedule: null", f"tags: [bench, group_{i % 10}]",
            f"description: API benchmark DAG {i}", "tasks:"]
    return "\n".join(head + tasks) + "\n"

# Runs: 10 per DAG, finished (success) 11 s after their logical date, on the DAG's current
# version. Task instances: 10 per run, one second each, back to back, try 1.
LOAD_SQL = f"""
\\set ON_ERROR_STOP on
BEGIN;
INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date, data_interval_start,
                     data_interval_end, run_after, queued_at, start_date, end_date, conf, note,
                     triggered_by, dag_version_id, backfill_id, clear_number,
                     last_scheduling_decision, updated_at)
SELECT d.dag_id,
       'manual__' || to_char(ld AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00',
       'manual', 'success', ld, ld, ld, ld, ld, ld + interval '1 second', ld + interval '11 seconds',
       '{{}}', NULL, 'rest_api', d.current_version_id, NULL, 0, ld + interval '11 seconds',
       ld + interval '11 seconds'
FROM (SELECT dag_id, current_version_id, row_number() OVER (ORDER BY dag_id) - 1 AS i
      FROM dag WHERE dag_id LIKE 'bench\\_api\\_%') d
CROSS JOIN generate_series(0, {RUNS_PER_DAG - 1}) AS n
CROSS JOIN LATERAL (SELECT timestamptz '2026-01-01 00:00:00+00' + n * interval '1 day'
                                                               + d.i * interval '1 minute' AS ld) t;
INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, state, try_number,
                           max_tries, start_date, end_date, duration, operator, pool, pool_slots,
                           queue, priority_weight, hostname, queued_dttm, scheduled_dttm,
                           next_retry_at, lease_owner, lease_expires_at, rendered_fields,
                           dag_version_id, updated_at, note)
SELECT r.id, r.dag_id, r.run_id, 't' || lpad(k::text, 2, '0'), -1, 'success', 1, 0,
       s, s + interval '990 milliseconds', 0.99, 'empty', 'default_pool', 1, 'default',
       {TASKS_PER_DAG} - k, 'bench-host', s - interval '5 milliseconds',
       s - interval '10 milliseconds', NULL, NULL, NULL, NULL, d.current_version_id,
       s + interval '990 milliseconds', NULL
FROM dag_run r
JOIN dag d ON d.dag_id = r.dag_id
CROSS JOIN generate_series(0, {TASKS_PER_DAG - 1}) AS k
CROSS JOIN LATERAL (SELECT r.start_date + k * interval '1 second' AS s) t
WHERE r.dag_id LIKE 'bench\\_api\\_%';
COMMIT;
VACUUM ANALYZE dag_run;
VACUUM ANALYZE task_instance;
"""

def psql_binary():
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))), None)
    if not found:
        raise BenchError("psql not found: run scripts/setup.sh (it installs PostgreSQL)")
    return found

def psql(url, sql):
    out = subprocess.run([psql_binary(), "-X", "-q", "-A", "-t", "-d", url, "-v", "ON_ERROR_STOP=1", "-f", "-"],
                         input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"psql failed:\n{out.stderr.strip()}")
    return out.stdout.strip()

def count(url, sql):
    return int(psql(url, sql) or 0)

# --- loading -----------------------------------------------------------------------------------

def wait_parsed(server, url):
    """Until GET /dags?limit=1 says 1,000 (or, while that endpoint does not answer 200, until
    the `dag` table has them all with a current version)."""
    t0, warned, last = time.perf_counter(), False, None
    while time.perf_counter() - t0 < PARSE_TIMEOUT_S:
        server.check_alive()
        status, body = server.request("GET", "/dags?limit=1")
        if status == 200:
            last = body.get("total_entries") if isinstance(body, dict) else None
            if last == N_DAGS:
                break
        else:
            if not warned:
                print(f"  warning: GET /api/v2/dags?limit=1 answered HTTP {status}: {str(body)[:200]}; "
                      "waiting on the dag table instead", file=sys.stderr, flush=True)
                warned = True
            last = count(url, "SELECT count(*) FROM dag WHERE dag_id LIKE 'bench\\_api\\_%' "
                              "AND current_version_id IS NOT NULL")
            if last == N_DAGS:
                break
        time.sleep(0.2)
    else:
        raise BenchError(f"the DAG processor had {last} of {N_DAGS} DAGs after {PARSE_TIMEOUT_S} s\n"
                         f"{server.stderr_tail()}")
    elapsed = time.perf_counter() - t0
    # The SQL takes the version from dag.current_version_id: every DAG must have one.
    versions = count(url, "SELECT count(*) FROM dag WHERE dag_id LIKE 'bench\\_api\\_%' "
                          "AND current_version_id IS NOT NULL")
    if versions != N_DAGS:
        raise BenchError(f"{versions} of {N_DAGS} DAGs have a current version")
    return elapsed

def load(url):
    t0 = time.perf_counter()
    psql(url, LOAD_SQL)
    elapsed = time.perf_counter() - t0
    runs = count(url, "SELECT count(*) FROM dag_run WHERE dag_id LIKE 'bench\\_api\\_%'")
    tis = count(url, "SELECT count(*) FROM task_instance WHERE dag_id LIKE 'bench\\_api\\_%'")
    if (runs, tis) != (N_DAGS * RUNS_PER_DAG, N_DAGS * RUNS_PER_DAG * TASKS_PER_DAG):
        raise BenchError(f"loaded {runs} runs and {tis} task instances, expected "
                         f"{N_DAGS * RUNS_PER_DAG} and {N_DAGS * RUNS_PER_DAG * TASKS_PER_DAG}")
    size = psql(url, "SELECT pg_size_pretty(pg_database_size(current_database()))")
    return {"load_s": elapsed, "runs": runs, "task_instances": tis, "database_size": size}

# --- measuring ---------------------------------------------------------------------------------

class Client:
    """One keep-alive HTTP/1.1 connection, reopened only if the server closes it."""

    def __init__(self, server):
        self.server, self.conn = server, None
        self.headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/json"}
        self.reconnects = -1  # the first connection is not a reconnect

    def get(self, path):
        """(status, raw body, seconds from sending to the whole body read)."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
                self.reconnects += 1
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", "/api/v2" + path, headers=self.headers)
                r = self.conn.getresponse()
                raw = r.read()
                elapsed = time.perf_counter() - t0
            except (http.client.HTTPException, OSError) as e:
                self.conn.close(); self.conn = None
                self.server.check_alive()
                if attempt == 2:
                    raise BenchError(f"GET /api/v2{path}: {e!r} (twice, on a fresh connection too)")
                continue
            if r.will_close:
                self.conn.close(); self.conn = None
            return r.status, raw, elapsed

    def close(self):
        if self.conn is not None:
            self.conn.close()

def check(name, path, status, raw, expected):
    if status != 200:
        raise BenchError(f"GET /api/v2{path} ({name}) answered HTTP {status}: "
                         f"{raw.decode('utf-8', 'replace')[:300]}")
    try:
        body = json.loads(raw)
    except ValueError:
        raise BenchError(f"GET /api/v2{path} ({name}): the body is not JSON: {raw[:200]!r}")
    if expected is None:
        return
    total, items = expected
    body = body if isinstance(body, dict) else {}
    page = [v for v in body.values() if isinstance(v, list)]
    if len(page) != 1 or body.get("total_entries") != total or len(page[0]) != items:
        got = f"{len(page[0])} items" if len(page) == 1 else "no single list of items"
        raise BenchError(f"GET /api/v2{path} ({name}): total_entries {body.get('total_entries')!r} and {got}, "
                         f"expected {total} and {items} items")

def measure(client, name, path, expected, requests):
    for _ in range(WARMUP):
        status, raw, _ = client.get(path)
        check(name, path, status, raw, expected)
    times = []
    for _ in range(requests):
        status, raw, elapsed = client.get(path)
        check(name, path, status, raw, expected)
        times.append(elapsed * 1000)
    return {"path": "/api/v2" + path, "expected_total": expected and expected[0], "bytes": len(raw), "ms": stats(times),
            "samples_ms": [round(t, 3) for t in times]}

# --- the benchmark -----------------------------------------------------------------------------

def bench(binary, requests, cleanups):
    work = tempfile.mkdtemp(prefix="updraft-bench-api-")
    cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
    home, dags = os.path.join(work, "home"), os.path.join(work, "dags")
    os.makedirs(home); os.makedirs(dags)
    for i in range(N_DAGS):
        with open(os.path.join(dags, f"{dag_id(i)}.yaml"), "w") as f:
            f.write(dag_yaml(i))
    url, pg_dir = start_pg()
    cleanups.append(lambda: stop_pg(pg_dir))
    password = secrets.token_urlsafe(18)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "UPDRAFT_HOME": home,
           "UPDRAFT__CORE__DAGS_FOLDER": dags, "UPDRAFT__SERVER__PORT": str(free_port()),
           "UPDRAFT__LOGGING__LEVEL": "warn", "NO_COLOR": "1", "DATABASE_URL": url,
           "UPDRAFT__AUTH__ADMIN_PASSWORD": password,
           "UPDRAFT__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()}
    server = Server(binary, env, work)
    cleanups.append(server.stop)
    result = {"backend": "postgres", "health_ms": server.wait_healthy(60)}
    server.login(password)
    print(f"  waiting for the DAG processor to parse {N_DAGS} DAG files …", file=sys.stderr, flush=True)
    result["parse_s"] = wait_parsed(server, url)
    print(f"  inserting {N_DAGS * RUNS_PER_DAG} runs and {N_DAGS * RUNS_PER_DAG * TASKS_PER_DAG} task "
          "instances …", file=sys.stderr, flush=True)
    result["data"] = load(url)
    result["rss_before_mib"] = proc_status(server.proc.pid, "VmRSS") / 1024
    client = Client(server)
    cleanups.append(client.close)
    result["endpoints"], result["errors"] = {}, {}
    for name, path, expected, kind in endpoints():
        print(f"  {name}: GET /api/v2{path} …", file=sys.stderr, flush=True)
        try:
            result["endpoints"][name] = dict(measure(client, name, path, expected, requests), kind=kind)
        except BenchError as e:
            server.check_alive()  # a dead server ends the benchmark; a failing endpoint only itself
            print(f"error: {e}", file=sys.stderr, flush=True)
            result["errors"][name] = str(e)
    server.check_alive()
    result["reconnects"] = client.reconnects
    result["rss_after_mib"] = proc_status(server.proc.pid, "VmRSS") / 1024
    result["peak_rss_mib"] = proc_status(server.proc.pid, "VmHWM") / 1024
    result["threads"] = proc_status(server.proc.pid, "Threads")
    return result

# --- report ------------------------------------------------------------------------------------

def report(r, meta):
    d = r["data"]
    print(f"\nbinary: {meta['binary']} ({meta['commit']}), {meta['cores']} cores, PostgreSQL with fsync on; "
          f"{N_DAGS} DAGs, {d['runs']} runs, {d['task_instances']} task instances ({d['database_size']}); "
          f"{WARMUP} warm-up then {meta['requests']} requests per endpoint over one keep-alive connection\n")
    print("| endpoint | GET /api/v2… | total_entries | median | p95 | max | target | |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path, expected, kind in endpoints():
        shown = f"`{path}`"
        total = "" if expected is None else f"{expected[0]:,}"
        if name in r["errors"]:
            print(f"| {name} | {shown} | {total} | FAILED: {r['errors'][name].splitlines()[0]} | | | | |")
            continue
        st = r["endpoints"][name]["ms"]
        target = f"median < {TARGET_MS:.0f} ms" if kind else ""
        mark = ("ok" if st["median"] < TARGET_MS else "OVER target") if kind else ""
        print(f"| {name} | {shown} | {total} | {st['median']:.2f} ms | {st['p95']:.2f} ms | {st['max']:.2f} ms "
              f"| {target} | {mark} |")
    print(f"\nserver: health 200 after {r['health_ms']:.0f} ms; {N_DAGS} DAGs parsed {r['parse_s']:.1f} s after "
          f"login; SQL load {d['load_s']:.1f} s; RSS {r['rss_before_mib']:.1f} MiB before the requests, "
          f"{r['rss_after_mib']:.1f} MiB after (peak {r['peak_rss_mib']:.1f} MiB), {r['threads']} threads; "
          f"reconnects: {r['reconnects']}")

# --- main --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200, help=f"measured requests per endpoint (after {WARMUP} warm-up)")
    ap.add_argument("--binary", help="use this updraft binary instead of building one")
    args = ap.parse_args()
    if args.requests < 1:
        ap.error("--requests must be at least 1")

    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the server and PostgreSQL.
    signal.signal(signal.SIGTERM, interrupt)
    cleanups = []
    try:
        binary = build(args.binary)
        psql_binary()  # fail before starting anything
        # A private copy: others rebuilding target/ mid-run must not swap the binary under us.
        copy_dir = tempfile.mkdtemp(prefix="updraft-bench-bin-")
        cleanups.append(lambda: shutil.rmtree(copy_dir, ignore_errors=True))
        run_binary = shutil.copy2(binary, os.path.join(copy_dir, "updraft"))
        meta = {"binary": binary, "commit": git_commit(), "cores": os.cpu_count(), "requests": args.requests,
                "warmup": WARMUP, "size_mib": os.path.getsize(binary) / 2**20}
        print("benchmarking the API on postgres …", file=sys.stderr, flush=True)
        result = bench(run_binary, args.requests, cleanups)
    except BenchError as e:
        raise SystemExit(f"error: {e}")
    except KeyboardInterrupt:
        raise SystemExit("interrupted")
    finally:
        run_cleanups(cleanups)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    result.update(meta, date=stamp, targets={"median_ms": TARGET_MS, "kinds": ["dags", "runs", "tis"]},
                  shape={"dags": N_DAGS, "runs_per_dag": RUNS_PER_DAG, "tasks_per_dag": TASKS_PER_DAG})
    os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
    path = os.path.join(REPO, "bench", "results", f"api-postgres-{stamp}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"  wrote {os.path.relpath(path, REPO)}", file=sys.stderr, flush=True)
    report(result, meta)
    if result["errors"]:
        raise SystemExit("\nfailed (details above):\n" + "\n".join(
            f"  {k}: {v.splitlines()[0]}" for k, v in result["errors"].items()))

if __name__ == "__main__":
    main()
