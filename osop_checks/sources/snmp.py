"""SNMP: a small synchronous facade over pysnmp 7's asyncio API, shared by every check.

    target = snmp.Target("nas.example.org", community="s3cret")
    rows = snmp.walk(target, "1.3.6.1.2.1.25.2.3.1")      # [(oid tuple, value), ...]
    hr = snmp.table(target, "1.3.6.1.2.1.25.2.3.1", [2, 3])  # {(index,): {2: .., 3: ..}}
    values = snmp.get(target, ["1.3.6.1.2.1.1.5.0"])     # [value, ...]
    with snmp.Session() as session:                      # several requests, one engine
        session.table(...); session.get(...)

Numeric OIDs only: no MIB files are read at run time. Values come back as plain Python:
int for every integer type (Integer32, Gauge32, Counter64 ...), bytes for OCTET STRING
(``text(value)`` decodes), 'a.b.c.d' for IpAddress, a dotted string for an OBJECT IDENTIFIER,
None for NULL. Every request obeys ``deadline.remaining()``; failures raise SnmpError (a
nagiosplugin.CheckError, so a check turns it into UNKNOWN) with the cause in words.

pysnmp is imported inside the functions only: a check that does not use SNMP never pays its
import time (about 90 ms). Go through this module rather than importing pysnmp yourself: it
makes v3 privacy work with Debian's python3-cryptography and must do so before pysnmp's first
import (see _cryptography_compat).

Checks offer the same options through ``osop_checks.snmp_options`` (add_arguments,
target_from_args): the command line is not this gathering module's business. Secrets
(community, v3 keys) come from a file or the environment there (argv works but shows in
``ps``); they are never logged, not even at -vvv.
"""
from __future__ import annotations

import dataclasses
import logging

import nagiosplugin

from osop_checks import address, deadline

# The defaults and protocol names live in snmp_defaults (the options show them without
# importing this module); they stay this module's names as well.
from osop_checks.sources.snmp_defaults import (  # noqa: F401 - MAX_SECRET: re-exported
    AUTH_PROTOCOLS, DEFAULT_PORT, DEFAULT_RETRIES, DEFAULT_TIMEOUT, MAX_ROWS, MAX_SECRET,
    PRIV_PROTOCOLS)

log = logging.getLogger("nagiosplugin")

MAX_REPETITIONS = 25    # GETBULK values per request in a walk
TABLE_VALUES = 40       # GETBULK values per request in a table walk (spread over the columns)


class SnmpError(nagiosplugin.CheckError):
    """An SNMP request failed; the message says why in words and never holds a secret."""


@dataclasses.dataclass
class Target:
    """Where and how to ask: an agent's address and its v2c or v3 credentials."""
    host: str
    port: int = DEFAULT_PORT
    version: str = "2c"
    community: str | None = dataclasses.field(default=None, repr=False)
    user: str | None = None
    auth_proto: str | None = None
    auth_key: str | None = dataclasses.field(default=None, repr=False)
    priv_proto: str | None = None
    priv_key: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    max_rows: int = MAX_ROWS
    family: int | None = None   # 4 or 6: only that family's addresses of ``host`` (-4/-6)

    def __post_init__(self):
        if self.version not in ("2c", "3"):
            raise ValueError("SNMP version must be 2c or 3, not %r" % self.version)
        if self.version == "2c" and self.community is None:
            raise ValueError("SNMP v2c needs a community")
        if self.version == "3":
            if not self.user:
                raise ValueError("SNMP v3 needs a user name")
            if self.auth_proto and self.auth_proto.upper() not in AUTH_PROTOCOLS:
                raise ValueError("unknown authentication protocol %r (%s)" % (
                    self.auth_proto, ", ".join(AUTH_PROTOCOLS)))
            if self.priv_proto and self.priv_proto.upper() not in PRIV_PROTOCOLS:
                raise ValueError("unknown privacy protocol %r (%s)" % (
                    self.priv_proto, ", ".join(PRIV_PROTOCOLS)))
            if self.priv_key and not self.auth_key:
                raise ValueError("SNMP v3 privacy (encryption) needs an authentication key too")

    @property
    def address(self):
        return "[%s]:%d" % (self.host, self.port) if ":" in self.host else "%s:%d" % (
            self.host, self.port)

    @property
    def security_level(self):
        if self.version != "3":
            return "community"
        if self.priv_key:
            return "authPriv"
        return "authNoPriv" if self.auth_key else "noAuthNoPriv"

    def describe(self):
        """Who is asked, for -vv logs: never the secrets themselves."""
        if self.version == "2c":
            return "SNMP v2c agent %s (community from the options)" % self.address
        return "SNMP v3 agent %s as user %s (%s%s%s)" % (
            self.address, self.user, self.security_level,
            ", " + self.auth_proto.upper() if self.auth_key and self.auth_proto else "",
            ", " + self.priv_proto.upper() if self.priv_key and self.priv_proto else "")


