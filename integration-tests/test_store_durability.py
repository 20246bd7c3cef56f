"""Store hardening (issue 22), through the supervisor with real kvnode processes: acknowledged
writes survive restarts, and a data directory has one owner. Every wait has a deadline."""
import os
import time

from kvhttp import follow, request
from conftest import tmpdir_clean  # noqa: F401 (a fixture)
from test_raft import (NODES, assert_numbered_on, follower_after_writes, port, put_numbered, raft,  # noqa: F401 (raft is a fixture)
                       status, wait_applied, wait_leader)


def anonymous_put(sup, key, value, timeout=15.0):
    """PUT with no client_id, as curl sends it: any node, redirects followed, until one answers 200."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in sup.ports:
            try:
                last = follow(p, "PUT", f"/kv/{key}", {"value": value}, timeout=2.0)
            except OSError as e:
                last = e
                continue
            if last.status == 200:
                return last.json["index"]
        time.sleep(0.05)
    raise AssertionError(f"PUT {key}={value}: no 200 within {timeout}s (last: {last})")


def linearizable_get(sup, key, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        for p in sup.ports:
            try:
                r = follow(p, "GET", f"/kv/{key}", timeout=2.0)
            except OSError:
                continue
            if r.status in (200, 404):
                return r.json.get("value")
        assert time.monotonic() < deadline, f"GET {key}: no answer within {timeout}s"
        time.sleep(0.05)


def test_anonymous_writes_after_restarts_of_every_node_are_applied(raft):
    """The leader takes each anonymous write and is then restarted: nine writes among three nodes, so
    at least one node takes a write, restarts and takes another.
    An anonymous write must be applied every time: with a per-process counter the writes after a
    restart were answered 200 as retries of old ones and never applied."""
    for i in range(9):
        value = f"v{i}"
        index = anonymous_put(raft, "k", value)
        assert linearizable_get(raft, "k") == value, f"round {i}: acknowledged PUT k={value} (index {index}) is not what GET k reads"
        leader, term = wait_leader(raft)
        raft.kvctl("restart", leader)
        wait_leader(raft, timeout=10, min_term=term + 1)
    for node in NODES:  # every replica, from its own copy once it has caught up
        deadline = time.monotonic() + 10
        while True:
            try:
                r = request(port(raft, node), "GET", "/kv/k?consistency=stale")
            except OSError as e:  # the last one restarted is still binding
                r = e
            if getattr(r, "status", None) == 200 and r.json["value"] == "v8":
                break
            assert time.monotonic() < deadline, f"{node} holds {r} for k, not v8"
            time.sleep(0.05)


def test_a_second_kvnode_on_a_live_data_dir_is_refused_and_the_live_node_is_unharmed(raft):
    import subprocess
    from conftest import BIN, free_ports

    leader, victim, client = follower_after_writes(raft)
    pid = next(n["pid"] for n in raft.json("nodes")["nodes"] if n["id"] == victim)
    args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[1:-1]
    args = [a.decode() for a in args]
    data_dir = args[args.index("--data-dir") + 1]
    # The same node and data directory, on ports of its own: only the directory is shared.
    http_port, peer_port = free_ports(2)
    args[args.index("--port") + 1] = str(http_port)
    args[args.index("--peer-port") + 1] = str(peer_port)
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    second = subprocess.Popen([str(BIN / "kvnode"), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = second.communicate(timeout=15)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert second.returncode == 1, out
    assert data_dir in out and f"pid {pid}" in out and "in use by another kvnode" in out, out
    # The live node serves on, and a restart finds every write in its WAL.
    put_numbered(client, "a", range(20, 30))
    raft.kvctl("restart", victim)
    wait_applied(raft, victim, status(raft, leader)["commit_index"])
    assert_numbered_on(raft, victim, "a", range(30))


def big_value(i):
    """Exactly 1 MiB (the value limit), its number at the front."""
    head = f"value-{i:04d}-"
    return head + "x" * ((1 << 20) - len(head))


def test_eighty_values_of_a_mebibyte_survive_snapshots_a_lagging_follower_and_restarts(tmpdir_clean):
    """80 MiB of values with a snapshot every 20 entries: each snapshot is past the 64 MiB one WAL
    record may hold (which once crash-looped every replica), and the follower stopped across them
    gets the newest as a stream of chunks. Then every node restarts from its own snapshot file."""
    from conftest import Supervisor
    from kvhttp import Client

    sup = Supervisor(tmpdir_clean, mode="raft", cluster_extra="snapshot_entries = 20\n")
    sup.wait_ready()
    try:
        leader, _ = wait_leader(sup)
        lagging = next(n for n in NODES if n != leader)
        sup.kvctl("stop", lagging)
        client = Client("big", [port(sup, n) for n in NODES if n != lagging])
        for i in range(80):
            r, _ = client.call("PUT", f"/kv/big{i}", {"value": big_value(i)}, deadline_s=60)
            assert r.status == 200, (i, r)
        # Snapshots are written on a worker: wait for the one past 60 entries, by deadline.
        deadline = time.monotonic() + 30
        while (leader_status := status(sup, leader))["snapshot_index"] < 60:
            assert time.monotonic() < deadline, leader_status
            time.sleep(0.05)
        sup.kvctl("start", lagging)
        s = wait_applied(sup, lagging, leader_status["commit_index"], timeout=60)
        assert s["snapshots_received"] >= 1, s
        for node in NODES:
            sup.kvctl("restart", node)
            wait_leader(sup, timeout=15)
        commit = max(status_or_none(sup, n, "commit_index") for n in NODES)
        for node in NODES:
            wait_applied(sup, node, commit, timeout=60)
            for i in range(80):
                r = request(port(sup, node), "GET", f"/kv/big{i}?consistency=stale", timeout=10)
                assert r.status == 200 and r.json["value"] == big_value(i), (node, i, r.status, r.body[:80])
    finally:
        sup.stop()
        # Shown by pytest only when the test fails: what the nodes said about snapshots and peers.
        lines = (sup.dir / "supervisor.stderr").read_text(errors="replace").splitlines()
        print("\n".join(l for l in lines if "snapshot" in l or "peer connection" in l or "dropped" in l or "leader" in l)[-6000:])


def status_or_none(sup, node, field):
    deadline = time.monotonic() + 10
    while True:
        try:
            return status(sup, node)[field]
        except OSError:
            assert time.monotonic() < deadline, f"{node} does not answer /status"
            time.sleep(0.05)
