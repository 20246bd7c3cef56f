#!/usr/bin/env python3
"""kvctl check beside Porcupine, in the same run on the same machine: Porcupine's own test binary
over its 102 Jepsen etcd histories (TestEtcdJepsen*, one process), and kvctl check over the same
102 files in one process, then once per file as a script calling it in a loop would. Porcupine is
built here from its public repository at a pinned commit with Debian's golang-go (installed if
missing); its code stays in .cache/, out of the project. Both verdicts are compared with the
expected ones Porcupine's tests assert. Wall times, best of 5 (the host's noise only ever adds).
Not a test: it prints figures; it fails only if a verdict differs or a tool cannot run."""
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(os.environ.get("KV_BIN", ROOT / ".build" / "release"))
CACHE = ROOT / ".cache"
PORCUPINE = CACHE / "porcupine"
PORCUPINE_URL = "https://github.com/anishathalye/porcupine"
PORCUPINE_COMMIT = "55508eb201b314c218d7e8412c3ea4b9499a5f53"
RUNS = 5


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r


def ensure_go():
    if shutil.which("go"):
        return
    if os.geteuid() != 0:
        sys.exit("bench-check needs Go to build Porcupine: run as root once (it installs Debian's golang-go), "
                 "or: sudo apt-get install golang-go")
    print("installing Debian's golang-go for Porcupine ...", flush=True)
    sh(["apt-get", "install", "-y", "-q", "golang-go"], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def porcupine_source():
    """Porcupine's tree at the pinned commit in .cache/porcupine: from PORCUPINE_SRC (a clone or a
    bare mirror of its repository) if set, else GitHub's tarball of the commit."""
    stamp = PORCUPINE / ".commit"
    if stamp.exists() and stamp.read_text().strip() == PORCUPINE_COMMIT:
        return
    shutil.rmtree(PORCUPINE, ignore_errors=True)
    CACHE.mkdir(exist_ok=True)
    src = os.environ.get("PORCUPINE_SRC")
    if src:
        sh(["git", "clone", "-q", "--no-checkout", src, str(PORCUPINE)])
        sh(["git", "-C", str(PORCUPINE), "checkout", "-q", PORCUPINE_COMMIT])
    else:
        tarball = CACHE / "porcupine.tar.gz"
        r = subprocess.run(["curl", "-sSfL", "--max-time", "120", "-o", str(tarball), f"{PORCUPINE_URL}/archive/{PORCUPINE_COMMIT}.tar.gz"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"cannot download Porcupine ({r.stderr.strip()}). Without access to GitHub, point PORCUPINE_SRC at a clone "
                     f"of {PORCUPINE_URL} that has commit {PORCUPINE_COMMIT[:12]}: PORCUPINE_SRC=/path/to/porcupine make bench-check")
        PORCUPINE.mkdir()
        sh(["tar", "-xzf", str(tarball), "-C", str(PORCUPINE), "--strip-components=1"])
    stamp.write_text(PORCUPINE_COMMIT + "\n")


def porcupine_test_binary():
    """Porcupine's test binary, built once per commit (go test -c); the build is not timed."""
    porcupine_source()
    binary = CACHE / f"porcupine-{PORCUPINE_COMMIT[:12]}.test"
    if not binary.exists():
        env = dict(os.environ, GOPATH=str(CACHE / "gopath"), GOCACHE=str(CACHE / "gocache"), GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
        sh(["go", "test", "-c", "-o", str(binary), "."], cwd=PORCUPINE, env=env)
    return binary


def expected_verdicts():
    """etcd_NNN.log -> linearizable?, from the calls in Porcupine's tests."""
    text = (PORCUPINE / "porcupine_test.go").read_text()
    return {f"etcd_{int(n):03d}.log": ok == "true" for n, ok in re.findall(r"checkJepsen\(t, (\d+), (true|false)\)", text)}


def best_wall(cmd, **kw):
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, **kw)
        times.append(time.perf_counter() - t)
    return min(times), r


def main():
    ensure_go()
    test_binary = porcupine_test_binary()
    expected = expected_verdicts()
    files = [PORCUPINE / "test_data" / "jepsen" / name for name in sorted(expected)]
    kvctl = str(BIN / "kvctl")

    porcupine_s, r = best_wall([str(test_binary), "-test.run", "^TestEtcdJepsen", "-test.count=1"], cwd=PORCUPINE)
    if r.returncode != 0:
        sys.exit(f"Porcupine's own tests failed here:\n{r.stdout[-3000:]}")
    ran = len(re.findall(r"^ok|PASS", r.stdout, re.M))

    one_s, r = best_wall([kvctl, "check", "--json", "--no-html", *map(str, files)])
    verdicts = {pathlib.Path(o["file"]).name: o["verdict"] for o in map(json.loads, r.stdout.splitlines())}
    wrong = [n for n, ok in expected.items() if verdicts.get(n) != ("linearizable" if ok else "not-linearizable")]
    if wrong:
        sys.exit(f"kvctl check disagrees with Porcupine's expected verdicts on {wrong}")

    # A script's loop: one process per history.
    loop = []
    for _ in range(3):
        t = time.perf_counter()
        for f in files:
            subprocess.run([kvctl, "check", "--no-html", str(f)], capture_output=True)
        loop.append(time.perf_counter() - t)
    loop_s = min(loop)

    starts = []
    for _ in range(50):
        t = time.perf_counter()
        subprocess.run([kvctl, "--help"], capture_output=True)
        starts.append(time.perf_counter() - t)
    start_ms = statistics.median(starts) * 1000
    true_ms = statistics.median(timed([ "/bin/true"])) * 1000
    floors = swift_floors()

    n = len(files)
    print(f"linearizability checking, {n} Jepsen etcd histories ({sum(expected.values())} linearizable, "
          f"{n - sum(expected.values())} not), Porcupine {PORCUPINE_COMMIT[:7]}, best of {RUNS} wall times, same run:")
    print(f"  Porcupine's test binary (TestEtcdJepsen*, one process{', ok' if ran else ''}): {porcupine_s * 1000:.0f} ms")
    print(f"  kvctl check, all {n} in one process:                  {one_s * 1000:.0f} ms  "
          f"({porcupine_s / one_s:.2f}x Porcupine's speed; every verdict as Porcupine's tests expect)")
    print(f"  kvctl check, one process per history (a script's loop): {loop_s * 1000:.0f} ms  "
          f"({loop_s / n * 1000:.1f} ms a history; {porcupine_s / loop_s:.2f}x Porcupine's speed)")
    print(f"  kvctl --help, median of 50 starts: {start_ms:.2f} ms; beside it, started the same way: /bin/true {true_ms:.2f} ms"
          + "".join(f", {name} {ms:.2f} ms" for name, ms in floors))


def timed(cmd, n=50):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        out.append(time.perf_counter() - t)
    return out


def swift_floors():
    """The start of the smallest static Swift programs, built as kvctl is (-static-stdlib, -O): one that
    prints a line, and one that also encodes JSON with FoundationEssentials, as kvctl links it."""
    swiftc = shutil.which("swiftc")
    if swiftc is None:
        return []
    out = []
    for name, source in [("a static Swift hello world", 'print("hi")\n'),
                         ("the same with FoundationEssentials' JSONEncoder",
                          "import FoundationEssentials\nprint(try! JSONEncoder().encode([1]).count)\n")]:
        tag = "hello" if "hello" in name else "foundation"
        src, exe = CACHE / f"floor-{tag}.swift", CACHE / f"floor-{tag}"
        CACHE.mkdir(exist_ok=True)
        stale = not exe.exists() or not src.exists() or src.read_text() != source
        if stale:
            src.write_text(source)
            sh([swiftc, "-O", "-static-stdlib", str(src), "-o", str(exe)])
        out.append((name, statistics.median(timed([str(exe)])) * 1000))
    return out


if __name__ == "__main__":
    sys.exit(main())
