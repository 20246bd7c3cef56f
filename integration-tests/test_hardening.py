"""Defects an operator would hit, each with the test that failed before its fix (issue 12):
the watchdog must see a wedged supervisor, signals are handled from the first instant, and no
client can lock root out of the control socket."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

from conftest import BIN, Supervisor, process_alive


def slow_node_binary(tmp, delay_s):
    """A node binary that waits, then becomes kvnode (same pid, same parent): nodes stay 'starting'."""
    path = pathlib.Path(tmp) / "slow-kvnode"
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys, time
        time.sleep({delay_s})
        os.execv({str(BIN / "kvnode")!r}, [{str(BIN / "kvnode")!r}] + sys.argv[1:])
        """))
    path.chmod(0o755)
    return path


def wait_status_state(sup, state, timeout):
    deadline = time.monotonic() + timeout
    while True:
        r = sup.kvctl("--json", "status", check=False, timeout=5)
        if r.returncode == 0 and f'"state": "{state}"' in r.stdout.replace('":"', '": "'):
            return r.stdout
        if time.monotonic() > deadline:
            raise AssertionError(f"status never said {state} within {timeout}s: {r.stdout} {r.stderr}")
        time.sleep(0.02)


def started_pids(sup):
    return [e["pid"] for e in sup.events() if e["event"] == "node_started"]


def test_watchdog_stops_when_the_supervisor_loop_is_wedged(tmpdir_clean):
    """WATCHDOG=1 must prove that the node supervisor's loop runs, not that a snapshot is readable:
    with the actor wedged (test hook), the pings stop, so systemd would restart the daemon."""
    sup = Supervisor(tmpdir_clean, env={"WATCHDOG_USEC": "400000", "KVSUPERVISOR_TEST_HOOKS": "1"})
    try:
        sup.wait_ready()
        sup.notify.wait_for("WATCHDOG=1", 2)  # fed while healthy (every 200 ms)
        sup.proc.send_signal(signal.SIGUSR2)
        sup.wait_log("withholding WATCHDOG=1", timeout=3)
        sup.notify.drain()  # pings sent before the daemon said so are already queued
        # Five ping periods after the daemon said it withholds: not one ping may come.
        late = [m for m in sup.notify.collect(1.0) if "WATCHDOG=1" in m.split("\n")]
        assert late == [], f"WATCHDOG=1 still sent with the supervisor wedged: {late}"
        assert sup.proc.poll() is None
    finally:
        sup.proc.kill()  # a wedged actor cannot stop nodes; PDEATHSIG takes them down
        sup.proc.wait()
        deadline = time.monotonic() + 3
        while [p for p in sup.node_pids if process_alive(p)] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not [p for p in sup.node_pids if process_alive(p)]
        sup.stop()


def test_sighup_while_starting_is_queued_not_fatal(tmpdir_clean):
    sup = Supervisor(tmpdir_clean, extra=f'node_binary = "{slow_node_binary(tmpdir_clean, 1.5)}"\n')
    try:
        wait_status_state(sup, "starting", timeout=5)
        sup.proc.send_signal(signal.SIGHUP)
        sup.wait_log("reload is queued", timeout=3)
        assert sup.proc.poll() is None, f"kvsupervisor died of SIGHUP while starting: {sup.proc.returncode}"
        sup.wait_ready(timeout=15)
        sup.wait_events(lambda e: e["event"] == "config_reloaded", timeout=5, what="config_reloaded after start")
    finally:
        sup.stop()


def test_sigterm_while_starting_stops_started_nodes_and_exits_zero(tmpdir_clean):
    sup = Supervisor(tmpdir_clean, extra=f'node_binary = "{slow_node_binary(tmpdir_clean, 30)}"\n')
    try:
        sup.wait_events(lambda e: e["event"] == "node_started", count=3, timeout=5)
        pids = started_pids(sup)
        sup.node_pids = pids
        begun = time.monotonic()
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(timeout=10) == 0
        took = time.monotonic() - begun
        assert not [p for p in pids if process_alive(p)], "a node outlived the stop"
        assert took < 8, f"stop took {took:.1f}s: it waited for the start to finish"
        sup.notify.wait_for("STOPPING=1", 1)
        assert not any("READY=1" in m.split("\n") for m in sup.notify.messages)
    finally:
        sup.stop()


