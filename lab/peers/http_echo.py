"""A local HTTP 'what is my IP' echo service on 127.0.0.1:<ephemeral>.

It answers every GET with ``body`` (an address, an HTML page, garbage: whatever the test
sets), ``status`` and ``content_type``; ``hang=True`` makes it accept the request and never
answer (released when the server stops), to test timeouts. A hostile echo: ``drip=SECONDS``
sends its answer (status line, headers, body) one byte every SECONDS, so that no single read
ever times out; ``redirects=N`` answers the first N requests with a redirect to itself, each
after ``drip`` seconds. ``post=BODY`` answers a POST with BODY (``post_status``, the same
``drip``), after reading what was posted (kept in ``posted``): a SOAP service; a dict
{action: BODY} answers by the action its SOAPAction header names (501 for others).
"""
import contextlib
import http.server
import threading

import pytest


class EchoServer:
    def __init__(self, body="198.51.100.23\n", status=200, content_type="text/plain",
                 hang=False, drip=0.0, redirects=0, post=None, post_status=200):
        self.body = body
        self.post, self.post_status = post, post_status
        self.posted = []
        self.status = status
        self.content_type = content_type
        self.hang = hang
        self.drip = drip
        self.redirects = redirects
        self.requests = 0
        self.httpd = None
        self.thread = None
        self.released = threading.Event()

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return "http://%s:%d/" % (host, port)

    def _handler(self):
        echo = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                echo.requests += 1
                if echo.hang:
                    echo.released.wait(60)
                    return
                if echo.requests <= echo.redirects:
                    echo.released.wait(echo.drip)
                    self.send_response(302)
                    self.send_header("Location", "/hop%d" % echo.requests)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.answer(echo.status, echo.body)

            def do_POST(self):
                echo.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                echo.posted.append(self.rfile.read(min(length, 65536)))
                reply = echo.post
                if isinstance(reply, dict):  # by the action named in SOAPAction
                    action = self.headers.get("SOAPAction", "").strip('"').rpartition("#")[2]
                    reply = reply.get(action)
                if reply is None:
                    self.send_error(501)
                    return
                self.answer(echo.post_status, reply)

            def answer(self, status, body):
                body = body.encode() if isinstance(body, str) else body
                if echo.drip:
                    head = ("HTTP/1.0 %d OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                            "\r\n" % (status, echo.content_type, len(body))).encode()
                    for byte in head + body:
                        if echo.released.wait(echo.drip):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                self.send_response(status)
                self.send_header("Content-Type", echo.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2)


@pytest.fixture
def http_echo():
    """A factory: http_echo(body='198.51.100.23', status=200, ...) -> a running EchoServer."""
    with contextlib.ExitStack() as stack:
        yield lambda *args, **kwargs: stack.enter_context(EchoServer(*args, **kwargs))