# -- OIDs and values -------------------------------------------------------------------------

def oid(value):
    """A numeric OID as a tuple of ints, from '1.3.6.1', '.1.3.6.1' or a tuple."""
    if isinstance(value, (tuple, list)):
        return tuple(int(x) for x in value)
    text = str(value).strip().lstrip(".")
    try:
        parts = tuple(int(x) for x in text.split("."))
    except ValueError:
        raise ValueError("%r is not a numeric OID (MIB names are not read; use numbers)"
                         % value) from None
    if len(parts) < 2:
        raise ValueError("%r is not a numeric OID" % value)
    return parts


def oid_str(value):
    return ".".join(str(x) for x in oid(value))


def under(candidate, prefix):
    """True when OID ``candidate`` lies in the subtree ``prefix`` (both tuples)."""
    return len(candidate) > len(prefix) and candidate[:len(prefix)] == prefix


def inet_address(index):
    """An InetAddressType + InetAddress table index (IP-MIB ipAddressTable: 1.4.a.b.c.d or
    2.16.x...) as ('ipv4' | 'ipv6', address text, the rest of the index)."""
    import ipaddress

    index = tuple(index)
    if len(index) < 2 or index[0] not in (1, 2, 3, 4) or len(index) < 2 + index[1]:
        raise ValueError("%r is not an InetAddress index" % (index,))
    kind, length = index[0], index[1]
    raw = bytes(index[2:2 + length])
    if kind in (1, 3) and length >= 4:      # ipv4, ipv4z (zone index after the address)
        return "ipv4", str(ipaddress.IPv4Address(raw[:4])), index[2 + length:]
    if kind in (2, 4) and length >= 16:     # ipv6, ipv6z
        return "ipv6", str(ipaddress.IPv6Address(raw[:16])), index[2 + length:]
    raise ValueError("%r is not an InetAddress index" % (index,))


def text(value):
    """An OCTET STRING (bytes) as text; other values as their str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return "" if value is None else str(value)


def _plain(value):
    """A pysnmp value as plain Python (see the module docstring)."""
    from pysnmp.proto import rfc1902, rfc1905

    if isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance,
                          rfc1905.EndOfMibView)):
        return _Missing(value.__class__.__name__)
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(b) for b in value.asOctets())
    if isinstance(value, rfc1902.OctetString):
        return value.asOctets()
    if isinstance(value, rfc1902.ObjectIdentifier):
        return ".".join(str(x) for x in value)
    if isinstance(value, rfc1902.Null):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


class _Missing:
    def __init__(self, kind):
        self.kind = kind  # NoSuchObject, NoSuchInstance, EndOfMibView


# -- errors in words -------------------------------------------------------------------------

def _explain(indication, target, seconds):
    """pysnmp's errorIndication as a sentence an admin can act on."""
    from pysnmp.proto import errind

    who = target.address
    if isinstance(indication, errind.RequestTimedOut):
        if target.version == "2c":
            hint = ("agent down or unreachable, or a wrong community (an agent does not "
                    "answer a community it does not know)")
        else:
            hint = ("agent down or unreachable, or a wrong privacy key or protocol (an agent "
                    "drops a request it cannot decrypt)")
        return "no SNMP response from %s within %.1f s (%d %s): %s" % (
            who, seconds, target.retries + 1,
            "try" if target.retries == 0 else "tries", hint)
    if isinstance(indication, errind.WrongDigest):
        return ("%s rejected the authentication of user %s: wrong authentication key or "
                "protocol (wrong digest)" % (who, target.user))
    if isinstance(indication, errind.DecryptionError):
        return ("%s could not decrypt the request of user %s: wrong privacy key or "
                "protocol (decryption error)" % (who, target.user))
    if isinstance(indication, errind.UnknownUserName):
        return "%s does not know the SNMP v3 user %s (unknown user name)" % (who, target.user)
    if isinstance(indication, errind.UnsupportedSecurityLevel):
        return ("%s does not accept user %s at security level %s (check -a/-x protocols and "
                "whether the user is configured for auth and priv)" % (
                    who, target.user, target.security_level))
    if isinstance(indication, (errind.EncryptionError, errind.NoEncryption)):
        return ("SNMP v3 privacy (encryption) is not available here: install the Python "
                "module cryptography (python3-cryptography)")
    if isinstance(indication, errind.NotInTimeWindow):
        return "%s answered outside the SNMP v3 time window (engine time mismatch)" % who
    if isinstance(indication, errind.UnknownEngineID):
        return "%s reported an unknown SNMP engine ID" % who
    return "SNMP request to %s failed: %s" % (who, indication)


