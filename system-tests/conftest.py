"""System tier: a real systemd. Builds a Debian bookworm root with debootstrap, installs the built
binaries and packaging into it with `make install DESTDIR=ROOT`, boots it with systemd-nspawn and
runs every command inside with nsenter. Nothing on the host is installed, started or enabled.

Needs root, systemd-nspawn (systemd-container) and debootstrap; `make test` installs both when run
as root. KV_SYSTEM_ROOT_CACHE=DIR reuses a pristine debootstrapped root (copied, never changed) to
save the 35+ s of debootstrap between local runs; CI starts fresh."""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(os.environ.get("KV_BIN", REPO / ".build" / "release"))


def why_not_runnable():
    if os.geteuid() != 0:
        return "needs root (debootstrap and systemd-nspawn); run make test as root"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if not shutil.which(tool):
            return f"{tool} is not installed (make test installs it when run as root)"
    if not (BIN / "kvsupervisor").exists():
        return f"no kvsupervisor binary in {BIN}; run make build"
    return None


def step(text):
    print(f"  [system] {text}", flush=True)


class Machine:
    """A booted container: run() executes a command inside it, as root unless told otherwise."""

    def __init__(self, root, workdir):
        self.root = pathlib.Path(root)
        self.workdir = pathlib.Path(workdir)
        self.console = open(self.workdir / "console.log", "w")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-D", str(self.root), "--boot", "--register=no", "--keep-unit", "-q",
             "--console=pipe"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        self.systemd_pid = self._find_systemd(timeout=30)

    def _find_systemd(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise AssertionError(f"systemd-nspawn exited with {self.nspawn.returncode}:\n{self.console_text()}")
            r = subprocess.run(["pgrep", "-P", str(self.nspawn.pid), "-x", "systemd"], capture_output=True, text=True)
            if r.stdout.strip():
                return int(r.stdout.split()[0])
            time.sleep(0.1)
        raise AssertionError(f"no systemd under nspawn pid {self.nspawn.pid} within {timeout}s:\n{self.console_text()}")

    def console_text(self):
        self.console.flush()
        return (self.workdir / "console.log").read_text()[-3000:]

    def run(self, *cmd, user=None, check=False, timeout=60, input=None):
        prefix = ["nsenter", "-t", str(self.systemd_pid), "-a"]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        r = subprocess.run(prefix + list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def sh(self, script, **kw):
        return self.run("/bin/sh", "-c", script, **kw)

    def wait_for(self, what, probe, timeout):
        """Calls probe() until it returns something true; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            got = probe()
            if got:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not seen within {timeout}s")
            time.sleep(0.1)

    def journal_tail(self, n=40):
        return self.run("journalctl", "--no-pager", "-n", str(n), "-o", "short-monotonic").stdout

    def poweroff(self, timeout=60):
        if self.nspawn.poll() is None:
            self.run("systemctl", "poweroff", "--no-block")
            try:
                self.nspawn.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.nspawn.send_signal(signal.SIGKILL)
                self.nspawn.wait()
                raise AssertionError(f"container did not power off within {timeout}s; killed nspawn")
            finally:
                self.console.close()
        return self.nspawn.returncode


def make_root(path):
    cache = os.environ.get("KV_SYSTEM_ROOT_CACHE")
    t0 = time.monotonic()
    if cache and pathlib.Path(cache, "usr", "lib", "systemd", "systemd").exists():
        subprocess.run(["cp", "-a", f"{cache}/.", str(path)], check=True)
        step(f"root copied from KV_SYSTEM_ROOT_CACHE={cache} in {time.monotonic() - t0:.1f}s")
        return
    log = path.parent / "debootstrap.log"
    with open(log, "w") as out:
        r = subprocess.run(["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", "bookworm",
                            str(path)], stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise AssertionError(f"debootstrap failed ({r.returncode}):\n{log.read_text()[-3000:]}")
    step(f"debootstrap bookworm (minbase + systemd, dbus): {time.monotonic() - t0:.1f}s")


@pytest.fixture(scope="session")
def machine():
    reason = why_not_runnable()
    if reason:
        pytest.skip(f"system tier skipped: {reason}")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="kvsystem-", dir="/var/tmp"))
    root = workdir / "root"
    root.mkdir()
    m = None
    try:
        make_root(root)
        subprocess.run(["bash", str(REPO / "scripts" / "install.sh"), str(BIN), "/usr", str(root)],
                       check=True, capture_output=True, text=True)
        step(f"make install DESTDIR={root}: done")
        t0 = time.monotonic()
        m = Machine(root, workdir)
        state = m.wait_for("systemctl is-system-running says running or degraded",
                           lambda: (s := m.run("systemctl", "is-system-running").stdout.strip()) in ("running", "degraded") and s,
                           timeout=60)
        step(f"booted with systemd-nspawn (pid {m.nspawn.pid}, container systemd pid {m.systemd_pid}): "
             f"{state} after {time.monotonic() - t0:.1f}s")
        yield m
    finally:
        if m is not None and m.nspawn.poll() is None:
            try:
                m.poweroff()
            except AssertionError as e:
                print(e)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing step shows the container's journal tail next to its assertion."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        m = item.funcargs.get("machine")
        if m is not None and m.nspawn.poll() is None:
            report.sections.append(("journal tail (inside the container)", m.journal_tail()))
