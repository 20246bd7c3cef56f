"""The HTTP API's contract at its edges (issue 23): requests that are wrong say which field and
why, a reused seq is told from a retry, and kvctl kv says what it sent. Real raft nodes."""
import pytest

from conftest import Supervisor, tmpdir_clean  # noqa: F401 (fixtures)
from kvhttp import follow
from test_raft import port, wait_leader


@pytest.fixture
def raft(tmpdir_clean):
    s = Supervisor(tmpdir_clean, mode="raft")
    try:
        s.wait_ready()
        wait_leader(s)
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("path,body,says", [
    ("/kv/cas", {"client_id": "c", "seq": 1, "key": "k", "value": "v"}, "missing field 'expected' (null: only if the key is absent)"),
    ("/kv/k", {"client_id": "c", "seq": -1, "value": "v"}, "field 'seq': expected a whole number, 1 or more"),
    ("/kv/k", {"client_id": "c", "seq": 1.5, "value": "v"}, "field 'seq': expected a whole number, 1 or more"),
    ("/kv/k", ["value", "v"], "the body must be a JSON object"),
    ("/kv/mput", {"entries": {"a": "1"}}, "field 'entries': expected an array"),
])
def test_a_wrong_body_is_a_400_naming_the_field(raft, path, body, says):
    """A CAS without `expected` once meant "only if absent"; a bad seq or an array body got
    "not valid JSON" or Swift type names."""
    method = "PUT" if path == "/kv/k" else "POST"
    r = follow(port(raft, "A"), method, path, body)
    assert r.status == 400, r
    assert says in r.json["error"], r.json
    assert "Swift" not in r.json["error"] and "Dictionary" not in r.json["error"], r.json


def test_the_same_seq_with_another_value_is_a_409_not_a_silent_ok(raft):
    a = port(raft, "A")
    first = follow(a, "PUT", "/kv/k", {"client_id": "c1", "seq": 1, "value": "one"})
    assert first.status == 200, first
    retry = follow(a, "PUT", "/kv/k", {"client_id": "c1", "seq": 1, "value": "one"})
    assert retry.status == 200, retry  # a retry: the first answer, applied once
    other = follow(a, "PUT", "/kv/k", {"client_id": "c1", "seq": 1, "value": "two"})
    assert other.status == 409 and other.json["code"] == "seq_conflict", other
    assert "already used seq 1 for a different request" in other.json["error"] and "seq 2" in other.json["error"], other
    assert follow(a, "GET", "/kv/k").json["value"] == "one"


def test_kvctl_kv_says_what_it_sent_and_whether_a_delete_found_the_key(raft):
    r = raft.kvctl("kv", "delete", "nothing-here")
    assert "'nothing-here' was already absent: nothing deleted" in r.stdout, r.stdout
    raft.kvctl("kv", "put", "k", "v", "--client-id", "me", "--seq", "1")
    assert "ok (index" in raft.kvctl("kv", "delete", "k").stdout
    r = raft.kvctl("kv", "put", "k", "other", "--client-id", "me", "--seq", "1", check=False)
    assert r.returncode == 1, r
    assert "(sent as --client-id me --seq 1)" in r.stderr and "already used seq 1" in r.stderr, r.stderr
    r = raft.kvctl("kv", "get", "k", "--node", "Z", check=False)
    assert r.returncode == 1 and "no node 'Z'" in r.stderr, r.stderr


def test_a_restarted_node_reports_its_role_and_wait_returns_with_it(raft):
    """kvctl nodes once showed ROLE/TERM '-' for 8 s or more after a start or restart."""
    import time
    for command in (["restart", "B", "--wait"], ["stop", "C"], ["start", "C", "--wait"]):
        node = raft.json(*command)["nodes"][0]
        if command[0] != "stop":
            assert node["state"] == "ready" and node["raft"]["role"] in ("follower", "leader"), node
            assert node["raft"]["term"] >= 1, node
    # and it stays reported: the node repeats its status every second even when nothing changes
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        views = {n["id"]: n.get("raft") for n in raft.json("nodes")["nodes"]}
        assert all(views.values()), views
        time.sleep(0.25)
