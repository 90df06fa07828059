"""`osop-checks-api --health`: is the daemon there to answer, asked as Icinga asks it.

A forked plugin, cheap (one TLS handshake and one request that runs no check), for the
`osop_api_health` CheckCommand: when the daemon is down every ifw-api service is UNKNOWN "Can't
connect to IfW API" with no cause; this one service says which part is missing. Under socket
activation systemd accepts the connection even when the daemon cannot start, and closes it
when the start fails: that is told apart from nothing listening.
"""
import socket
import time

NAME = "OSOP_CHECKS_API"
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
JOURNAL = "journalctl -u osop-checks-api.service names the file or setting at fault"
# A command no daemon has: answered 404 by the daemon itself, no check runs.
REQUEST = ("POST /v1/checker?command=osop_api_health HTTP/1.1\r\nHost: %s\r\n"
           "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


def probe(address, node, cert, key, ca, timeout=10.0):
    """(state, text) of one call to the daemon at ``address`` (family, host, port) whose
    certificate must name ``node``, as the client ``cert``/``key`` of the CA ``ca``."""
    import ssl  # the daemon's and this probe's alone: the checks never import this module

    family, host, port = address
    where = ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (host, port)
    try:
        # as Icinga checks the daemon: the CA and the name; not Python 3.13's X.509 strict
        # mode, which refuses Icinga's own certificates (no Authority Key Identifier)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(ca)
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        return 3, "cannot load this client's certificate %s, key %s or CA %s: %s" % (
            cert, key, ca, getattr(exc, "strerror", None) or exc)
    started = time.monotonic()
    shaken = False  # the daemon's side of the handshake came: something runs there
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            try:
                with context.wrap_socket(raw, server_hostname=node) as tls:
                    shaken = True
                    tls.sendall((REQUEST % node).encode())
                    head = tls.recv(4096).decode("latin-1")
            except ssl.SSLCertVerificationError as exc:
                return 2, "osop-checks-api on %s presents a certificate this client does not " \
                          "trust for %s: %s" % (where, node, exc.verify_message)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                head = ""
    except ConnectionRefusedError:
        return 2, "nothing listens on %s: osop-checks-api.socket is not enabled (systemctl " \
                  "enable --now osop-checks-api.socket, docs/api-security.md)" % where
    except socket.timeout:
        return 2, "osop-checks-api on %s did not answer within %gs" % (where, timeout)
    except (OSError, ssl.SSLError) as exc:
        return 2, "cannot call osop-checks-api on %s: %s" % (
            where, getattr(exc, "strerror", None) or exc)
    took = (time.monotonic() - started) * 1000
    if not head.startswith("HTTP/1.") and shaken:
        return 1, "osop-checks-api on %s refuses this client (%s): its CN must be the daemon's " \
                  "--node or in [api] allow-client of api.conf" % (where, cert)
    if not head.startswith("HTTP/1."):
        return 2, "%s accepted the connection but osop-checks-api never answered: the " \
                  "daemon does not start (%s)" % (where, JOURNAL)
    status = head.split(None, 2)[1] if len(head.split(None, 2)) > 1 else "?"
    if status == "403":
        return 1, "osop-checks-api on %s answers but refuses this client (%s): add its name " \
                  "to [api] allow-client of api.conf" % (where, cert)
    return 0, "osop-checks-api answers on %s in %.0f ms | time=%.3fs" % (where, took,
                                                                         took / 1000)


def main(args):
    address = (args.listen or [(socket.AF_INET, "127.0.0.1", 5668)])[0]
    state, text = probe(address, args.node, args.cert, args.key, args.ca,
                        timeout=min(args.request_timeout, 30.0))
    print("%s %s - %s" % (NAME, STATES[state], text))
    return state
