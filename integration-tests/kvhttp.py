"""A small client for kvnode's HTTP API (http.client: redirects are seen, not followed)."""
import http.client
import json
import time


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body

    @property
    def json(self):
        return json.loads(self.raw) if self.raw else None

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


def request(port, method, path, body=None, timeout=5.0, host="127.0.0.1", headers=None):
    """One request on a fresh connection; body may be bytes, str or a JSON-able object."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def port_of(url):
    return int(url.rsplit(":", 1)[1].split("/")[0])


def follow(port, method, path, body=None, timeout=5.0, hops=3):
    """Follows 307 redirects to the leader, as a client of the original store would."""
    for _ in range(hops):
        r = request(port, method, path, body, timeout)
        if r.status != 307:
            return r
        port = port_of(r.headers["location"].split("/kv")[0])
    return r


class Client:
    """A client with its own (client_id, seq): retries the same seq until it gets an answer, asking
    the redirect target, or the next node, when one does not answer."""

    def __init__(self, client_id, ports):
        self.id, self.ports, self.seq, self.at = client_id, list(ports), 0, 0

    def call(self, method, path, fields, deadline_s=30.0, on_attempt=None):
        self.seq += 1
        body = dict(fields, client_id=self.id, seq=self.seq)
        deadline = time.monotonic() + deadline_s
        attempts = 0
        while True:
            attempts += 1
            port = self.ports[self.at % len(self.ports)]
            try:
                r = request(port, method, path, body, timeout=2.0)
            except OSError:
                r = None
            if r is not None and r.status == 307:
                self.at = self.ports.index(port_of(r.headers["location"].split("/kv")[0]))
                continue
            if r is not None and r.status not in (503,):
                return r, attempts
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.id} seq {self.seq}: no answer within {deadline_s}s (last: {r})")
            self.at += 1
            time.sleep(0.02)
