"""Operable and scriptable (issue 23): real supervisors, real sockets, every wait with a deadline."""
import os
import subprocess

from conftest import BIN, Supervisor, process_alive, sup, tmpdir_clean  # noqa: F401 (fixtures)


def test_a_second_supervisor_on_the_same_state_is_refused_and_the_first_is_unharmed(sup):
    """A second supervisor in the same directories once ran on with 0/3 nodes, answered on the
    control socket and deleted it at exit, leaving the first unreachable."""
    socket_before = os.stat(sup.socket)
    second = subprocess.run([str(BIN / "kvsupervisor"), "--config", str(sup.config)], cwd=sup.dir,
                            capture_output=True, text=True, timeout=15,
                            env={k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "XDG_RUNTIME_DIR")})
    out = second.stdout + second.stderr
    assert second.returncode == 1, out
    assert f"another kvsupervisor (pid {sup.proc.pid}) already runs with" in out, out
    # The first still owns its socket and answers on it; its nodes are its own.
    after = os.stat(sup.socket)
    assert (after.st_dev, after.st_ino) == (socket_before.st_dev, socket_before.st_ino)
    status = sup.json("status")["status"]
    assert status["nodes_ready"] == 3, status
    assert all(process_alive(pid) for pid in sup.node_pids)


def wait_status(sup, predicate, timeout=10.0, what="status"):
    import time
    deadline = time.monotonic() + timeout
    while True:
        s = sup.json("status")["status"]
        if predicate(s):
            return s
        assert time.monotonic() < deadline, f"{what} not within {timeout}s: {s}"
        time.sleep(0.05)


def test_a_paused_node_is_not_ready_and_a_stop_ends_when_its_process_does(sup):
    """A stop once stayed listed as active after the stopped node was killed, restarted, continued
    or stopped, and `heal` could not clear it; and a paused node counted as ready."""
    endings = [
        (["inject", "kill", "B"], "the process exited"),
        (["restart", "B"], "the process exited"),
        (["inject", "cont", "B"], "continued by fault"),
        (["stop", "B"], "the process exited"),
    ]
    for command, reason in endings:
        stop_id = sup.json("inject", "stop", "B")["fault_id"]
        sup.wait_events(lambda e: e["event"] == "fault_applied" and e.get("fault_id") == stop_id, timeout=5)
        s = wait_status(sup, lambda s: s["nodes_ready"] == 2, what="B paused, not ready")
        assert s["active_faults"] == 1, s
        assert "2/3 nodes ready (1 paused)" in sup.notify.wait_for("(1 paused)", 5, within_line=True)
        sup.kvctl(*command)
        cleared = sup.wait_events(lambda e: e["event"] == "fault_cleared" and e.get("fault_id") == stop_id, timeout=5,
                                  what=f"the stop cleared after {' '.join(command)}")[0]
        assert reason in cleared["reason"], cleared
        wait_status(sup, lambda s: s["active_faults"] == 0, what=f"no fault in force after {' '.join(command)}")
        if command[0] == "stop" or command[1:2] == ["kill"]:  # an injected kill is not restarted (restart = "on-failure")
            sup.kvctl("start", "B")
        wait_status(sup, lambda s: s["nodes_ready"] == 3, what="B ready again")


def test_a_node_stopped_by_kvctl_is_truly_down_for_its_peers(sup):
    """`kvctl stop A` once made B's and C's detections of A false suspicions, though A had exited."""
    sup.kvctl("stop", "A")
    exited = sup.wait_events(lambda e: e["event"] == "node_exited" and e["node"] == "A")[0]
    found = sup.wait_events(lambda e: e["event"] == "declared_dead" and e.get("peer") == "A", count=2,
                            what="B and C declaring A dead")
    for e in found:
        assert e["label"] == "true_detection", e
        assert e["t_fail_mono_ns"] == exited["t_mono_ns"], (e, exited)
        assert e["reason"].startswith("A exited (stopped on request"), e
        assert 0 < e["detection_latency_ms"] < 1000, e
    sup.kvctl("start", "A", "--wait")


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def flag_value(pid, flag):
    args = cmdline(pid)
    return args[args.index(flag.encode()) + 1].decode()


def node_pids(sup):
    return {n["id"]: n["pid"] for n in sup.json("nodes")["nodes"]}


