#!/usr/bin/env python3
"""kvnode (raft mode) beside etcd, in one run, on the same machine and the same settings.
Not a test: it prints figures and the issue's goals beside them.

Both clusters: three members on loopback, heartbeat 50 ms, election timeout 250 ms (each member
randomizes in [250, 500) ms, as etcd does), pre-vote on, fsync on. etcd is Debian's etcd-server
(installed here if missing); it is driven through its v3 JSON gateway.

1. Failover: SIGKILL the leader, time until the first acknowledged put on a survivor. One Python
   writer for both (http.client, a put to each survivor in turn, 100 ms timeout each; a kvnode
   follower's 307 is followed), 30 trials each, the killed member restarted and a random pause
   before the next. Median with its order-statistic interval and that interval's exact coverage, max.
2. Durable puts with 16 and 64 clients, linearizable gets with 64: `kvctl load` (a closed-loop NIO
   generator of this project) against the leader of each, 100-byte values over 1000 keys. The
   host's steal time moves between runs, so the runs alternate (kvnode, etcd, kvnode, etcd, ...)
   for BENCH_ROUNDS rounds and each figure is the median over rounds; the steal of every run is
   printed. kvnode's WAL counters give the writes per fdatasync at 64 clients.
3. The same puts and gets from an outside load generator, Debian's wrk, with a Lua script for each
   API (bench/wrk/kvnode.lua: anonymous PUTs; bench/wrk/etcd.lua: the v3 gateway): 64 connections,
   10-s rounds, alternating, so that no figure rests on the project's own client alone.
4. kvnode resident memory with 100,000 keys of 100 bytes (loaded with mput), then with BENCH_GIB
   (1) GiB of 1-MiB values, against the data's size: the log must not keep what a snapshot holds.
5. Several Raft groups: durable puts x64 on the same three nodes with 1 and with 3 groups (clients
   sent to their key's group leader), first as they are (three nodes and the load generator on
   this machine's cores), then with each node capped at BENCH_NODE_CPU (0.5) of a CPU by a cgroup
   CPU quota, as if each node were a machine of its own: the case multi-Raft is made for, where
   one leader's CPU is one machine's.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration-tests"))
from conftest import BIN, free_ports  # noqa: E402
from bench import median_ci, pct  # noqa: E402
from kvhttp import request  # noqa: E402

TRIALS = int(os.environ.get("BENCH_FAILOVER_TRIALS", "30"))
NODE_CPU = float(os.environ.get("BENCH_NODE_CPU", "0.5"))
LOAD_SECONDS = os.environ.get("BENCH_LOAD_SECONDS", "5s")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
GIB = float(os.environ.get("BENCH_GIB", "1"))
WRK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk")
HEARTBEAT_MS, ELECTION_MS = 50, 250


def ensure_installed(binary, package, after=None):
    """`binary` on PATH, apt-installing Debian's `package` if it is missing and this is root."""
    if shutil.which(binary):
        return True
    if os.geteuid() != 0:
        print(f"{binary} is not installed and this is not root: apt-get install {package}, then run again")
        return False
    print(f"installing Debian's {package} (once) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", package], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    if after:
        after()
    return shutil.which(binary) is not None


