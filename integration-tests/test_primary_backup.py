"""Primary-backup mode under the supervisor, after the original system's test plan: a write on the
primary appears on its backup; kill the primary: it is detected, its backup promoted, and reads and
writes go there; restart the primary: it is synced from the backup and resumes as primary with
every write made meanwhile. Both replication paths (through the coordinator, as the original, and
direct), and two pairs with the key rule, redirects and `kill primary --key`."""
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Supervisor

ONE_PAIR = [("NM", 'role = "coordinator"\n'), ("A", ""), ("B", 'backup_of = "A"\n')]
TWO_PAIRS = ONE_PAIR + [("C", ""), ("D", 'backup_of = "C"\n')]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(port, method, path, body=None, timeout=3):
    """(status, JSON body, headers), without following redirects."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), dict(e.headers)


def wait_until(what, probe, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"waited {timeout}s for {what}; last: {last!r}")


def pair_status(s, pair=0):
    status, body, _ = http(s.port_of["NM"], "GET", "/status")
    assert status == 200, body
    return body["pairs"][pair]


def settled(s, pair=0, active="A"):
    """The pair serves from `active` with a synced standby (the start has its own race: the first
    to register serves, and a primary that comes second takes its role back after a sync)."""
    return wait_until(f"pair {pair} normal on {active}", lambda: (p := pair_status(s, pair))["active"] == active
                      and p["phase"] == "normal" and p["standby_synced"] and p)


def key_of_pair(pair, pairs):
    """A key the SHA-256 rule puts in `pair` (the Raft groups' rule: first digest byte mod pairs)."""
    import hashlib
    for i in range(1000):
        k = f"k{i}"
        if hashlib.sha256(k.encode()).digest()[0] % pairs == pair:
            return k
    raise AssertionError("no key")


class Fresh:
    """Waits for events that match and came after this point."""
    def __init__(self, s):
        self.s, self.base = s, len(s.events())

    def wait(self, predicate, timeout=5.0, what="events"):
        base = self.base
        return self.s.wait_events(lambda e: predicate(e) and self.s.events().index(e) >= base, timeout=timeout, what=what)[0]


def put(port, key, value, client="t", seq=None):
    body = {"value": value}
    if seq is not None:
        body.update(client_id=client, seq=seq)
    return http(port, "PUT", "/kv/" + urllib.parse.quote(key), body)


def start(tmp, path="coordinator", layout=ONE_PAIR):
    s = Supervisor(tmp, mode="primary-backup", layout=layout, cluster_extra=f'replication_path = "{path}"\n')
    s.wait_ready()
    return s


@pytest.mark.parametrize("path", ["coordinator", "direct"])
def test_the_original_plan_replicate_fail_over_and_resync(tmpdir_clean, path):
    s = start(tmpdir_clean, path)
    try:
        a, b, nm = s.port_of["A"], s.port_of["B"], s.port_of["NM"]
        settled(s)
        # 1. A write on the primary appears on its backup (a stale read there reads its own copy).
        status, body, _ = put(a, "k1", "v1", seq=1)
        assert status == 200, body
        wait_until("k1 on the backup", lambda: http(b, "GET", "/kv/k1?consistency=stale")[1].get("value") == "v1")
        status, st, _ = http(b, "GET", "/status")
        assert st["role"] == "backup" and st["replication"]["path"] == path, st
        # The backup sends clients to the primary.
        status, body, headers = put(b, "k2", "x")
        assert status == 307 and headers["Location"].endswith(f":{a}/kv/k2"), (status, body, headers)

        # 2. Kill the primary: detected by the coordinator, the backup promoted, routes follow.
        fresh = Fresh(s)
        s.kvctl("inject", "kill", "A")
        dead = fresh.wait(lambda e: e["event"] == "declared_dead" and e.get("peer") == "A", what="A declared dead")
        assert dead["node"] == "NM" and dead["label"] == "true_detection", dead
        # Dead after pb_fail_after_ms (300) of silence, found by a check every 100 ms, after the last beat.
        assert 300 <= dead["silence_ms"] <= 300 + 100 + 100, dead
        promoted = fresh.wait(lambda e: e["event"] == "leader_elected" and e.get("leader") == "B", timeout=3, what="B promoted")
        assert promoted["group"] == 0 and promoted["fault_id"], promoted
        status, route, _ = http(nm, "GET", "/route/k1")
        assert route["active"] == "B" and route["addr"].endswith(f":{b}"), route
        status, body, headers = http(nm, "GET", "/kv/k1")
        assert status == 307 and headers["Location"].endswith(f":{b}/kv/k1"), (status, headers)
        status, body, _ = http(b, "GET", "/kv/k1")
        assert status == 200 and body["value"] == "v1", body
        written = []
        for i in range(20):
            status, body, _ = put(b, f"during{i}", str(i), seq=2 + i)
            assert status == 200, body
            written.append(f"during{i}")

        # 3. Restart the primary: synced in full from the backup, then it serves again.
        fresh = Fresh(s)
        s.kvctl("start", "A", "--wait")
        fresh.wait(lambda e: e["event"] == "sync_started" and e.get("peer") == "A", what="sync_started")
        fresh.wait(lambda e: e["event"] == "sync_finished" and e.get("peer") == "A", what="sync_finished")
        fresh.wait(lambda e: e["event"] == "primary_resumed" and e.get("peer") == "A", what="primary_resumed")
        settled(s)
        status, st, _ = http(a, "GET", "/status")
        assert st["role"] == "primary" and st["standby"] == "B", st
        for k in ["k1"] + written:
            status, body, _ = http(a, "GET", "/kv/" + k)
            assert status == 200, (k, body)
        # And it replicates to B again.
        assert put(a, "after", "yes", seq=30)[0] == 200
        wait_until("'after' on B", lambda: http(b, "GET", "/kv/after?consistency=stale")[1].get("value") == "yes")
    finally:
        s.stop()


def test_two_pairs_route_by_key_and_kill_primary_by_key(tmpdir_clean):
    s = start(tmpdir_clean, layout=TWO_PAIRS)
    try:
        settled(s, 0, "A")
        settled(s, 1, "C")
        k0, k1 = key_of_pair(0, 2), key_of_pair(1, 2)
        # Any storage node sends a key to its pair's active node.
        status, body, headers = put(s.port_of["A"], k1, "one")
        assert status == 307 and headers["Location"].endswith(f":{s.port_of['C']}/kv/{k1}"), (status, headers)
        assert put(s.port_of["C"], k1, "one")[0] == 200
        assert put(s.port_of["A"], k0, "zero")[0] == 200
        # kvctl nodes shows the pairs and who serves each.
        nodes = {n["id"]: n for n in s.json("nodes")["nodes"]}
        out = s.kvctl("nodes").stdout
        assert "pair" in out.lower(), out
        # kill primary --key: the active node of the key's pair.
        fresh = Fresh(s)
        r = s.json("inject", "kill", "primary", "--key", k1)
        assert r["node"] == "C", r
        fresh.wait(lambda e: e["event"] == "leader_elected" and e.get("leader") == "D", what="D promoted")
        # The event is the coordinator's decision; D serves once its assignment arrives.
        wait_until("D serving", lambda: http(s.port_of["D"], "GET", "/status")[1]["role"] == "primary")
        status, body, _ = http(s.port_of["D"], "GET", "/kv/" + k1)
        assert status == 200 and body["value"] == "one", body
        # The other pair did not move.
        assert pair_status(s, 0)["active"] == "A"
        assert nodes["NM"]["state"] == "ready" and nodes["NM"]["raft"]["role"] == "coordinator", nodes["NM"]
    finally:
        s.stop()


PB_FAILOVER = """[experiment]
kind = "failover"
mode = "primary-backup"
kill_after_ms = [0, 100]
trials = 12
in_flight = false
seed = 5
"""


def test_the_failover_experiment_sees_the_replication_window_lose_acknowledged_writes():
    """The mode's known loss, measured: a kill right after the acknowledgement often beats the
    asynchronous copy to the backup (about half the time here: 12 trials all surviving would
    happen about once in 4000 runs); 100 ms later the copy has long arrived."""
    from test_failover import rows, run_spec
    import shutil
    r, run_dir, pids, _ = run_spec(PB_FAILOVER)
    try:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        trials = rows(run_dir)
        assert len(trials) == 24
        by_delay = {d: [t for t in trials if t["kill_after_ms"] == d] for d in ("0", "100")}
        lost_at_0 = [t for t in by_delay["0"] if t["write"] == "ok" and t["survived"] == "no"]
        assert lost_at_0, "no acknowledged write lost at 0 ms: the replication window was not seen"
        assert all(t["survived"] == "yes" for t in by_delay["100"]), by_delay["100"]
        for t in trials:
            # The backup of the pair is promoted by the coordinator after the kill, in a later epoch.
            assert t["leader"] == "A" and t["new_leader"] == "B" and int(t["new_term"]) > int(t["term"]), t
            # Detection by the coordinator: pb_fail_after_ms (300) + at most a check (100) + a beat (100) after the kill.
            assert 200 <= float(t["detection_ms"]) <= 520, t
            assert float(t["recovery_ms"]) >= float(t["detection_ms"]), t
        summary = (run_dir / "summary.txt").read_text()
        assert "ACKNOWLEDGED WRITES LOST" in summary and "mode primary-backup" in summary, summary[:2000]
    finally:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
