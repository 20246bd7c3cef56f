"""The control socket as others see it: the Python varlink package (written by others) and raw bytes."""
import json
import os
import shutil
import signal
import socket
import subprocess
import threading

import pytest
import varlink


def raw(sock_path, payload, read=True, timeout=3):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    s.sendall(payload)
    data = b""
    if read:
        while not data.endswith(b"\0"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    s.close()
    return json.loads(data[:-1]) if data.endswith(b"\0") else data


def still_answers(sup):
    reply = raw(sup.socket, json.dumps({"method": "io.kvsupervisor.GetStatus"}).encode() + b"\0")
    assert reply["parameters"]["nodes_total"] == 3


def test_python_varlink_client(sup):
    with varlink.Client.new_with_address("unix:" + sup.socket) as client:
        with client.open("org.varlink.service") as service:
            info = service.GetInfo()
            assert "io.kvsupervisor" in info["interfaces"] and info["product"] == "kvsupervisor"
        with client.open("io.kvsupervisor") as con:  # introspects: the IDL must parse
            status = con.GetStatus()
            assert status["nodes_ready"] == 3
            nodes = con.ListNodes()["nodes"]
            assert [n["id"] for n in nodes] == ["A", "B", "C"]
            seen, live = [], threading.Event()

            def follow():
                with varlink.Client.new_with_address("unix:" + sup.socket) as c2, c2.open("io.kvsupervisor") as con2:
                    # replay=1: the first reply is a past event, proof that the subscription is live.
                    for reply in con2.Subscribe(replay=1, _more=True):
                        live.set()
                        event = reply["event"]
                        if event["event"] == "declared_dead":
                            seen.append(event)
                            if len(seen) >= 2:
                                return

            t = threading.Thread(target=follow, daemon=True)
            t.start()
            assert live.wait(timeout=5), "Subscribe sent nothing"
            result = con.Inject(node="B", fault="kill")
            assert result["fault_id"] and result["applied_mono_ns"] > 0
            t.join(timeout=5)
            assert len(seen) == 2 and {e["peer"] for e in seen} == {"B"}
            with pytest.raises(varlink.VarlinkError) as err:
                con.Inject(node="Z", fault="kill")
            assert err.value.error() == "io.kvsupervisor.NoSuchNode"


def test_non_json_gets_an_error_and_the_daemon_lives(sup):
    reply = raw(sup.socket, b"this is not json\0")
    assert reply["error"] == "org.varlink.service.InvalidParameter"
    still_answers(sup)


def test_unknown_method_and_interface(sup):
    r = raw(sup.socket, json.dumps({"method": "io.kvsupervisor.Explode"}).encode() + b"\0")
    assert r["error"] == "org.varlink.service.MethodNotFound"
    r = raw(sup.socket, json.dumps({"method": "com.example.Nope"}).encode() + b"\0")
    assert r["error"] == "org.varlink.service.InterfaceNotFound"
    still_answers(sup)


@pytest.mark.parametrize("params,bad", [
    ({"node": 5, "fault": "kill"}, "node"),
    ({"node": "B", "fault": "kill", "after_ms": "soon"}, "after_ms"),
    ({"node": "B", "fault": "delay", "delay_ms": -3}, "delay_ms"),
    ({"node": "B", "fault": "partition", "peers": "A"}, "peers"),
])
def test_wrong_parameter_types(sup, params, bad):
    r = raw(sup.socket, json.dumps({"method": "io.kvsupervisor.Inject", "parameters": params}).encode() + b"\0")
    assert r["error"] == "org.varlink.service.InvalidParameter" and r["parameters"]["parameter"] == bad
    still_answers(sup)


def test_unknown_fault_is_named(sup):
    r = raw(sup.socket, json.dumps({"method": "io.kvsupervisor.Inject",
                                    "parameters": {"node": "B", "fault": "explode"}}).encode() + b"\0")
    assert r["error"] == "io.kvsupervisor.InvalidFault" and "explode" in r["parameters"]["reason"]


def test_two_mib_message_is_refused(sup):
    payload = json.dumps({"method": "io.kvsupervisor.GetStatus", "parameters": {"x": "y" * (2 << 20)}}).encode() + b"\0"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sup.socket)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before reading it all; the reply below is what counts
    data = b""
    try:
        while not data.endswith(b"\0"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert b"larger than 1048576 bytes" in data, data[:300]
    still_answers(sup)


def test_pipelined_calls_are_answered_in_order_and_reads_see_earlier_writes(sup):
    """Read-only calls are answered on the event loop; once a call needed the daemon's task, later
    reads on that connection wait for it, so ListNodes after StopNode sees C stopped."""
    calls = [("GetStatus", {}), ("StopNode", {"node": "C"}), ("ListNodes", {}), ("GetStatus", {})]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sup.socket)
    try:
        s.sendall(b"".join(json.dumps({"method": f"io.kvsupervisor.{m}", "parameters": p}).encode() + b"\0"
                           for m, p in calls))
        data = b""
        while data.count(b"\0") < len(calls):
            chunk = s.recv(65536)
            assert chunk, f"closed after {data!r}"
            data += chunk
    finally:
        s.close()
    replies = [json.loads(f)["parameters"] for f in data.split(b"\0")[:len(calls)]]
    assert replies[0]["nodes_ready"] == 3, replies[0]
    assert replies[1]["node"]["id"] == "C" and replies[1]["node"]["state"] == "stopped", replies[1]
    assert {n["id"]: n["state"] for n in replies[2]["nodes"]}["C"] == "stopped", replies[2]
    assert replies[3]["nodes_ready"] == 2, replies[3]


def test_silent_client_does_not_block_others(sup):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(sup.socket)
    try:
        still_answers(sup)
        still_answers(sup)
    finally:
        silent.close()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to act as another uid")
def test_other_uid_is_refused(sup):
    os.chmod(os.path.dirname(sup.socket), 0o755)
    os.chmod(sup.socket, 0o666)  # let the kernel pass the connect: the peer-credential check must refuse it
    from conftest import BIN
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(BIN / "kvctl"), "--socket", sup.socket, "status"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "permission denied" in r.stderr, r.stderr
    still_answers(sup)


def test_bad_config_is_refused_with_key_and_line(tmpdir_clean):
    from conftest import BIN
    bad = os.path.join(tmpdir_clean, "bad.toml")
    with open(bad, "w") as f:
        f.write("[cluster]\nhb_interval_ms = 100\nhb_intervall = 5\n")
    r = subprocess.run([str(BIN / "kvsupervisor"), "--config", bad], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert f"{bad} line 3" in r.stderr and "hb_intervall" in r.stderr and "did you mean" in r.stderr


def test_reload_refuses_bad_config_and_keeps_old(sup):
    good = sup.config.read_text()
    sup.config.write_text(good.replace("[cluster]", "[cluster]\nrestart = \"sometimes\""))
    sup.proc.send_signal(signal.SIGHUP)
    rejected = sup.wait_events(lambda e: e["event"] == "config_rejected", timeout=3)[0]
    assert "cluster.restart" in rejected["reason"]
    sup.notify.wait_for("RELOADING=1", 2)
    still_answers(sup)
    sup.config.write_text(good.replace("stop_grace_ms = 2000", "stop_grace_ms = 1500"))
    sup.proc.send_signal(signal.SIGHUP)
    sup.wait_events(lambda e: e["event"] == "config_reloaded", timeout=3)
    assert sup.json("status")["status"]["state"] == "running"
