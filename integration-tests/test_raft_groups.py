"""Several Raft groups on one cluster (issue 25), through the supervisor with real kvnodes: the
groups' leaders spread over the nodes, the group of a killed leader fails over while the other
groups serve on, every acknowledged write survives, and the returning node gets its group back.
Every wait has a deadline."""
import hashlib
import threading
import time

from conftest import tmpdir_clean  # noqa: F401 (a fixture)
from kvhttp import follow, request
from test_raft import NODES, port, start_raft

GROUPS = 3


def group_of(key):
    """The store's rule, computed here with Python's hashlib: sha256(key)[0] % groups."""
    return hashlib.sha256(key.encode()).digest()[0] % GROUPS


def keys_in(group, prefix):
    i = 0
    while True:
        key = f"{prefix}-{i}"
        if group_of(key) == group:
            yield key
        i += 1


def leaders(sup, nodes=NODES):
    """Group -> the node that reports itself its leader (the highest term if two do)."""
    best = {}
    for node in nodes:
        try:
            groups = request(port(sup, node), "GET", "/status", timeout=1.0).json["groups"]
        except OSError:
            continue
        for g in groups:
            if g["role"] == "leader" and (g["id"] not in best or g["term"] > best[g["id"]][1]):
                best[g["id"]] = (node, g["term"])
    return {g: node for g, (node, _) in best.items()}


def wait_until(what, check, timeout, sup):
    """Seconds until check() is truthy, and its value; fails naming what and the leaders seen."""
    t0 = time.monotonic()
    while True:
        got = check()
        if got:
            return time.monotonic() - t0, got
        assert time.monotonic() - t0 < timeout, f"{what}: not within {timeout}s (leaders now {leaders(sup)})"
        time.sleep(0.02)


SPREAD = {0: "A", 1: "B", 2: "C"}  # group g prefers the g-th node in sorted order


class Writer(threading.Thread):
    """Writes fresh keys of one group to the node that leads it (no redirects followed), one after
    another; records every acknowledged value and every failure."""

    def __init__(self, sup, group, node):
        super().__init__(daemon=True)
        self.sup, self.group, self.node = sup, group, node
        self.keys = keys_in(group, f"g{group}")
        self.acked, self.failures, self.stop = {}, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            key = next(self.keys)
            try:
                r = request(port(self.sup, self.node), "PUT", f"/kv/{key}", {"value": key + "!"}, timeout=2.0)
                if r.status == 200:
                    self.acked[key] = key + "!"
                else:
                    self.failures.append((key, r.status, r.json.get("code")))
            except OSError as e:
                self.failures.append((key, "error", str(e)))


def test_three_groups_spread_their_leaders_and_a_dead_leaders_group_fails_over_alone(tmpdir_clean):
    sup = start_raft(tmpdir_clean, cluster_extra=f"groups = {GROUPS}\n")
    try:
        took, spread = wait_until("each node leading its group", lambda: leaders(sup) == SPREAD and SPREAD, 15, sup)
        print(f"leaders spread {spread} {took:.2f} s after READY")
        # kvctl sees the same: each node leads one group of three; the key's group and its leader.
        key = next(keys_in(0, "the-key"))
        groups = sup.json("groups")["groups"]
        assert [(g["group"], g["leader"]) for g in groups] == [(0, "A"), (1, "B"), (2, "C")], groups
        leads = {n["id"]: [g["role"] for g in n["raft"]["groups"]].count("leader") for n in sup.json("nodes")["nodes"]}
        assert leads == {"A": 1, "B": 1, "C": 1}, leads
        assert "LEADS" in sup.kvctl("nodes").stdout
        named = sup.json("leader", "--key", key)
        assert named["group"] == 0 and named["leader"] == "A", named
        victim = spread[0]
        writers = {g: Writer(sup, g, node) for g, node in spread.items()}
        for w in writers.values():
            w.start()
        time.sleep(0.5)
        reply = sup.json("inject", "kill", "leader", "--key", key)
        killed = time.monotonic()
        assert (reply["node"], reply["group"]) == (victim, 0), reply
        took, new = wait_until("group 0 electing another leader",
                               lambda: leaders(sup, [n for n in NODES if n != victim]).get(0), 5, sup)
        print(f"group 0: {new} leads {took * 1000:.0f} ms after the kill of {victim}")
        applied = sup.wait_events(lambda e: e["event"] == "fault_applied" and e.get("fault_id") == reply["fault_id"])[0]
        assert applied["group"] == 0 and applied["term"] == reply["term"], applied
        elected = sup.wait_events(lambda e: e["event"] == "leader_elected" and e.get("group") == 0 and e["term"] > reply["term"],
                                  timeout=5)[0]
        assert elected.get("fault_id") == reply["fault_id"] and elected["since_lost_ms"] < 1000, (elected, sup.events()[-30:])
        time.sleep(max(0.0, 1.0 - (time.monotonic() - killed)))
        for w in writers.values():
            w.stop.set()
            w.join(10)
        # The groups whose leader lived served every request, before, during and after the kill.
        for g in (1, 2):
            assert writers[g].failures == [], (g, writers[g].failures[:5])
            assert len(writers[g].acked) > 20, (g, len(writers[g].acked))
        # Every acknowledged write of every group survives, read linearizably from a live node.
        live = next(n for n in NODES if n != victim)
        for w in writers.values():
            for key, value in w.acked.items():
                r = follow(port(sup, live), "GET", f"/kv/{key}")
                assert r.status == 200 and r.json["value"] == value, (key, r)
        counts = {g: len(w.acked) for g, w in writers.items()}
        print(f"acknowledged writes per group {counts}, all read back; group 0's writer kept asking the dead node: "
              f"{len(writers[0].failures)} refused")
        # The killed node comes back, catches up, and gets its group back.
        sup.kvctl("start", victim)
        started = time.monotonic()
        took, _ = wait_until(f"{victim} leading group 0 again", lambda: leaders(sup).get(0) == victim, 15, sup)
        print(f"{victim} leads group 0 again {took:.2f} s after its start")
        assert leaders(sup) == SPREAD
        assert time.monotonic() - started < 15
    finally:
        sup.stop()
