#!/usr/bin/env python3
"""Figures for issue 7, printed side by side with the theoretical limit. Not a test: nothing here passes or fails.

1. Detection, hb_interval 100 / hb_timeout 200, N kills at random phase: latency range, median with a 95%
   order-statistics confidence interval, against theory (uniform on [T-I, T], median T - I/2); overshoot p50/p99.
2. `inject kill --after 50ms`: |applied - (requested + 50 ms)| p50/p99; effect - applied for kill, stop, delay.
3. GetStatus round trip over the socket, 1000 calls: p50/p99.
4. Supervisor resident memory with 3 nodes.
"""
import json
import math
import os
import random
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from conftest import Supervisor  # noqa: E402

KILLS = int(os.environ.get("BENCH_KILLS", "100"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def median_ci(xs):
    """95% CI of the median from order statistics (binomial, normal approximation)."""
    xs = sorted(xs)
    n = len(xs)
    lo = max(0, int(math.floor(n / 2 - 1.96 * math.sqrt(n) / 2)))
    hi = min(n - 1, int(math.ceil(n / 2 + 1.96 * math.sqrt(n) / 2)))
    return xs[lo], xs[hi]


def call(sock_path, method, params=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(json.dumps({"method": method, "parameters": params or {}}).encode() + b"\0")
    data = b""
    while not data.endswith(b"\0"):
        data += s.recv(65536)
    s.close()
    return json.loads(data[:-1])


def main():
    tmp = tempfile.mkdtemp(prefix="kvbench-")
    sup = Supervisor(tmp)
    try:
        sup.wait_ready()
        I, T = sup.hb_interval, sup.hb_timeout
        # 1. Detection latency over KILLS kills of B at a random phase.
        latencies, overshoots, false_susp, missed = [], [], 0, 0
        rng = random.Random(7)
        for i in range(KILLS):
            time.sleep(0.25 + rng.random() * I / 1000)  # random phase relative to B's heartbeats
            before = len(sup.events())
            sup.kvctl("inject", "kill", "B")
            try:
                dead = sup.wait_events(lambda e: e["event"] == "declared_dead" and e.get("peer") == "B"
                                       and e.get("fault") == "kill", count=2 * (i + 1), timeout=3)
            except AssertionError:
                missed += 1
                dead = []
            new = [e for e in sup.events()[before:] if e["event"] == "declared_dead" and e.get("peer") == "B"]
            for e in new:
                if e["label"] != "true_detection":
                    false_susp += 1
                latencies.append(e["detection_latency_ms"])
                overshoots.append(e["detector_overshoot_ms"])
            sup.kvctl("start", "B")
            sup.wait_events(lambda e: e["event"] == "declared_alive" and e.get("peer") == "B", count=2 * (i + 1), timeout=3)
        lo, hi = median_ci(latencies)
        print(f"detection (I={I} ms, T={T} ms, {KILLS} kills of B, detections by A and C: {len(latencies)})")
        print(f"  latency min {min(latencies):.1f}  max {max(latencies):.1f}  (theory [{T - I}, {T}], limit {T + 3})")
        print(f"  median {statistics.median(latencies):.1f} ms, 95% CI [{lo:.1f}, {hi:.1f}]  (theory {T - I / 2:.1f})")
        print(f"  inside [{T - I}, {T + 3}]: {sum(T - I <= x <= T + 3 for x in latencies)}/{len(latencies)}")
        print(f"  overshoot p50 {pct(overshoots, 50):.3f} ms  p99 {pct(overshoots, 99):.3f} ms  (targets 0.5 / 2)")
        print(f"  missed {missed}, false suspicions {false_susp}")

        # 2. Scheduled-fault precision and effect delays.
        errors, effects = [], {"kill": [], "stop": [], "delay": []}
        for i in range(KILLS):
            n0 = len(sup.events())
            sup.kvctl("inject", "kill", "C", "--after", "50ms")
            e = sup.wait_events(lambda e: e["event"] == "fault_applied" and e["fault"] == "kill" and e["node"] == "C",
                                count=i + 1, timeout=3)[-1]
            errors.append(abs((e["applied"]["mono_ns"] - e["requested"]["mono_ns"]) / 1e6 - 50))
            effects["kill"].append((e["effect"]["mono_ns"] - e["applied"]["mono_ns"]) / 1e6)
            sup.kvctl("start", "C")
            sup.wait_events(lambda e: e["event"] == "node_ready" and e["node"] == "C", count=i + 2, timeout=3)
        for i in range(30):
            sup.kvctl("inject", "stop", "C", "--for", "20ms")
            e = sup.wait_events(lambda e: e["event"] == "fault_applied" and e["fault"] == "stop", count=i + 1, timeout=3)[-1]
            effects["stop"].append((e["effect"]["mono_ns"] - e["applied"]["mono_ns"]) / 1e6)
            sup.wait_events(lambda e: e["event"] == "fault_cleared" and e["fault"] == "stop", count=i + 1, timeout=3)
            sup.kvctl("inject", "delay", "C", "5ms", "--for", "20ms")
            e = sup.wait_events(lambda e: e["event"] == "fault_applied" and e["fault"] == "delay", count=i + 1, timeout=3)[-1]
            effects["delay"].append((e["effect"]["mono_ns"] - e["applied"]["mono_ns"]) / 1e6)
            sup.wait_events(lambda e: e["event"] == "fault_cleared" and e["fault"] == "delay", count=i + 1, timeout=3)
        print(f"scheduled kill --after 50ms, {KILLS} runs: |applied - (requested + 50)| p50 {pct(errors, 50):.3f} ms "
              f"p99 {pct(errors, 99):.3f} ms max {max(errors):.3f} ms  (target p99 <= 1)")
        for k, xs in effects.items():
            print(f"  effect - applied, {k}: p50 {pct(xs, 50):.3f} ms  p99 {pct(xs, 99):.3f} ms  (n={len(xs)}"
                  + (", bounded below by the next heartbeat: up to one interval" if k == "delay" else "") + ")")

        # 3. Control round trip.
        rtts = []
        for _ in range(1000):
            t0 = time.perf_counter_ns()
            call(sup.socket, "io.kvsupervisor.GetStatus")
            rtts.append((time.perf_counter_ns() - t0) / 1e6)
        print(f"GetStatus round trip (connect + call + reply), 1000 calls: p50 {pct(rtts, 50):.3f} ms  "
              f"p99 {pct(rtts, 99):.3f} ms  (target p99 <= 2)")

        # 4. Memory.
        with open(f"/proc/{sup.proc.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
        print(f"supervisor VmRSS with 3 nodes: {rss / 1024:.1f} MB  (target <= 25)")
    finally:
        sup.stop()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
