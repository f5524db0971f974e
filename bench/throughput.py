#!/usr/bin/env python3
"""Throughput benchmark (scale-out): many task instances through separate `updraft api`,
`updraft scheduler` and N `updraft worker` processes on one PostgreSQL.

The issue's target: >= 2,000 `empty` tasks/s with 4 worker processes on this 2-core machine, and
scheduler latency ready -> running p99 <= 50 ms.

PostgreSQL comes from `scripts/pg-test-server.sh start --durable` (fsync on), started once; each
worker count N (1, 2, 4) gets a fresh database (CREATE DATABASE) and fresh processes: 1 api, 1
scheduler (which also runs the DAG processor), N workers with `--concurrency C`, each with its own
UPDRAFT_HOME, the same DAG folder, DATABASE_URL and UPDRAFT__CORE__FERNET_KEY.

DAGs (generated, unpaused, no schedule, max_active_runs 100, max_active_tasks 1000; the default
pool of 128 slots is left as it is):
  tput_empty: 100 independent `empty` tasks;  tput_bash: 20 independent bash `true` tasks.

Per shape: one warm-up run (waited for, not counted), then R runs (`tput_<shape>_001` …) triggered
one after another as fast as possible with POST /api/v2/dags/{dag_id}/dagRuns over ONE keep-alive
connection, then GET .../dagRuns?state=success&limit=1 polled every 0.1 s until all R are
`success` (any `failed` fails the shape). Then from the database (psql):
  - tasks/s = task instances / (last task end_date - first run queued_at);
  - ready -> running per task instance = start_date - scheduled_dttm (the scheduler stamps
    scheduled_dttm in the tick that first finds the task ready, whether it queues it at once or
    holds it for a pool or max_active_tasks slot; for these independent tasks it equals the run's
    start_date), p50/p99;
  - queued -> running = start_date - queued_dttm (waiting in the queue for a worker's claim);
  - trigger -> run running = dag_run.start_date - queued_at.
CPU seconds of every process (api, scheduler, workers with their children, PostgreSQL's
postmaster and backends) over the shape show where the time went.

Usage: bench/throughput.py [--binary PATH] [--workers 1,2,4] [--runs 100] [--shape empty|bash|both]
                           [--concurrency 32]
Builds the release binary first unless --binary is given. Writes the figures as JSON to
bench/results/throughput-postgres-<UTC timestamp>.json and prints a markdown table. Helpers
(server, PostgreSQL, build, clean-up) are bench/engine.py's, psql is bench/api.py's.
"""
import argparse, base64, datetime, http.client, json, os, secrets, shutil, signal, subprocess, sys, tempfile, time

from engine import (REPO, BenchError, Server, build, free_port, git_commit, interrupt, run_cleanups, start_pg,
                    stop_pg)
from api import psql, psql_binary

SHAPES = {"empty": ("tput_empty", 100, "operator: empty"),
          "bash": ("tput_bash", 20, "operator: bash\n    with: {bash_command: 'true'}")}
TARGET_TPS = 2000.0        # empty tasks/s with 4 workers
TARGET_P99_MS = 50.0       # ready -> running p99
RUN_TIMEOUT_S = 600        # for all R runs of a shape; a debug build on a busy machine is slow
START_TIMEOUT_S = 60

# --- DAG files ---------------------------------------------------------------------------------

def dag_yaml(shape):
    dag_id, n, op = SHAPES[shape]
    head = [f"dag_id: {dag_id}", "schedule: null", "is_paused_upon_creation: false",
            "max_active_runs: 100", "max_active_tasks: 1000", "tasks:"]
    return "\n".join(head + [f"  - id: t{i:03d}\n    {op}" for i in range(n)]) + "\n"

# --- processes ---------------------------------------------------------------------------------

