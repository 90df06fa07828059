"""What a network caller of osop-checks-api may ask a check to do: the host decides.

Every option of a check's parser says what kind of value it takes (``kind=``, cli.KINDS). A
caller sets plain options freely (thresholds, selections, time limits, verbosity); a path,
host, URL, port or file the check reads only within what this host allows for that check in
the daemon's config file, NRPE's model; a program, a file the check writes or a secret never:

    [api]
    allow-client = satellite1.example.org
    [check_tls_expiry]
    hosts = mail.example.org *.example.org 192.0.2.0/24
    ports = 443 993
    files = /etc/ssl/certs/internal-ca.pem

    policy = load("/etc/osop-checks/api.conf", explicit=False)   # PolicyError in words
    refuse(check.actions, policy.allowance("check_tls_expiry"), "check_tls_expiry", body)
    # -> None, or the one line (no secret in it) the daemon answers with HTTP 403

The decision is made in the daemon's parent before anything runs, on the JSON object the
caller sent: the keys first (``refused_key``), then each value as the check's own parser will
read it (``refused_value``). The parent calls the option's own argparse type function, the
same one the worker's parser calls on the same text (protocol.to_argv passes each value as
one ``--flag=value`` word), so both see one normalised value; a value the type function
refuses is left to the worker's parser, which answers its usage error and runs nothing. That
is simpler and sturdier than a hook between parse_args and build_check in the worker: no
refusal has to travel back from a worker, and a refused request never costs one.
"""
import configparser
import ipaddress
import os
import re
from urllib.parse import urlsplit

from osop_checks import address, bounded, cli, text

DEFAULT_CONFIG = "/etc/osop-checks/api.conf"
CONFIG_LIMIT = 1024 * 1024  # bytes of api.conf read at most: a few hundred lines fill 64 KiB

# The allowances of a check's section, and the kind of value each one admits.
FIELDS = ("paths", "hosts", "ports", "urls", "files")
NEVER = {  # kind: (what the option is, and where its value comes from instead)
    cli.PROGRAM: ("names a program the check runs", "the check's default is used"),
    cli.FILE_WRITTEN: ("names a file the check writes",
                       "the daemon keeps state and cache under its --state-dir and --cache-dir"),
    cli.SECRET: ("is a secret", "give it to the daemon by file or environment"),
    None: ("does not say what kind of value it takes", "the check must tag it (kind=)"),
}


class PolicyError(Exception):
    """A config file that cannot be read or says something the policy cannot mean."""


class Allowance:
    """What one check may be asked about: tuples of paths (realpath'd), host rules (names,
    ``*.domain``, addresses and networks), ports, URLs and files (realpath'd)."""

    def __init__(self, paths=(), hosts=(), ports=(), urls=(), files=()):
        self.paths = tuple(paths)
        self.hosts = tuple(hosts)
        self.ports = tuple(ports)
        self.urls = tuple(urls)
        self.files = tuple(files)

    def __repr__(self):
        return "Allowance(%s)" % ", ".join("%s=%r" % (f, getattr(self, f)) for f in FIELDS
                                           if getattr(self, f))


NOTHING = Allowance()


class Policy:
    """``clients``: the [api] allow-client names; ``checks``: {"check_x": Allowance}."""

    def __init__(self, clients=(), checks=None, source="the built-in policy"):
        self.clients = tuple(clients)
        self.checks = dict(checks or {})
        self.source = source

    def allowance(self, command):
        return self.checks.get(command, NOTHING)


# -- reading the config file ---------------------------------------------------------------

def load(path=DEFAULT_CONFIG, explicit=True, commands=None):
    """The Policy in ``path``. A missing file is the built-in policy (nothing beyond plain
    options) unless it was named ``explicit``ly: then, like any unreadable or wrong file, a
    PolicyError naming it. ``commands``: the check commands there are, to catch a misspelt
    section."""
    try:
        content = bounded.read_text(path, CONFIG_LIMIT, errors="strict")
    except FileNotFoundError:
        if explicit:
            raise PolicyError("the config file %s does not exist" % path) from None
        return Policy()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError("cannot read the config file %s: %s" % (
            path, getattr(exc, "strerror", None) or exc)) from None
    return parse(content, path, commands)


