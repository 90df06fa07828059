"""Host names and addresses as the admin gives them: the one address parser of every check.

    parse_host("[2001:db8::1]")          -> "2001:db8::1"
    parse_endpoint("[::1]:993", 443)     -> Endpoint(host="::1", port=993)
    parse_endpoint("mail.example:993", 443), parse_endpoint("2001:db8::1", 443)
    parse_remote_path("ssh://backup@[::1]:2222/srv") -> Remote("backup", "::1", 2222, "/srv")
    socket_family(6) -> socket.AF_INET6, version_of(socket.AF_INET) -> 4
    resolve("vault.example.org", 22, args.family, timeout) -> [(6, "2001:db8::7"), (4, ...)]

A host is a host name (letters, digits, '-', '_' in dot-separated labels, none starting or
ending with '-', the last one not all digits), an IPv4 address or an IPv6 address (a zone
index allowed: ``fe80::1%eth0``), in brackets where a port or path follows. Anything else (a
space, '$', a backtick, a newline, '@', a leading '-', ``192.0.2.300``) is refused with the
rule in words. A bare IPv6 address is taken only where nothing else can be meant: ``::1:993``
could be the address ``::1`` with port 993 or the address ``::1:993``, so it is refused with
both bracketed spellings.

Errors are ValueError with one line that names the text given (``cli.host_type`` and friends
turn them into usage errors); ``resolve`` raises ResolveError, an UNKNOWN of nagiosplugin.
"""
import collections
import re

import nagiosplugin

# ipaddress and socket are imported in the functions that use them: a check that reads only
# local paths (three_copies) or a certificate file (tls_expiry --file) starts without them.

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
RULE = "a host name, an IPv4 address or an IPv6 address in brackets"
# A user name ssh takes as it is (-l): POSIX's portable user names (Samba's trailing '$' too).
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")
REMOTE_FORMS = "an absolute path, [user@]host:/path or ssh://[user@]host[:port]/path"

# The one encoding of an address family here: the IP version, 4 or 6 (None: either), as -4/-6
# give it and family_of tells it. socket's AF_INET/AF_INET6 appear only at a socket call:
# socket_family() on the way there, version_of() on the way back.


class Endpoint(collections.namedtuple("Endpoint", "host port")):
    """A host (unbracketed) and a port; ``str()`` writes it back: ``[::1]:993``."""
    __slots__ = ()

    def __str__(self):
        return join(self.host, self.port)


class Remote(collections.namedtuple("Remote", "user host port path")):
    """A path, on ``host`` over ssh (``user`` and ``port`` may be None) or local (``host``
    None)."""
    __slots__ = ()

    def __str__(self):
        if self.host is None:
            return self.path
        user = self.user + "@" if self.user else ""
        if self.port:
            return "ssh://%s%s%s" % (user, join(self.host, self.port), self.path)
        return "%s%s:%s" % (user, bracket(self.host), self.path)


class ResolveError(nagiosplugin.CheckError):
    """A host that has no address (of the family asked) or did not resolve in time."""


def bracket(host):
    """``host`` as written before a port or path: an IPv6 address in brackets."""
    return "[%s]" % host if ":" in host else host


def join(host, port):
    """``host:port``, ``[v6]:port``."""
    return "%s:%d" % (bracket(host), port)


def is_host_name(name):
    """Whether ``name`` is a syntactically valid host name (a trailing dot allowed). The last
    label is never all digits: that is a (malformed) IPv4 address, not a name."""
    name = name[:-1] if name.endswith(".") else name
    return (0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))
            and not name.rsplit(".", 1)[-1].isdigit())


def _ipv6(text):
    """``text`` if it is an IPv6 address (zone index allowed), else None."""
    if not re.match(r"^[0-9A-Za-z:.%_-]+$", text) or ":" not in text:
        return None
    import ipaddress  # see the imports

    try:
        ipaddress.IPv6Address(text.split("%")[0])
    except ValueError:
        return None
    zone = text.partition("%")[2]
    if "%" in text and not re.match(r"^[A-Za-z0-9_.-]{1,15}$", zone):
        return None
    return text


def _ipv4(text):
    import ipaddress  # see the imports

    try:
        ipaddress.IPv4Address(text)
        return text
    except ValueError:
        return None


def parse_host(text):
    """``text`` without its brackets if it is a host name, an IPv4 address or an IPv6
    address (bare or in brackets); ValueError in one line otherwise."""
    text = str(text)
    if text.startswith("[") and text.endswith("]"):
        inner = _ipv6(text[1:-1])
        if inner is None:
            raise ValueError("%r is not an IPv6 address in brackets (expected %s)" % (
                text, RULE))
        return inner
    if ":" in text:
        if _ipv6(text) is not None:
            return text
    elif _ipv4(text) is not None or is_host_name(text):
        return text
    elif re.match(r"^[0-9.]+$", text):
        raise ValueError("%r is not a valid IPv4 address (expected %s)" % (text, RULE))
    raise ValueError("%r is not %s" % (text, RULE))