class Role(Server):
    """One `updraft api|scheduler|worker …` process in its own session (Server's helpers:
    request, wait_healthy, login, stop, stderr_tail)."""

    def __init__(self, binary, name, args, env, workdir):
        self.name, self.env = name, env
        self.port = int(env["UPDRAFT__SERVER__PORT"])
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = self.root + "/api/v2"
        self.token = None
        self.stderr_path = os.path.join(workdir, f"{name}.log")
        self.stderr = open(self.stderr_path, "wb")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen([binary, *args], env=env, stdout=self.stderr, stderr=self.stderr,
                                     start_new_session=True)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"updraft {self.name} exited with status {self.proc.returncode}\n{self.stderr_tail()}")

    def stderr_tail(self, lines=30):
        return super().stderr_tail(lines).replace("--- server output", f"--- {self.name} output")

def proc_cpu_s(pid, children=True):
    """utime+stime (and the waited-for children's, e.g. a worker's bash processes) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(parts[11]) + int(parts[12]) + (int(parts[13]) + int(parts[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")

def pg_cpu_s(pg_dir):
    """PostgreSQL's CPU: the postmaster with its exited children, plus its live children."""
    try:
        with open(os.path.join(pg_dir, "data", "postmaster.pid")) as f:
            master = int(f.readline())
    except (OSError, ValueError):
        return 0.0
    total = proc_cpu_s(master)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == master:
            total += proc_cpu_s(int(entry))
    return total

def machine_cpu():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v) - idle, sum(v)

class Client:
    """One keep-alive HTTP/1.1 connection to the api process, reopened only if it closes."""

    def __init__(self, api):
        self.api, self.conn, self.reconnects = api, None, -1
        self.headers = {"Authorization": f"Bearer {api.token}", "Accept": "application/json",
                        "Content-Type": "application/json"}

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.api.port, timeout=60)
                self.reconnects += 1
            try:
                self.conn.request(method, "/api/v2" + path, body=data, headers=self.headers)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, OSError) as e:
                self.conn.close(); self.conn = None
                self.api.check_alive()
                if attempt == 2:
                    raise BenchError(f"{method} /api/v2{path}: {e!r} (twice, on a fresh connection too)")
                continue
            if r.will_close:
                self.conn.close(); self.conn = None
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw.decode("utf-8", "replace")

    def close(self):
        if self.conn is not None:
            self.conn.close()

# --- one worker count --------------------------------------------------------------------------