def ensure_etcd():
    # The package enables a system etcd on 2379/2380; this benchmark runs its own.
    return ensure_installed("etcd", "etcd-server", after=lambda: subprocess.run(
        ["systemctl", "disable", "--now", "etcd"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def ensure_wrk():
    return ensure_installed("wrk", "wrk")


def wrk_ms(text):
    """wrk's latency with its unit (us, ms, s) in ms."""
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


def wrk(api, port, op, seconds=WRK_SECONDS, connections=64):
    t0, s0, _ = cpu_times()
    r = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", os.path.join(WRK_DIR, f"{api}.lua"),
                        f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60,
                       env=dict(os.environ, WRK_OP=op, WRK_LUA_DIR=WRK_DIR))
    if r.returncode != 0:
        raise RuntimeError(f"wrk {api} {op}: {r.stderr or r.stdout}")
    t1, s1, _ = cpu_times()
    out = {"steal_pct": 100 * (s1 - s0) / max(1, t1 - t0), "non2xx": 0, "errors": ""}
    lines = r.stdout.splitlines()
    for i, line in enumerate(lines):
        parts = line.split()
        if line.startswith("Requests/sec:"):
            out["per_second"] = float(parts[1])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            out["errors"] = line.strip()
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            out[f"p{parts[0][:-1]}_ms"] = wrk_ms(parts[1])
    return out


def wait(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = predicate()
            if v:
                return v
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout}s")
        time.sleep(0.01)


class CpuCap:
    """A CPU quota per member: one cgroup each (v1 `cpu` or v2 `cpu.max`), made at start, its
    members' pids moved in as they are spawned, removed at the end. `error` says why not (not
    root, no writable cpu controller)."""

    def __init__(self, cpus, label):
        self.cpus, self.label, self.dirs, self.error = cpus, label, {}, None
        period = 100_000
        quota = int(cpus * period)
        v1, v2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            self.base, self.files = v1, {"cpu.cfs_period_us": str(period), "cpu.cfs_quota_us": str(quota)}
        elif os.path.exists(os.path.join(v2, "cgroup.controllers")):
            self.base, self.files = v2, {"cpu.max": f"{quota} {period}"}
        else:
            self.base, self.error = None, "no cgroup cpu controller at /sys/fs/cgroup"

    def place(self, name, pid):
        if self.error:
            return
        d = self.dirs.get(name)
        try:
            if d is None:
                d = os.path.join(self.base, f"kvbench-{self.label}-{name}-{os.getpid()}")
                os.makedirs(d, exist_ok=True)
                for f, v in self.files.items():
                    with open(os.path.join(d, f), "w") as fh:
                        fh.write(v)
                self.dirs[name] = d
            with open(os.path.join(d, "cgroup.procs"), "w") as fh:
                fh.write(str(pid))
        except OSError as e:
            self.error = f"cannot cap {name} with a cgroup ({e}); run as root with a writable cpu controller"

    def remove(self):
        for d in self.dirs.values():
            try:
                os.rmdir(d)  # empty once its processes are gone
            except OSError:
                pass


class Cluster:
    """Three members started and restarted by pid; `client_ports` are their HTTP ports."""

    def __init__(self, tmp, cap=None):
        self.tmp = tmp
        self.procs = {}
        self.logs = {}
        self.cap = cap

    def spawn(self, name):
        log = open(os.path.join(self.tmp, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(self.command(name), stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)
        log.close()
        if self.cap:
            self.cap.place(name, self.procs[name].pid)

    def start(self):
        for name in self.names:
            self.spawn(name)
        self.wait_healthy()

    def kill(self, name):
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait()

    def cpu_s(self):
        """CPU seconds the cluster's live processes used so far."""
        total = 0.0
        for p in self.procs.values():
            try:
                total += process_cpu_s(p.pid)
            except OSError:
                pass
        return total

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()

    def wait_healthy(self, timeout=20):
        return wait(f"{self.kind}: a leader and every member answering", lambda: self.leader(all_members=True), timeout)


class KVNodes(Cluster):
    kind = "kvnode"

    def __init__(self, tmp, groups=1, cap=None):
        super().__init__(tmp, cap)
        self.groups = groups
        self.names = ["n1", "n2", "n3"]
        self.ports = dict(zip(self.names, free_ports(3, offset=1000)))

    def command(self, name):
        peers = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in self.ports.items() if n != name)
        return [str(BIN / "kvnode"), "--mode", "raft", "--id", name, "--port", str(self.ports[name]), "--peers", peers,
                "--data-dir", os.path.join(self.tmp, name), "--heartbeat-ms", str(HEARTBEAT_MS),
                "--election-ms", str(ELECTION_MS), "--election-max-ms", str(2 * ELECTION_MS), "--groups", str(self.groups)]

    def spread(self):
        """Several groups: each node leads its share (group g on the g-th node), so every node leads and syncs."""
        leads = {}
        for n in self.names:
            for g in self.status(n)["groups"]:
                if g["role"] == "leader":
                    leads[n] = leads.get(n, 0) + 1
        return len(leads) == min(self.groups, len(self.names)) and sum(leads.values()) == self.groups

    def syncs(self):
        """fdatasyncs so far, every group of every node."""
        return sum(self.status(n)["wal"]["syncs"] for n in self.names)

    def status(self, name):
        return request(self.ports[name], "GET", "/status", timeout=0.5).json

    def leader(self, all_members=False):
        views = {}
        for n in self.names:
            try:
                views[n] = self.status(n)
            except OSError:
                if all_members:
                    return None
        leaders = [n for n, s in views.items() if s["role"] == "leader"]
        if not leaders or (all_members and any(s["leader"] != leaders[0] for s in views.values())):
            return None
        return leaders[0]

    def put(self, port, key, value, timeout):
        r = request(port, "PUT", f"/kv/{key}", {"value": value}, timeout=timeout)
        if r.status == 307:
            r = request(int(r.headers["location"].split(":")[2].split("/")[0]), "PUT", f"/kv/{key}", {"value": value},
                        timeout=timeout)
        return r.status == 200


class Etcd(Cluster):
    kind = "etcd"

    def __init__(self, tmp):
        super().__init__(tmp)
        self.names = ["e1", "e2", "e3"]
        ports = free_ports(6)
        self.ports = dict(zip(self.names, ports[:3]))
        self.peer_ports = dict(zip(self.names, ports[3:]))

    def command(self, name):
        cluster = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in self.peer_ports.items())
        c, p = self.ports[name], self.peer_ports[name]
        return ["etcd", "--name", name, "--data-dir", os.path.join(self.tmp, name),
                "--listen-client-urls", f"http://127.0.0.1:{c}", "--advertise-client-urls", f"http://127.0.0.1:{c}",
                "--listen-peer-urls", f"http://127.0.0.1:{p}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
                "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS), "--pre-vote=true",
                "--logger", "zap", "--log-level", "error"]

    def status(self, name):
        return request(self.ports[name], "POST", "/v3/maintenance/status", {}, timeout=0.5).json

    def leader(self, all_members=False):
        views = {}
        for n in self.names:
            try:
                views[n] = self.status(n)
            except (OSError, ValueError):
                if all_members:
                    return None
        ids = {n: s["header"]["member_id"] for n, s in views.items()}
        leaders = {s.get("leader") for s in views.values()}
        if len(leaders) != 1 or (all_members and len(views) < 3):
            return None
        lid = leaders.pop()
        return next((n for n, i in ids.items() if i == lid), None)

    def put(self, port, key, value, timeout):
        import base64
        b = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
        r = request(port, "POST", "/v3/kv/put", {"key": b(key), "value": b(value)}, timeout=timeout)
        return r.status == 200 and "error" not in (r.json or {})


def failover(cluster, trials, fault="kill"):
    """SIGKILL (a crash: its connections close at once) or SIGSTOP (a hung leader: nothing closes,
    only silence tells) of the leader, to the first acknowledged put on a survivor."""
    times = []
    for t in range(trials):
        leader = cluster.wait_healthy()
        time.sleep(random.uniform(0.2, 0.4))  # a random phase of the heartbeat interval, and a settled cluster
        leader = cluster.leader(all_members=True) or leader
        survivors = [cluster.ports[n] for n in cluster.names if n != leader]
        killed_at = time.monotonic_ns()
        if fault == "kill":
            cluster.kill(leader)
        else:
            cluster.procs[leader].send_signal(signal.SIGSTOP)
        i = 0
        while True:
            port = survivors[i % len(survivors)]
            i += 1
            try:
                if cluster.put(port, f"failover-{t}", "x", timeout=0.1):
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic_ns() - killed_at > 30e9:
                raise RuntimeError(f"{cluster.kind}: no put acknowledged 30 s after the {fault} of the leader")
        times.append((time.monotonic_ns() - killed_at) / 1e6)
        if fault == "kill":
            cluster.spawn(leader)
        else:
            cluster.procs[leader].send_signal(signal.SIGCONT)
    return times


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[7], v[3]  # total, steal, idle


def process_cpu_s(pid):
    """User + system CPU seconds of one process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(api, port, op, clients, seconds=LOAD_SECONDS, group_leaders=False):
    t0, s0, i0 = cpu_times()
    r = subprocess.run([str(BIN / "kvctl"), "load", "--api", api, "--port", str(port), "--op", op, "--clients", str(clients),
                        "--duration", seconds, "--threads", "2", "--json"] + (["--group-leaders"] if group_leaders else []),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"kvctl load {api} {op}: {r.stderr or r.stdout}")
    out = json.loads(r.stdout)
    t1, s1, i1 = cpu_times()
    out["steal_pct"] = 100 * (s1 - s0) / max(1, t1 - t0)
    out["idle_pct"] = 100 * (i1 - i0) / max(1, t1 - t0)
    return out


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def fmt_ci(xs):
    lo, hi, cov = median_ci(xs)
    slow = sum(1 for x in xs if x > 100)
    label = "95% CI" if cov >= 0.95 else f"{cov:.1%} interval"
    return f"median {pct(xs, 50):.0f} ms [{label} {lo:.0f}, {hi:.0f}; coverage {cov:.1%}], max {max(xs):.0f} ms, over 100 ms: {slow} of {len(xs)}"


def load_gib(cluster, leader, gib):
    """gib GiB of 1-MiB values (the value limit), put one by one through the leader."""
    value_len = (1 << 20) - 16
    count = int(gib * 1024)
    started = time.monotonic()
    for i in range(count):
        head = f"{i:08d}"
        r = request(cluster.ports[leader], "PUT", f"/kv/big-{i}", {"value": head + "b" * (value_len - len(head))}, timeout=30)
        if r.status == 307:
            leader = cluster.wait_healthy()
            r = request(cluster.ports[leader], "PUT", f"/kv/big-{i}", {"value": head + "b" * (value_len - len(head))}, timeout=30)
        assert r.status == 200, r
    wait(f"every member applying {count} values of 1 MiB",
         lambda: all(cluster.status(n)["applied_index"] >= cluster.status(leader)["commit_index"] for n in cluster.names), 120)
    return count * (value_len + len("big-00000")), time.monotonic() - started


def main():
    have_etcd = ensure_etcd()
    have_wrk = ensure_wrk()
    tmp = tempfile.mkdtemp(prefix="kvbench-")
    ours, etcd = KVNodes(os.path.join(tmp, "kv")), Etcd(os.path.join(tmp, "etcd")) if have_etcd else None
    # The same three nodes' store with three Raft groups, for durable puts: every node leads one;
    # and both again with each node's CPU capped, as if each were a machine of its own.
    ours3 = KVNodes(os.path.join(tmp, "kv3"), groups=3)
    caps = [CpuCap(NODE_CPU, "1g"), CpuCap(NODE_CPU, "3g")]
    capped = None if caps[0].error else (KVNodes(os.path.join(tmp, "kvc"), cap=caps[0]),
                                         KVNodes(os.path.join(tmp, "kvc3"), groups=3, cap=caps[1]))
    os.makedirs(ours.tmp)
    os.makedirs(ours3.tmp)
    for c in capped or ():
        os.makedirs(c.tmp)
    if etcd:
        os.makedirs(etcd.tmp)
    out = {}
    try:
        ours.start()
        ours3.start()
        for c in capped or ():
            c.start()
        if etcd:
            etcd.start()
        print(f"clusters up: kvnode {sorted(ours.ports.values())}" + (f", etcd {sorted(etcd.ports.values())}" if etcd else ""))

        # 2. throughput first, on fresh clusters, alternating between the two.
        runs = {}
        for rnd in range(ROUNDS):
            for op, clients in [("put", 16), ("put", 64), ("get", 64)]:
                kinds = [(ours, "kvnode"), (ours3, "kvnode-3g"), (etcd, "etcd")]
                if capped:
                    kinds += [(capped[0], "kvnode-cap"), (capped[1], "kvnode-3g-cap")]
                for cluster, api in kinds:
                    if not cluster or (api not in ("kvnode", "etcd") and (op, clients) != ("put", 64)):
                        continue
                    leader = cluster.wait_healthy()
                    if "3g" in api:
                        wait("kvnode, 3 groups: each node leading one", cluster.spread, 20)
                    before = cluster.status(leader)["wal"] if api == "kvnode" else None
                    syncs_before = cluster.syncs() if api.startswith("kvnode") else None
                    cpu_before = cluster.cpu_s()
                    r = load("kvnode" if api.startswith("kvnode") else api, cluster.ports[leader], op, clients,
                             group_leaders="3g" in api)
                    if syncs_before is not None:
                        r["syncs_per_write"] = (cluster.syncs() - syncs_before) / max(1, r["ok"])
                    # What a write costs the cluster's processes in CPU, all of them together.
                    r["cpu_us_per_write"] = 1e6 * (cluster.cpu_s() - cpu_before) / max(1, r["ok"])
                    runs.setdefault((api, op, clients), []).append(r)
                    if before is not None and op == "put" and clients == 64:
                        after = cluster.status(leader)["wal"]
                        out.setdefault("per_sync", []).append(
                            (after["entries"] - before["entries"]) / max(1, after["syncs"] - before["syncs"]))
                    print(f"  round {rnd + 1}: {api:6} {op} x{clients}: {r['per_second']:.0f}/s p50 {r['p50_ms']:.2f} ms "
                          f"p99 {r['p99_ms']:.2f} ms, steal {r['steal_pct']:.0f}%"
                          f"{'' if not r['failed'] else ', failed ' + str(r['failed']) + ' ' + str(r['failures'])}", flush=True)
        for key, rs in runs.items():
            out[key] = {f: pct([r[f] for r in rs], 50) for f in ("per_second", "p50_ms", "p99_ms", "steal_pct", "syncs_per_write",
                                                                 "cpu_us_per_write", "idle_pct") if f in rs[0]}
        out["per_sync"] = pct(out["per_sync"], 50)
        ours3.stop()
        for c in capped or ():
            c.stop()

        # 3. the same with wrk, an outside load generator.
        if have_wrk:
            for rnd in range(ROUNDS):
                for op in ("put", "get"):
                    for cluster, api in [(ours, "kvnode"), (etcd, "etcd")]:
                        if not cluster:
                            continue
                        leader = cluster.wait_healthy()
                        r = wrk(api, cluster.ports[leader], op)
                        runs.setdefault(("wrk", api, op), []).append(r)
                        print(f"  round {rnd + 1}: wrk {api:6} {op} x64: {r['per_second']:.0f}/s p50 {r['p50_ms']:.2f} ms "
                              f"p99 {r['p99_ms']:.2f} ms, steal {r['steal_pct']:.0f}%, non-2xx {r['non2xx']} {r['errors']}", flush=True)
            for key, rs in runs.items():
                if key[0] == "wrk":
                    out[key] = {f: pct([r[f] for r in rs], 50) for f in ("per_second", "p50_ms", "p99_ms", "steal_pct")}
                    out[key]["non2xx"] = sum(r["non2xx"] for r in rs)

        # 1. failover: a crashed leader, then a hung one, alternating between the stores.
        for fault in ("kill", "stop"):
            for cluster in [ours, etcd]:
                if cluster:
                    out[("failover", fault, cluster.kind)] = failover(cluster, TRIALS, fault)
                    print(f"  {cluster.kind:6} failover ({fault}): {fmt_ci(out[('failover', fault, cluster.kind)])}", flush=True)

        # 3. memory with 100,000 keys of 100 bytes.
        leader = ours.wait_healthy()
        value = "m" * 100
        for batch in range(100):
            entries = [{"key": f"mem-{batch * 1000 + i:06d}", "value": value} for i in range(1000)]
            r = request(ours.ports[leader], "POST", "/kv/mput", {"entries": entries}, timeout=10)
            assert r.status == 200, r
        try:
            wait("every member applying the 100,000 keys",
                 lambda: all(ours.status(n)["keys"] >= 100_000 for n in ours.names), 60)
        except RuntimeError:
            for n in ours.names:
                try:
                    print(f"  {n}: {ours.status(n)}")
                except OSError as e:
                    print(f"  {n}: {e}")
            raise
        out["rss"] = {n: rss_kb(ours.procs[n].pid) for n in ours.names}
        if etcd:
            out["etcd_rss"] = {n: rss_kb(etcd.procs[n].pid) for n in etcd.names}

        # 4. memory with a GiB of 1-MiB values.
        if GIB > 0:
            leader = ours.wait_healthy()
            data_bytes, took = load_gib(ours, leader, GIB)
            out["gib"] = {"data": data_bytes, "seconds": took,
                          "rss": {n: rss_kb(ours.procs[n].pid) for n in ours.names},
                          "status": {n: ours.status(n) for n in ours.names}}
            print(f"  loaded {data_bytes / 2**30:.2f} GiB in {took:.1f} s", flush=True)
    finally:
        ours.stop()
        ours3.stop()  # a second stop of the same processes is a no-op
        for c in capped or ():
            c.stop()
        for cap in caps:
            cap.remove()
        if etcd:
            etcd.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("\nkvnode (raft) beside etcd 3.4 (Debian), 3 members on loopback, heartbeat 50 ms, election 250 ms, fsync on")
    for fault, what in (("kill", "SIGKILL"), ("stop", "SIGSTOP (a hung leader: no connection closes)")):
        fo, fe = out[("failover", fault, "kvnode")], out.get(("failover", fault, "etcd"))
        print(f"failover, {what} of the leader to the first acknowledged put, {TRIALS} trials each:")
        print(f"  kvnode {fmt_ci(fo)}")
        if fe:
            print(f"  etcd   {fmt_ci(fe)}")
            print(f"  ratio of medians {pct(fo, 50) / pct(fe, 50):.2f} (goal <= {'0.80' if fault == 'kill' else '1.00'}); "
                  f"max {max(fo):.0f} vs {max(fe):.0f} ms (goal: ours <= etcd's)")
    print(f"throughput: median of {ROUNDS} alternating rounds of {LOAD_SECONDS} each")
    for op, clients, goal in [("put", 16, "goal >= 1.5x at p99 no worse"), ("put", 64, "goal >= 1.5x at p99 no worse"),
                              ("get", 64, "goal >= 1.0x")]:
        k = out[("kvnode", op, clients)]
        line = f"{'durable puts' if op == 'put' else 'linearizable gets'}, {clients} clients: kvnode {k['per_second']:.0f}/s " \
               f"(p50 {k['p50_ms']:.2f}, p99 {k['p99_ms']:.2f} ms, steal {k['steal_pct']:.0f}%)"
        e = out.get(("etcd", op, clients))
        if e:
            line += f"; etcd {e['per_second']:.0f}/s (p50 {e['p50_ms']:.2f}, p99 {e['p99_ms']:.2f} ms, steal {e['steal_pct']:.0f}%); " \
                    f"ratio {k['per_second'] / e['per_second']:.2f} ({goal})"
        print(line)
    print(f"group commit at 64 clients: {out['per_sync']:.1f} writes per fdatasync on the leader")
    one, three = out[("kvnode", "put", 64)], out[("kvnode-3g", "put", 64)]
    line = (f"durable puts, 64 clients, 1 vs 3 Raft groups on the same 3 nodes (clients sent to their key's group leader): "
            f"1 group {one['per_second']:.0f}/s (p99 {one['p99_ms']:.2f} ms, {one['syncs_per_write']:.3f} fdatasyncs per write "
            f"on all nodes); 3 groups {three['per_second']:.0f}/s (p99 {three['p99_ms']:.2f} ms, {three['syncs_per_write']:.3f} "
            f"fdatasyncs per write); ratio {three['per_second'] / one['per_second']:.2f} (goal > 1)")
    e = out.get(("etcd", "put", 64))
    print(line + (f"; etcd {e['per_second']:.0f}/s" if e else ""))
    if capped:
        one_c, three_c = out[("kvnode-cap", "put", 64)], out[("kvnode-3g-cap", "put", 64)]
        print(f"  with each node capped at {NODE_CPU} CPU (a cgroup quota; as if each node were a machine of its own): "
              f"1 group {one_c['per_second']:.0f}/s (p99 {one_c['p99_ms']:.2f} ms), 3 groups {three_c['per_second']:.0f}/s "
              f"(p99 {three_c['p99_ms']:.2f} ms); ratio {three_c['per_second'] / one_c['per_second']:.2f} (goal > 1)")
    else:
        print(f"  (the run with each node's CPU capped was skipped: {caps[0].error})")
    # Where the difference goes: with every node on the same cores, a write's CPU is the budget.
    print(f"  CPU of the three kvnodes per write: 1 group {one['cpu_us_per_write']:.0f} us, 3 groups {three['cpu_us_per_write']:.0f} us "
          f"({three['cpu_us_per_write'] / one['cpu_us_per_write']:.2f}x); machine idle during the runs: 1 group {one['idle_pct']:.0f}%, "
          f"3 groups {three['idle_pct']:.0f}% of {os.cpu_count()} CPUs (the load generator runs here too)")
    if ("wrk", "kvnode", "put") in out:
        print(f"wrk (Debian's, Lua scripts in bench/wrk), 64 connections, median of {ROUNDS} alternating rounds of {WRK_SECONDS} s:")
        for op in ("put", "get"):
            k, e = out[("wrk", "kvnode", op)], out.get(("wrk", "etcd", op))
            line = f"  {'anonymous puts' if op == 'put' else 'linearizable gets'}: kvnode {k['per_second']:.0f}/s " \
                   f"(p50 {k['p50_ms']:.2f}, p99 {k['p99_ms']:.2f} ms, non-2xx {k['non2xx']})"
            if e:
                line += f"; etcd {e['per_second']:.0f}/s (p50 {e['p50_ms']:.2f}, p99 {e['p99_ms']:.2f} ms, non-2xx {e['non2xx']}); " \
                        f"ratio {k['per_second'] / e['per_second']:.2f}, p99 {k['p99_ms'] / e['p99_ms']:.2f}x etcd's (goal: <= 1)"
            print(line)
    rss = out["rss"]
    print(f"resident memory with 100,000 keys of 100 bytes: kvnode " + ", ".join(f"{n} {kb / 1024:.1f} MB" for n, kb in rss.items())
          + ("; etcd " + ", ".join(f"{n} {kb / 1024:.1f} MB" for n, kb in out['etcd_rss'].items()) + " (their 1,000 benchmark keys)"
             if "etcd_rss" in out else ""))
    if "gib" in out:
        g = out["gib"]
        print(f"resident memory with {g['data'] / 2**30:.2f} GiB of 1-MiB values (loaded in {g['seconds']:.1f} s): "
              + ", ".join(f"{n} {kb / 1024:.0f} MB ({kb * 1024 / g['data']:.2f}x the data; log {s['last_index'] - s['snapshot_index']} "
                          f"entries past snapshot {s['snapshot_index']})" for (n, kb), s in zip(g["rss"].items(), g["status"].values())))


if __name__ == "__main__":
    main()
