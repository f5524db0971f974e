#!/usr/bin/env python3
"""Engine benchmark: how fast `updraft serve` runs small DAGs, end to end over the REST API.

For each backend (embedded SQLite; PostgreSQL with fsync on, from `scripts/pg-test-server.sh
start --durable`) it starts a fresh server on generated DAG files and measures:
  - time from process spawn to the first 200 from /api/v2/monitor/health,
  - idle CPU (utime+stime from /proc, % of one core) and RSS, 5 s after start and again after
    the runs,
  - per shape, one warm-up run then N runs one after another: the wall time from the trigger
    (POST .../dagRuns) to `success` seen by polling the run every 0.1 s (how the Airflow
    baseline was measured), the run's own queued_at → end_date, and from the task instances the
    scheduling gaps (a task's end_date to the next task's start_date).

Shapes: chain40 (40 chained bash `true`), fan100 (start → 100 parallel bash `true` → end),
chain10_python (10 chained python tasks running `pass`). DAG settings are the defaults
(max_active_tasks 16, worker.concurrency 32), as a user would have them.

The server gets a random admin password (UPDRAFT__AUTH__ADMIN_PASSWORD; on PostgreSQL also a
fresh UPDRAFT__CORE__FERNET_KEY); the harness gets a JWT once from POST /auth/token and sends it
as `Authorization: Bearer` on every API request but health.

Usage: bench/engine.py [--runs 5] [--backend sqlite|postgres|both] [--binary PATH]
                       [--shapes chain40,fan100,chain10_python] [--idle 10]
Builds the release binary first unless --binary is given. Writes the figures as JSON to
bench/results/engine-<backend>-<UTC timestamp>.json and prints a markdown table.
"""
import argparse, base64, datetime, json, os, re, secrets, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.error, urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = ("chain40", "fan100", "chain10_python")
# (target, goal) in seconds, for the run's wall time.
TARGETS = {"chain40": (2.0, 0.4), "fan100": (1.0, 0.3), "chain10_python": (1.2, 0.6)}
GAP_TARGET = (0.020, 0.005)
RSS_TARGET_MIB = 50
SETTLE_S = 5  # idle is sampled this long after start-up (and after the last run)
RUN_TIMEOUT_S = 30  # a healthy run takes a second or two

class BenchError(Exception):
    pass

# --- DAG files ---------------------------------------------------------------------------------

def dag_yaml(shape):
    dag_id = f"bench_{shape}"
    head = [f"dag_id: {dag_id}", "schedule: null", "is_paused_upon_creation: false", "tasks:"]
    bash = "    operator: bash\n    with: {bash_command: 'true'}"
    tasks = []
    if shape == "chain40":
        for i in range(40):
            dep = f"\n    depends_on: [t{i - 1:02d}]" if i else ""
            tasks.append(f"  - id: t{i:02d}\n{bash}{dep}")
    elif shape == "fan100":
        tasks.append(f"  - id: start\n{bash}")
        for i in range(100):
            tasks.append(f"  - id: p{i:03d}\n{bash}\n    depends_on: [start]")
        middle = ", ".join(f"p{i:03d}" for i in range(100))
        tasks.append(f"  - id: end\n{bash}\n    depends_on: [{middle}]")
    elif shape == "chain10_python":
        for i in range(10):
            dep = f"\n    depends_on: [t{i - 1:02d}]" if i else ""
            tasks.append(f"  - id: t{i:02d}\n    operator: python\n    with: {{code: pass}}{dep}")
    return dag_id, "\n".join(head + tasks) + "\n"

# --- process and HTTP helpers ------------------------------------------------------------------

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB for the Vm* fields
    return 0

def cpu_ticks(pid):
    # /proc/PID/stat fields 14 and 15 (utime, stime) cover all the process's threads.
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])

def parse_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))

def secs(a, b):
    return (parse_ts(b) - parse_ts(a)).total_seconds()