def _status_error(status, index, varbinds, target):
    name = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
    where = ""
    try:
        if index and int(index) <= len(varbinds):
            where = " at %s" % ".".join(str(x) for x in varbinds[int(index) - 1][0])
    except (TypeError, ValueError):
        pass
    hint = {
        "noSuchName": " (no such object)",
        "authorizationError": " (the user or community may not read this, or needs a "
                              "higher security level such as authPriv)",
        "noAccess": " (the user or community may not read this)",
        "tooBig": " (response too big)",
        "genErr": " (the agent failed to read the value)",
    }.get(name, "")
    return SnmpError("%s answered with error %s%s%s" % (target.address, name, hint, where))


# -- the async core --------------------------------------------------------------------------

def _auth_data(target, api):
    if target.version == "2c":
        return api.CommunityData(target.community, mpModel=1)
    kwargs = {}
    if target.auth_key:
        kwargs["authKey"] = target.auth_key
        kwargs["authProtocol"] = getattr(
            api, AUTH_PROTOCOLS[(target.auth_proto or "SHA").upper()])
    if target.priv_key:
        kwargs["privKey"] = target.priv_key
        kwargs["privProtocol"] = getattr(
            api, PRIV_PROTOCOLS[(target.priv_proto or "AES").upper()])
    return api.UsmUserData(target.user, **kwargs)


async def _transport(target, api):
    """The UDP transport to ``target``'s first address (of the family asked): udp6 for an
    IPv6 address, also one a name with only an AAAA record resolves to."""
    try:
        family, ip = address.resolve(target.host, target.port, target.family,
                                     what="SNMP host")[0]
    except address.ResolveError as exc:
        raise SnmpError(str(exc)) from None
    if ip != target.host:
        log.info("SNMP host %s is %s", target.host, ip)
    cls = api.Udp6TransportTarget if family == 6 else api.UdpTransportTarget
    try:
        return await cls.create((ip, target.port), timeout=target.timeout,
                                retries=target.retries)
    except Exception as exc:  # pysnmp wraps socket errors in a PySnmpError
        cause = exc.__context__ if exc.__context__ is not None else exc
        reason = getattr(cause, "strerror", None) or str(cause)
        raise SnmpError("cannot reach the SNMP host %s (%s): %s" % (
            target.host, ip, reason)) from None


async def _request(session, target, oids, repetitions=None):
    """One GET (or a GETBULK with ``repetitions``) for ``oids``: the varbinds, or an
    SnmpError that says in words what went wrong."""
    api, engine, auth, transport, context = await session.parts(target)
    objects = [api.ObjectType(api.ObjectIdentity(o)) for o in oids]
    if repetitions is None:
        reply = await api.get_cmd(engine, auth, transport, context, *objects, lookupMib=False)
    else:
        reply = await api.bulk_cmd(engine, auth, transport, context, 0, repetitions, *objects,
                                   lookupMib=False)
    indication, status, index, varbinds = reply
    if indication:
        raise SnmpError(_explain(indication, target, target.timeout))
    session.answers += 1
    if status:
        raise _status_error(status, index, varbinds, target)
    return varbinds


def _too_many(target, root):
    return SnmpError("%s answered more than %d rows under %s without an end (an endless "
                     "table?); give a larger --snmp-max-rows if it is really that long" % (
                         target.address, target.max_rows, oid_str(root)))


async def _walk(session, target, root):
    rows = []
    current = root
    while True:
        if len(rows) > target.max_rows:
            raise _too_many(target, root)
        varbinds = await _request(session, target, [current], MAX_REPETITIONS)
        if not varbinds:
            break
        done = False
        for name, value in varbinds:
            key = tuple(name)
            if not under(key, root) or isinstance(_plain(value), _Missing):
                done = True
                break
            if rows and key <= rows[-1][0]:
                raise SnmpError("%s returned OIDs out of order at %s (broken agent)" % (
                    target.address, oid_str(key)))
            rows.append((key, _plain(value)))
        if done:
            break
        current = rows[-1][0]
    return rows