class Cluster:
    def __init__(self, binary, n_workers, concurrency, url, pg_dir, cleanups):
        self.n, self.url, self.pg_dir = n_workers, url, pg_dir
        self.work = tempfile.mkdtemp(prefix=f"updraft-bench-tput-w{n_workers}-")
        if os.environ.get("UPDRAFT_BENCH_KEEP"):
            print(f"  keeping the process logs in {self.work}", file=sys.stderr, flush=True)
        else:
            cleanups.append(lambda: shutil.rmtree(self.work, ignore_errors=True))
        dags = os.path.join(self.work, "dags")
        os.makedirs(dags)
        for shape in SHAPES:
            dag_id, _, _ = SHAPES[shape]
            with open(os.path.join(dags, f"{dag_id}.yaml"), "w") as f:
                f.write(dag_yaml(shape))
        # A fresh database for this worker count.
        db = f"tput_w{n_workers}_{secrets.token_hex(3)}"
        psql(url, f"CREATE DATABASE {db}")
        self.db_url = url.rsplit("/", 1)[0] + "/" + db
        self.password = secrets.token_urlsafe(18)
        common = {"PATH": os.environ.get("PATH", ""), "NO_COLOR": "1", "UPDRAFT__LOGGING__LEVEL": "warn",
                  "DATABASE_URL": self.db_url, "UPDRAFT__CORE__DAGS_FOLDER": dags,
                  "UPDRAFT__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
                  "UPDRAFT__AUTH__ADMIN_PASSWORD": self.password,
                  "UPDRAFT__SERVER__PORT": str(free_port())}

        def env(name):
            home = os.path.join(self.work, name)
            os.makedirs(home)
            e = dict(common, HOME=home, UPDRAFT_HOME=home)
            # For finding where the time goes, e.g. UPDRAFT_BENCH_LOG_SCHEDULER=sqlx=debug,warn
            # (every statement with its time); the logs stay in the temp dir unless KEEP is set.
            level = os.environ.get(f"UPDRAFT_BENCH_LOG_{name.rstrip('0123456789').upper()}")
            if level:
                e["UPDRAFT__LOGGING__LEVEL"] = level
            return e

        # The api first: it migrates the fresh database (the others would wait on the migration
        # lock anyway) and creates the admin user.
        self.api = Role(binary, "api", ["api"], env("api"), self.work)
        cleanups.append(self.api.stop)
        self.health_ms = self.api.wait_healthy(START_TIMEOUT_S)
        self.scheduler = Role(binary, "scheduler", ["scheduler"], env("scheduler"), self.work)
        cleanups.append(self.scheduler.stop)
        self.workers = []
        for i in range(1, n_workers + 1):
            w = Role(binary, f"worker{i}", ["worker", "--concurrency", str(concurrency)], env(f"worker{i}"),
                     self.work)
            cleanups.append(w.stop)
            self.workers.append(w)
        self.roles = [self.api, self.scheduler, *self.workers]
        self.api.login(self.password)
        self.client = Client(self.api)
        cleanups.append(self.client.close)
        self.wait_ready()

    def check_alive(self):
        for r in self.roles:
            r.check_alive()

    def wait_ready(self):
        """Until the scheduler and the N workers have registered and both DAGs are parsed."""
        t0 = time.perf_counter()
        while True:
            self.check_alive()
            jobs = psql(self.db_url, "SELECT count(*) FILTER (WHERE job_type = 'WorkerJob') || ',' || "
                                     "count(*) FILTER (WHERE job_type = 'SchedulerJob') FROM job "
                                     "WHERE state = 'running'")
            workers, schedulers = (int(x) for x in jobs.split(","))
            parsed = all(self.client.request("GET", f"/dags/{d}")[0] == 200 for d, _, _ in SHAPES.values())
            if workers == self.n and schedulers >= 1 and parsed:
                return
            if time.perf_counter() - t0 > START_TIMEOUT_S:
                raise BenchError(f"after {START_TIMEOUT_S} s: {workers} of {self.n} workers and {schedulers} "
                                 f"schedulers registered, DAGs parsed: {parsed}\n{self.scheduler.stderr_tail()}")
            time.sleep(0.2)

    def cpu(self):
        out = {r.name: proc_cpu_s(r.proc.pid) for r in self.roles}
        out["postgres"] = pg_cpu_s(self.pg_dir)
        return out

    def trigger(self, dag_id, run_id):
        status, body = self.client.request("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id,
                                                                               "logical_date": None})
        if status != 200:
            self.check_alive()
            raise BenchError(f"triggering {dag_id}/{run_id}: HTTP {status}: {body}")

    def count_runs(self, dag_id, state):
        status, body = self.client.request("GET", f"/dags/{dag_id}/dagRuns?state={state}&limit=1")
        if status != 200:
            raise BenchError(f"GET /dags/{dag_id}/dagRuns?state={state}: HTTP {status}: {body}")
        return body["total_entries"]

    def wait_success(self, dag_id, expected, t0):
        while True:
            done = self.count_runs(dag_id, "success")
            if done >= expected:
                return time.perf_counter() - t0
            failed = self.count_runs(dag_id, "failed")
            if failed:
                raise BenchError(f"{failed} runs of {dag_id} failed\n{self.tail_all()}")
            if time.perf_counter() - t0 > RUN_TIMEOUT_S:
                left = psql(self.db_url, f"SELECT coalesce(state, 'none') || ' ' || count(*) FROM task_instance "
                                         f"WHERE dag_id = '{dag_id}' GROUP BY state")
                raise BenchError(f"{done} of {expected} runs of {dag_id} in success after {RUN_TIMEOUT_S} s; "
                                 f"task instances by state: {left.splitlines()}\n{self.tail_all()}")
            self.check_alive()
            time.sleep(0.1)

    def tail_all(self):
        return "\n".join(r.stderr_tail(10) for r in self.roles)

