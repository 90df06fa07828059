"""The canned HTTP answers of lab/peers are valid HTTP/1.1: urllib3 2 (Debian 13, PyPI)
refuses a body shorter than its Content-Length, which turned the garbage-peer cases of the
fault matrix into a different error than the one they test."""
import http.client
import io

from lab.peers import blackhole


class _Socket:
    def __init__(self, data):
        self.data = data

    def makefile(self, mode):
        return io.BytesIO(self.data)


def test_the_400_reply_has_the_length_it_announces():
    response = http.client.HTTPResponse(_Socket(blackhole.HTTP_400))
    response.begin()
    assert response.status == 400
    body = response.read()  # raises IncompleteRead when Content-Length is too large
    assert body == b"<html>| broken\nbody | here</html>"