class Server:
    """`updraft serve` in its own session (Ctrl-C reaches us, and we stop it cleanly)."""

    def __init__(self, binary, env, workdir):
        self.env, self.port = env, int(env["UPDRAFT__SERVER__PORT"])
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = self.root + "/api/v2"
        self.token = None  # a JWT from login(), sent on every request once set
        self.stderr_path = os.path.join(workdir, "server.stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.stderr, stderr=self.stderr,
                                     start_new_session=True)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise BenchError(f"updraft serve exited with status {self.proc.returncode}\n{self.stderr_tail()}")

    def stderr_tail(self, lines=30):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            text = re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode("utf-8", "replace"))
        tail = text.splitlines()[-lines:]
        return "--- server output (last lines) ---\n" + "\n".join(tail) if tail else "(the server printed nothing)"

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = (self.root if path.startswith("/auth/") else self.base) + path
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")
        except OSError:
            self.check_alive()
            raise

    def wait_healthy(self, timeout=30):
        while time.perf_counter() - self.t_spawn < timeout:
            self.check_alive()
            try:
                status, body = self.request("GET", "/monitor/health")
                if status == 200 and body["metadatabase"]["status"] == "healthy":
                    return (time.perf_counter() - self.t_spawn) * 1000
            except (OSError, ValueError, KeyError, TypeError):
                pass
            time.sleep(0.002)
        raise BenchError(f"the server was not healthy within {timeout} s\n{self.stderr_tail()}")

    def login(self, password):
        status, body = self.request("POST", "/auth/token", {"username": "admin", "password": password})
        if status != 201:
            raise BenchError(f"POST /auth/token as admin: HTTP {status}: {body}\n{self.stderr_tail()}")
        self.token = body["access_token"]

    def sample_idle(self, window):
        self.check_alive()
        hz = os.sysconf("SC_CLK_TCK")
        c0, w0 = cpu_ticks(self.proc.pid), time.perf_counter()
        time.sleep(window)
        self.check_alive()
        c1, w1 = cpu_ticks(self.proc.pid), time.perf_counter()
        return {"cpu_pct": (c1 - c0) / hz / (w1 - w0) * 100, "cpu_ticks": c1 - c0,
                "rss_mib": proc_status(self.proc.pid, "VmRSS") / 1024,
                "peak_rss_mib": proc_status(self.proc.pid, "VmHWM") / 1024,
                "threads": proc_status(self.proc.pid, "Threads")}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill(); self.proc.wait()
        self.stderr.close()

# --- runs --------------------------------------------------------------------------------------

