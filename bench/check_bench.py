#!/usr/bin/env python3
"""The linearizability checker's time over every history in Tests/LinearizabilityTests/testdata
(a copy of ../shared/data/linearizability), beside Porcupine's anchor measured on this kind of
machine (shared/NOTES.md): its 102 Jepsen etcd histories, of which these 50 are half, in 0.60 s;
etcd_002, its slowest, in 0.24 s. The time is the checker's own (kvctl check's elapsed_ms: parse
excluded, no process start); the release build is measured. Not a test: nothing passes or fails."""
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(os.environ.get("KV_BIN", ROOT / ".build" / "release"))
DATA = ROOT / "Tests" / "LinearizabilityTests" / "testdata"
PORCUPINE_TOTAL_S, PORCUPINE_ETCD002_S, PORCUPINE_HISTORIES = 0.60, 0.24, 102


def elapsed(path, runs=3):
    """Best of `runs` (the host's noise only ever adds)."""
    best = None
    for _ in range(runs):
        r = subprocess.run([str(BIN / "kvctl"), "check", "--json", "--no-html", str(path)], capture_output=True, text=True)
        out = json.loads(r.stdout)
        best = out["elapsed_ms"] if best is None else min(best, out["elapsed_ms"])
    return best, out["verdict"]


def main():
    rows = [(p.name, *elapsed(p)) for p in sorted((DATA / "jepsen-etcd").glob("*.log"))]
    kv = [(p.name, *elapsed(p)) for p in sorted((DATA / "kv").glob("*.txt"))]
    total = sum(ms for _, ms, _ in rows)
    name, slowest, _ = max(rows, key=lambda r: r[1])
    etcd002 = next(ms for n, ms, _ in rows if n == "etcd_002.log")
    print(f"linearizability checker, {len(rows)} Jepsen etcd histories: total {total:.1f} ms, slowest {name} {slowest:.1f} ms"
          f"  (best of 3 each)")
    per_history = PORCUPINE_TOTAL_S * 1000 / PORCUPINE_HISTORIES
    print(f"  Porcupine anchor: {PORCUPINE_HISTORIES} histories in {PORCUPINE_TOTAL_S * 1000:.0f} ms "
          f"({per_history:.2f} ms a history on average) -> ours {total / len(rows):.2f} ms a history: "
          f"ratio {per_history / (total / len(rows)):.2f}x")
    print(f"  etcd_002: Porcupine {PORCUPINE_ETCD002_S * 1000:.0f} ms, ours {etcd002:.1f} ms: "
          f"ratio {PORCUPINE_ETCD002_S * 1000 / etcd002:.2f}x  (above 1: faster than Porcupine)")
    print(f"  kv (EDN): " + ", ".join(f"{n} {ms:.2f} ms {v}" for n, ms, v in kv))
    print("  the anchor was measured on another day; compare in one run to say more (NOTES.md)")


if __name__ == "__main__":
    sys.exit(main())