def parse(content, source="api.conf", commands=None):
    """The Policy written in ``content`` (INI: [api] allow-client, [check_x] paths, hosts,
    ports, urls, files; values separated by blanks or new lines)."""
    parser = configparser.ConfigParser(interpolation=None, empty_lines_in_values=False)
    # keys as written: a misspelt one is named, not folded
    parser.optionxform = str  # type: ignore[method-assign,assignment]
    try:
        parser.read_string(content, source)
    except configparser.Error as exc:
        raise PolicyError("%s: %s" % (source, text.oneline(exc, limit=200))) from None
    clients: tuple[str, ...] = ()
    checks: dict[str, Allowance] = {}
    for section in parser.sections():
        items = {key: value.split() for key, value in parser.items(section)}
        if section == "api":
            unknown = sorted(set(items) - {"allow-client"})
            clients = tuple(items.get("allow-client", ()))
        else:
            if commands is not None and section not in commands:
                raise PolicyError("%s: [%s] is not a check here (known: %s)" % (
                    source, section, ", ".join(sorted(commands))))
            unknown = sorted(set(items) - set(FIELDS))
            try:
                checks[section] = allowance_of(items)
            except ValueError as exc:
                raise PolicyError("%s [%s]: %s" % (source, section, exc)) from None
        if unknown:
            raise PolicyError("%s [%s]: unknown key %s (known: %s)" % (
                source, section, ", ".join(unknown),
                "allow-client" if section == "api" else ", ".join(FIELDS)))
    return Policy(clients, checks, source)


def allowance_of(items):
    """An Allowance from a section's {key: [words]}; ValueError naming a wrong word."""
    paths = [_absolute(p, "paths") for p in items.get("paths", ())]
    files = [_absolute(p, "files") for p in items.get("files", ())]
    hosts = [_host_rule(h) for h in items.get("hosts", ())]
    ports = []
    for word in items.get("ports", ()):
        ports.append(address.parse_port(word, "ports"))
    urls = []
    for url in items.get("urls", ()):
        parts = urlsplit(url)
        if url != DISCOVER and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("urls: %r is not an http:// or https:// URL (or %s)" % (
                url, DISCOVER))
        urls.append(url)
    return Allowance([os.path.realpath(p) for p in paths], hosts, ports, urls,
                     [os.path.realpath(f) for f in files])


DISCOVER = "ssdp"  # dyndns_match --router-upnp without a URL: an SSDP search of the LAN


def _absolute(path, key):
    if not path.startswith("/"):
        raise ValueError("%s: %r is not an absolute path" % (key, path))
    return os.path.normpath(path)


def _host_rule(word):
    """A host rule as written in ``hosts``: ``*.domain``, a network, an address or a name."""
    if word.startswith("*."):
        if not address.is_host_name(word[2:]):
            raise ValueError("hosts: %r is not *.DOMAIN" % word)
        return word.lower().rstrip(".")
    if "/" in word:
        try:
            return ipaddress.ip_network(word, strict=False)
        except ValueError:
            raise ValueError("hosts: %r is not a network (192.0.2.0/24, 2001:db8::/32)"
                             % word) from None
    host = address.parse_host(word)  # ValueError in words
    literal = _literal(host)
    return literal if literal is not None else host.lower().rstrip(".")


def _literal(host):
    """The ip_address of an address literal (IPv4 in IPv6 as IPv4), else None."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    return getattr(literal, "ipv4_mapped", None) or literal


# -- the decision ----------------------------------------------------------------------------

def refused_key(actions, key, value=None):
    """Why the JSON key ``key`` may not be asked at all, or None. ``actions``: the check's
    {option string: argparse action}."""
    action = actions.get(key)
    if action is None:
        # --bogus goes on to the check's parser, which answers its usage line as on the command
        # line. A single-dash key that is not an option string would be read by argparse as
        # short flags run together: "-vp" is -v and -p, smuggling -p past this decision.
        if key.startswith("--") and "=" not in key:
            return None
        return ("%s is not one of the check's options as written: give each option under "
                "its own key" % text.oneline(key, limit=40))
    kind = getattr(action, "kind", None)
    if kind in NEVER:
        return "%s %s: osop-checks-api never takes it from a caller (%s)" % (
            key, *NEVER[kind])
    if action.nargs in ("+", "*") and isinstance(value, list) and any(
            str(v).startswith("-") for v in value):
        return "%s: a value starting with '-' would be read as an option" % key
    return None


def texts_of(action, value):
    """The texts the worker's parser reads for one JSON value (protocol.to_argv's words),
    or the option's const for a value-less use of an nargs='?' option (--router-upnp)."""
    if value is None or value is False:
        return []
    if value is True:
        return [action.const] if action.nargs == "?" and action.const is not None else []
    values = value if isinstance(value, list) else [value]
    return [str(int(v)) if isinstance(v, float) and v == int(v) else str(v) for v in values
            if not isinstance(v, (bool, dict, list)) and v is not None]


