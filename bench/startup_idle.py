#!/usr/bin/env python3
"""Start-up and idle cost of `updraft serve` on the embedded SQLite.

Measures, over several runs with a fresh UPDRAFT_HOME each (so migrations run every time):
  - time from process spawn to the first 200 from /api/v2/monitor/health (polled every 2 ms),
  - CPU used while idle (utime+stime from /proc over a window, as % of one core),
  - resident memory after the idle window (VmRSS) and its peak (VmHWM).

Usage: bench/startup_idle.py [--binary target/release/updraft] [--runs 5] [--idle 10]
Build first: scripts/build-ui.sh && cargo build --release -p updraft
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, tempfile, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    return 0

def cpu_ticks(pid):
    # Sum over all threads: /proc/PID/stat fields 14 and 15 (utime, stime) cover the process.
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])

def one_run(binary, idle_s):
    home = tempfile.mkdtemp(prefix="updraft-bench-")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "UPDRAFT_HOME": home,
           "UPDRAFT__SERVER__PORT": str(port), "UPDRAFT__LOGGING__LEVEL": "warn"}
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready_ms = None
    try:
        while time.perf_counter() - t0 < 10:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        body = json.load(r)
                        assert body["metadatabase"]["status"] == "healthy", body
                        ready_ms = (time.perf_counter() - t0) * 1000
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.002)
        if ready_ms is None:
            raise SystemExit("server did not become healthy within 10 s")
        time.sleep(1)  # let start-up work settle
        hz = os.sysconf("SC_CLK_TCK")
        c0, w0 = cpu_ticks(proc.pid), time.perf_counter()
        time.sleep(idle_s)
        c1, w1 = cpu_ticks(proc.pid), time.perf_counter()
        cpu_pct = (c1 - c0) / hz / (w1 - w0) * 100
        rss = proc_status(proc.pid, "VmRSS") / 1024
        hwm = proc_status(proc.pid, "VmHWM") / 1024
        threads = proc_status(proc.pid, "Threads")
        return ready_ms, cpu_pct, rss, hwm, threads
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "updraft"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle", type=float, default=10.0, help="idle window in seconds")
    args = ap.parse_args()
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"{args.binary} not found: cargo build --release -p updraft")
    rows = [one_run(args.binary, args.idle) for _ in range(args.runs)]
    print(f"binary: {args.binary} ({os.path.getsize(args.binary) / 2**20:.1f} MiB), runs: {args.runs}, idle window: {args.idle:.0f} s")
    print(f"{'run':>3} {'health 200 (ms)':>16} {'idle CPU (%)':>13} {'RSS (MiB)':>10} {'peak RSS (MiB)':>15} {'threads':>8}")
    for i, (ms, cpu, rss, hwm, th) in enumerate(rows, 1):
        print(f"{i:>3} {ms:>16.1f} {cpu:>13.2f} {rss:>10.1f} {hwm:>15.1f} {th:>8}")
    med = lambda k: statistics.median(r[k] for r in rows)
    print(f"median: health 200 after {med(0):.1f} ms, idle CPU {med(1):.2f} %, RSS {med(2):.1f} MiB (peak {med(3):.1f} MiB)")

if __name__ == "__main__":
    main()
