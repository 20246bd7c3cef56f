"""Scripting kvctl (issue 23): durations with units, errors in the user's terms, faults that can be
listed and cancelled, real --json replies. Real supervisor, real socket, every wait with a deadline."""
import time

import pytest

from conftest import Supervisor, process_alive, sup, tmpdir_clean  # noqa: F401 (fixtures)


@pytest.mark.parametrize("args,message", [
    (["inject", "kill", "B", "--after", "150"], "--after '150' has no unit; write 150ms or 150s"),
    (["inject", "kill", "B", "--after", "-5ms"], "--after '-5ms' is negative"),
    (["inject", "stop", "B", "--for", "2h"], "--for '2h' is over the limit of 1h"),
    (["inject", "delay", "B", "150ms", "--jitter", "2m"], "--jitter '2m' is over the limit of 1m"),
    (["inject", "delay", "B", "90s"], "the delay '90s' is over the limit of 1m"),
    (["inject", "delay", "B", "0ms"], "the delay '0ms' is under the minimum of 1ms"),
    (["inject", "kill", "B", "--for", "2s"], "--for only applies to stop, delay and partition"),
    (["inject", "delay", "B", "150ms", "--jitter", "200ms"], "--jitter (200 ms) must not exceed the delay (150 ms)"),
    (["inject", "kill", "B", "--peers", "A"], "--peers only applies to partition"),
    (["inject", "kill", "B", "--jitter", "5ms"], "--jitter only applies to delay"),
    (["inject", "restart", "B", "--after", "10s"], "restart cannot be scheduled"),
    (["inject", "partition", "B", "--peers", "A C"], "--peers: 'A C' is not a node id; give comma-separated node ids"),
    (["start", "a b"], "'a b' is not a node id"),
])
def test_durations_need_units_and_say_what_is_wrong(sup, args, message):
    """`--after 150` was taken as ms, `--after -5ms` said "Missing value", `--after 2h` "not a duration"."""
    r = sup.kvctl(*args, check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    for internal in ("_ms", "invalid parameter"):
        assert internal not in r.stderr, r.stderr
    assert sup.json("faults")["faults"] == []


def test_errors_name_the_flag_typed_and_unknown_nodes_are_errors(sup):
    r = sup.kvctl("events", "--last", "1000000", check=False)
    assert r.returncode == 1 and "--last: must be within" in r.stderr, r.stderr
    assert "limit" not in r.stderr, r.stderr
    r = sup.kvctl("events", "--kinds", "write_acked", check=False)  # a kind nothing emits
    assert r.returncode == 1 and "--kinds: unknown event kind 'write_acked'" in r.stderr, r.stderr
    for args in (["heal", "Z"], ["start", "Z"], ["inject", "kill", "Z"]):
        r = sup.kvctl(*args, check=False)
        assert r.returncode == 1 and "no node 'Z'" in r.stderr, (args, r.stderr)
    # heartbeat mode has no leader: a sentence, not a raw Varlink error
    r = sup.kvctl("inject", "kill", "leader", check=False)
    assert r.returncode == 1, r.stderr
    assert "io.kvsupervisor" not in r.stderr and "no node reports itself leader" in r.stderr, r.stderr


def test_a_scheduled_fault_is_listed_with_its_time_and_can_be_cancelled(sup):
    b_pid = sup.node_pids[1]
    requested = time.monotonic()
    fault_id = sup.json("inject", "kill", "B", "--after", "1500ms")["fault_id"]
    event = sup.wait_events(lambda e: e["event"] == "fault_requested" and e["fault_id"] == fault_id)[0]
    assert event["after_ms"] == 1500, event

    faults = sup.json("faults")["faults"]
    assert [(f["fault_id"], f["state"], f["after_ms"]) for f in faults] == [(fault_id, "scheduled", 1500)], faults
    assert faults[0]["due"]["mono_ns"] - faults[0]["requested"]["mono_ns"] == 1_500_000_000, faults
    assert fault_id in sup.kvctl("faults").stdout
    assert sup.json("status")["status"]["scheduled_faults"] == 1

    assert sup.json("faults", "cancel", fault_id) == {"fault_id": fault_id}
    cancelled = sup.wait_events(lambda e: e["event"] == "fault_cancelled" and e["fault_id"] == fault_id)[0]
    assert cancelled["after_ms"] == 1500 and cancelled["reason"] == "cancelled by request", cancelled
    assert sup.json("faults")["faults"] == []
    r = sup.kvctl("faults", "cancel", fault_id, check=False)
    assert r.returncode == 1 and f"cannot cancel fault {fault_id}: no scheduled fault has that id" in r.stderr, r.stderr

    # Past its due time by a margin, B still runs the same process and nothing was applied.
    while time.monotonic() < requested + 2.5:
        time.sleep(0.1)
    assert process_alive(b_pid)
    assert not [e for e in sup.events() if e.get("fault_id") == fault_id and e["event"] in ("fault_applied", "fault_failed")]

    # An applied fault cannot be cancelled.
    applied_id = sup.json("inject", "stop", "C", "--for", "5s")["fault_id"]
    r = sup.kvctl("faults", "cancel", applied_id, check=False)
    assert r.returncode == 1 and "it was already applied" in r.stderr, r.stderr
    assert [f["state"] for f in sup.json("faults")["faults"]] == ["active"]
    sup.kvctl("inject", "cont", "C")


def test_a_cancelled_scheduled_kill_leaves_the_nodes_next_exit_its_own(tmpdir_clean):
    """A scheduled kill marked the node's next exit as the fault's when it was requested; cancelled,
    the mark stayed, so a later crash was not restarted under restart = "on-failure"."""
    import os
    import signal
    s = Supervisor(tmpdir_clean, cluster_extra='restart = "on-failure"\n')
    try:
        s.wait_ready()
        fault_id = s.json("inject", "kill", "C", "--after", "60s")["fault_id"]
        s.kvctl("faults", "cancel", fault_id)
        c_pid = s.json("status")["nodes"][2]["pid"]
        os.kill(c_pid, signal.SIGKILL)  # a crash, not a fault
        exited = s.wait_events(lambda e: e["event"] == "node_exited" and e["node"] == "C")[0]
        assert exited.get("reason") != "exit caused by an injected fault", exited
        s.wait_events(lambda e: e["event"] == "node_restart_scheduled" and e["node"] == "C", what="C restarted on failure")
        s.wait_events(lambda e: e["event"] == "node_ready" and e["node"] == "C" and e["pid"] != c_pid)
        s.node_pids = [n["pid"] for n in s.json("nodes")["nodes"]]
    finally:
        s.stop()


def test_several_nodes_are_checked_before_any_is_touched(sup):
    r = sup.kvctl("stop", "A", "Z", check=False)
    assert r.returncode == 1 and "no node 'Z'" in r.stderr and "nothing was done" in r.stderr, r.stderr
    assert [n["state"] for n in sup.json("nodes")["nodes"]] == ["ready"] * 3
    out = sup.kvctl("--json", "start", "A", "B")  # running: left as they are, as systemctl start does
    assert [n["id"] for n in __import__("json").loads(out.stdout)["nodes"]] == ["A", "B"], out.stdout
    assert out.stderr == ""


def test_node_commands_print_real_replies_and_start_waits_until_ready(sup):
    stopped = sup.json("stop", "B")["nodes"][0]
    assert stopped["id"] == "B" and stopped["state"] == "stopped" and "pid" not in stopped, stopped
    started = sup.json("start", "B", "--wait", "--timeout", "10s")["nodes"][0]
    assert started["state"] == "ready" and started["pid"] > 0, started
    restarted = sup.json("restart", "C", "--wait")["nodes"][0]
    assert restarted["state"] == "ready" and restarted["pid"] not in sup.node_pids, restarted
    assert "B: restarted (pid" in sup.kvctl("restart", "B", "--wait").stdout

    status = sup.json("status")["status"]
    assert status["pid"] == sup.proc.pid, status
    assert status["config_file"] == str(sup.config), status
    assert status["version"], status


def test_the_event_log_is_in_time_order_and_the_run_leaves_no_notify_socket(tmpdir_clean):
    """Lines once came in arrival order (a node's detection after a later supervisor event, by up
    to 45 ms), and the per-node notify sockets stayed behind after the supervisor exited."""
    import json
    import os
    s = Supervisor(tmpdir_clean)
    try:
        s.wait_ready()
        for args in (["inject", "kill", "B"], ["start", "B", "--wait"], ["inject", "delay", "A", "150ms", "--for", "500ms"],
                     ["restart", "A", "--wait"], ["inject", "partition", "C", "--for", "500ms"]):
            s.kvctl(*args)
            s.wait_events(lambda e: e["event"] in ("declared_dead", "node_ready"), count=1, timeout=5)
        s.wait_events(lambda e: e["event"] == "fault_cleared", count=2, timeout=5)
        run_id = s.json("status")["status"]["run_id"]
        listed = [json.loads(l) for l in s.kvctl("--json", "events", "--run", run_id, "--last", "5").stdout.splitlines()]
        assert len(listed) == 5 and {e["run_id"] for e in listed} == {run_id}, listed
        assert s.kvctl("events", "--run", "no-such-run").stdout == ""
        runtime = os.path.join(tmpdir_clean, "rt")
        assert any(n.startswith("notify-") for n in os.listdir(runtime)), os.listdir(runtime)
    finally:
        s.stop()
    assert s.proc.returncode == 0
    lines = [json.loads(l) for l in open(s.event_log)]
    stamps = [e["t_mono_ns"] for e in lines]
    inverted = [(a["event"], b["event"], (b["t_mono_ns"] - a["t_mono_ns"]) / 1e6) for a, b in zip(lines, lines[1:])
                if b["t_mono_ns"] < a["t_mono_ns"]]
    assert stamps == sorted(stamps), inverted
    assert not [n for n in os.listdir(runtime) if n.startswith("notify-")], os.listdir(runtime)
