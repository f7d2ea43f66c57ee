"""Webhook receivers are the user's, so they are treated as hostile (issue 13): slow,
endless, redirecting and private-address targets, against real loopback servers."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model

from market import services
from market.core.alerts import Event
from market.feed import targets, webhooks
from market.feed.webhooks import deliver_due
from market.models import AlertEvent

pytestmark = pytest.mark.django_db(transaction=True)


class Server:
    """A loopback HTTP server whose POST handler is ``behave(handler)``."""

    def __init__(self, behave):
        self.got: list = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((self.headers, body))
                behave(self)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    made: list[Server] = []

    def make(behave):
        made.append(Server(behave))
        return made[-1]

    yield make
    for s in made:
        s.close()


def ok(h):
    h.send_response(200)
    h.end_headers()


def fire(url, *, n=1, user=None):
    """An alert with webhook ``url`` (stored as is: the creation check is the API's) and
    ``n`` due events; returns the event ids."""
    user = user or get_user_model().objects.get_or_create(username="ada")[0]
    a = services.alert_create(user=user, symbol="NSE:SBIN-EQ", tf="1m", left="price", op="above", right=1,
                              webhook=url)
    ids = []
    for i in range(n):
        ev = Event(f"{a.id}@{60 * (i + 1)}", str(a.id), "NSE:SBIN-EQ", "1m", 60 * (i + 1), 2.0, 1.0, "above")
        services.alert_checkpoint(events=[(ev, "m")], states={}, done=())
        ids.append(ev.id)
    return ids


def outcome(event_id):
    e = AlertEvent.objects.get(id=event_id)
    return e.delivery, e.attempts, e.last_error


@pytest.fixture
def loopback_allowed(settings):
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def short_deadline(monkeypatch):
    monkeypatch.setattr(webhooks, "ATTEMPT_SECONDS", 1.0)
    monkeypatch.setattr(webhooks, "CONNECT_TIMEOUT", 0.5)


def test_a_slow_receiver_times_out_and_does_not_stall_the_others(servers, loopback_allowed, short_deadline):
    release = threading.Event()

    def slow(h):  # headers dripped one byte at a time, well past the deadline
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        h.wfile.flush()
        for _ in range(100):
            if release.wait(0.2):
                return
            h.wfile.write(b"X")
            h.wfile.flush()

    slow_server, good = servers(slow), servers(ok)
    slow_ids = fire(slow_server.url, n=3)
    good_ids = fire(good.url, n=3)
    try:
        assert deliver_due(now=10**9) == 3
    finally:
        release.set()
    assert [outcome(i)[0] for i in good_ids] == ["delivered"] * 3
    delivery, attempts, error = outcome(slow_ids[0])
    assert (delivery, attempts) == ("pending", 1) and "no answer within" in error
    # the failing host's other events wait for the next round, untried
    assert [outcome(i)[1] for i in slow_ids[1:]] == [0, 0]
    assert len(slow_server.got) == 1


def test_a_huge_answer_is_read_only_up_to_the_cap(servers, loopback_allowed):
    written = {"bytes": 0}

    def huge(h):
        h.send_response(200)
        h.send_header("Content-Length", str(10**10))
        h.end_headers()
        chunk = b"x" * 65_536
        try:
            for _ in range(200_000):  # ~13 GB offered
                h.wfile.write(chunk)
                written["bytes"] += len(chunk)
        except OSError:
            pass

    server = servers(huge)
    [eid] = fire(server.url)
    assert deliver_due(now=10**9) == 1
    assert outcome(eid)[0] == "delivered"
    time.sleep(0.5)
    assert written["bytes"] < 64 * 2**20  # socket buffers, not the whole answer


def test_redirects_are_not_followed(servers, loopback_allowed):
    target = servers(ok)

    def redirect(h):
        h.send_response(307)
        h.send_header("Location", target.url)
        h.end_headers()

    server = servers(redirect)
    [eid] = fire(server.url)
    assert deliver_due(now=10**9) == 0
    delivery, attempts, error = outcome(eid)
    assert (delivery, attempts) == ("pending", 1) and "redirect" in error
    assert len(server.got) == 1 and target.got == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_private_targets_are_refused_at_send_time_in_production(servers, settings, host):
    settings.DEBUG = False
    server = servers(ok)
    [eid] = fire(f"http://{host}:{server.port}/hook")
    assert deliver_due(now=10**9) == 0
    delivery, attempts, error = outcome(eid)
    assert attempts == 1 and "refused" in error
    assert server.got == []


def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected(servers, settings, monkeypatch):
    """DNS rebinding: the first answer is the one checked and the one used."""
    server = servers(ok)
    real = socket.getaddrinfo
    answers = {"n": 0}

    def rebinding(host, port, *a, **kw):
        if host != "hook.example":
            return real(host, port, *a, **kw)
        answers["n"] += 1
        ip = "127.0.0.1" if answers["n"] == 1 else "10.255.255.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    [eid] = fire(f"http://hook.example:{server.port}/hook")
    assert deliver_due(now=10**9) == 1 and outcome(eid)[0] == "delivered"
    assert answers["n"] == 1
    assert server.got[0][0]["Host"] == f"hook.example:{server.port}"

    # and with private targets refused, a name that resolves to loopback is refused at send time
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = False
    answers["n"] = 0
    [eid] = fire(f"http://hook.example:{server.port}/hook")
    assert deliver_due(now=10**9) == 0
    assert "refused" in outcome(eid)[2] and len(server.got) == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "http://u:p@127.0.0.1/"])
def test_other_schemes_are_refused_at_send_time(servers, loopback_allowed, url):
    [eid] = fire(url)
    assert deliver_due(now=10**9) == 0
    assert outcome(eid)[1] == 1 and outcome(eid)[2]


def test_the_creation_check(settings):
    settings.DEBUG = False
    err = targets.target_error
    assert err("https://8.8.8.8/hook") is None
    assert err("https://no-such-host.invalid/hook") is None  # checked again at every send
    for url in ("ftp://8.8.8.8/", "http:///nohost", "http://169.254.169.254/", "http://localhost:8000/",
                "http://[::1]/", "http://10.0.0.1/"):
        assert err(url), url
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    assert err("http://127.0.0.1/") is None and err("ftp://x/")


def _certificates(tmp_path):
    """A throw-away CA and a certificate for hook.example it signed (openssl)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=TickChart test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=hook.example")
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:hook.example\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem",
        "-days", "2", "-extfile", "ext.cnf")
    return tmp_path / "ca.pem", tmp_path / "srv.pem", tmp_path / "srv.key"


def test_https_to_the_checked_address_still_verifies_the_hosts_certificate(servers, settings, monkeypatch, tmp_path):
    import ssl

    ca, cert, key = _certificates(tmp_path)
    server = servers(ok)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.httpd.socket = tls.wrap_socket(server.httpd.socket, server_side=True)
    real = socket.getaddrinfo

    def names(host, port, *a, **kw):  # both names are this loopback server
        if host in ("hook.example", "other.example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", names)
    make = ssl.create_default_context  # the one webhooks calls, trusting our CA as well
    monkeypatch.setattr(webhooks.ssl, "create_default_context", lambda: make(cafile=str(ca)))
    settings.TICKCHART_WEBHOOK_ALLOW_PRIVATE = True
    [good] = fire(f"https://hook.example:{server.port}/hook")
    assert deliver_due(now=10**9) == 1 and outcome(good)[0] == "delivered"
    assert server.got[0][0]["Host"] == f"hook.example:{server.port}"
    [bad] = fire(f"https://other.example:{server.port}/hook")  # the certificate is not for this name
    assert deliver_due(now=10**9) == 0
    assert "certificate" in outcome(bad)[2].lower() and len(server.got) == 1
