"""check_dyndns_match: does a DynDNS name point at our current public address?

arguments -> the grace state (since when a mismatch lasts) and public address
(sources.publicip: echo services, interfaces, --expect; SNMP through an injected source) and
the name's A/AAAA records (sources.dns: system resolver, a given server or the zone's
authoritative servers) -> judge: one Comparison per address family (match OK, mismatch
WARNING within --grace, CRITICAL after) -> runtime renders the verdict, then writes the
grace state judge computed.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import ipaddress
import logging
import os
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Unknown, Warn

from osop_checks import (address, cli, deadline, fanout, plugin, runtime, snmp_options, text,
                         units)
from osop_checks import state as state_files
from osop_checks.sources import dns, publicip, tr064, upnp

NAME = "DYNDNS_MATCH"
log = logging.getLogger("nagiosplugin")

FAMILIES = {4: "A", 6: "AAAA"}
# Of the time left when the public address is asked, its sources (asked at the same time) may
# use this share: the rest is kept for the DNS lookups, so a dead echo service is still
# reported as such.
PUBLIC_SHARE = 0.5
# A router's reconnects (TR-064 uptime) are flagged when this many fall within RECONNECT_WINDOW:
# a nightly forced reconnect is normal, one every few minutes is not.
RECONNECTS_FLAGGED = 3
RECONNECT_WINDOW = 30 * 60
RECONNECT_SAME = 120      # seconds: reconnect times this close are the same reconnect
RECONNECTS_KEPT = 20
ROUTER_KEY = "router"     # the grace state's entry of what a router's runs remember


def build_parser():
    parser = cli.Parser(
        NAME, "check_dyndns_match",
        "Does a (DynDNS) name resolve to this site's current public address?\n"
        "The name's A and/or AAAA records are compared with the public address from echo\n"
        "services, local interfaces, the router (SNMP or UPnP) or a fixed address; a\n"
        "mismatch is WARNING during --grace, then CRITICAL.",
        examples=[
            "check_dyndns_match -H office.dyndns.example --ip-url https://api.ipify.org "
            "--ip-url https://ifconfig.me/ip",
            "check_dyndns_match -H office.dyndns.example --authoritative "
            "--ip-url https://icanhazip.com --grace 15m",
            "check_dyndns_match -H office.dyndns.example --both --v6-prefix 64 "
            "--ip-url https://api.ipify.org --ip-url https://api6.ipify.org",
            "check_dyndns_match -H vpn.example.org --server 192.0.2.53 --interface ppp0",
            "check_dyndns_match -H backup.example.org -6 --expect 2001:db8:1::10 "
            "--v6-prefix 56",
            "check_dyndns_match -H office.dyndns.example --snmp 192.168.1.1 "
            "--snmp-interface pppoe-wan --community-file /etc/icinga2/router.community",
            "check_dyndns_match -H practice.dyndns.example --router-upnp",
            "check_dyndns_match -H practice.dyndns.example "
            "--router-upnp http://192.168.178.1:49000/igddesc.xml",
            "check_dyndns_match -H practice.dyndns.example --both --v6-prefix 56 "
            "--router-upnp",
            "check_dyndns_match -H practice.dyndns.example --router-tr064 "
            "--router-user monitoring --router-password-file /etc/icinga2/fritzbox.password",
            "check_dyndns_match -H practice.dyndns.example --both --v6-prefix 56 "
            "--router-tr064 https://192.168.178.1:49443/tr64desc.xml --router-user monitoring "
            "--router-password-file /etc/icinga2/fritzbox.password --router-fingerprint "
            "3F:0A:...:9C",
        ],
        behind_the_scenes=[
            "DNS (dnspython): A/AAAA queries over UDP (TCP when truncated) to the name servers",
            "of /etc/resolv.conf, to --server, or with --authoritative: SOA queries walking up",
            "from the name find its zone, the zone's NS records and their A/AAAA addresses are",
            "looked up the same way, then those servers are asked directly with RD unset and",
            "must answer authoritatively (AA).",
            "--ip-url: an HTTP GET (requests, proxies from the environment apply); the body",
            "must be one IP address and nothing else. --interface: psutil.net_if_addrs(),",
            "global addresses only (no loopback, link-local or fc00::/7). --snmp: IP-MIB",
            "ipAddressTable (ipAddrTable on older agents) and IF-MIB ifName/ifDescr, walked",
            "through the shared SNMP source (pysnmp, numeric OIDs).",
            "--router-upnp: an SSDP M-SEARCH (UDP multicast to 239.255.255.250:1900) unless",
            "a URL is given, an HTTP GET of the device description and a SOAP POST of",
            "GetExternalIPAddress to its WANIPConnection/WANPPPConnection control URL (no",
            "proxy, no redirects; XML with a DTD or entities is refused); for IPv6 one more",
            "POST of AVM's X_AVM_DE_GetIPv6Prefix to its WANIPConnection:1.",
            "--router-tr064: the FRITZ!Box's TLS certificate's SHA-256 compared with the pin,",
            "an HTTP GET of tr64desc.xml, SOAP POSTs (HTTP digest authentication) of",
            "GetStatusInfo to its urn:dslforum-org WANIPConnection/WANPPPConnection services,",
            "GetExternalIPAddress to the connected one, for IPv6 X_AVM-DE_GetIPv6Prefix.",
            "Grace state: a JSON file per name (private to the running user, never followed",
            "through a symlink, written atomically), by default in",
            "$XDG_STATE_HOME/osop-checks/ or else /var/tmp/osop-checks-<uid>/.",
        ])
    what = parser.add_argument_group("the name")
    what.add_argument("-H", "--hostname", kind=cli.HOST,
                      required=True, metavar="NAME", type=hostname_type,
                      help="the DNS name to check (e.g. office.dyndns.example)")
    fam = what.add_mutually_exclusive_group()
    fam.add_argument("-4", "--ipv4", kind=cli.PLAIN,
                     dest="families", action="store_const", const=(4,),
                     help="compare the A record with the public IPv4 address (default)")
    fam.add_argument("-6", "--ipv6", kind=cli.PLAIN,
                     dest="families", action="store_const", const=(6,),
                     help="compare the AAAA record with the public IPv6 address")
    fam.add_argument("--both", kind=cli.PLAIN, dest="families", action="store_const", const=(4, 6),
                     help="compare both the A and the AAAA record")
    parser.set_defaults(families=(4,))
    what.add_argument("--server", kind=cli.HOST, type=server_type, metavar="IP[:PORT]",
                      help="ask this DNS server instead of those of /etc/resolv.conf "
                           "(IPv6 with a port: [2001:db8::53]:5353)")
    what.add_argument("--authoritative", kind=cli.PLAIN, action="store_true",
                      help="ask the zone's authoritative name servers directly (found through "
                           "the system resolver or --server), so no cache can hide a stale "
                           "record")
    what.add_argument("--auth-port", kind=cli.PORT,
                      type=cli.count_type(1, 65535), default=53, metavar="PORT",
                      help="port of the authoritative servers (default: 53)")
    src = parser.add_argument_group(
        "the public address (at least one source; all given must agree)")
    src.add_argument("--ip-url", kind=cli.URL,
                     action="append", default=[], type=cli.url_type, metavar="URL",
                     help="an HTTP(S) echo service answering with the caller's address as "
                          "plain text, e.g. https://api.ipify.org (repeatable; several must "
                          "agree)")
    src.add_argument("--interface", kind=cli.PLAIN, action="append", default=[], metavar="NAME",
                     help="a local interface holding the public address itself, e.g. ppp0 "
                          "(repeatable)")
    src.add_argument("--expect", kind=cli.PLAIN, action="append", default=[], type=address_type,
                     metavar="ADDR", help="the public address is known and fixed (repeatable: "
                                          "one IPv4 and one IPv6)")
    src.add_argument("--snmp", kind=cli.HOST, action="append", default=[], metavar="HOST",
                     help="the router's WAN address read over SNMP from IP-MIB "
                          "(repeatable; credentials from the SNMP options below)")
    src.add_argument("--snmp-interface", kind=cli.PLAIN, metavar="NAME",
                     help="with --snmp: the router's WAN interface (ifName or ifDescr); "
                          "default: every globally routable address of the router")
    src.add_argument("--router-upnp", kind=cli.URL,
                     nargs="?", const=upnp.DISCOVER, type=router_url_type,
                     metavar="URL",
                     help="the router's WAN address from its UPnP IGD service "
                          "(GetExternalIPAddress of WANIPConnection or WANPPPConnection): "
                          "without URL (or with 'ssdp') the router is found by an SSDP search "
                          "on the LAN; URL: its device description, e.g. "
                          "http://192.168.178.1:49000/igddesc.xml on a FRITZ!Box. With -6 or "
                          "--both also the IPv6 prefix a FRITZ!Box was delegated "
                          "(X_AVM_DE_GetIPv6Prefix), compared over --v6-prefix bits, at "
                          "most its length")
    src.add_argument("--router-tr064", kind=cli.URL,
                     nargs="?", const=tr064.DEFAULT_URL, type=cli.url_type, metavar="URL",
                     help="the router's WAN address from a FRITZ!Box's TR-064 interface "
                          "('Zugriff für Anwendungen zulassen', on by default): URL of its "
                          "description (default: %s; http://...:49000/tr64desc.xml "
                          "works too, unencrypted), with --router-user and "
                          "--router-password-file; GetExternalIPAddress of the connected "
                          "WANIPConnection (cable, fibre) or WANPPPConnection (DSL), with -6 "
                          "or --both the delegated IPv6 prefix (X_AVM-DE_GetIPv6Prefix); the "
                          "connection's uptime and last reconnect in the long output"
                          % tr064.DEFAULT_URL)
    src.add_argument("--router-user", kind=cli.PLAIN, default="", metavar="NAME",
                     help="with --router-tr064: the FRITZ!Box user (one with the right "
                          "'FRITZ!Box Settings'; default: none, for a box that asks for a "
                          "password only)")
    src.add_argument("--router-password-file", kind=cli.FILE_READ, metavar="FILE",
                     help="with --router-tr064: a file whose first line is that user's "
                          "password (never on the command line)")
    src.add_argument("--router-fingerprint", kind=cli.PLAIN, type=fingerprint_type,
                     metavar="SHA256",
                     help="with an https --router-tr064: the SHA-256 fingerprint of the box's "
                          "self-signed certificate (openssl x509 -fingerprint -sha256); "
                          "default: trust the certificate of the first run and keep its "
                          "fingerprint in the state file (a later other certificate is "
                          "UNKNOWN)")
    # The shared options without their -H/--host: here -H is the DNS name and the agent
    # is named by --snmp HOST.
    snmp_options.add_arguments(parser, host=False, enable_switch=False)
    cmp_ = parser.add_argument_group("comparison")
    cmp_.add_argument("--v6-prefix", kind=cli.PLAIN,
                      type=cli.count_type(1, 128), default=128, metavar="N",
                      help="compare only the first N bits of IPv6 addresses, e.g. 64 when the "
                           "provider changes the prefix but the host part stays "
                           "(default: 128, the whole address)")
    cmp_.add_argument("--grace", kind=cli.PLAIN,
                      type=cli.duration_type(0), default=600, metavar="DURATION",
                      help="a mismatch is WARNING for this long, then CRITICAL (DNS TTL plus "
                           "the update interval; default: 10m; 0: CRITICAL at once)")
    cmp_.add_argument("--state-file", kind=cli.FILE_WRITTEN, metavar="PATH", type=path_type,
                      help="where the start of a mismatch is remembered; its directory must "
                           "exist (default: dyndns_match_<NAME>.json in "
                           "$XDG_STATE_HOME/osop-checks/ or /var/tmp/osop-checks-<uid>/, "
                           "created when missing)")
    return parser


# -- argument types ---------------------------------------------------------------------------

def parse_hostname(value):
    name = str(value).strip().rstrip(".")
    if not address.is_host_name(name):
        raise ValueError("%r is not a DNS name" % value)
    return name.lower()


def parse_router_url(value):
    return upnp.DISCOVER if str(value).strip().lower() == upnp.DISCOVER \
        else cli.parse_url(value)


def parse_address(value):
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise ValueError("%r is not an IP address" % value) from None


def parse_path(value):
    if not str(value).strip():
        raise ValueError("the path is empty")
    return str(value)


hostname_type = cli.value_type(parse_hostname, "DNS name")
server_type = cli.value_type(dns.parse_server, "server")
router_url_type = cli.value_type(parse_router_url, "URL")
address_type = cli.value_type(parse_address, "IP address")
path_type = cli.value_type(parse_path, "path")
fingerprint_type = cli.value_type(tr064.normalize_fingerprint, "fingerprint")


# -- comparison -------------------------------------------------------------------------------

MATCH, MISMATCH, UNDECIDED = "match", "mismatch", "undecided"


@dataclasses.dataclass
class Comparison:
    """One address family: what the DNS says, what the public address is, and the verdict.

    ``age`` (seconds the mismatch has lasted) is filled in from the state file."""
    family: int
    name: str
    answer: dns.Answer
    public: list[str]
    verdict: str
    reason: str = ""                    # for UNDECIDED: why, in words
    prefix: int = 128
    age: float | None = None

    @property
    def rdtype(self):
        return FAMILIES[self.family]


def _key(address, prefix):
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and prefix < 128:
        return str(ipaddress.ip_network("%s/%d" % (ip, prefix), strict=False))
    return str(ip)


def public_for(family, readings, prefix=128):
    """The public addresses of ``family`` all answering sources agree on.

    Returns (addresses, problem): ``problem`` says in words why there is no agreed address
    (None when there is one)."""
    voters = []
    for reading in readings:
        if reading.error:
            continue
        mine = [a for a in reading.addresses if ipaddress.ip_address(a).version == family]
        if mine:
            voters.append((reading.source, mine))
    if not voters:
        failed = [r.family_errors.get(family) or r.error for r in readings
                  if r.error or family in r.family_errors]
        other = ["%s gave %s" % (r.source, ", ".join(r.addresses))
                 for r in readings if not r.error and family not in r.family_errors
                 and r.addresses]
        return [], "no source gave a public IPv%d address%s" % (
            family, (": " + "; ".join(failed + other)) if failed or other else "")
    common = set.intersection(*({_key(a, prefix) for a in mine} for _, mine in voters))
    if not common:
        return [], "the public address sources disagree: %s" % ", ".join(
            "%s says %s" % (source, " ".join(mine)) for source, mine in voters)
    agreed = [a for a in voters[0][1] if _key(a, prefix) in common]
    return agreed, None


def compare(family, answer, readings, prefix=128):
    """Judge one family: MATCH when the name resolves to an agreed public address (or one in
    its /prefix), MISMATCH when the DNS said something else (another address, no such name,
    no record), UNDECIDED when either side could not be told."""
    public, problem = public_for(family, readings, prefix)
    result = Comparison(family, answer.name, answer, public, UNDECIDED, prefix=prefix)
    if problem:
        result.reason = "cannot tell the public IPv%d address: %s" % (family, problem)
    elif not answer.definitive:
        result.reason = "cannot look up %s %s: %s" % (answer.name, answer.rdtype, answer.error)
    else:
        wanted = {_key(a, prefix) for a in public}
        found = {_key(a, prefix) for a in answer.addresses}
        result.verdict = MATCH if wanted & found else MISMATCH
    return result


# -- grace state --------------------------------------------------------------------------------

def default_state_file(name, environ=os.environ, uid=None):
    return state_files.default_path("dyndns_match", name, environ=environ, uid=uid)


@dataclasses.dataclass
class Memory:
    """The grace state as the run found it: where it is kept, whether its directory may be
    created, and the mismatches it remembers ({rdtype: {"since": time, "dns": ...,
    "public": [...]}})."""
    path: str
    create_dir: bool = False
    mismatches: dict = dataclasses.field(default_factory=dict)


def read_mismatches(path):
    """The mismatches remembered in ``path``: {rdtype: {"since": time, "dns": ..., "public":
    [...]}}, {} without a file. A damaged file is reset (the next write replaces it)."""
    if not os.path.lexists(path):
        return {}
    remembered = state_files.load(path, discard_corrupt=True)
    if remembered is None:
        log.warning("state file %s was damaged and has been reset", path)
        return {}
    return remembered


def since_of(entry, now):
    """When a remembered mismatch began; ``now`` for none, a damaged or a future entry."""
    since = entry.get("since") if isinstance(entry, dict) else None
    if isinstance(since, (int, float)) and not isinstance(since, bool) and since <= now:
        return since
    return now


def next_mismatches(comparisons, remembered, now):
    """The state to write: a match forgets the family's mismatch, a mismatch keeps its start,
    an undecided comparison leaves the family as it was."""
    kept = dict(remembered)
    for comp in comparisons:
        if comp.verdict == MATCH:
            kept.pop(comp.rdtype, None)
        elif comp.verdict == MISMATCH:
            kept[comp.rdtype] = {"since": since_of(remembered.get(comp.rdtype), now),
                                 "dns": comp.answer.describe(), "public": comp.public}
    return kept


def save_mismatches(path, create_dir, mismatches, mismatch):
    """Write the grace state judged by ``judge`` (runtime calls it after the output is
    rendered). No file is created until there is a ``mismatch`` to remember."""
    if not mismatch and not os.path.lexists(path):
        return
    state_files.ensure_dir(path, create_dir)
    state_files.save(path, mismatches)


# -- judgement --------------------------------------------------------------------------------

@dataclasses.dataclass
class Gathered:
    """Both sides as the sources gave them, and how long asking the public side took."""
    readings: list
    resolution: dns.Resolution
    public_seconds: float
    public_asked: bool  # a peer was asked for the public address (its time is perfdata)


@dataclasses.dataclass
class Limits:
    """--grace (seconds a mismatch is WARNING before it is CRITICAL) and --v6-prefix."""
    grace: float = 600
    v6_prefix: int = 128


def answer_family(answer):
    return 6 if answer.rdtype == "AAAA" else 4


def judge(gathered, limits, previous=None, now=0.0):
    """The verdict on both sides: a finding per address family (MATCH is OK; a MISMATCH
    younger than the grace WARNING, older CRITICAL, its age from ``previous``, the grace
    state as the run found it; UNDECIDED UNKNOWN), a WARNING when some address sources failed
    while the others decided; the timings and the mismatch's age as perfdata. With
    ``previous`` the verdict saves the next grace state."""
    remembered = previous.mismatches if previous is not None else {}
    comparisons = [compare(answer_family(a), a, gathered.readings, limits.v6_prefix)
                   for a in gathered.resolution.answers]
    judged = []  # (state, words) of each comparison
    for comp in comparisons:
        if comp.verdict == MATCH:
            comp.age = 0.0
        elif comp.verdict == MISMATCH:
            comp.age = now - since_of(remembered.get(comp.rdtype), now)
        judged.append(judge_comparison(comp, limits.grace))
    findings = list(judged)
    failed = [r for r in gathered.readings if r.error]
    if failed and all(c.verdict != UNDECIDED for c in comparisons):
        # Sources that failed while others answered: the verdict stands, with a warning.
        findings.append((Warn, "%d of %d address sources failed: %s" % (
            len(failed), len(gathered.readings), "; ".join(r.error for r in failed))))
    router_findings, router_lines, router_state = judge_router(
        gathered.readings, remembered.get(ROUTER_KEY), now)
    findings += router_findings
    verdict = plugin.Verdict(findings, perfdata=_perfdata(gathered, comparisons, limits),
                             long=_long(gathered, comparisons, judged) + router_lines)
    if verdict.state == Ok:
        verdict.summary = "; ".join(words for _, words in judged)
    else:  # the problems and every comparison, worst first
        verdict.summary = "; ".join(words for _, words in plugin.worst_first(
            findings, lambda found: found[0]) if words)
    if previous is not None and (comparisons or router_state):
        kept = next_mismatches(comparisons, remembered, now)
        if router_state:
            kept[ROUTER_KEY] = router_state
        verdict.save = functools.partial(
            save_mismatches, previous.path, previous.create_dir, kept,
            any(c.verdict == MISMATCH for c in comparisons) or bool(router_state))
    return verdict


def _remembered_list(value):
    return [t for t in value if isinstance(t, (int, float)) and not isinstance(t, bool)] \
        if isinstance(value, list) else []


def judge_router(readings, remembered, now):
    """What TR-064 routers said of their WAN connection (a reading's ``facts``): the long
    output's lines (connection, uptime, last reconnect, IPv6 prefix, a certificate trusted
    on first use), a WARNING when the router reconnected RECONNECTS_FLAGGED times within
    RECONNECT_WINDOW (a nightly reconnect is normal: a reconnect's time is remembered from
    run to run), and the router's next state ({"fingerprints": {endpoint: sha256},
    "reconnects": [times]}, None when no router was asked)."""
    remembered = remembered if isinstance(remembered, dict) else {}
    fingerprints = remembered.get("fingerprints")
    fingerprints = dict(fingerprints) if isinstance(fingerprints, dict) else {}
    reconnects = _remembered_list(remembered.get("reconnects"))
    findings, lines, asked = [], [], False
    for reading in readings:
        facts = reading.facts
        for where, fingerprint in facts.get("trusted", {}).items():
            asked = True
            fingerprints[where] = fingerprint
            lines.append("trusted the certificate of %s on first use: SHA-256 %s (kept in "
                         "the state file; --router-fingerprint pins it instead)" % (
                             where, text.colon_hex(fingerprint)))
        if "service" not in facts:
            continue
        asked = True
        uptime = facts.get("uptime")
        words = "router connection (TR-064 %s): %s" % (facts["service"], facts["status"])
        if uptime is not None:
            since = now - uptime
            words += " for %s, last reconnect %s" % (units.format_duration(int(uptime)),
                                                    units.format_time(since))
            if not any(abs(since - t) < RECONNECT_SAME for t in reconnects):
                reconnects.append(since)
        if facts.get("last_error") and facts["last_error"] != "ERROR_NONE":
            words += ", last connection error %s" % text.oneline(str(facts["last_error"]), limit=60)
        lines.append(words)
        if facts.get("ipv6_prefix"):
            lines.append("router's delegated IPv6 prefix: %s" % facts["ipv6_prefix"])
    if not asked:
        return [], lines, None
    reconnects = sorted(t for t in reconnects if now - t <= 86400)[-RECONNECTS_KEPT:]
    recent = [t for t in reconnects if now - t <= RECONNECT_WINDOW]
    if len(recent) >= RECONNECTS_FLAGGED:
        findings.append((Warn, "the router reconnected %d times within %s (last %s)" % (
            len(recent), units.format_duration(RECONNECT_WINDOW),
            units.format_time(recent[-1]))))
    return findings, lines, {"fingerprints": fingerprints, "reconnects": reconnects}


def judge_comparison(comp, grace):
    """MATCH is OK; a MISMATCH younger than the grace is WARNING, older CRITICAL; UNDECIDED
    is UNKNOWN."""
    if comp.verdict == UNDECIDED:
        return Unknown, comp.reason
    if comp.verdict == MATCH:
        return Ok, describe_match(comp)
    late = comp.age >= grace
    return (Critical if late else Warn), describe_mismatch(comp, grace, late)


def _perfdata(gathered, comparisons, limits):
    def seconds(label, value):
        return nagiosplugin.Performance(label, round(value, 6), "s", None, None, 0, None)

    perfdata = [seconds("dns_%s_time" % a.rdtype, a.seconds)
                for a in gathered.resolution.answers]
    if gathered.resolution.discovery_seconds is not None:
        perfdata.append(seconds("dns_zone_time", gathered.resolution.discovery_seconds))
    if gathered.public_asked:
        perfdata.append(seconds("public_address_time", gathered.public_seconds))
    ages = [c.age for c in comparisons if c.age is not None]
    if ages:
        # the grace as critical limit (the comparisons are judged in words)
        perfdata.append(nagiosplugin.Performance(
            "mismatch_seconds", int(max(ages)), "s", nagiosplugin.Range("0"),
            units.range_of(end=limits.grace), 0, None))
    return perfdata


def _long(gathered, comparisons, judged):
    """A line per comparison (what the DNS answered, from where), the most significant state
    first (UNKNOWN, CRITICAL, WARNING, OK: the order of the exit codes), then how the DNS was
    asked and what each public address source said."""
    lines = []
    for comp, (state, _) in plugin.by_significance(zip(comparisons, judged),
                                                   lambda pair: pair[1][0]):
        answer = comp.answer
        state = str(state).upper()
        if answer.kind != dns.OK:
            lines.append("%s: %s %s: %s (%.3f s)" % (
                state, comp.name, comp.rdtype, answer.describe(), answer.seconds))
            continue
        detail = ["answer from %s" % answer.server]
        if answer.ttl is not None:
            detail.append("TTL %ds" % answer.ttl)
        if answer.authoritative:
            detail.append("authoritative")
        detail.append("%.3f s" % answer.seconds)
        lines.append("%s: %s %s %s (%s)" % (
            state, comp.name, comp.rdtype, answer.describe(), ", ".join(detail)))
    if gathered.resolution is not None:
        lines.append("DNS asked: %s" % gathered.resolution.via)
    for reading in gathered.readings:
        lines.append("%s (%.3f s)" % (
            "public address source failed: %s" % reading.error if reading.error else
            "public address from %s: %s" % (reading.source, ", ".join(reading.addresses)),
            reading.seconds))
    return lines


def _where(comp):
    """What the DNS gave, as the status line shows it."""
    answer = comp.answer
    if answer.kind == dns.OK:
        return "%s resolves to %s" % (comp.name, ", ".join(answer.addresses))
    return answer.error


def _public(comp):
    shown = ", ".join(comp.public)
    if comp.family == 6 and comp.prefix < 128:
        shown += " (comparing /%d prefixes)" % comp.prefix
    return shown


def describe_match(comp):
    resolved = ", ".join(comp.answer.addresses)
    public = set(comp.public)
    if public & set(comp.answer.addresses):
        return "%s resolves to %s, the public address" % (comp.name, resolved)
    return "%s resolves to %s, in the public /%d prefix of %s" % (
        comp.name, resolved, comp.prefix, ", ".join(comp.public))


def describe_mismatch(comp, grace, late):
    age = units.format_duration(int(comp.age))
    tail = ("mismatch for %s" % age) if late or not grace else (
        "mismatch for %s, grace %s" % (age, units.format_duration(grace)))
    return "%s, public address is %s (%s)" % (_where(comp), _public(comp), tail)


# -- wiring -----------------------------------------------------------------------------------

def gather_public(args, fetch_echo=publicip.fetch_echo,
                  interface_addresses=publicip.interface_addresses, snmp_address=None,
                  router_address=upnp.fetch, router_tr064=None):
    """Every public-address source the arguments name, in order, as readings.

    The sources that ask a peer (SNMP agents, echo services) are asked at the same time,
    each within PUBLIC_SHARE of the time left: several echo services cost the slowest one."""
    readings = [publicip.fixed_address(a) for a in args.expect]
    readings += [interface_addresses(name) for name in args.interface]
    remote = [(snmp_address, host, "SNMP agent %s" % host) for host in args.snmp] + [
        (fetch_echo, url, url) for url in args.ip_url]
    if args.router_upnp:
        # the router's delegated IPv6 prefix only where an IPv6 comparison is asked
        v6_prefix = args.v6_prefix if 6 in args.families else None
        remote.append((lambda where, timeout: router_address(where, timeout=timeout,
                                                             v6_prefix=v6_prefix),
                       args.router_upnp, "UPnP router"))
    if args.router_tr064:
        v6_prefix = args.v6_prefix if 6 in args.families else None
        remote.append((lambda where, timeout: router_tr064(where, timeout=timeout,
                                                           v6_prefix=v6_prefix),
                       args.router_tr064, "TR-064 router"))
    return readings + _in_parallel(remote, _share())


def _share():
    try:
        left = deadline.remaining()
    except deadline.Timeout:
        return 0.01
    if left is None:
        return publicip.DEFAULT_TIMEOUT
    return max(0.01, left * PUBLIC_SHARE)


def _in_parallel(calls, limit):
    """[(source, where, name)] -> [source(where, timeout=limit)], one thread each, all waited
    for at most ``limit`` (+ a little: each source keeps its own limit). An exception in a
    source (a bug, the deadline) is raised here, in the check's thread."""
    if len(calls) <= 1:
        return [source(where, timeout=limit) for source, where, _ in calls]
    answers = fanout.run_all([lambda s=source, w=where: s(w, timeout=limit)
                              for source, where, _ in calls], limit + 0.2)
    for _, error in answers:
        if error is not None:
            raise error
    return [result if result is not None else publicip.Reading(
        name, error="%s: no answer within %.1f s" % (name, limit), seconds=limit)
        for (result, _), (_, _, name) in zip(answers, calls)]