async def _table(session, target, entry, columns):
    """Walk several columns of one table side by side: one GETBULK carries a varbind per
    column still going, so a table of N rows costs about N / repetitions round trips."""
    table = {}
    cursors = {c: entry + (c,) for c in columns}
    active = list(columns)
    while active:
        if len(table) > target.max_rows:
            raise _too_many(target, entry)
        repetitions = max(2, TABLE_VALUES // len(active))
        varbinds = await _request(session, target, [cursors[c] for c in active], repetitions)
        if not varbinds:
            break
        finished = set()
        for position, (name, value) in enumerate(varbinds):
            column = active[position % len(active)]
            if column in finished:
                continue
            key, prefix, plain = tuple(name), entry + (column,), _plain(value)
            if not under(key, prefix) or isinstance(plain, _Missing):
                finished.add(column)
                continue
            if key <= cursors[column]:
                raise SnmpError("%s returned OIDs out of order at %s (broken agent)" % (
                    target.address, oid_str(key)))
            cursors[column] = key
            table.setdefault(key[len(prefix):], {})[column] = plain
        active = [c for c in active if c not in finished]
    return table


async def _get(session, target, oids):
    return [_plain(value) for _, value in await _request(session, target, oids)]


def _cryptography_compat():
    """pysnmp 7 takes its ciphers from ``cryptography.hazmat.decrepit`` (cryptography >= 43);
    Debian 12's python3-cryptography 38 has the same classes in ``primitives``. Without this
    alias pysnmp silently loses AES and DES ("Ciphering services not available")."""
    import sys
    import types

    try:
        import cryptography.hazmat.decrepit.ciphers.modes  # noqa: F401 - only: is it there?
        return
    except ImportError:
        pass
    try:
        from cryptography.hazmat.primitives.ciphers import algorithms, modes
    except ImportError:
        return  # no cryptography at all: v3 privacy fails with a message in words
    package = types.ModuleType("cryptography.hazmat.decrepit")
    package.__path__ = []
    ciphers = types.ModuleType("cryptography.hazmat.decrepit.ciphers")
    ciphers.__path__ = []
    ciphers.modes = modes
    ciphers.algorithms = algorithms
    package.ciphers = ciphers
    sys.modules.setdefault("cryptography.hazmat.decrepit", package)
    sys.modules.setdefault("cryptography.hazmat.decrepit.ciphers", ciphers)
    sys.modules.setdefault("cryptography.hazmat.decrepit.ciphers.modes", modes)
    sys.modules.setdefault("cryptography.hazmat.decrepit.ciphers.algorithms", algorithms)


_MIB_CODE = {}


def _mib_code(path):
    """The code of one of pysnmp's bundled MIB modules, from the bytecode cache."""
    code = _MIB_CODE.get(path)
    if code is None:
        from importlib.machinery import SourceFileLoader

        code = _MIB_CODE[path] = SourceFileLoader("_pysnmp_mib", path).get_code("_pysnmp_mib")
    return code


class _CachedMibRunner:
    """Stands in for ``runpy`` inside pysnmp.smi.builder (see _speed_up_mib_loading)."""

    @staticmethod
    def run_path(path, init_globals=None, run_name=None):
        import runpy

        if not str(path).endswith(".py"):
            return runpy.run_path(path, init_globals, run_name)
        namespace = dict(init_globals or {})
        namespace.update(__name__=run_name or "<run_path>", __file__=path,
                         __builtins__=__builtins__)
        exec(_mib_code(path), namespace)
        return namespace


def _speed_up_mib_loading():
    """Every SnmpEngine loads ~15 MIB modules bundled with pysnmp (SNMPv2-SMI,
    SNMP-FRAMEWORK-MIB ...). pysnmp compiles each from source twice (its own reader looks for
    Python 2 style .pyc files, then runpy.run_path compiles again unless Python runs with
    -O): about 100 ms of every SNMP check. The same code is taken from __pycache__ instead,
    as any import would. Skipped if pysnmp's internals ever change shape."""
    import os

    from pysnmp.smi import builder

    source = getattr(builder, "DirMibSource", None)
    if source is None or getattr(source, "_osop_cached", False) or \
            not hasattr(source, "full_path"):
        return
    original = source.read

    def read(self, f):
        path = self.full_path(f, ".py")
        if os.path.isfile(path):
            try:
                return _mib_code(path), ".py"
            except (OSError, SyntaxError, ImportError):
                pass
        return original(self, f)

    source.read = read
    source._osop_cached = True
    if getattr(builder, "runpy", None) is not None:
        builder.runpy = _CachedMibRunner


def _import_api():
    """pysnmp's API, imported the one way that keeps v3 privacy working: the cipher alias
    must exist before pysnmp's first import (it decides once whether it has ciphers)."""
    _cryptography_compat()
    import pysnmp.hlapi.v3arch.asyncio as api

    _speed_up_mib_loading()
    return api


class Session:
    """One SNMP engine and event loop for several requests (an engine costs tens of ms):

        with snmp.Session() as session:
            storage = session.table(target, HR_STORAGE_ENTRY, [2, 3, 4, 5, 6])
            disks = session.table(target, DSK_ENTRY, [2, 7, 10])

    Each request is bounded by deadline.remaining(); pysnmp is imported on first use."""

    def __init__(self):
        self.api = None
        self.loop = None
        self.engine = None
        self._targets = {}
        self.answers = 0  # requests answered: a walk cut by the timeout is told apart

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        import asyncio

        try:
            if self.engine is not None:
                self.engine.close_dispatcher()
            if self.loop is not None and not self.loop.is_closed():
                # Let the tasks close_dispatcher cancelled finish, as asyncio.run does.
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(
                        asyncio.gather(*pending, return_exceptions=True))
        except Exception:  # closing a half-open transport must not hide the real error
            pass
        finally:
            self.engine = None
            if self.loop is not None:
                self.loop.close()
                self.loop = None

    async def parts(self, target):
        key = dataclasses.astuple(target)  # held in memory only, never logged
        if key not in self._targets:
            self._targets[key] = (
                _auth_data(target, self.api), await _transport(target, self.api))
        auth, transport = self._targets[key]
        return self.api, self.engine, auth, transport, self.api.ContextData()

    def run(self, target, coroutine_function, *args):
        import asyncio

        if self.api is None:
            self.api = _import_api()
            self.loop = asyncio.new_event_loop()
            self.engine = self.api.SnmpEngine()
        limit = deadline.remaining()
        # An attempt never outlasts what is left: pysnmp's own timer is per try.
        # A little is kept back (pysnmp's timer ticks every 0.1 s and may overrun each try
        # by one tick) so that its own verdict ("no response within ...") comes before the
        # overall limit below.
        if limit is not None:
            tries = target.retries + 1
            target = dataclasses.replace(target, timeout=max(0.1, min(
                target.timeout, 0.9 * limit / tries - 0.1)))
        log.info("asking %s", target.describe())
        answered = self.answers
        try:
            return self.loop.run_until_complete(asyncio.wait_for(
                coroutine_function(self, target, *args), timeout=limit))
        except asyncio.TimeoutError:
            if self.answers > answered:
                raise SnmpError("%s answered %d requests, but the walk did not end before "
                                "the check's --timeout ran out" % (
                                    target.address, self.answers - answered)) from None
            raise SnmpError("no SNMP response from %s before the check's --timeout ran out"
                            % target.address) from None

    def walk(self, target, root):
        """Every (OID tuple, value) in the subtree ``root``, in OID order (GETBULK)."""
        root = oid(root)
        rows = self.run(target, _walk, root)
        log.debug("walked %s: %d values", oid_str(root), len(rows))
        return rows

    def table(self, target, entry, columns):
        """Columns of one conceptual table: {row index tuple: {column number: value}}.

        ``entry`` is the table's entry OID (e.g. hrStorageEntry 1.3.6.1.2.1.25.2.3.1) and
        ``columns`` the column numbers wanted. A row missing some column (it vanished while
        we walked, or the agent does not fill it) simply lacks that key."""
        entry = oid(entry)
        columns = [int(c) for c in columns]
        rows = self.run(target, _table, entry, columns)
        log.debug("walked %s columns %s: %d rows", oid_str(entry),
                  ",".join(str(c) for c in columns), len(rows))
        return rows

    def get(self, target, oids, missing_ok=False):
        """The values of ``oids`` in the order asked. An object the agent does not have
        raises SnmpError ("no such object/instance") unless ``missing_ok``, which gives
        None for it."""
        wanted = [oid(o) for o in oids]
        values = self.run(target, _get, wanted)
        result = []
        for name, value in zip(wanted, values):
            if isinstance(value, _Missing):
                if not missing_ok:
                    raise SnmpError("%s has no %s at %s (%s)" % (
                        target.address,
                        "such instance" if value.kind == "NoSuchInstance" else "such object",
                        oid_str(name), value.kind))
                value = None
            result.append(value)
        return result


def walk(target, root):
    """Session.walk in a session of its own."""
    with Session() as session:
        return session.walk(target, root)


def table(target, entry, columns):
    """Session.table in a session of its own."""
    with Session() as session:
        return session.table(target, entry, columns)


def get(target, oids, missing_ok=False):
    """Session.get in a session of its own."""
    with Session() as session:
        return session.get(target, oids, missing_ok)