def test_sigterm_before_the_service_group_runs_exits_zero(tmpdir_clean):
    """supervisor_started is published before the service group runs and before any node starts:
    a TERM sent the moment it appears waits in the signal pipe and ends the daemon cleanly."""
    sup = Supervisor(tmpdir_clean)
    try:
        sup.wait_events(lambda e: e["event"] == "supervisor_started", timeout=5)
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(timeout=10) == 0
        sup.node_pids = started_pids(sup)
        assert not [p for p in sup.node_pids if process_alive(p)]
    finally:
        sup.stop()


HOLDER = textwrap.dedent("""\
    import socket, sys
    held = []
    for _ in range(int(sys.argv[2])):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sys.argv[1])
        held.append(s)
    print(len(held), flush=True)
    sys.stdin.read()  # hold them until the test closes our stdin
    """)


def hold_idle_connections(path, n, as_user):
    p = subprocess.Popen(as_user + [sys.executable, "-c", HOLDER, path, str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip() == str(n), f"holder opened {line!r} of {n}"
    return p


def test_three_hundred_idle_connections_do_not_lock_root_out(tmpdir_clean):
    """Any member of the socket's group could once block every call (root's too) with 64 silent
    connections. 300 from one uid now leave root's kvctl status answering within a second."""
    os.chmod(tmpdir_clean, 0o711)
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    sup = Supervisor(tmpdir_clean, extra='socket_group = "nogroup"\n' if as_user else "")
    holder = None
    try:
        sup.wait_ready()
        holder = hold_idle_connections(sup.socket, 300, as_user)
        begun = time.monotonic()
        r = sup.kvctl("status", check=False, timeout=5)
        took = time.monotonic() - begun
        assert r.returncode == 0, f"root locked out: {r.stdout}{r.stderr}"
        assert took < 1.0, f"kvctl status took {took:.2f}s with 300 idle connections open"
    finally:
        if holder:
            holder.stdin.close()
            holder.wait(timeout=10)
        sup.stop()


def test_a_silent_connection_is_closed_with_a_reason(sup):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sup.socket)
    s.settimeout(10)
    begun = time.monotonic()
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    took = time.monotonic() - begun
    s.close()
    assert 4.0 <= took <= 8.0, took
    assert b"no complete message within 5000 ms" in data, data


def test_a_half_sent_message_is_closed_but_a_caller_between_calls_is_not(sup):
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(sup.socket)
    half.sendall(b'{"method": "io.kvsupervisor.GetSt')
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(sup.socket)
    idle.sendall(b'{"method": "io.kvsupervisor.GetStatus"}\0')
    idle.settimeout(5)
    assert b'"state"' in idle.recv(65536)
    half.settimeout(10)
    assert b"no complete message" in half.recv(65536)
    # The idle caller completed its message: it may wait as long as it likes, then call again.
    idle.sendall(b'{"method": "io.kvsupervisor.GetStatus"}\0')
    assert b'"state"' in idle.recv(65536)
    half.close()
    idle.close()


BIG = 2**62 + 1  # past 2^53: a double rounds it to 4611686018427387904


def fake_node_binary(tmp):
    """A node that says READY=1 and reports one suspect event stamped BIG, then waits for SIGTERM."""
    path = pathlib.Path(tmp) / "big-stamp-node"
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, signal, socket, sys
        node = sys.argv[sys.argv.index("--id") + 1]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        event = {{"v": 1, "run_id": "x", "event": "suspect", "node": node, "peer": "Z",
                  "t_wall_ms": 1795316610595, "t_mono_ns": {BIG}, "last_heard_mono_ns": {BIG}}}
        s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
        s.sendto(("KV_EVENT=" + json.dumps(event)).encode(), os.environ["NOTIFY_SOCKET"])
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        while True:
            signal.pause()
        """))
    path.chmod(0o755)
    return path


def frames(sock):
    data = b""
    while True:
        while b"\0" in data:
            frame, data = data.split(b"\0", 1)
            yield json.loads(frame)
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk


def test_integers_past_2_to_53_stay_exact_through_every_interface(tmpdir_clean):
    sup = Supervisor(tmpdir_clean, extra=f'node_binary = "{fake_node_binary(tmpdir_clean)}"\n')
    try:
        sup.wait_ready()
        logged = sup.wait_events(lambda e: e["event"] == "suspect", count=3, timeout=5)
        assert all(e["t_mono_ns"] == BIG for e in logged), logged  # the JSONL log

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sup.socket)
            s.sendall(json.dumps({"method": "io.kvsupervisor.ListEvents",
                                  "parameters": {"kinds": ["suspect"]}}).encode() + b"\0")
            events = next(frames(s))["parameters"]["events"]
        assert [e["t_mono_ns"] for e in events] == [BIG] * 3, events
        assert all(e["last_heard_mono_ns"] == BIG for e in events)

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sup.socket)
            s.sendall(json.dumps({"method": "io.kvsupervisor.Subscribe", "more": True,
                                  "parameters": {"kinds": ["suspect"], "replay": 10}}).encode() + b"\0")
            stream = frames(s)
            streamed = [next(stream) for _ in range(3)]
        assert all(f["continues"] is True and f["parameters"]["event"]["t_mono_ns"] == BIG for f in streamed), streamed

        r = sup.kvctl("--json", "events", "--kinds", "suspect")
        lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        assert [e["t_mono_ns"] for e in lines] == [BIG] * 3, r.stdout
        assert str(BIG) in r.stdout and "e+18" not in r.stdout
    finally:
        sup.stop()


def call(sock_path, method, **parameters):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(json.dumps({"method": f"io.kvsupervisor.{method}", "parameters": parameters}).encode() + b"\0")
        return next(frames(s))


def proc_state(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(l.split()[1] for l in f if l.startswith("State:"))


def test_the_table_ends_where_the_process_is_after_racing_stop_and_cont(sup):
    """A stop and a cont scheduled for the same millisecond: either may be applied last, and their
    effects are watched by two threads and may be seen in either order. Whatever happened, the
    node table must end where the process is (it once took pause and continue from unordered Tasks)."""
    b = next(n for n in sup.json("nodes")["nodes"] if n["id"] == "B")
    outcomes = []
    for round_ in range(20):
        ids = [None, None]

        def inject(i, fault):
            ids[i] = call(sup.socket, "Inject", node="B", fault=fault, after_ms=40)["parameters"]["fault_id"]
        threads = [threading.Thread(target=inject, args=(i, f)) for i, f in enumerate(("stop", "cont"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sup.wait_events(lambda e: e.get("fault_id") in ids and e["event"] in ("fault_applied", "fault_failed"),
                        count=2, timeout=5, what=f"round {round_}: both faults accounted")
        running = proc_state(b["pid"]) != "T"
        deadline = time.monotonic() + 2  # the last report may still be on its way to the table
        while (state := next(n["state"] for n in sup.json("nodes")["nodes"] if n["id"] == "B")) != (
                "ready" if running else "paused") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state == ("ready" if running else "paused"), f"round {round_}: table says {state}, process running={running}"
        outcomes.append(running)
        if not running:
            cont = call(sup.socket, "Inject", node="B", fault="cont")["parameters"]["fault_id"]
            sup.wait_events(lambda e: e.get("fault_id") == cont and e["event"] == "fault_applied", timeout=5)
    print(f"20 races: process ended running {sum(outcomes)} times, stopped {20 - sum(outcomes)} times")
