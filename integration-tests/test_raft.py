"""Raft mode through the supervisor: real kvnode processes with WALs in temp dirs, HTTP from
http.client and curl, faults from kvctl. Every wait has a deadline."""
import json
import os
import pathlib
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, Supervisor, process_alive
from kvhttp import Client, follow, port_of, request

NODES = "ABC"


def start_raft(tmp, cluster_extra=""):
    sup = Supervisor(tmp, mode="raft", cluster_extra=cluster_extra)
    sup.wait_ready()
    return sup


@pytest.fixture
def raft(tmpdir_clean):
    sup = start_raft(tmpdir_clean)
    try:
        yield sup
    finally:
        sup.stop()


def port(sup, node):
    return sup.ports[NODES.index(node)]


def node_views(sup):
    return {n["id"]: n for n in sup.json("nodes")["nodes"]}


def wait_leader(sup, timeout=5.0, min_term=0, not_node=None):
    """The node that reports itself leader (in a term >= min_term, other than not_node), by deadline."""
    deadline = time.monotonic() + timeout
    while True:
        leaders = [n for n in node_views(sup).values()
                   if n.get("raft", {}).get("role") == "leader" and n["raft"]["term"] >= min_term and n["id"] != not_node]
        if leaders:
            best = max(leaders, key=lambda n: n["raft"]["term"])
            return best["id"], best["raft"]["term"]
        if time.monotonic() > deadline:
            raise AssertionError(f"no leader within {timeout}s: {node_views(sup)}")
        time.sleep(0.02)


def status(sup, node):
    r = request(port(sup, node), "GET", "/status")
    assert r.status == 200, r
    return r.json