def check_host(value, bracketed_only=False):
    """parse_host; with ``bracketed_only`` a bare IPv6 address is refused (where a port or
    path may follow it)."""
    text = str(value)
    if bracketed_only and ":" in text and not text.startswith("["):
        raise ValueError("%r is not %s" % (text, RULE))
    return parse_host(text)


def parse_port(text, what=None):
    """A TCP/UDP port 1-65535 from its decimal text; ValueError naming ``what`` otherwise."""
    text = str(text)
    if not re.match(r"^[0-9]{1,5}$", text) or not 0 < int(text) < 65536:
        raise ValueError("%s%r is not a port (1-65535)" % (
            "%r: " % what if what is not None else "", text))
    return int(text)


def _ambiguous(text, template="%s"):
    """The error for a bare IPv6 address that may end in a port (``::1:993``), or None when
    ``text`` cannot be read as ADDRESS:PORT."""
    head, _, tail = text.rpartition(":")
    if not re.match(r"^[0-9]{1,5}$", tail) or not 0 < int(tail) < 65536 or \
            _ipv6(head) is None:
        return None
    as_address = ("[%s]" % text) if _ipv6(text) is not None else None
    message = "%r is ambiguous: write %s for port %s" % (
        template % text, template % ("[%s]:%s" % (head, tail)), tail)
    if as_address:
        return message + ", or %s for the address" % (template % as_address)
    return message + " (an IPv6 address with a port is written in brackets)"


def parse_endpoint(text, default_port):
    """``host``, ``host:port``, ``1.2.3.4:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6
    address where it cannot end in a port, as an Endpoint (``default_port`` where none is
    given). ValueError in one line otherwise, for ``::1:993`` with both bracketed
    spellings."""
    text = str(text)
    if text.startswith("["):
        inside, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError("%r: expected [IPV6-ADDRESS] or [IPV6-ADDRESS]:PORT" % text)
        host = parse_host("[%s]" % inside)
        return Endpoint(host, parse_port(rest[1:], text) if rest else default_port)
    if text.count(":") == 1:
        host, port = text.split(":")
        if not host:
            raise ValueError("%r has no host before the port" % text)
        return Endpoint(parse_host(host), parse_port(port, text))
    if ":" in text:
        problem = _ambiguous(text)
        if problem:
            raise ValueError(problem)
    return Endpoint(parse_host(text), default_port)


def parse_remote_path(text):
    """``/local/path``, ``host:/path``, ``user@host:/path``, ``user@[v6]:/path``,
    ``ssh://user@[v6]:port/path``, ``ssh://host/path`` as a Remote (host None for a local
    path). Refused in one line: a relative path, a host that is not a host, a user name ssh
    would read as something else, a bare IPv6 address (ssh and scp want brackets), a port
    outside 1-65535."""
    text = str(text)
    if text.startswith("/"):
        return Remote(None, None, None, text)
    if text.startswith("ssh://"):
        return _ssh_url(text)
    user, rest = re.match(r"^(?:([^@/:\[\]]*)@)?(.*)$", text, re.S).groups()
    user = None if user is None else _user(text, user)
    if rest.startswith("["):
        inside, closed, after = rest[1:].partition("]")
        if not closed or not after.startswith(":"):
            raise ValueError("%r is not %s" % (text, REMOTE_FORMS))
        host, path = "[%s]" % inside, after[1:]
    else:
        bare = rest.partition(":/")[0]
        if ":" in bare and _ipv6(bare) is not None:  # ssh and scp want it in brackets
            raise ValueError("%r: write %s[%s]:%s (an IPv6 address in brackets)" % (
                text, user + "@" if user is not None else "", bare, rest[len(bare) + 1:]))
        host, colon, path = rest.partition(":")
        if not colon:
            raise ValueError("%r is not %s" % (text, REMOTE_FORMS))
    if not path.startswith("/"):
        raise ValueError("%r: the path on %s must be absolute" % (text, host))
    return Remote(user, _remote_host(text, host), None, path)


