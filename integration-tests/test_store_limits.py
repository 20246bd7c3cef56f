"""Store hardening (issue 22): no client and no peer can stop a node. Real kvnode processes under
the supervisor, real sockets; every wait has a deadline."""
import os
import socket
import struct
import time

from conftest import Supervisor, process_alive, tmpdir_clean  # noqa: F401 (tmpdir_clean is a fixture)
from kvhttp import Client, request
from test_raft import NODES, port, raft, wait_leader  # noqa: F401 (raft is a fixture)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def string(s):
    b = s.encode()
    return uvarint(len(b)) + b


def frame(body):
    return struct.pack("<II", len(body), crc32c(body)) + body


MAGIC = b"KVRAFT03"


def hello(cluster, frm, to):
    return frame(b"\x01" + string(cluster) + uvarint(frm) + uvarint(to))


def peer_port(sup, node):
    return port(sup, node) + 1000  # the node's own peer port, not its link proxy


def node_pid(sup, node):
    return next(n["pid"] for n in sup.json("nodes")["nodes"] if n["id"] == node)


def served_within(sup, node, seconds):
    """A stale GET answered by `node` and a PUT acknowledged by the cluster, each within `seconds`."""
    t0 = time.monotonic()
    r = request(port(sup, node), "GET", "/kv/probe?consistency=stale", timeout=seconds)
    get_s = time.monotonic() - t0
    assert r.status in (200, 404), r
    t0 = time.monotonic()
    r, _ = Client("probe", sup.ports).call("PUT", "/kv/probe", {"value": "v"}, deadline_s=seconds)
    put_s = time.monotonic() - t0
    assert r.status == 200, r
    return get_s, put_s


def test_two_thousand_half_sent_requests_and_silent_peers_do_not_starve_a_normal_client(tmpdir_clean):
    """With 1024 file descriptors (systemd's default soft limit), 2000 half-sent HTTP requests and
    2000 silent connections to the peer port would take every descriptor the node has; its
    connection caps (a share of the descriptors) close the connections quiet longest instead."""
    sup = Supervisor(tmpdir_clean, mode="raft", nofile=1024)
    sup.wait_ready()
    socks = []
    try:
        leader, _ = wait_leader(sup)
        victim = leader
        pid = node_pid(sup, victim)
        for i in range(2000):
            s = socket.create_connection(("127.0.0.1", port(sup, victim)), timeout=5)
            s.sendall(b"PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Le")
            socks.append(s)
            p = socket.create_connection(("127.0.0.1", peer_port(sup, victim)), timeout=5)
            socks.append(p)
        try:
            get_s, put_s = served_within(sup, victim, 1.0)
        except (AssertionError, OSError) as e:
            tail = (sup.dir / "supervisor.stderr").read_text(errors="replace")[-3000:]
            raise AssertionError(f"a normal client was not served within a second: {e!r}\n{tail}") from e
        print(f"with 4000 hostile connections open: stale GET {get_s * 1000:.1f} ms, PUT {put_s * 1000:.1f} ms")
        assert process_alive(pid) and node_pid(sup, victim) == pid, "the node must not have restarted"
        log = (sup.dir / "supervisor.stderr").read_text(errors="replace")
        assert "closed the one quiet longest" in log, log[-2000:]
    finally:
        for s in socks:
            s.close()
        sup.stop()


