"""Harness for integration tests: real kvsupervisor/kvnode processes on loopback in temp dirs,
a real NOTIFY_SOCKET listener, kvctl run as a user types it. Every process is stopped by pid."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

BIN = pathlib.Path(os.environ.get("KV_BIN", pathlib.Path(__file__).resolve().parents[1] / ".build" / "release"))


def free_ports(n, offset=None):
    """n ports free now, below the kernel's ephemeral range (32768 up): the supervisor's link
    proxies and every client socket take ephemeral ports, and one of those once took a node's
    port between this check and the node's bind. With offset, port + offset is free too (raft
    mode's peer port)."""
    import random
    ports = []
    while len(ports) < n:
        p = random.randrange(20000, 31000)
        candidates = [p] if offset is None else [p, p + offset]
        if any(c in ports or (offset and c - offset in ports) for c in candidates):
            continue
        ok = True
        for c in candidates:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", c))
                except OSError:
                    ok = False
        if ok:
            ports.append(p)
    return ports


def process_alive(pid):
    """True if pid runs (a zombie is dead: PID 1 here may reap orphans late)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except FileNotFoundError:
        return False
    return False


def wait_for_jsonl(path, predicate, timeout):
    """Events in a JSONL file that satisfy predicate, once there is at least one; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                found = [e for e in map(json.loads, filter(str.strip, f)) if predicate(e)]
        except FileNotFoundError:  # not created yet
            found = []
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"nothing matching in {path} within {timeout}s")
        time.sleep(0.01)


def screenshot(html, png, size="1300,1800"):
    """Renders a report page with headless Chromium (Debian's); its PNG bytes. Skips the test when
    there is no Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium here (scripts/setup.sh installs Debian's chromium)")
    out = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={size}",
                          f"--screenshot={png}", f"file://{html}"], capture_output=True, text=True, timeout=120)
    assert png.exists(), out.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def stop_processes(*procs):
    """SIGKILL each Popen still running, by its pid, and reap it."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


class NotifyListener:
    """A NOTIFY_SOCKET as systemd provides one: datagrams of KEY=VALUE lines."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, assignment, timeout, within_line=False):
        """The first message with a line equal to `assignment` (containing it, with within_line)."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if any(assignment in line if within_line else assignment == line for line in m.split("\n")):
                    return m
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {assignment} on NOTIFY_SOCKET within {timeout}s; got {self.messages}")
            self.sock.settimeout(remaining)
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except socket.timeout:
                pass

    def collect(self, seconds):
        """Every message that arrives within the next `seconds` (also kept in self.messages)."""
        got = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                m = self.sock.recv(65536).decode()
            except socket.timeout:
                break
            self.messages.append(m)
            got.append(m)
        return got

    def drain(self):
        """Reads every message already queued, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append(self.sock.recv(65536).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)

    def close(self):
        self.sock.close()


class Supervisor:
    def __init__(self, tmp, hb_interval=100, hb_timeout=200, extra="", env=None, mode="heartbeat", cluster_extra="", nofile=None,
                 layout=None):
        """layout: [(id, extra [[node]] lines)] instead of A, B and C (primary-backup's coordinator and pairs)."""
        self.dir = pathlib.Path(tmp)
        self.mode, self.cluster_extra = mode, cluster_extra
        self.layout = layout or [(n, "") for n in "ABC"]
        self.ports = free_ports(len(self.layout), offset=1000 if mode == "raft" else None)
        self.port_of = {n: p for (n, _), p in zip(self.layout, self.ports)}
        self.socket = str(self.dir / "control")
        self.event_log = self.dir / "events.jsonl"
        self.config = self.dir / "kvsupervisor.toml"
        self.hb_interval, self.hb_timeout = hb_interval, hb_timeout
        self.write_config(extra)
        self.notify = NotifyListener(self.dir / "notify.sock")
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path, KV_LOG_STDERR="1", **(env or {}))
        env.pop("XDG_RUNTIME_DIR", None)
        self.stderr = open(self.dir / "supervisor.stderr", "w")
        def limit_files():  # nofile: the supervisor and its nodes get this many file descriptors, soft and hard
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([str(BIN / "kvsupervisor"), "--config", str(self.config)],
                                     env=env, stdout=self.stderr, stderr=subprocess.STDOUT, cwd=self.dir,
                                     preexec_fn=limit_files if nofile else None)
        self.node_pids = []
        self._events, self._offset = [], 0

    def write_config(self, extra=""):
        nodes = "".join(f'[[node]]\nid = "{n}"\nport = {p}\n{more}' for (n, more), p in zip(self.layout, self.ports))
        self.config.write_text(
            f'[supervisor]\nruntime_dir = "{self.dir}/rt"\nsocket = "{self.socket}"\n'
            f'event_log = "{self.event_log}"\nrun_id = "itest"\nstop_grace_ms = 2000\n{extra}'
            f'[cluster]\nmode = "{self.mode}"\nhb_interval_ms = {self.hb_interval}\nhb_timeout_ms = {self.hb_timeout}\n'
            f"{self.cluster_extra}{nodes}")

    def wait_ready(self, timeout=15):
        ready = self.notify.wait_for("READY=1", timeout)
        nodes = self.json("nodes")["nodes"]
        missing = [n for n in nodes if "pid" not in n]
        if missing:
            out = (self.dir / "supervisor.stderr").read_text(errors="replace")[-4000:]
            raise AssertionError(f"READY=1 ({ready!r}) but nodes without a process: {missing}\n{out}")
        self.node_pids = [n["pid"] for n in nodes]

    def kvctl(self, *args, check=True, timeout=20):
        r = subprocess.run([str(BIN / "kvctl"), "--socket", self.socket, *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kvctl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.kvctl("--json", *args).stdout)

    def events(self):
        """Every event so far. Reads only the bytes appended since the last call."""
        if not self.event_log.exists():
            return self._events
        with open(self.event_log, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written is read next time
        self._offset += len(complete)
        self._events.extend(json.loads(l) for l in complete.splitlines() if l.strip())
        return self._events

    def wait_events(self, predicate, count=1, timeout=5.0, what="events"):
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events() if predicate(e)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                tail = "\n".join(json.dumps(e) for e in self.events()[-15:])
                raise AssertionError(f"waited {timeout}s for {count} {what}, saw {len(found)}; last events:\n{tail}")
            time.sleep(0.02)

    def wait_log(self, fragment, timeout):
        """The supervisor's stderr (diagnostics and events) once it contains fragment; fails after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            text = (self.dir / "supervisor.stderr").read_text(errors="replace")
            if fragment in text:
                return text
            if time.monotonic() >= deadline:
                raise AssertionError(f"no '{fragment}' in the supervisor's output within {timeout}s:\n{text[-3000:]}")
            time.sleep(0.01)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.node_pids:  # belt and braces: nothing of ours may outlive the test
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.notify.close()
        self.stderr.close()


@pytest.fixture
def tmpdir_clean():
    d = tempfile.mkdtemp(prefix="kvit-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sup(tmpdir_clean):
    s = Supervisor(tmpdir_clean)
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()
