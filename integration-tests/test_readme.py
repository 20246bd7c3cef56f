"""The README, run (issue 23): every command in a block marked `<!-- walkthrough -->` is run
literally, top to bottom, with bash from the repository directory, against one fresh default
cluster started as `make run` starts it (kvsupervisor with no config). Each must exit 0, and where
the README shows output, the output must have its shape: the same lines, with numbers, node
names, roles, fault ids and times free to differ. So the README cannot drift from the program."""
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import BIN, process_alive, tmpdir_clean  # noqa: F401 (fixture)

REPO = pathlib.Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEFAULT_PORTS = [7101, 7102, 7103, 8101, 8102, 8103]

# What may differ between the README and a run: each a regex matched in the README's text,
# and the regex that stands for it in the pattern.
VARIABLE = [
    (r"f\d+-[0-9a-f]+", r"f\d+-[0-9a-f]+"),                      # fault ids
    (r"\b\d\d:\d\d:\d\d\.\d+Z", r"\d\d:\d\d:\d\d\.\d+Z"),        # clock times
    (r"\b(leader|follower)\b", r"(leader|follower|candidate|precandidate)"),
    (r"-?\d+(\.\d+)?", r"-?\d+(\.\d+)?"),                         # counts, pids, indexes, terms, latencies
    (r"\b[ABC]\b", r"[ABC]"),                                     # which node leads, or was hit
]


def walkthrough_blocks(text):
    return [m.group(1) for m in re.finditer(r"<!-- walkthrough -->\n```[a-z]*\n(.*?)```", text, re.S)]


def steps(block):
    """(command, expected output lines) for each `$ ` line of a block."""
    out = []
    for line in block.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out and line.strip():
            out[-1][1].append(line)
    return out


def pattern(expected):
    combined = "|".join(f"({v})" for v, _ in VARIABLE)
    parts, pos = [], 0
    for m in re.finditer(combined, expected):
        parts.append(re.escape(expected[pos:m.start()]))
        token = m.group(0)
        parts.append(next(p for v, p in VARIABLE if re.fullmatch(v, token)))
        pos = m.end()
    parts.append(re.escape(expected[pos:]))
    # Columns line up differently with other widths: any run of spaces matches any other.
    return re.compile(re.sub(r"(\\ )+", r"\\s+", "".join(parts)))


def matches(expected, actual):
    lines = [l for l in actual.splitlines() if l.strip()]
    return len(lines) == len(expected) and all(pattern(e.strip()).fullmatch(a.strip()) for e, a in zip(expected, lines))


def read_only(command):
    """Commands a person would simply run again if the answer was not there yet."""
    c = command.split("#")[0]
    return (re.match(r"kvctl (nodes|events|faults$|status|kv get)", c) is not None
            or (c.startswith("curl") and "-X" not in c))


def test_the_readme_walkthrough_runs_as_written(tmpdir_clean):
    blocks = walkthrough_blocks(README.read_text())
    assert len(blocks) >= 2, "the README lost its walk-through blocks"
    busy = []
    for port in DEFAULT_PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as kvnode binds: TIME-WAIT is no obstacle
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    if busy:
        pytest.skip(f"the default cluster's ports {busy} are in use here, so the README's cluster cannot start")

    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "NOTIFY_SOCKET", "KVCTL_SOCKET")}
    log = open(os.path.join(tmpdir_clean, "supervisor.log"), "w")
    supervisor = subprocess.Popen([str(BIN / "kvsupervisor")], cwd=tmpdir_clean, env=env, stdout=log, stderr=subprocess.STDOUT)
    env["KVCTL_SOCKET"] = os.path.join(tmpdir_clean, "run", "control")  # where `make run`'s kvctl finds it by itself
    env["PATH"] = f"{BIN}:{env['PATH']}"
    node_pids = set()
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(env["KVCTL_SOCKET"]):
            assert supervisor.poll() is None, open(log.name).read()
            assert time.monotonic() < deadline, "the default cluster's control socket never appeared"
            time.sleep(0.05)
        for block in blocks:
            for command, expected in steps(block):
                deadline = time.monotonic() + (10 if read_only(command) else 0)
                while True:
                    r = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
                    ok = r.returncode == 0 and (not expected or matches(expected, r.stdout))
                    if ok or time.monotonic() >= deadline:
                        break
                    time.sleep(0.2)
                assert r.returncode == 0, f"$ {command}\nexit {r.returncode}\n{r.stdout}{r.stderr}"
                assert ok, f"$ {command}\nthe README shows:\n" + "\n".join(expected) + f"\nthe program printed:\n{r.stdout}"
                status = subprocess.run(["kvctl", "--json", "nodes"], env=env, capture_output=True, text=True, timeout=20)
                node_pids |= set(re.findall(r'"pid":(\d+)', status.stdout))
    finally:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=20)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()
        log.close()
        leftover = [p for p in node_pids if process_alive(int(p))]
        for p in leftover:
            os.kill(int(p), signal.SIGKILL)
    assert supervisor.returncode == 0
    assert not leftover, f"kvnode processes outlived the supervisor: {leftover}"