# --- figures from the database -----------------------------------------------------------------

def figures_sql(dag_id, prefix):
    runs = f"r.dag_id = '{dag_id}' AND r.run_id LIKE '{prefix}%'"
    ms = "1000 * extract(epoch FROM {})"
    pct = "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY {})"
    ready = ms.format("ti.start_date - ti.scheduled_dttm")
    queued = ms.format("ti.start_date - ti.queued_dttm")
    since_run = ms.format("ti.start_date - r.start_date")
    duration = ms.format("ti.end_date - ti.start_date")
    run_start = ms.format("r.start_date - r.queued_at")
    return f"""
SELECT json_build_object(
  'runs', (SELECT count(*) FROM dag_run r WHERE {runs}),
  'runs_success', (SELECT count(*) FROM dag_run r WHERE {runs} AND r.state = 'success'),
  'tasks', count(*),
  'tasks_success', count(*) FILTER (WHERE ti.state = 'success'),
  'max_try', max(ti.try_number),
  'span_s', extract(epoch FROM max(ti.end_date) - min(r.queued_at)),
  'first_start_to_last_end_s', extract(epoch FROM max(ti.end_date) - min(ti.start_date)),
  'last_queued_at_s', extract(epoch FROM max(r.queued_at) - min(r.queued_at)),
  'ready_to_running_ms', {pct.format(ready)},
  'ready_to_running_max_ms', max({ready}),
  'queued_to_running_ms', {pct.format(queued)},
  'queued_to_running_max_ms', max({queued}),
  'run_start_to_running_ms', {pct.format(since_run)},
  'task_duration_ms', {pct.format(duration)},
  'trigger_to_run_running_ms', (SELECT {pct.format(run_start)} FROM dag_run r WHERE {runs}),
  'tis_scheduled_before_queued', count(*) FILTER (WHERE ti.queued_dttm > ti.scheduled_dttm),
  'queue_passes', (SELECT json_build_object(
      'n', count(*), 'tasks_per_pass', {pct.format("n")},
      'gap_ms', (SELECT {pct.format("g")} FROM (SELECT 1000 * extract(epoch FROM q - lag(q) OVER (ORDER BY q)) AS g
                 FROM (SELECT DISTINCT ti.queued_dttm AS q FROM task_instance ti JOIN dag_run r
                       ON r.id = ti.dag_run_id WHERE {runs}) d) gg WHERE g IS NOT NULL))
    FROM (SELECT ti.queued_dttm, count(*) AS n FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
          WHERE {runs} GROUP BY ti.queued_dttm) p)
)
FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id
WHERE {runs}
"""

def bench_shape(cluster, shape, runs):
    dag_id, per_run, _ = SHAPES[shape]
    prefix = f"{dag_id}_"
    # Warm-up: one run, waited for (DAG cache, connections), not counted.
    t0 = time.perf_counter()
    cluster.trigger(dag_id, "warmup")
    cluster.wait_success(dag_id, 1, t0)
    time.sleep(1)  # let the processes settle before the burst
    cpu0, m0, t0 = cluster.cpu(), machine_cpu(), time.perf_counter()
    for n in range(1, runs + 1):
        cluster.trigger(dag_id, f"{prefix}{n:03d}")
    trigger_s = time.perf_counter() - t0
    wall = cluster.wait_success(dag_id, runs + 1, t0)
    cpu1, m1 = cluster.cpu(), machine_cpu()
    f = json.loads(psql(cluster.db_url, figures_sql(dag_id, prefix)))
    if f["runs_success"] != runs or f["tasks_success"] != runs * per_run or f["tasks"] != runs * per_run:
        raise BenchError(f"{dag_id}: {f['runs_success']} of {runs} runs and {f['tasks_success']} of "
                         f"{runs * per_run} task instances in success ({f['tasks']} task instances)")
    f.update(shape=shape, dag_id=dag_id, workers=cluster.n, wall_s=wall, trigger_s=trigger_s,
             tasks_per_s=f["tasks"] / f["span_s"],
             cpu_s={k: round(cpu1[k] - cpu0[k], 2) for k in cpu1},
             machine_busy_pct=100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]))
    return f