def test_garbage_and_forged_frames_on_the_peer_port_are_refused_and_the_node_serves_on(raft):
    leader, term = wait_leader(raft)
    victim = next(n for n in NODES if n != leader)
    pid = node_pid(raft, victim)
    me = NODES.index(victim) + 1
    other = NODES.index(leader) + 1
    cluster = "kvsupervisor-itest/A,B,C"

    def send(data, read_reply=True):
        s = socket.create_connection(("127.0.0.1", peer_port(raft, victim)), timeout=5)
        try:
            s.sendall(data)
            if read_reply:
                s.settimeout(5)
                try:
                    return s.recv(100)  # b"" once the node closes it
                except (ConnectionResetError, socket.timeout) as e:
                    return e
        finally:
            s.close()

    assert send(b"Z" * 4096) == b"", "a heartbeat 'line' past 512 bytes closes"
    send(os.urandom(4096), read_reply=False)  # anything at all: the node must take it in its stride
    assert send(MAGIC + struct.pack("<II", 5, 0) + b"\x02abcd") == b"", "a checksum mismatch closes"
    assert send(MAGIC + struct.pack("<II", 1 << 30, 0)) == b"", "a frame of a GiB closes"
    assert send(MAGIC + hello("another-cluster/A,B,C", other, me)) == b"", "another cluster is refused"
    assert send(MAGIC + hello(cluster, other, me + 10)) == b"", "a hello for another replica is refused"
    assert send(MAGIC + frame(b"\x02" + uvarint(0) + uvarint(other) + uvarint(me) + uvarint(1) + b"\x08")) == b"", "no hello first"
    timeout_now = b"\x02" + uvarint(5) + uvarint(other) + uvarint(me) + uvarint(1) + b"\x08"
    assert send(MAGIC + hello(cluster, other, me) + frame(timeout_now)) == b"", "a group this node does not run is refused"
    # A forged append (right cluster, the leader's id and term, right after the victim's last entry)
    # with entries out of order: refused and logged, not merged.
    before = request(port(raft, victim), "GET", "/status").json
    last, term = before["last_index"], before["term"]
    entries = uvarint(term) + uvarint(last + 1) + uvarint(1) + b"x" + uvarint(term) + uvarint(last + 6) + uvarint(1) + b"y"
    append = b"\x05" + uvarint(last) + uvarint(term) + uvarint(before["commit_index"]) + uvarint(0) + uvarint(2) + entries
    forged = b"\x02" + uvarint(0) + uvarint(other) + uvarint(me) + uvarint(term) + append
    send(MAGIC + hello(cluster, other, me) + frame(forged), read_reply=False)
    log = raft.wait_log("refused an append", 5)
    for expected in ("fails its checksum", "a frame of 1073741824 bytes", "a hello from cluster 'another-cluster/A,B,C'",
                     "the first frame is not a hello", "a message for group 5; this node has 1"):
        assert expected in log, expected
    assert process_alive(pid) and node_pid(raft, victim) == pid
    get_s, put_s = served_within(raft, victim, 2.0)
    after = request(port(raft, victim), "GET", "/status").json
    assert after["last_index"] < last + 6 or after["term"] > term, (before, after)


def test_a_partition_through_the_proxy_holds_the_stream_and_heals_without_a_decode_error(raft):
    """A partition holds the bytes (as TCP retransmits them after a heal); it once dropped chunks of
    a live connection, and the receiver read the rest of the stream as garbage. Writes of 200 KB go
    on across the cut and the heal, so frames are in flight at both moments."""
    import threading

    leader, _ = wait_leader(raft)
    follower = next(n for n in NODES if n != leader)
    stop, errors, done = threading.Event(), [], [0]

    def writer():
        client = Client("p", [port(raft, leader)])
        while not stop.is_set():
            r, _ = client.call("PUT", f"/kv/p{done[0] % 50}", {"value": "x" * 200_000})
            if r.status != 200:
                errors.append(r)
            done[0] += 1

    def writes_past(n, what):
        deadline = time.monotonic() + 10
        while done[0] < n:
            assert time.monotonic() < deadline and not errors, f"{what}: {done[0]} writes, errors {errors[:3]}"
            time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        writes_past(5, "writes going before the cut")
        raft.kvctl("inject", "partition", follower, "--for", "2s")
        raft.wait_events(lambda e: e["event"] == "fault_cleared", timeout=10, what="the heal")
        writes_past(done[0] + 5, "writes going on after the heal")
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors[:3]
    commit = request(port(raft, leader), "GET", "/status").json["commit_index"]
    deadline = time.monotonic() + 10
    log = ""
    while request(port(raft, follower), "GET", "/status").json["applied_index"] < commit:
        log = (raft.dir / "supervisor.stderr").read_text(errors="replace")
        notes = [l for l in log.splitlines() if "snapshot" in l or "dropped" in l or "peer" in l]
        assert time.monotonic() < deadline, "the follower did not catch up after the heal:\n" + "\n".join(notes[-20:])
        time.sleep(0.05)
    log = (raft.dir / "supervisor.stderr").read_text(errors="replace")
    bad = [l for l in log.splitlines() if "peer connection" in l and "closed" in l]
    assert not bad, "\n".join(bad[:10])