def _snmp_reader(args):
    """--snmp HOST -> a callable reading that agent's WAN address; the SNMP options are
    checked here, before anything is asked, so a wrong combination is a usage error."""
    from osop_checks.sources import snmp_address

    targets = {host: snmp_options.target_from_args(argparse.Namespace(
        **dict(vars(args), host=host))) for host in args.snmp}

    def read(host, timeout):
        target = targets[host]
        # Every try of every request within this source's share of the time.
        target = dataclasses.replace(target, timeout=max(0.1, min(
            target.timeout, timeout / (target.retries + 1))))
        return snmp_address.fetch(target, args.snmp_interface)
    return read


def _tr064_reader(args, remembered, fetch=tr064.fetch):
    """--router-tr064 URL -> a callable reading the router over TR-064 with the login and
    the pinned (or remembered) certificate; the password file is read here, before anything
    is asked, so an unreadable one is a usage error."""
    if args.router_fingerprint and not args.router_tr064.startswith("https:"):
        raise cli.UsageError("--router-fingerprint needs an https:// --router-tr064 URL")
    password = cli.read_secret(path=args.router_password_file, what="router password") \
        if args.router_password_file else ""
    router = remembered.get(ROUTER_KEY)
    pins = router.get("fingerprints") if isinstance(router, dict) else None

    def read(where, timeout, v6_prefix=None):
        return fetch(where, args.router_user, password, args.router_fingerprint,
                     pins if isinstance(pins, dict) else {}, timeout=timeout,
                     v6_prefix=v6_prefix)
    return read