# --- report ------------------------------------------------------------------------------------

def p(v, i):
    return "–" if v is None else f"{v[i]:.1f}"

def report(results, meta):
    print(f"\nbinary: {meta['binary']} ({meta['commit']}, {meta['profile']}), {meta['cores']} cores, PostgreSQL "
          f"with fsync on; 1 api + 1 scheduler + N workers (--concurrency {meta['concurrency']}); "
          f"{meta['runs']} runs per shape after one warm-up\n")
    print("| workers | shape | tasks | wall s | tasks/s | ready → running p50 / p99 ms | "
          "queued → running p50 / p99 ms | trigger → run running p50 / p99 ms | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['workers']} | {r['shape']} | FAILED: {r['error'].splitlines()[0]} | | | | | | |")
            continue
        marks = []
        if r["shape"] == "empty" and r["workers"] == 4:
            marks.append(f"≥ {TARGET_TPS:.0f}/s: {'met' if r['tasks_per_s'] >= TARGET_TPS else 'MISSED'}")
        marks.append(f"p99 ≤ {TARGET_P99_MS:.0f} ms: "
                     f"{'met' if r['ready_to_running_ms'][1] <= TARGET_P99_MS else 'MISSED'}")
        print(f"| {r['workers']} | {r['shape']} | {r['tasks']:,} | {r['span_s']:.2f} | {r['tasks_per_s']:.0f} | "
              f"{p(r['ready_to_running_ms'], 0)} / {p(r['ready_to_running_ms'], 1)} | "
              f"{p(r['queued_to_running_ms'], 0)} / {p(r['queued_to_running_ms'], 1)} | "
              f"{p(r['trigger_to_run_running_ms'], 0)} / {p(r['trigger_to_run_running_ms'], 1)} | "
              f"{'; '.join(marks)} |")
    print("\nwall s = first run queued_at → last task end_date (the tasks/s denominator); "
          "client-side and CPU seconds:\n")
    print("| workers | shape | triggering R runs s | trigger → all success seen s | CPU s: api | scheduler | "
          "workers (each) | postgres | machine busy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            continue
        c = r["cpu_s"]
        each = [v for k, v in c.items() if k.startswith("worker")]
        print(f"| {r['workers']} | {r['shape']} | {r['trigger_s']:.2f} | {r['wall_s']:.2f} | {c['api']:.2f} | "
              f"{c['scheduler']:.2f} | {sum(each):.2f} ({', '.join(f'{v:.2f}' for v in each)}) | "
              f"{c['postgres']:.2f} | {r['machine_busy_pct']:.0f} % |")
    print("\nscheduler passes that queued tasks (distinct task_instance.queued_dttm, the pass's clock):\n")
    print("| workers | shape | passes | tasks queued per pass p50 / p99 | time between passes p50 / p99 ms |")
    print("|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            continue
        q = r["queue_passes"]
        print(f"| {r['workers']} | {r['shape']} | {q['n']} | {p(q['tasks_per_pass'], 0)} / {p(q['tasks_per_pass'], 1)} | "
              f"{p(q['gap_ms'], 0)} / {p(q['gap_ms'], 1)} |")

# --- main --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", help="use this updraft binary instead of building one")
    ap.add_argument("--workers", default="1,2,4", help="comma-separated worker process counts")
    ap.add_argument("--runs", type=int, default=100, help="runs per shape (after one warm-up)")
    ap.add_argument("--shape", choices=("empty", "bash", "both"), default="both")
    ap.add_argument("--concurrency", type=int, default=32, help="--concurrency of each worker")
    args = ap.parse_args()
    try:
        counts = [int(x) for x in args.workers.split(",") if x]
    except ValueError:
        ap.error("--workers takes numbers, e.g. 1,2,4")
    if not counts or min(counts) < 1 or args.runs < 1 or args.runs > 999 or args.concurrency < 1:
        ap.error("need at least one worker count >= 1, 1 <= --runs <= 999, --concurrency >= 1")
    shapes = ["empty", "bash"] if args.shape == "both" else [args.shape]

    signal.signal(signal.SIGTERM, interrupt)
    cleanups, results = [], []
    try:
        binary = build(args.binary)
        psql_binary()
        copy_dir = tempfile.mkdtemp(prefix="updraft-bench-bin-")
        cleanups.append(lambda: shutil.rmtree(copy_dir, ignore_errors=True))
        run_binary = shutil.copy2(binary, os.path.join(copy_dir, "updraft"))
        meta = {"binary": binary, "commit": git_commit(), "cores": os.cpu_count(), "runs": args.runs,
                "concurrency": args.concurrency, "workers": counts, "shapes": shapes,
                "profile": "debug" if "/debug/" in binary else "release"}
        url, pg_dir = start_pg()
        cleanups.append(lambda: stop_pg(pg_dir))
        for n in counts:
            print(f"{n} worker(s): starting api, scheduler and workers on a fresh database …",
                  file=sys.stderr, flush=True)
            cluster_cleanups = []
            try:
                cluster = Cluster(run_binary, n, args.concurrency, url, pg_dir, cluster_cleanups)
                for shape in shapes:
                    print(f"  {n} worker(s), {shape}: {args.runs} runs …", file=sys.stderr, flush=True)
                    try:
                        r = bench_shape(cluster, shape, args.runs)
                        print(f"    {r['tasks']} tasks, {r['tasks_per_s']:.0f} tasks/s, ready → running p99 "
                              f"{r['ready_to_running_ms'][1]:.1f} ms", file=sys.stderr, flush=True)
                    except BenchError as e:
                        cluster.check_alive()
                        print(f"error: {n} workers, {shape}: {e}", file=sys.stderr, flush=True)
                        r = {"workers": n, "shape": shape, "error": str(e)}
                    results.append(r)
            except BenchError as e:
                print(f"error: {n} workers: {e}", file=sys.stderr, flush=True)
                results.extend({"workers": n, "shape": s, "error": str(e)} for s in shapes
                               if not any(r["workers"] == n and r["shape"] == s for r in results))
            finally:
                run_cleanups(cluster_cleanups)
    except BenchError as e:
        raise SystemExit(f"error: {e}")
    except KeyboardInterrupt:
        raise SystemExit("interrupted")
    finally:
        run_cleanups(cleanups)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = dict(meta, date=stamp, results=results, targets={"empty_tasks_per_s_4_workers": TARGET_TPS,
                                                           "ready_to_running_p99_ms": TARGET_P99_MS})
    os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
    path = os.path.join(REPO, "bench", "results", f"throughput-postgres-{stamp}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"  wrote {os.path.relpath(path, REPO)}", file=sys.stderr, flush=True)
    report(results, meta)
    failed = [r for r in results if "error" in r]
    if failed:
        raise SystemExit("\nfailed (details above):\n" + "\n".join(
            f"  {r['workers']} workers, {r['shape']}: {r['error'].splitlines()[0]}" for r in failed))

if __name__ == "__main__":
    main()