def test_a_reload_applies_or_refuses_each_setting_and_never_half_applies(sup):
    """A SIGHUP changing hb_timeout_ms once left running nodes on the old timeout while a restarted
    one got the new, with no word in config_reloaded."""
    import signal
    started = sup.wait_events(lambda e: e["event"] == "supervisor_started")[0]
    assert started["version"] and started["path"] == str(sup.config), started
    assert started["settings"]["cluster.hb_timeout_ms"] == "200", started
    assert started["settings"]["supervisor.socket"] == sup.socket, started

    text = sup.config.read_text()
    sup.config.write_text(text.replace("hb_timeout_ms = 200", "hb_timeout_ms = 300")
                              .replace("stop_grace_ms = 2000", "stop_grace_ms = 1500")
                              .replace(f'socket = "{sup.socket}"', f'socket = "{sup.dir}/other.sock"'))
    sup.proc.send_signal(signal.SIGHUP)
    reloaded = sup.wait_events(lambda e: e["event"] == "config_reloaded")[0]
    changes = {c["key"]: c for c in reloaded["changes"]}
    assert set(changes) == {"supervisor.socket", "supervisor.stop_grace_ms", "cluster.hb_timeout_ms"}, changes
    assert changes["supervisor.stop_grace_ms"]["outcome"] == "applied", changes
    assert changes["cluster.hb_timeout_ms"]["outcome"] == "refused", changes
    assert "kvctl reload --restart-nodes" in changes["cluster.hb_timeout_ms"]["reason"], changes
    assert changes["supervisor.socket"]["outcome"] == "refused", changes
    assert reloaded["reason"] == "1 applied, 2 refused", reloaded

    # The refused timeout is not in force anywhere: a node restarted now gets the old one.
    sup.kvctl("restart", "B", "--wait")
    pids = node_pids(sup)
    assert {flag_value(pid, "--hb_timeout_ms") for pid in pids.values()} == {"200"}, pids

    # Asked to, the reload restarts the running nodes one at a time with the new timeout.
    sup.config.write_text(text.replace("hb_timeout_ms = 200", "hb_timeout_ms = 300"))
    r = sup.kvctl("--json", "reload", "--restart-nodes")
    import json
    reply = json.loads(r.stdout)
    assert reply["restarted"] == ["A", "B", "C"], reply
    assert [(c["key"], c["outcome"]) for c in reply["changes"]] == [
        ("supervisor.stop_grace_ms", "applied"), ("cluster.hb_timeout_ms", "applied")], reply
    new_pids = node_pids(sup)
    assert not set(new_pids.values()) & set(pids.values()), (pids, new_pids)
    assert {flag_value(pid, "--hb_timeout_ms") for pid in new_pids.values()} == {"300"}, new_pids
    sup.node_pids = list(new_pids.values())
    assert "no setting changed" in sup.kvctl("reload").stdout

    # A bad file is refused whole, with the reason, and the running config kept.
    sup.config.write_text(text.replace("hb_timeout_ms = 200", "hb_timeout_ms = -1"))
    r = sup.kvctl("reload", check=False)
    assert r.returncode == 1 and "reload refused" in r.stderr and "hb_timeout_ms" in r.stderr, r.stderr
    # A refused setting: exit 1, the table on stdout, and no stray blank line on stderr.
    sup.config.write_text(text.replace("hb_timeout_ms = 200", "hb_timeout_ms = 400"))
    r = sup.kvctl("reload", check=False)
    assert r.returncode == 1 and "cluster.hb_timeout_ms" in r.stdout and r.stderr == "", (r.stdout, r.stderr)
    sup.wait_events(lambda e: e["event"] == "config_rejected")


def test_a_node_that_cannot_bind_fails_the_start_with_exit_1(tmpdir_clean):
    """With a node's port taken, the supervisor once ran on 'starting', then degraded, with 2/3 nodes."""
    import socket
    import time
    s = Supervisor(tmpdir_clean)
    s.stop()  # only its config and ports are wanted: a fresh start below, with B's port taken
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", s.ports[1]))
    squatter.listen()
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "XDG_RUNTIME_DIR")}
    try:
        started = time.monotonic()
        r = subprocess.run([str(BIN / "kvsupervisor"), "--config", str(s.config)], cwd=s.dir, env=env,
                           capture_output=True, text=True, timeout=30)
        took = time.monotonic() - started
    finally:
        squatter.close()
    assert r.returncode == 1, r.stderr[-2000:]
    assert "node B exited with status 1 before it was ready" in r.stderr, r.stderr[-2000:]
    assert "Address already in use" in r.stderr, r.stderr[-2000:]
    assert took < 8, f"{took:.1f} s: it waited for the ready timeout instead of failing at B's exit"
    pids = [int(p) for p in __import__("re").findall(r"started as pid (\d+)", r.stderr)]
    assert pids and not [p for p in pids if process_alive(p)], pids
    assert not os.path.exists(s.socket)
