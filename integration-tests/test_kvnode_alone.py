"""kvnode without a supervisor, as the original labs ran their nodes (issue 23): the seed
experiment's two roles log their own side, and a node with no peers is a one-node store."""
import json
import os
import signal
import subprocess
import time
import urllib.request

from conftest import BIN, free_ports, stop_processes, tmpdir_clean, wait_for_jsonl  # noqa: F401 (fixtures)

TIMING = ["--hb_interval_ms", "100", "--hb_timeout_ms", "200", "--run_id", "manual"]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def test_a_detector_says_when_its_peer_address_answers_nothing_and_both_roles_log_their_side(tmpdir_clean):
    """--peer_addr to nothing was accepted silently with an empty log; the monitored node's log was always empty."""
    pa, pb = free_ports(2)
    a_log, b_log = os.path.join(tmpdir_clean, "a.jsonl"), os.path.join(tmpdir_clean, "b.jsonl")
    a = subprocess.Popen([str(BIN / "kvnode"), "--id", "A", "--port", str(pa), "--role", "detector",
                          "--peer_addr", f"127.0.0.1:{pb}", "--log_path", a_log, *TIMING],
                         stderr=subprocess.PIPE, text=True)
    b = None
    try:
        unreachable = wait_for_jsonl(a_log, lambda e: e["event"] == "peer_unreachable", 3)
        assert len(unreachable) == 1, unreachable  # said once per outage, not every 100 ms
        assert f"cannot connect to 127.0.0.1:{pb}: Connection refused; retrying every 100 ms" == unreachable[0]["reason"]
        assert read_jsonl(a_log)[0]["event"] == "node_started", read_jsonl(a_log)

        b = subprocess.Popen([str(BIN / "kvnode"), "--id", "B", "--port", str(pb), "--role", "monitored",
                              "--log_path", b_log, *TIMING], stderr=subprocess.DEVNULL)
        stats = wait_for_jsonl(b_log, lambda e: e["event"] == "heartbeats_sent" and e["count"] > 0, 5)
        # one connection, a beat every 100 ms: about 10 in a second (the first second may start mid-way)
        assert 1 <= stats[0]["count"] <= 11, stats
        first = read_jsonl(b_log)[0]
        assert first["event"] == "node_started" and first["pid"] == b.pid, first
        assert "monitored" in first["reason"], first

        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=5) == 0
        b_exit = read_jsonl(b_log)[-1]
        assert b_exit["event"] == "node_exited" and b_exit["reason"] == "SIGTERM", b_exit
        wait_for_jsonl(a_log, lambda e: e["event"] == "declared_dead" and e["peer"] == "B", 3)
        # reachable in between, so the new outage is said again
        wait_for_jsonl(a_log, lambda e: e["event"] == "peer_unreachable" and e["t_mono_ns"] > b_exit["t_mono_ns"], 3)

        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=5) == 0
        assert read_jsonl(a_log)[-1]["event"] == "node_exited", read_jsonl(a_log)[-1]
        assert "peer_unreachable: cannot connect" in a.stderr.read()
    finally:
        stop_processes(*[p for p in (a, b) if p])


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, json.loads(r.read())


def test_a_node_with_no_peers_is_a_one_node_store(tmpdir_clean):
    """`kvnode -id node1 -port 8080` (the original single-node quick start) started a heartbeat node,
    so `curl localhost:8080/status` hung."""
    (port,) = free_ports(1, offset=1000)
    node = subprocess.Popen([str(BIN / "kvnode"), "-id", "node1", "-port", str(port)], cwd=tmpdir_clean,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, body = get(port, "/status")
                if body.get("role") == "leader":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no one-node leader on /status within 10s"
            time.sleep(0.05)
        r = subprocess.run(["curl", "-sf", "-X", "PUT", "-d", '{"value": "hello"}', f"http://127.0.0.1:{port}/kv/greeting"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r
        assert get(port, "/kv/greeting")[1]["value"] == "hello"
        assert os.path.isdir(os.path.join(tmpdir_clean, "data", "node1")), os.listdir(tmpdir_clean)
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=5)
        finally:
            stop_processes(node)