def _ssh_url(text):
    rest = text[len("ssh://"):]
    authority, slash, path = rest.partition("/")
    if not slash:
        raise ValueError("%r: ssh://[user@]host[:port]/path needs an absolute path" % text)
    path = "/" + path
    user, hostport = re.match(r"^(?:([^@/\[\]]*)@)?(.*)$", authority, re.S).groups()
    at = "@" if user is not None else ""
    user = None if user is None else _user(text, user)
    if hostport.startswith("["):
        inside, closed, after = hostport[1:].partition("]")
        if not closed or (after and not after.startswith(":")):
            raise ValueError("%r: expected ssh://[user@][IPV6-ADDRESS]:PORT/path" % text)
        host, port = "[%s]" % inside, after[1:] if after else None
    elif hostport.count(":") > 1:
        prefix = "ssh://%s%s" % (user or "", at)
        problem = _ambiguous(hostport, prefix + "%s" + path)
        if problem:
            raise ValueError(problem)
        if _ipv6(hostport) is not None:
            raise ValueError("%r: write %s[%s]%s (an IPv6 address in brackets)" % (
                text, prefix, hostport, path))
        raise ValueError("%r is not %s" % (text, REMOTE_FORMS))
    else:
        host, colon, port = hostport.partition(":")
        port = port if colon else None
    return Remote(user, _remote_host(text, host),
                  None if port is None else parse_port(port, text), path)


def _user(text, user):
    if not _USER.match(user):
        raise ValueError("%r: %r is not a user name ssh takes as it is (letters, digits, "
                         "'_', '.', '-'; not starting with '-' or '.')" % (text, user))
    return user


def _remote_host(text, host):
    if not host:
        raise ValueError("%r has no host" % text)
    try:
        return check_host(host, bracketed_only=True)
    except ValueError as exc:
        raise ValueError("%r: %s" % (text, exc)) from None


# -- address families and resolution ---------------------------------------------------------

def family_of(host):
    """4 or 6 for an address literal, None for a host name."""
    if _ipv4(host) is not None:
        return 4
    return 6 if _ipv6(host) is not None else None


def socket_family(version):
    """The socket module's family of IP ``version``: AF_INET for 4, AF_INET6 for 6, AF_UNSPEC
    for None (either)."""
    import socket  # see the imports

    return {None: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}[version]


def version_of(family):
    """The IP version of the socket module's ``family``: 4 for AF_INET, 6 for AF_INET6, None
    for any other (AF_PACKET, AF_UNIX ...)."""
    import socket  # see the imports

    return {socket.AF_INET: 4, socket.AF_INET6: 6}.get(family)


def check_family(host, family):
    """``host`` if it can be reached over ``family`` (-4/-6; None: any): ValueError naming
    both for an address literal of the other family, which no lookup can change."""
    literal = family_of(host)
    if family and literal and literal != family:
        raise ValueError("-%d asks for IPv%d, but %s is an IPv%d address" % (
            family, family, host, literal))
    return host


def resolve(host, port=None, family=None, timeout=None, what=None):
    """Every address of ``host`` as [(4 | 6, address text)], de-duplicated, in getaddrinfo's
    order (all A and AAAA unless ``family`` narrows). getaddrinfo runs in a daemon thread
    waited for at most ``timeout`` seconds (None: the check's deadline): a resolver that does
    not answer cannot hold the check. ResolveError in words when nothing resolves, the
    family asked has no address, or the time is up; ``what`` names the host in it ("SNMP
    host": "cannot resolve the SNMP host nas: ...")."""
    import socket  # see the imports

    from osop_checks import deadline, fanout

    name = "the %s %s" % (what, host) if what else host
    limit = deadline.remaining(timeout)
    [(infos, exc)] = fanout.run_all([lambda: socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)], limit)
    if exc is not None:
        if isinstance(exc, socket.gaierror):
            raise ResolveError("cannot resolve %s: %s" % (name, exc.strerror or exc)) from None
        if isinstance(exc, (OSError, UnicodeError)):
            raise ResolveError("cannot resolve %s: %s" % (name, exc)) from None
        raise exc
    if infos is None:
        raise ResolveError("cannot resolve %s: no answer within %.1f s" % (name, limit or 0))
    found = []
    for kind, _, _, _, sockaddr in infos:
        entry = (version_of(kind), sockaddr[0])
        if entry[0] is not None and entry not in found:
            found.append(entry)
    if not found:
        raise ResolveError("cannot resolve %s: no IPv4 or IPv6 address" % name)
    chosen = [entry for entry in found if family is None or entry[0] == family]
    if not chosen:
        if family_of(host):
            raise ResolveError("%s is an IPv%d address, but -%d asks for IPv%d only" % (
                name, family_of(host), family, family))
        raise ResolveError("%s has no IPv%d address (-%d); it has only %s" % (
            name, family, family, ", ".join(a for _, a in found)))
    return chosen