def trigger(server, dag_id, run_id):
    status, body = server.request("POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})
    return status, body

def wait_dag_known_and_trigger(server, dag_id, run_id, timeout=30):
    # The trigger answers 404 until the DAG processor has parsed the file.
    t0 = time.perf_counter()
    while True:
        status, body = trigger(server, dag_id, run_id)
        if status == 200:
            return
        if status != 404 or time.perf_counter() - t0 > timeout:
            raise BenchError(f"triggering {dag_id}: HTTP {status}: {body}")
        server.check_alive()
        time.sleep(0.1)

def wait_run(server, dag_id, run_id, t0):
    while True:
        status, run = server.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        if status != 200:
            raise BenchError(f"GET run {dag_id}/{run_id}: HTTP {status}: {run}")
        if run["state"] == "success":
            return time.perf_counter() - t0, run
        if run["state"] == "failed":
            raise BenchError(f"run {dag_id}/{run_id} failed; {unfinished(server, dag_id, run_id)}")
        if time.perf_counter() - t0 > RUN_TIMEOUT_S:
            raise BenchError(f"run {dag_id}/{run_id} still {run['state']} after {RUN_TIMEOUT_S} s; "
                             f"{unfinished(server, dag_id, run_id)}")
        server.check_alive()
        time.sleep(0.1)

def unfinished(server, dag_id, run_id):
    status, tis = server.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    bad = [f"{ti['task_id']}={ti['state']}" for ti in tis["task_instances"] if ti["state"] != "success"] \
        if status == 200 else [f"HTTP {status}"]
    more = f" (+{len(bad) - 10} more)" if len(bad) > 10 else ""
    return f"task instances not in success: {', '.join(bad[:10])}{more}\n{server.stderr_tail()}"

def run_once(server, dag_id, run_id):
    t0 = time.perf_counter()
    status, body = trigger(server, dag_id, run_id)
    if status != 200:
        raise BenchError(f"triggering {dag_id}: HTTP {status}: {body}")
    trigger_ms = (time.perf_counter() - t0) * 1000
    wall, run = wait_run(server, dag_id, run_id, t0)
    status, tis = server.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    if status != 200:
        raise BenchError(f"GET task instances of {dag_id}/{run_id}: HTTP {status}: {tis}")
    return {"run_id": run_id, "wall_s": wall, "trigger_ms": trigger_ms,
            "server_s": secs(run["queued_at"], run["end_date"]),
            "queued_to_start_s": secs(run["queued_at"], run["start_date"]),
            "tis": {ti["task_id"]: (ti["start_date"], ti["end_date"]) for ti in tis["task_instances"]}}

def ti_figures(shape, tis):
    """Scheduling gaps and task durations from one run's task instances."""
    durations = [secs(s, e) for s, e in tis.values()]
    if shape == "fan100":
        start_end = tis["start"][1]
        middle = [v for k, v in tis.items() if k.startswith("p")]
        first_start = min(parse_ts(s) for s, _ in middle)
        last_start = max(parse_ts(s) for s, _ in middle)
        last_end = max(parse_ts(e) for _, e in middle)
        return {"durations": durations, "gaps": {
            "start_end_to_first_start": (first_start - parse_ts(start_end)).total_seconds(),
            "start_end_to_last_start": (last_start - parse_ts(start_end)).total_seconds(),
            "last_end_to_end_start": (parse_ts(tis["end"][0]) - last_end).total_seconds()}}
    ids = sorted(tis)
    return {"durations": durations,
            "gaps": {"chain": [secs(tis[a][1], tis[b][0]) for a, b in zip(ids, ids[1:])]}}

def stats(xs):
    xs = sorted(xs)
    p95 = statistics.quantiles(xs, n=20, method="inclusive")[18] if len(xs) > 1 else xs[0]
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "p95": p95, "n": len(xs)}

def bench_shape(server, shape, runs):
    dag_id, _ = dag_yaml(shape)
    wait_dag_known_and_trigger(server, dag_id, "bench_warmup")
    wait_run(server, dag_id, "bench_warmup", time.perf_counter())
    results = [run_once(server, dag_id, f"bench_{n}") for n in range(1, runs + 1)]
    figures = [ti_figures(shape, r.pop("tis")) for r in results]
    for r, f in zip(results, figures):
        r["gaps_s"] = f["gaps"]
    gaps = {}
    for f in figures:
        for k, v in f["gaps"].items():
            gaps.setdefault(k, []).extend(v if isinstance(v, list) else [v])
    return {"dag_id": dag_id, "runs": results,
            "wall_s": stats([r["wall_s"] for r in results]),
            "server_s": stats([r["server_s"] for r in results]),
            "queued_to_start_s": stats([r["queued_to_start_s"] for r in results]),
            "trigger_ms": stats([r["trigger_ms"] for r in results]),
            "task_duration_s": stats([d for f in figures for d in f["durations"]]),
            "gaps_s": {k: stats(v) for k, v in gaps.items()}}

# --- backends ----------------------------------------------------------------------------------