def wait_applied(sup, node, index, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = status(sup, node)
            if s["applied_index"] >= index:
                return s
        except OSError:
            s = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{node} did not apply {index} within {timeout}s: {s}")
        time.sleep(0.02)


def test_put_via_a_follower_is_redirected_to_the_leader(raft):
    leader, _ = wait_leader(raft)
    follower = next(n for n in NODES if n != leader)
    body = {"client_id": "c1", "seq": 1, "value": "v1"}
    r = request(port(raft, follower), "PUT", "/kv/greeting?x=1", body)
    assert r.status == 307, r
    assert r.headers["location"] == f"http://127.0.0.1:{port(raft, leader)}/kv/greeting?x=1"
    assert r.json["code"] == "not_leader" and r.json["leader"] == leader
    assert r.json["leader_addr"] == f"http://127.0.0.1:{port(raft, leader)}"
    # curl follows the 307 with the same method and body, as a client of the original store does.
    out = subprocess.run(["curl", "-sS", "-L", "-X", "PUT", "--data", '{"client_id":"c1","seq":1,"value":"v1"}',
                          f"http://127.0.0.1:{port(raft, follower)}/kv/greeting"], capture_output=True, text=True, timeout=10)
    assert '"ok":true' in out.stdout, out
    got = follow(port(raft, follower), "GET", "/kv/greeting")
    assert got.status == 200 and got.json["value"] == "v1", got
    # The supervisor's view agrees.
    assert raft.json("leader")["leader"] == leader


def test_killing_the_leader_elects_another_within_a_second_with_every_acked_key(raft):
    leader, term = wait_leader(raft)
    client = Client("writer", raft.ports)
    acked = {}
    for i in range(40):
        r, _ = client.call("PUT", f"/kv/k{i}", {"value": f"v{i}"})
        assert r.status == 200, r
        acked[f"k{i}"] = f"v{i}"
    reply = raft.json("inject", "kill", "leader")
    assert reply["node"] == leader and reply["term"] == term
    elected = raft.wait_events(lambda e: e["event"] == "leader_elected" and e.get("term", 0) > term, timeout=3.0,
                               what="leader_elected after the kill")[0]
    applied = raft.wait_events(lambda e: e["event"] == "fault_applied" and e.get("fault_id") == reply["fault_id"])[0]
    took_ms = (elected["t_mono_ns"] - applied["applied"]["mono_ns"]) / 1e6
    assert took_ms < 1000, f"new leader after {took_ms:.0f} ms"
    assert elected["since_lost_ms"] == pytest.approx(took_ms, abs=1.0) and elected["fault_id"] == reply["fault_id"]
    new_leader = elected["node"]
    assert new_leader != leader
    for key, value in acked.items():
        r = request(port(raft, new_leader), "GET", f"/kv/{key}")
        assert r.status == 200 and r.json["value"] == value, (key, r)
    journal_line = raft.wait_log(f"node {new_leader} became leader in term {elected['term']}", 2)
    assert "ms after the previous leader was lost" in journal_line


def cas_worker(client, stop, results, errors, retries):
    """Increments its own counter by CAS (expected n-1 -> n). A retry that were applied twice would
    find n instead of n-1 and come back cas_failed; so would an acknowledged increment that was lost."""
    n = 0
    key = "/kv/cas"
    while not stop.is_set():
        try:
            r, attempts = client.call("POST", key, {"key": f"ctr-{client.id}", "expected": None if n == 0 else str(n),
                                                   "value": str(n + 1)}, deadline_s=40)
        except AssertionError as e:
            errors.append(str(e))
            return
        if r.status != 200:
            errors.append(f"{client.id} increment {n + 1} (seq {client.seq}, {attempts} attempts): {r}")
            return
        n += 1
        results[client.id] = n
        retries[client.id] = retries.get(client.id, 0) + attempts - 1


def test_sigkill_of_all_three_nodes_under_load_loses_no_acked_write_and_applies_no_retry_twice(raft):
    wait_leader(raft)
    stop, results, errors, retries = threading.Event(), {}, [], {}
    clients = [Client(f"w{i}", raft.ports) for i in range(8)]
    threads = [threading.Thread(target=cas_worker, args=(c, stop, results, errors, retries)) for c in clients]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while sum(results.values()) < 80 and not errors and time.monotonic() < deadline:
            time.sleep(0.01)
        before = dict(results)
        for node in NODES:
            raft.kvctl("inject", "kill", node)
        time.sleep(0.3)
        for node in NODES:
            raft.kvctl("start", node)
        # Every client must get going again after the restart.
        deadline = time.monotonic() + 20
        while any(results.get(c.id, 0) < before.get(c.id, 0) + 10 for c in clients) and not errors:
            assert time.monotonic() < deadline, f"clients stalled after the restart: {results} (before {before})"
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    print(f"\nincrements acknowledged: {sum(before.values())} before the kill, {sum(results.values())} in all; "
          f"retries with the same seq: {sum(retries.values())}")
    assert sum(before.values()) >= 80
    leader, _ = wait_leader(raft)
    for c in clients:
        r = request(port(raft, leader), "GET", f"/kv/ctr-{c.id}")
        assert r.status == 200 and r.json["value"] == str(results[c.id]), (c.id, results[c.id], r)
    # The crash made clients retry the same (client_id, seq): the path whose double application
    # the CAS chain would have caught.
    assert sum(retries.values()) > 0, retries


def put_numbered(client, prefix, indices):
    """PUT {prefix}{i} = "i" for each i, each acknowledged."""
    for i in indices:
        r, _ = client.call("PUT", f"/kv/{prefix}{i}", {"value": str(i)})
        assert r.status == 200, (prefix, i, r)


def assert_numbered_on(sup, node, prefix, indices):
    """The node's own store (a stale read there) holds {prefix}{i} = "i" for each i."""
    for i in indices:
        r = request(port(sup, node), "GET", f"/kv/{prefix}{i}?consistency=stale")
        assert r.status == 200 and r.json["value"] == str(i), (node, prefix, i, r)


def follower_after_writes(sup, count=20):
    """The leader, a follower, and a client that has written a0..a{count-1} through the leader."""
    leader, _ = wait_leader(sup)
    follower = next(n for n in NODES if n != leader)
    client = Client("t", sup.ports)
    put_numbered(client, "a", range(count))
    return leader, follower, client


def last_nonzero(path):
    data = path.read_bytes()
    return len(data.rstrip(b"\0"))


def test_a_wal_cut_mid_record_recovers_to_the_last_whole_record_and_catches_up(raft):
    leader, victim, client = follower_after_writes(raft)
    wait_applied(raft, victim, status(raft, leader)["commit_index"])
    raft.kvctl("stop", victim)
    segment = sorted((raft.dir / "rt" / "nodes" / victim / "wal").glob("*.wal"))[-1]
    end = last_nonzero(segment)
    with open(segment, "r+b") as f:
        f.truncate(end - 5)  # the last record loses its final 5 bytes
    put_numbered(client, "a", range(20, 30))
    raft.kvctl("start", victim)
    cut = raft.wait_events(lambda e: e["event"] == "wal_truncated" and e["node"] == victim, timeout=10)[0]
    assert cut["path"] == str(segment) and 0 < cut["offset"] < end and "cut short" in cut["reason"]
    wait_applied(raft, victim, status(raft, leader)["commit_index"])
    assert_numbered_on(raft, victim, "a", range(30))


def test_a_follower_that_missed_a_compaction_gets_a_snapshot(tmpdir_clean):
    sup = start_raft(tmpdir_clean, cluster_extra="snapshot_entries = 20\n")
    try:
        leader, _ = wait_leader(sup)
        lagging = next(n for n in NODES if n != leader)
        sup.kvctl("stop", lagging)
        client = Client("s", [port(sup, n) for n in NODES if n != lagging])
        put_numbered(client, "s", range(120))
        assert status(sup, leader)["snapshot_index"] >= 100
        sup.kvctl("start", lagging)
        s = wait_applied(sup, lagging, status(sup, leader)["commit_index"])
        assert s["snapshots_received"] >= 1, s
        assert_numbered_on(sup, lagging, "s", (0, 57, 119))
    finally:
        sup.stop()


BAD_REQUESTS = [
    ("PUT", "/kv/x", b"{not json", 400, "bad_body"),
    ("PUT", "/kv/x", b'{"client_id":"c","seq":"one","value":"v"}', 400, "bad_body"),
    ("PUT", "/kv/x", b'{"client_id":"c","seq":1}', 400, "bad_body"),
    ("PUT", "/kv/x", b"\xff\xfe\x00garbage", 400, "bad_body"),
    ("PUT", "/kv/x", b'{"client_id":"","seq":1,"value":"v"}', 400, "bad_client_id"),
    ("PUT", "/kv/x", b'{"client_id":"c","seq":0,"value":"v"}', 400, "bad_body"),
    ("PUT", "/kv/" + "k" * 2000, b'{"value":"v"}', 413, "key_too_large"),
    ("PUT", "/kv/x", b'{"value":"' + b"v" * ((1 << 20) + 1) + b'"}', 413, "value_too_large"),
    ("PUT", "/kv/x", b'{"value":"' + b"v" * (5 << 20) + b'"}', 413, "body_too_large"),
    ("PUT", "/kv/%zz", b'{"value":"v"}', 400, "bad_key"),
    ("POST", "/kv/mput", b'{"entries":[]}', 400, "bad_body"),
    ("POST", "/kv/mput", b'{"entries":{"key":"a"}}', 400, "bad_body"),
    ("POST", "/kv/cas", b'{"key":"x"}', 400, "bad_body"),
    ("GET", "/kv/x?consistency=sometimes", b"", 400, "bad_consistency"),
    ("GET", "/nowhere", b"", 404, "not_found"),
    ("GET", "/", b"", 404, "not_found"),
    ("PATCH", "/kv/x", b"", 405, "method_not_allowed"),
    ("DELETE", "/status", b"", 405, "method_not_allowed"),
    ("GET", "/kv/mput", b"", 404, "not_found"),  # a key named "mput" that does not exist
    ("PUT", "/kv/cas", b'{"value":"v"}', 200, None),  # and one named "cas" may be written
]


def test_malformed_requests_get_clear_json_errors_and_the_node_keeps_serving(raft):
    leader, _ = wait_leader(raft)
    p = port(raft, leader)
    pid = node_views(raft)[leader]["pid"]
    for method, path, body, code, error_code in BAD_REQUESTS:
        r = request(p, method, path, body)
        assert r.status == code, (method, path[:40], r)
        if error_code:
            assert r.json["code"] == error_code and r.json["error"], r
            assert r.headers["content-type"] == "application/json"
        if code == 405:
            assert r.headers["allow"]
    # curl as a person types it, with a 5 MB body from a file.
    big = raft.dir / "big.json"
    big.write_bytes(b'{"value":"' + b"x" * (5 << 20) + b'"}')
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", f"@{big}",
                          f"http://127.0.0.1:{p}/kv/big"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "413", out
    # Not HTTP at all, on the HTTP port and on the peer port (good magic, then a frame that lies).
    for target, payload in [(p, b"\x16\x03\x01 not http\r\n\r\n"), (p + 1000, b"KVRAFT01" + b"\x05\x00\x00\x00\xff\xff\xff\xff\xff"),
                            (p + 1000, b"KVRAFT01" + b"\xff\xff\xff\x7f"), (p + 1000, b"HB nobody x\n" * 100)]:
        with socket.create_connection(("127.0.0.1", target), timeout=2) as s:
            s.sendall(payload)
            s.settimeout(2)
            try:
                s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                pass
    assert node_views(raft)[leader]["pid"] == pid and process_alive(pid)
    r = follow(p, "PUT", "/kv/after", {"client_id": "z", "seq": 1, "value": "fine"})
    assert r.status == 200, r
    assert request(p, "GET", "/healthz").status == 200
    assert not [e for e in raft.events() if e["event"] == "node_exited"]


def test_a_leader_stopped_for_two_seconds_is_replaced_and_serves_no_stale_read_when_it_resumes(raft):
    old, term = wait_leader(raft)
    client = Client("p", raft.ports)
    assert client.call("PUT", "/kv/x", {"value": "before"})[0].status == 200
    raft.kvctl("inject", "stop", old, "--for", "2s")
    new, new_term = wait_leader(raft, timeout=2.0, min_term=term + 1, not_node=old)
    # A linearizable read sent to the stopped leader waits in its socket until it resumes.
    answer = {}

    def read_from_old():
        answer["r"] = request(port(raft, old), "GET", "/kv/x", timeout=10)

    t = threading.Thread(target=read_from_old)
    t.start()
    time.sleep(0.2)
    assert request(port(raft, new), "PUT", "/kv/x", {"client_id": "p2", "seq": 1, "value": "after"}).status == 200
    t.join(15)
    r = answer["r"]
    # Either sent on to the new leader, or answered with the new value: never "before".
    assert r.status in (307, 503) or (r.status == 200 and r.json["value"] == "after"), r
    if r.status == 307:
        assert port_of(r.headers["location"].split("/kv")[0]) == port(raft, new)
    stepped = raft.wait_events(lambda e: e["event"] == "leader_lost" and e["node"] == old and e.get("leader") == old,
                               timeout=5, what="the old leader stepping down")
    assert stepped
    deadline = time.monotonic() + 5
    while status(raft, old)["role"] != "follower" or status(raft, old)["leader"] != new:
        assert time.monotonic() < deadline, status(raft, old)
        time.sleep(0.02)


def test_a_hung_leader_is_replaced_on_the_failure_detectors_verdict_before_any_election_timeout(tmpdir_clean):
    """A SIGSTOPped leader closes no connection. With an election timeout of 3-6 s and the heartbeat
    detector at 200 ms, a follower that gives up its leader within 1.5 s of the stop can only be
    acting on the detector's declared_dead (Raft's peerSuspected), not on its election timer."""
    sup = start_raft(tmpdir_clean, cluster_extra="election_ms = 3000\nelection_max_ms = 6000\n")
    try:
        old, term = wait_leader(sup, timeout=15)  # the first election waits out an election timeout
        # Every follower knows the leader (a follower that knows none has no leader to give up).
        deadline = time.monotonic() + 5
        while not all(v.get("raft", {}).get("leader") == old for v in node_views(sup).values()):
            assert time.monotonic() < deadline, node_views(sup)
            time.sleep(0.02)
        reply = sup.json("inject", "stop", old, "--for", "8s")
        stopped = sup.wait_events(lambda e: e["event"] == "fault_applied" and e.get("fault_id") == reply["fault_id"])[0]
        lost = sup.wait_events(lambda e: e["event"] == "leader_lost" and e.get("leader") == old and e["node"] != old,
                               timeout=5, what=f"a follower giving up the hung leader {old}")[0]
        declared = sup.wait_events(lambda e: e["event"] == "declared_dead" and e.get("peer") == old and e["node"] == lost["node"],
                                   timeout=5, what=f"{lost['node']} declaring {old} dead")[0]
        gave_up_ms = (lost["t_mono_ns"] - stopped["applied"]["mono_ns"]) / 1e6
        assert 0 < gave_up_ms < 1500, gave_up_ms
        assert declared["t_mono_ns"] <= lost["t_mono_ns"], (declared, lost)
        # And a new leader, by the detector's path (or, after a split vote, an election timeout).
        new, new_term = wait_leader(sup, timeout=15, min_term=term + 1, not_node=old)
        assert new != old and new_term > term
    finally:
        sup.stop()


def test_kvctl_kv_follows_the_leader_and_retries_with_the_same_seq(raft):
    leader, term = wait_leader(raft)
    follower = next(n for n in NODES if n != leader)
    assert raft.kvctl("kv", "put", "--node", follower, "colour", "blue").stdout.startswith("ok (index ")
    assert raft.kvctl("kv", "get", "colour").stdout == "blue\n"
    assert raft.kvctl("kv", "get", "--stale", "--node", follower, "colour").stdout == "blue\n"
    r = raft.kvctl("kv", "cas", "colour", "red", "green", check=False)
    assert r.returncode == 1 and "compare failed: the key holds 'blue'" in r.stderr
    assert raft.kvctl("kv", "cas", "colour", "blue", "green").returncode == 0
    assert raft.kvctl("kv", "cas", "shape", "--absent", "round").returncode == 0
    assert raft.kvctl("kv", "mput", "a=1", "b=2").returncode == 0
    assert raft.kvctl("kv", "delete", "a").returncode == 0
    r = raft.kvctl("kv", "get", "a", check=False)
    assert r.returncode == 1 and "key 'a' not found" in r.stderr
    # The same request twice under one (client id, seq): applied once, the second gets the first
    # answer; another request under that seq is refused, not taken for a retry.
    first = raft.kvctl("kv", "put", "--client-id", "me", "--seq", "7", "k", "one").stdout
    again = raft.kvctl("kv", "put", "--client-id", "me", "--seq", "7", "k", "one").stdout
    assert first.startswith("ok") and again.startswith("ok") and raft.kvctl("kv", "get", "k").stdout == "one\n"
    other = raft.kvctl("kv", "put", "--client-id", "me", "--seq", "7", "k", "two", check=False)
    assert other.returncode == 1 and "already used seq 7" in other.stderr, other.stderr
    r = raft.kvctl("kv", "put", "--client-id", "me", "--seq", "6", "k", "three", check=False)
    assert r.returncode == 1 and "older than this client's latest (7)" in r.stderr
    assert '"value":"green"' in raft.kvctl("kv", "get", "--json", "colour").stdout
    table = raft.kvctl("nodes").stdout
    assert "ROLE" in table and "leader" in table and f" {term} " in table
    assert raft.kvctl("leader").stdout.startswith(f"{leader} (term {term}")


def test_damage_before_the_wal_tail_refuses_to_start_and_says_where(raft):
    leader, _ = wait_leader(raft)
    victim = next(n for n in NODES if n != leader)
    client = Client("d", raft.ports)
    for i in range(10):
        assert client.call("PUT", f"/kv/d{i}", {"value": "x" * 50})[0].status == 200
    wait_applied(raft, victim, status(raft, leader)["commit_index"])
    raft.kvctl("stop", victim)
    segment = sorted((raft.dir / "rt" / "nodes" / victim / "wal").glob("*.wal"))[-1]
    data = bytearray(segment.read_bytes())
    at = data.index(b"x" * 50)  # inside the first entry, with whole records after it
    data[at] ^= 0xFF
    segment.write_bytes(bytes(data))
    raft.kvctl("start", victim, check=False)
    exited = raft.wait_events(lambda e: e["event"] == "node_exited" and e["node"] == victim and e.get("exit_code") == 1,
                              timeout=10, what=f"{victim} refusing to start")
    assert exited
    text = raft.wait_log(f"{segment} is damaged at byte", 5)
    line = next(l for l in text.splitlines() if "is damaged at byte" in l)
    assert "checksum" in line and "Refusing to start" in line, line
    # The other two still serve.
    assert client.call("PUT", "/kv/after", {"value": "ok"})[0].status == 200


def test_sync_none_says_what_it_gives_up(tmpdir_clean):
    sup = start_raft(tmpdir_clean, cluster_extra='sync = "none"\n')
    try:
        text = sup.wait_log("--sync none: writes are acknowledged before they reach the disk", 5)
        assert "For experiments only" in text
        leader, _ = wait_leader(sup)
        assert status(sup, leader)["wal"]["sync"] == "none"
        assert request(port(sup, leader), "PUT", "/kv/x", {"value": "v"}).status == 200
        assert status(sup, leader)["wal"]["syncs"] == 0
    finally:
        sup.stop()


def history_worker(n, ports, stop, events, lock):
    """One client of a Jepsen-style run: random put, linearizable get and cas on two keys, each
    recorded as invoke and ok / fail / info with CLOCK_MONOTONIC times."""
    import random
    rnd = random.Random(n)
    client = Client(f"h{n}", ports)
    written = 0

    def record(kind, key, f, t, **fields):
        with lock:
            events.append(dict(v=1, type=kind, client=n, key=key, f=f, t_mono_ns=t, **fields))

    while not stop.is_set():
        key = rnd.choice(["x", "y"])
        f = rnd.choice(["put", "put", "get", "get", "cas"])
        if f == "put":
            written += 1
            value = f"{n}-{written}"
            record("invoke", key, "put", time.monotonic_ns(), value=value)
            try:
                r, _ = client.call("PUT", f"/kv/{key}", {"value": value}, deadline_s=5)
                record("ok" if r.status == 200 else "info", key, "put", time.monotonic_ns())
            except AssertionError:
                record("info", key, "put", time.monotonic_ns())
        elif f == "get":
            record("invoke", key, "get", time.monotonic_ns())
            try:
                r, _ = client.call("GET", f"/kv/{key}", {}, deadline_s=5)
                if r.status in (200, 404):
                    record("ok", key, "get", time.monotonic_ns(), value=r.json.get("value") if r.status == 200 else None)
                else:
                    record("fail", key, "get", time.monotonic_ns())
            except AssertionError:
                record("fail", key, "get", time.monotonic_ns())
        else:
            expected = rnd.choice([None, f"{rnd.randrange(4)}-{rnd.randrange(1, 4)}"])
            written += 1
            value = f"{n}-{written}"
            record("invoke", key, "cas", time.monotonic_ns(), expected=expected, value=value)
            try:
                r, _ = client.call("POST", "/kv/cas", {"key": key, "expected": expected, "value": value}, deadline_s=5)
                kind = "ok" if r.status == 200 else "fail" if r.status == 409 else "info"
                record(kind, key, "cas", time.monotonic_ns(), **({"value": value} if kind == "ok" else {}))
            except AssertionError:
                record("info", key, "cas", time.monotonic_ns())


def test_a_history_under_kills_pauses_and_partitions_is_linearizable(raft):
    wait_leader(raft)
    stop, events, lock = threading.Event(), [], threading.Lock()
    threads = [threading.Thread(target=history_worker, args=(n, raft.ports, stop, events, lock)) for n in range(4)]
    for t in threads:
        t.start()
    faults = []
    try:
        for round_ in range(3):
            time.sleep(0.4)
            leader, _ = wait_leader(raft, timeout=5)
            raft.kvctl("inject", "kill", leader)
            faults.append(f"kill {leader}")
            time.sleep(0.4)
            raft.kvctl("start", leader)
            time.sleep(0.4)
            leader, _ = wait_leader(raft, timeout=5)
            raft.kvctl("inject", "stop", leader, "--for", "600ms")
            faults.append(f"stop {leader} 600ms")
            time.sleep(0.8)
            leader, _ = wait_leader(raft, timeout=5)
            raft.kvctl("inject", "partition", leader, "--for", "500ms")
            faults.append(f"partition {leader} 500ms")
            time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    events.sort(key=lambda e: e["t_mono_ns"])
    history = raft.dir / "history.jsonl"
    history.write_text("".join(json.dumps(e) + "\n" for e in events))
    done = [e for e in events if e["type"] != "invoke"]
    counts = {k: sum(1 for e in done if e["type"] == k) for k in ("ok", "fail", "info")}
    r = subprocess.run([str(BIN / "kvctl"), "check", str(history), "--json", "--no-html"], capture_output=True, text=True,
                       timeout=120)
    verdict = json.loads(r.stdout)["verdict"] if r.stdout.strip().startswith("{") else r.stdout + r.stderr
    print(f"\n{len(done)} operations ({counts}) under {', '.join(faults)}: {verdict}")
    assert counts["ok"] >= 100, counts
    assert r.returncode == 0 and verdict == "linearizable", (r.returncode, verdict, history.read_text()[-2000:])