def read(action, raw):
    """``raw`` as the option's own type function reads it (the worker's parser calls the
    same function on the same text), or None when it refuses it: the parser answers that."""
    if action.type is None or action.nargs == 0 or raw == action.const:
        return raw
    try:
        return action.type(raw)
    except Exception:  # ArgumentTypeError, ValueError, TypeError: a usage error, later
        return None


class Place:
    """Where a value points: a host (with a port), a path on it, or a local path."""

    def __init__(self, host=None, port=None, path=None):
        self.host, self.port, self.path = host, port, path


def place_of(value):
    """The Place of a parsed value: a host or path string, an address/tls Endpoint, a dns
    server (ip, port), a manifest Location or Remote, a named copy (name, Location)."""
    if isinstance(value, tuple) and not hasattr(value, "_fields") and len(value) == 2:
        first, second = value
        if isinstance(second, int):
            return Place(first, second)
        return place_of(second)
    if any(hasattr(value, a) for a in ("host", "path")):
        return Place(getattr(value, "host", None), getattr(value, "port", None),
                     getattr(value, "path", None))
    return Place(path=str(value))


def host_allowed(host, rules):
    """Whether ``host`` (a name or an address literal, as parsed) is one the rules name: a
    name exactly or under a ``*.domain`` (case-insensitive, trailing dot ignored), an address
    equal or inside a network. A name never matches an address rule: the policy looks up
    nothing, the admin names what may be asked."""
    name = str(host).lower().rstrip(".")
    if "%" in name:  # a zone index picks an interface: only as written in the rules
        return name in [str(r) for r in rules if isinstance(r, str)]
    literal = _literal(name)
    for rule in rules:
        if literal is not None:
            if isinstance(rule, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                if literal.version == rule.version and literal in rule:
                    return True
            elif isinstance(rule, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                if literal == rule:
                    return True
        elif isinstance(rule, str):
            if name == rule or (rule.startswith("*.") and name.endswith(rule[1:])):
                return True
    return False


def port_allowed(port, ports, default):
    """``default`` (the check's own: leaving the option out gives it anyway) or one of
    ``ports``."""
    return (default is not None and port == default) or port in ports


def path_allowed(path, paths, local=True):
    """Whether ``path`` is at or under one of ``paths`` (realpath'd already). A local path is
    realpath'd too, so a symlink cannot lead out; a path on a remote host can only be
    normalised (its symlinks are not ours to see)."""
    seen = os.path.realpath(path) if local else os.path.normpath(path)
    if not seen.startswith("/"):
        return False
    return any(seen == p or seen.startswith(p.rstrip("/") + "/") for p in paths)


def file_allowed(path, files):
    return os.path.realpath(path) in files


def url_allowed(url, urls):
    """Equal to one of ``urls``, or under one that ends in '/' (same scheme and host). A URL
    with a blank, a control character or a backslash is never admitted: clients read those
    differently."""
    if re.search(r"[\x00-\x20\x7f\\]", url):
        return False
    for allowed in urls:
        if url == allowed:
            return True
        if allowed.endswith("/") and url.startswith(allowed):
            mine, theirs = urlsplit(url), urlsplit(allowed)
            if (mine.scheme, mine.netloc) == (theirs.scheme, theirs.netloc):
                return True
    return False


def default_port(action):
    """The port an endpoint option fills in when none is written (tls 443, DNS 53), or
    None: learnt from its own type function, so it stays what the check does."""
    if action.type is None:
        return None
    try:
        return place_of(action.type("127.0.0.1")).port
    except Exception:
        return None


def _where(command, field):
    return "allow it in api.conf [%s] %s" % (command, field)


def refused_value(action, key, value, allowance, command, parsed_values=None):
    """Why one parsed ``value`` of ``action`` (asked as ``key``) is not allowed, or None.
    ``parsed_values``: {dest: [parsed values]} of the whole request, for a path relative to
    another option's location (action.relative_to, e.g. --canary inside --source)."""
    kind = action.kind
    shown = text.oneline(value if isinstance(value, str) else _shown(value), limit=120)
    if kind == cli.FILE_READ:
        if file_allowed(str(value), allowance.files):
            return None
        return "%s names a file the check reads (%s): %s" % (
            key, shown, _where(command, "files"))
    if kind == cli.URL:
        if url_allowed(str(value), allowance.urls):
            return None
        return "%s names a URL the check fetches (%s): %s" % (key, shown, _where(command, "urls"))
    if kind == cli.PORT:
        try:
            port = int(value)
        except (TypeError, ValueError):
            return None  # the parser answers it
        if port_allowed(port, allowance.ports, action.default):
            return None
        return "%s names port %d: %s" % (key, port, _where(command, "ports"))
    place = place_of(value)
    if kind == cli.HOST:
        host = place.host if place.host is not None else place.path
        return _refused_host(key, host, place.port, default_port(action), allowance, command,
                             shown)
    if kind == cli.PATH:
        if place.host is not None:  # [user@]host:/path: both its host and its path
            problem = _refused_host(key, place.host, place.port, None, allowance, command,
                                    shown)
            if problem:
                return problem
        if place.path is None:
            return None
        local = place.host is None
        bases = None
        if not place.path.startswith("/") and getattr(action, "relative_to", None):
            bases = [place_of(b) for b in (parsed_values or {}).get(action.relative_to, [])]
            if not bases:
                return "%s is relative to an option that is not given" % key
        for base in bases or [None]:
            path, here = place.path, local
            if base is not None:
                path, here = os.path.join(base.path or "/", place.path), base.host is None
            if not path_allowed(path, allowance.paths, here):
                return "%s names a path outside those allowed (%s): %s" % (
                    key, shown, _where(command, "paths"))
        return None
    return None


def _shown(value):
    place = place_of(value)
    if place.host is not None:
        host = address.bracket(str(place.host))
        return "%s%s%s" % (host, ":%s" % place.port if place.port else "",
                           ":" + place.path if place.path else "")
    return str(place.path)


def _refused_host(key, host, port, default, allowance, command, shown):
    try:
        host = address.parse_host(host)  # [::1] as ::1; what is no host is no allowed one
    except ValueError:
        host = None
    if host is None or not host_allowed(host, allowance.hosts):
        return "%s names a host not allowed (%s): %s" % (key, shown, _where(command, "hosts"))
    if port is not None and not port_allowed(port, allowance.ports, default):
        return "%s names port %s: %s" % (key, port, _where(command, "ports"))
    return None


def refuse(actions, allowance, command, arguments):
    """Why the JSON object ``arguments`` may not be run for ``command``, as one line that
    names the option and how to allow it, or None. Plain data in, nothing run."""
    if not isinstance(arguments, dict):
        return None  # protocol answers that itself
    for key, value in arguments.items():
        problem = refused_key(actions, key, value)
        if problem:
            return problem
    checked: list[tuple] = []  # (action, key, parsed value) to be judged
    parsed_values: dict[str, list] = {}
    for key, value in arguments.items():
        action = actions.get(key)
        if action is None:
            continue
        if action.kind == cli.PLAIN:
            continue  # read by the worker's parser alone: the parent spends nothing on them
        parsed = [p for p in (read(action, raw) for raw in texts_of(action, value))
                  if p is not None]
        parsed_values.setdefault(action.dest, []).extend(parsed)
        checked.extend((action, key, p) for p in parsed)
    for action, key, parsed in checked:
        problem = refused_value(action, key, parsed, allowance, command, parsed_values)
        if problem:
            return problem
    return None