def start_pg():
    out = subprocess.run([os.path.join(REPO, "scripts", "pg-test-server.sh"), "start", "--durable"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"scripts/pg-test-server.sh start --durable failed:\n{out.stderr}")
    exports = {}
    for line in out.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        exports[name] = value.strip("'")
    return exports["UPDRAFT_TEST_PG_URL"], exports["UPDRAFT_TEST_PG_DIR"]

def stop_pg(pg_dir):
    subprocess.run([os.path.join(REPO, "scripts", "pg-test-server.sh"), "stop", pg_dir],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def bench_backend(backend, binary, shapes, runs, idle_s, cleanups):
    work = tempfile.mkdtemp(prefix=f"updraft-bench-engine-{backend}-")
    cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
    home, dags = os.path.join(work, "home"), os.path.join(work, "dags")
    os.makedirs(home); os.makedirs(dags)
    for shape in shapes:
        dag_id, text = dag_yaml(shape)
        with open(os.path.join(dags, f"{dag_id}.yaml"), "w") as f:
            f.write(text)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "UPDRAFT_HOME": home,
           "UPDRAFT__CORE__DAGS_FOLDER": dags, "UPDRAFT__SERVER__PORT": str(free_port()),
           "UPDRAFT__LOGGING__LEVEL": "warn", "NO_COLOR": "1",
           "UPDRAFT__AUTH__ADMIN_PASSWORD": secrets.token_urlsafe(18)}
    if backend == "postgres":
        url, pg_dir = start_pg()
        cleanups.append(lambda: stop_pg(pg_dir))
        env["DATABASE_URL"] = url
        # PostgreSQL refuses to start without a shared key (SQLite generates one in UPDRAFT_HOME).
        env["UPDRAFT__CORE__FERNET_KEY"] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    server = Server(binary, env, work)
    cleanups.append(server.stop)
    result = {"backend": backend, "health_ms": server.wait_healthy()}
    server.login(env["UPDRAFT__AUTH__ADMIN_PASSWORD"])
    time.sleep(max(0.0, SETTLE_S - (time.perf_counter() - server.t_spawn)))
    result["idle_start"] = server.sample_idle(idle_s)
    result["shapes"], result["errors"] = {}, {}
    for shape in shapes:
        print(f"  {backend}: {shape} …", file=sys.stderr, flush=True)
        try:
            result["shapes"][shape] = bench_shape(server, shape, runs)
        except BenchError as e:
            server.check_alive()  # a dead server ends this backend; a failed shape only itself
            print(f"error: {backend}, {shape}: {e}", file=sys.stderr, flush=True)
            result["errors"][shape] = str(e)
    time.sleep(SETTLE_S)
    result["idle_after"] = server.sample_idle(idle_s)
    return result

# --- report ------------------------------------------------------------------------------------

def fmt_s(st, unit=1.0, digits=3, suffix=" s"):
    return (f"{st['median'] * unit:.{digits}f}{suffix} "
            f"({st['min'] * unit:.{digits}f}–{st['max'] * unit:.{digits}f})")

def verdict(value, target, goal):
    return "goal met" if value <= goal else ("ok" if value <= target else "OVER target")

def report(results, meta):
    print(f"\nbinary: {meta['binary']} ({meta['commit']}), {meta['cores']} cores, "
          f"{meta['runs']} runs per shape after one warm-up, times as median (min–max)\n")
    print("| backend | shape | wall, polled 0.1 s | in server (queued → end) | target (goal) | |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for shape in SHAPES:
            if shape in r["errors"]:
                print(f"| {r['backend']} | {shape} | FAILED: {r['errors'][shape].splitlines()[0]} | | | |")
            if shape not in r["shapes"]:
                continue
            s = r["shapes"][shape]
            target, goal = TARGETS[shape]
            print(f"| {r['backend']} | {shape} | {fmt_s(s['wall_s'])} | {fmt_s(s['server_s'])} | "
                  f"≤ {target} s ({goal} s) | {verdict(s['wall_s']['median'], target, goal)} |")
    print("\n| backend | shape | gap | median | min | p95 | max | target (goal) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        for shape, s in r["shapes"].items():
            rows = [(k, v) for k, v in s["gaps_s"].items()]
            rows.append(("task duration (start → end)", s["task_duration_s"]))
            rows.append(("run queued → running", s["queued_to_start_s"]))
            for name, st in rows:
                mark = (f"≤ {GAP_TARGET[0] * 1000:.0f} ms ({GAP_TARGET[1] * 1000:.0f} ms): "
                        f"{verdict(st['median'], *GAP_TARGET)}") if name == "chain" else ""
                print(f"| {r['backend']} | {shape} | {name} | {st['median'] * 1000:.1f} ms | "
                      f"{st['min'] * 1000:.1f} ms | {st['p95'] * 1000:.1f} ms | {st['max'] * 1000:.1f} ms | {mark} |")
    print("\n| backend | health 200 after start | idle CPU, RSS after start | idle CPU, RSS after the runs "
          "| peak RSS | threads | target |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        a, b = r["idle_start"], r["idle_after"]
        print(f"| {r['backend']} | {r['health_ms']:.1f} ms | {a['cpu_pct']:.2f} %, {a['rss_mib']:.1f} MiB | "
              f"{b['cpu_pct']:.2f} %, {b['rss_mib']:.1f} MiB | {b['peak_rss_mib']:.1f} MiB | {b['threads']} | "
              f"~0 %, ≤ {RSS_TARGET_MIB} MiB |")

# --- main --------------------------------------------------------------------------------------

def build(binary_arg):
    if binary_arg:
        if not os.access(binary_arg, os.X_OK):
            raise BenchError(f"{binary_arg} is not an executable")
        return binary_arg
    print("cargo build --release -p updraft …", file=sys.stderr, flush=True)
    if subprocess.run(["cargo", "build", "--release", "-p", "updraft"], cwd=REPO).returncode != 0:
        raise BenchError("cargo build --release -p updraft failed")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "updraft")

def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs per shape (after one warm-up)")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--binary", help="use this updraft binary instead of building one")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: " + ",".join(SHAPES))
    ap.add_argument("--idle", type=float, default=10.0, help="idle window in seconds")
    args = ap.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes or args.runs < 1:
        ap.error(f"unknown shapes {unknown}; choose from {','.join(SHAPES)}" if unknown else "nothing to run")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]

    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the server and PostgreSQL.
    signal.signal(signal.SIGTERM, interrupt)
    results, failed, cleanups = [], {}, []
    try:
        binary = build(args.binary)
        # A private copy: others rebuilding target/ mid-run must not swap the binary under us.
        copy_dir = tempfile.mkdtemp(prefix="updraft-bench-bin-")
        cleanups.append(lambda: shutil.rmtree(copy_dir, ignore_errors=True))
        run_binary = shutil.copy2(binary, os.path.join(copy_dir, "updraft"))
        meta = {"binary": binary, "commit": git_commit(), "cores": os.cpu_count(), "runs": args.runs,
                "size_mib": os.path.getsize(binary) / 2**20}
        os.makedirs(os.path.join(REPO, "bench", "results"), exist_ok=True)
        for backend in backends:
            print(f"benchmarking {backend} …", file=sys.stderr, flush=True)
            backend_cleanups = []
            try:
                result = bench_backend(backend, run_binary, shapes, args.runs, args.idle, backend_cleanups)
            except BenchError as e:
                print(f"error: {backend}: {e}", file=sys.stderr, flush=True)
                failed[backend] = str(e).splitlines()[0]
                continue
            finally:
                run_cleanups(backend_cleanups)
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            result.update(meta, date=stamp, idle_window_s=args.idle, targets={
                "wall_s": TARGETS, "gap_s": GAP_TARGET, "idle_rss_mib": RSS_TARGET_MIB})
            path = os.path.join(REPO, "bench", "results", f"engine-{backend}-{stamp}.json")
            with open(path, "w") as f:
                json.dump(result, f, indent=2)
            print(f"  wrote {os.path.relpath(path, REPO)}", file=sys.stderr, flush=True)
            results.append(result)
    except BenchError as e:
        raise SystemExit(f"error: {e}")
    except KeyboardInterrupt:
        raise SystemExit("interrupted")
    finally:
        run_cleanups(cleanups)
    if results:
        report(results, meta)
    failed.update({f"{r['backend']}, {shape}": e.splitlines()[0] for r in results for shape, e in r["errors"].items()})
    if failed:
        raise SystemExit("\nfailed (details above):\n" + "\n".join(f"  {k}: {v}" for k, v in failed.items()))

def interrupt(signum, frame):
    raise KeyboardInterrupt

def run_cleanups(cleanups):
    # A second Ctrl-C (or a SIGTERM) must not leave a server or PostgreSQL behind.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while cleanups:
            try:
                cleanups.pop()()
            except Exception as e:  # keep cleaning up the rest
                print(f"cleanup: {e}", file=sys.stderr)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

if __name__ == "__main__":
    main()
