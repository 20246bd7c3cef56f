"""kvctl check as a person or a script runs it: real files, exit codes, the counterexample page
rendered by headless Chromium (Debian's chromium). No supervisor is involved."""
import json
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import BIN

DATA = pathlib.Path(__file__).resolve().parents[1] / "Tests" / "LinearizabilityTests" / "testdata"
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "test-output"  # screenshots left for a person


def check(*args, timeout=120):
    return subprocess.run([str(BIN / "kvctl"), "check", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def verdicts(folder):
    lines = (DATA / folder / "verdicts.tsv").read_text().splitlines()[1:]
    return [tuple(l.split("\t")) for l in lines if l.strip()]


@pytest.mark.parametrize("folder,name,expected", [(f, *v) for f in ("jepsen-etcd", "kv") for v in verdicts(f)])
def test_every_shared_history_gets_its_verdict_and_exit_code(folder, name, expected, tmp_path):
    r = check(DATA / folder / name, "--json", "--no-html")
    out = json.loads(r.stdout)
    assert out["verdict"] == expected, r.stdout[:500]
    assert r.returncode == (0 if expected == "linearizable" else 1), r.stderr


def test_text_output_names_the_key_the_order_and_the_culprit(tmp_path):
    copy = tmp_path / "c01-bad.txt"
    shutil.copy(DATA / "kv" / "c01-bad.txt", copy)
    r = check(copy)
    assert r.returncode == 1
    assert "NOT linearizable (edn format, kv model" in r.stdout
    assert 'key "7": 5 operations, not-linearizable' in r.stdout
    assert 'cannot come next: client 0: get -> "x 0 0 y"' in r.stdout
    assert f"counterexample page: {copy}.html" in r.stdout
    assert (tmp_path / "c01-bad.txt.html").exists()


def test_a_limit_reached_is_unknown_with_exit_3():
    r = check(DATA / "jepsen-etcd" / "etcd_002.log", "--timeout", "1us", "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == "unknown" and out["keys"][0]["limit_reached"] == "time limit reached"


@pytest.mark.parametrize("args,message", [
    (["/nonexistent/history.log"], "cannot read /nonexistent/history.log"),
    (["--model", "queue", "x"], "--model 'queue': use register or kv"),
    (["--timeout", "soon", "x"], "--timeout 'soon' is not a duration"),
    ([DATA / "jepsen-etcd" / "etcd_000.log", "--model", "kv"], "--model kv does not fit the jepsen format"),
])
def test_usage_errors_exit_2_and_say_what_to_do(args, message):
    r = check(*args)
    assert r.returncode == 2 and message in r.stderr, (r.returncode, r.stderr)


def test_a_broken_history_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type":"invoke","client":1,"f":"put","key":"a","value":"x","t_mono_ns":1}\n'
                   '{"type":"ok","client":2,"f":"put","key":"a","value":"x","t_mono_ns":2}\n')
    r = check(bad)
    assert r.returncode == 2 and "line 2: client 2 completes an operation on key \"a\" it never invoked" in r.stderr, r.stderr


INVOKE = '{"v":1,"type":"invoke","client":1,"f":"put","key":"a","value":"x","t_mono_ns":1}\n'
DONE = '{"v":1,"type":"ok","client":1,"f":"put","key":"a","value":"x","t_mono_ns":2}\n'


@pytest.mark.parametrize("text,says", [
    ('{"type":"invoke","client":"one","f":"put","key":"a","value":"x","t_mono_ns":1}\n', 'line 1: "client" must be an integer'),
    ('{"type":"invoke","client":1,"f":"put","key":"a","value":"x"}\n', 'line 1: no "t_mono_ns" field'),
    ('[1, 2]\n', "line 1: not a JSON object"),
    (INVOKE + INVOKE.replace(':1}', ':3}'), 'line 2: client 1 invokes again on key "a" while its operation invoked at 1 ns is open'),
    (INVOKE.replace('"v":1', '"v":2'), 'line 1: schema version "v": 2 is not one this checker reads (1)'),
])
def test_a_bad_line_is_refused_in_the_formats_terms(tmp_path, text, says):
    """Errors once leaked Swift's decoding words (keyNotFound, CodingKeys) and the top-level usage;
    a second invoke from a client with one open was silently taken for an unknown outcome."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    r = check(bad, "--model", "kv")
    assert r.returncode == 2 and says in r.stderr, r.stderr
    for leak in ("CodingKeys", "keyNotFound", "typeMismatch", "Usage:", "Swift."):
        assert leak not in r.stderr, r.stderr


def test_a_torn_last_line_is_reported_and_the_rest_checked_unless_strict(tmp_path):
    torn = tmp_path / "torn.jsonl"
    torn.write_text(INVOKE + DONE + DONE.replace("ok", "invoke")[:30])
    r = check(torn, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["verdict"] == "linearizable", r.stdout + r.stderr
    assert "line 3 is cut short (the file ends mid-line): left out, the 2 lines before it checked" in r.stderr, r.stderr
    r = check(torn, "--strict")
    assert r.returncode == 2 and "line 3: not valid JSON" in r.stderr and "the file ends mid-line" in r.stderr, r.stderr


def test_the_labs_jsonl_history(tmp_path):
    ok = tmp_path / "ok.jsonl"
    ok.write_text("\n".join(json.dumps(e) for e in [
        {"v": 1, "type": "invoke", "client": 1, "key": "a", "f": "put", "value": "x", "t_mono_ns": 100},
        {"v": 1, "type": "invoke", "client": 2, "key": "a", "f": "get", "t_mono_ns": 150},
        {"v": 1, "type": "ok", "client": 2, "key": "a", "f": "get", "value": "x", "t_mono_ns": 180},
        {"v": 1, "type": "info", "client": 1, "key": "a", "f": "put", "t_mono_ns": 900},
        {"v": 1, "type": "invoke", "client": 3, "key": "b", "f": "cas", "expected": None, "value": "y", "t_mono_ns": 200},
        {"v": 1, "type": "ok", "client": 3, "key": "b", "f": "cas", "value": "y", "t_mono_ns": 260},
    ]) + "\n")
    r = check(ok, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["verdict"] == "linearizable" and out["model"] == "kv", r.stdout
    assert sorted((k["key"], k["operations"]) for k in out["keys"]) == [("a", 2), ("b", 1)]
    # The same get, but before the put was invoked: no order allows it.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(ok.read_text().replace('"t_mono_ns": 150', '"t_mono_ns": 10').replace('"t_mono_ns": 180', '"t_mono_ns": 20'))
    assert check(bad, "--no-html").returncode == 1


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("folder,name", [("kv", "c01-bad.txt"), ("jepsen-etcd", "etcd_000.log")])
def test_the_counterexample_page_renders_one_lane_per_client(folder, name, tmp_path):
    copy = tmp_path / name
    shutil.copy(DATA / folder / name, copy)
    out = json.loads(check(copy, "--json").stdout)
    page = pathlib.Path(out["html"])
    bad = next(k for k in out["keys"] if k["verdict"] == "not-linearizable")
    clients = {op["client"] for op in bad["window"]}
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1300,1100"]
    dom = subprocess.run(chromium + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90).stdout
    lanes = re.findall(r'<text[^>]*class="lane"[^>]*>client (\d+)</text>', dom)
    assert sorted(map(int, lanes)) == sorted(clients), (lanes, clients)
    assert dom.count('class="culprit') == len(bad["unplaceable"]) >= 1
    OUTPUT.mkdir(exist_ok=True)
    png = OUTPUT / f"{name}.png"
    subprocess.run(chromium + [f"--screenshot={png}", page.as_uri()], capture_output=True, timeout=90)
    assert png.exists() and png.stat().st_size > 10_000, "the page rendered to an empty picture"
    print(f"counterexample of {name} rendered to {png}")


def test_many_histories_in_one_run_give_a_table_json_lines_and_the_worst_exit(tmp_path):
    """Every shared history at once, in one process: a row each with the verdict verdicts.tsv
    expects, a count line, one JSON object per line with --json, and the exit status of the worst
    file: 1 while one is not linearizable, 2 once one cannot be read (in the order 0, 3, 1, 2)."""
    files = [(DATA / f / name, expected) for f in ("jepsen-etcd", "kv") for name, expected in verdicts(f)]
    for p, _ in files:
        shutil.copy(p, tmp_path / f"{p.parent.name}-{p.name}")  # the counterexample pages land beside the copies
    paths = [tmp_path / f"{p.parent.name}-{p.name}" for p, _ in files]
    r = check(*paths)
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith(str(tmp_path))}
    for path, (_, expected) in zip(paths, files):
        assert ("NOT linearizable" if expected == "not-linearizable" else " linearizable") in rows[str(path)], rows[str(path)]
    bad = sum(1 for _, e in files if e == "not-linearizable")
    assert f"{len(files)} files: {len(files) - bad} linearizable, {bad} NOT linearizable, 0 unknown, 0 unreadable" in r.stdout, r.stdout
    assert r.returncode == (1 if bad else 0)
    j = check("--json", "--no-html", *paths, tmp_path / "missing.jsonl")
    lines = [json.loads(l) for l in j.stdout.splitlines()]
    assert [l["file"] for l in lines] == [str(p) for p in paths] + [str(tmp_path / "missing.jsonl")]
    assert lines[-1]["error"].startswith("cannot read") and j.returncode == 2, j.stderr
    ok = [p for p, (_, e) in zip(paths, files) if e == "linearizable"][:2]
    assert check("--no-html", *ok).returncode == 0
