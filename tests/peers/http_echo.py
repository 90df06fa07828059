"""A local HTTP 'what is my IP' echo service on 127.0.0.1:<ephemeral>.

It answers every GET with ``body`` (an address, an HTML page, garbage: whatever the test
sets), ``status`` and ``content_type``; ``hang=True`` makes it accept the request and never
answer (released when the server stops), to test timeouts.
"""
import contextlib
import http.server
import threading

import pytest


class EchoServer:
    def __init__(self, body="198.51.100.23\n", status=200, content_type="text/plain",
                 hang=False):
        self.body = body
        self.status = status
        self.content_type = content_type
        self.hang = hang
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
                body = echo.body.encode() if isinstance(echo.body, str) else echo.body
                self.send_response(echo.status)
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