def build_check(args, resolve=None, fetch_echo=publicip.fetch_echo,
                interface_addresses=publicip.interface_addresses, snmp_address=None,
                router_address=upnp.fetch, clock=time.time, router_tr064=tr064.fetch):
    if not (args.ip_url or args.interface or args.expect or args.snmp or args.router_upnp
            or args.router_tr064):
        raise cli.UsageError("give at least one source of the public address: --ip-url, "
                             "--interface, --expect, --snmp, --router-upnp or --router-tr064")
    for flag in ("router_user", "router_password_file", "router_fingerprint"):
        if getattr(args, flag) and not args.router_tr064:
            raise cli.UsageError("--%s is for --router-tr064" % flag.replace("_", "-"))
    if args.snmp and snmp_address is None:
        snmp_address = _snmp_reader(args)
    if resolve is None:
        def resolve(name, rdtypes):
            return dns.resolve(name, rdtypes, server=args.server,
                               authoritative=args.authoritative, auth_port=args.auth_port)
    state_file = args.state_file or default_state_file(args.hostname)
    previous = Memory(state_file, not args.state_file, read_mismatches(state_file))
    tr064_reader = _tr064_reader(args, previous.mismatches, router_tr064) \
        if args.router_tr064 else None
    started = time.monotonic()
    readings = gather_public(args, fetch_echo, interface_addresses, snmp_address,
                             router_address, tr064_reader)
    public_seconds = time.monotonic() - started
    resolution = resolve(args.hostname, tuple(FAMILIES[f] for f in args.families))
    gathered = Gathered(readings, resolution, public_seconds,
                        bool(args.ip_url or args.snmp or args.interface or args.router_upnp
                             or args.router_tr064))
    return judge(gathered, Limits(args.grace, args.v6_prefix), previous, clock())


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
