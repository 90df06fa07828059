"""check_tls_expiry: validity and trust of the certificates TLS endpoints present.

arguments -> endpoints (-H, --endpoint, --endpoint-file) and files (--file) -> gathered in
build_check by sources.tls (every endpoint concurrently, STARTTLS included) as one Subject
each -> judge (pure): every subject's findings (expiry of every chain element against -w/-c,
trust, name, policy), the status line, the long output, and as perfdata the days left of the
leaf and of the soonest chain element per endpoint -> runtime renders the plugin.Verdict.
"""
import datetime
import functools
import logging
import math
import os

import nagiosplugin
from nagiosplugin import Critical, Ok

from osop_checks import address, bounded, cli, deadline, fanout, plugin, runtime, text, units
from osop_checks.sources import revocation, tls

NAME = "TLS_EXPIRY"
log = logging.getLogger("nagiosplugin")

TRUST_WORDS = {"self-signed": "self-signed certificate, not trusted",
               "incomplete": "incomplete chain: {}",
               "untrusted": "untrusted: {}"}
# Key sizes of elliptic curves as the RSA size of the same strength (NIST SP 800-57).
EC_AS_RSA = ((521, 15360), (384, 7680), (256, 3072), (224, 2048), (160, 1024), (0, 512))
EDWARDS_AS_RSA = {"Ed25519": 3072, "Ed448": 7680}
# OpenSSL's default security level on Debian (2): RSA/DSA keys of 2048 bits, EC of 224.
DEFAULT_MIN_KEY_SIZE = 2048


# -- thresholds by lifetime ----------------------------------------------------------------

class Share:
    """A -w/-c threshold as a share of the certificate's validity period (``-w 33%``):
    alert when less than ``share`` of its lifetime is left; with ``cap`` (days), when less
    than the lower of the two is left (the defaults). ``written``: as the help and usage
    errors show it."""

    def __init__(self, share, cap=None, written=None):
        self.share = share
        self.cap = cap
        self.written = written or "%g%%" % (share * 100)

    def __repr__(self):
        return "Share(%r)" % self.written


# Short lifetimes (Let's Encrypt's 6 days, the CA/B Forum's 47 from 2029) would be
# CRITICAL all their life under fixed days; long ones keep the days admins know.
DEFAULT_WARNING = Share(1 / 3, 21, "min(21d, 33%)")
DEFAULT_CRITICAL = Share(1 / 10, 7, "min(7d, 10%)")


def parse_threshold(text):
    """``33%`` (a Share) or days left as cli.range_type(units.DAYS) reads them."""
    value = str(text).strip()
    if value.endswith("%"):
        share = units.PERCENT.parse(value)
        if not 0 < share <= 100:
            raise ValueError("%r: a share of the lifetime is above 0%% and at most 100%%"
                             % text)
        return Share(share / 100, written=value)
    return units.parse_range(value, units.DAYS, lower_bound=True)


threshold_type = cli.value_type(parse_threshold, "duration in days or share of the lifetime")


def never_fires(warning, critical):
    """cli's check of a -w/-c pair, for days and shares: a warning share below the critical
    one, like a warning in days below the critical, can never fire; a share beside days
    depends on the certificate."""
    if isinstance(warning, Share) or isinstance(critical, Share):
        return (isinstance(warning, Share) and isinstance(critical, Share)
                and warning.cap is None and critical.cap is None
                and warning.share < critical.share)
    return units.never_fires(warning, critical, units.DAYS)


def limit_for(threshold, cert):
    """The range in days that ``threshold`` sets for ``cert``: days as written, a share of
    its lifetime turned into days (rounded like days_left), the lower of the two for a
    capped share."""
    if not isinstance(threshold, Share):
        return threshold
    below = round(days_between(cert.not_after, cert.not_before) * threshold.share, 2)
    if threshold.cap is not None:
        below = min(below, threshold.cap)
    return units.range_of(start=below)


def build_parser():
    parser = cli.Parser(
        NAME, "check_tls_expiry",
        "Expiry, trust and name of the certificates TLS endpoints present (STARTTLS\n"
        "included), and of local certificate files. Every certificate of the chain is\n"
        "checked; several endpoints are checked concurrently, each with its own result.\n"
        "A host name is checked on every address it has (A and AAAA), each with its own\n"
        "result NAME@ADDRESS:PORT; -4/-6 narrow that, --first-address checks one.",
        examples=[
            "check_tls_expiry -H www.example.org            # every A and AAAA address",
            "check_tls_expiry -H www.example.org -w 21d -c 7d   # fixed days for every lifetime",
            "check_tls_expiry -H www.example.org -w 33% -c 10%  # shares of the lifetime",
            "check_tls_expiry -H www.example.org -6             # its IPv6 addresses only",
            "check_tls_expiry -H www.example.org --first-address",
            "check_tls_expiry -H [2001:db8::1] --sni www.example.org",
            "check_tls_expiry -H mail.example.org -p 587    # STARTTLS smtp, from the port",
            "check_tls_expiry -H 192.0.2.10 --sni www.example.org --min-tls-version 1.2",
            "check_tls_expiry --endpoint www.example.org --endpoint mail.example.org:25 "
            "--endpoint ldap.example.org:389/ldap",
            "check_tls_expiry --endpoint-file /etc/icinga2/tls-endpoints.txt -w 28d -c 10d",
            "check_tls_expiry -H intranet.lan --ca-file /etc/ssl/internal-ca.pem",
            "check_tls_expiry -H api.lan -p 5668 --client-cert /etc/icinga2/pki/sat.crt "
            "--client-key /etc/icinga2/pki/sat.key",
            "check_tls_expiry --file /etc/ssl/certs/backup-server.pem -w 36h -c 12h",
            "check_tls_expiry --endpoint-file /etc/icinga2/tls-endpoints.txt "
            "--revocation crl --revocation-unknown critical",
            "check_tls_expiry -H www.example.org --revocation ocsp   # ask the responder too",
            "check_tls_expiry -H www.example.org --revocation off",
            "check_tls_expiry -H mx.example.org -p 25 --dane   # TLSA via the local "
            "validating resolver",
            "check_tls_expiry -H mx.example.org -p 25 --dane --dns-server 127.0.0.53",
            "check_tls_expiry -H www.example.org --ari "
            "https://acme-v02.api.letsencrypt.org/directory",
            "check_tls_expiry --file /etc/letsencrypt/live/www/cert.pem --ari "
            "https://acme-v02.api.letsencrypt.org/directory",
        ],
        behind_the_scenes=[
            "one TCP connection per endpoint (more only when the chain is not trusted: one at",
            "OpenSSL security level 0 to tell why, one to read it without verification; and",
            "one more for --min-tls-version); STARTTLS",
            "speaks the protocol's own upgrade (SMTP EHLO/STARTTLS, IMAP STARTTLS, POP3 STLS,",
            "FTP AUTH TLS, LDAP StartTLS extended operation, PostgreSQL SSLRequest, XMPP",
            "<starttls/>). Trust is OpenSSL's verdict in the real handshake with Python's",
            "default client context (OpenSSL's default security level, as Debian's curl and",
            "python3 verify), validity dates left to the check; certificates are read with",
            "cryptography.",
            "Revocation (--revocation auto): the stapled OCSP answer read from the handshake,",
            "else one HTTP GET per CRL URL per run (none while the cached copy is younger",
            "than an hour); with ocsp one HTTP POST per certificate to its OCSP responder.",
            "No login; CRLs, ARI answers and what was read of each --file are written to the",
            "cache directory only; --file reads the file only, and parses it again only when",
            "its bytes change (no revocation: a file has no issuer to check a CRL against).",
            "--dane: one TLSA query (DO and AD bits set) per name and port to the resolver;",
            "--ari: a GET of the ACME directory and of renewalInfo/<id> per leaf, unless",
            "the answer in the cache directory is still fresh (Retry-After).",
        ])
    where = parser.add_argument_group("endpoints (at least one of -H, --endpoint, "
                                      "--endpoint-file, --file)")
    where.add_argument("-H", "--host", kind=cli.HOST, metavar="HOST",
                       help="host name or address to connect to")
    where.add_argument("-p", "--port", kind=cli.PORT, type=cli.count_type(1, 65535), metavar="PORT",
                       help="port (default: 443, or the --starttls protocol's port)")
    where.add_argument("--sni", kind=cli.PLAIN, metavar="NAME",
                       help="server name to send and to match against the certificate "
                            "(default: the -H host name)")
    where.add_argument("--starttls", kind=cli.PLAIN, choices=tls.STARTTLS + ("none",),
                       help="upgrade a plain connection first (default from the port: 25/587 "
                            "smtp, 143 imap, 110 pop3, 21 ftp, 389 ldap, 5432 postgres, "
                            "5222 xmpp; 'none' for direct TLS on such a port)")
    where.add_argument("--endpoint", kind=cli.HOST, action="append", default=[], type=endpoint_type,
                       metavar="[NAME@]HOST[:PORT][/STARTTLS]",
                       help="one more endpoint (repeatable), e.g. mail.example.org:587, "
                            "[2001:db8::1]:443, www.example.org@192.0.2.10:443, "
                            "ldap.lan:389/ldap; defaults as for -H")
    where.add_argument("--endpoint-file", kind=cli.FILE_READ,
                       action="append", default=[], metavar="PATH",
                       help="a file of endpoints, one --endpoint value a line (# comments)")
    where.add_argument("--file", kind=cli.FILE_READ, action="append", default=[], metavar="PATH",
                       help="a local certificate file (PEM or DER, bundles and PKCS#7 too; "
                            "every certificate in it is checked for expiry and policy; what "
                            "was read is kept in --cache-dir until the file's bytes change)")
    where.add_argument("--first-address", kind=cli.PLAIN, action="store_true",
                       help="check a host name on the first of its addresses that accepts "
                            "the connection only (default: every address, A and AAAA, each "
                            "with its own line and perfdata NAME@ADDRESS:PORT)")
    cli.add_family_options(where)
    expiry = parser.add_argument_group(
        "expiry (of every certificate in the chain; expired or not yet valid is always "
        "CRITICAL)",
        "A threshold is days left (21d, 36h, a Nagios range in days) or a share of the\n"
        "certificate's own validity period (33%: alert when less than a third of its\n"
        "lifetime is left). The defaults take the lower of both, right for a 6-day\n"
        "certificate and for a 398-day one; perfdata is in days, with the thresholds\n"
        "each certificate was judged by.")
    expiry.add_argument("-w", "--warning", kind=cli.PLAIN, type=threshold_type,
                        default=DEFAULT_WARNING, metavar="DAYS|SHARE%",
                        help="warn when less is left: 21, 21d, 36h, a Nagios range in days, "
                             "or a share of the lifetime such as 33%% (default: "
                             + DEFAULT_WARNING.written.replace("%", "%%") + ")")
    expiry.add_argument("-c", "--critical", kind=cli.PLAIN, type=threshold_type,
                        default=DEFAULT_CRITICAL, metavar="DAYS|SHARE%",
                        help="critical when less is left, e.g. 7d or 10%% (default: "
                             + DEFAULT_CRITICAL.written.replace("%", "%%") + ")")
    parser.add_threshold_pair("--warning", "--critical", units.DAYS, never_fires=never_fires)
    trust = parser.add_argument_group("trust (each problem's state)")
    trust.add_argument("--ca-file", kind=cli.FILE_READ, metavar="PATH",
                       help="trust these CA certificates (PEM) instead of the system store")
    client = parser.add_argument_group(
        "client certificate (for servers that demand one)",
        "The key file must not be readable or writable by others nor writable by its group\n"
        "(UNKNOWN otherwise, before any connection: a key others can read is nobody's\n"
        "secret); readable by its group is fine (Debian's ssl-cert group). Encrypted keys\n"
        "are refused: a check has nobody to type the passphrase.")
    client.add_argument("--client-cert", kind=cli.FILE_READ, metavar="PATH",
                        help="present this certificate (PEM, with its intermediates) when the "
                             "server asks for one")
    client.add_argument("--client-key", kind=cli.FILE_READ, metavar="PATH",
                        help="its private key (PEM, unencrypted; default: in --client-cert)")
    for flag, default, what in (
            ("--untrusted", "critical", "the chain does not lead to a trusted CA"),
            ("--self-signed", "critical", "the certificate is self-signed and not trusted"),
            ("--incomplete", "warning", "the server does not send the intermediates its "
                                        "certificate needs"),
            ("--mismatch", "critical", "the host name (or --sni) is not among the "
                                       "certificate's SANs")):
        cli.add_state_option(trust, flag, "state when " + what, default)
    policy = parser.add_argument_group(
        "keys and signatures (below Debian's default OpenSSL security level: warning)")
    policy.add_argument("--min-key-size", kind=cli.PLAIN, type=cli.count_type(1), metavar="BITS",
                        default=DEFAULT_MIN_KEY_SIZE,
                        help="smallest key in the chain, in RSA/DSA bits; elliptic curves "
                             "count as the RSA size of equal strength (P-224 = 2048, P-256 = "
                             "3072) (default: 2048, OpenSSL's default security level)")
    cli.add_state_option(policy, "--weak-key", "state when a key in the chain is below "
                         "--min-key-size, or OpenSSL at its default security level refuses "
                         "the chain for another reason", "warning")
    cli.add_state_option(policy, "--weak-signature", "state when a certificate in the chain is "
                         "signed with SHA-1 or MD5", "warning")
    policy = parser.add_argument_group("policy (optional)")
    policy.add_argument("--max-validity", kind=cli.PLAIN,
                        type=cli.quantity_type(units.DAYS, minimum=1),
                        metavar="DAYS",
                        help="longest validity period of the leaf, e.g. 398d")
    policy.add_argument("--min-tls-version", kind=cli.PLAIN, choices=tls.TLS_VERSIONS,
                        help="lowest TLS version the server may accept (probed with one "
                             "more handshake)")
    cli.add_state_option(policy, "--policy", "state of a --max-validity or --min-tls-version "
                         "violation", "warning", ("warning", "critical"))
    revoked = parser.add_argument_group(
        "revocation (of endpoints' chains; a revoked certificate is CRITICAL)",
        "auto: the OCSP answer the server staples (no network), else the CRL every\n"
        "certificate of the chain names (HTTP, signature checked against its issuer, each\n"
        "URL fetched once per run and kept in the cache directory, asked again hourly and\n"
        "used while its server is down until its nextUpdate); crl: CRLs only; ocsp: the\n"
        "CA's OCSP responder too; off. A certificate that demands stapling (must-staple)\n"
        "served without a staple is CRITICAL. Fetches share the --timeout.")
    revoked.add_argument("--revocation", kind=cli.PLAIN, choices=revocation.MODES,
                         default="auto", help="where revocation is looked up (default: auto)")
    cli.add_state_option(revoked, "--revocation-unknown", "state when a certificate's "
                         "revocation is published but no valid answer can be had (its CRL "
                         "server down and no valid cached copy, a bad signature)", "warning")
    # --cache-dir (the CRLs' and ARI's cache) is added with the ARI options
    add_dane_ari_options(parser)
    return parser


# -- endpoints ----------------------------------------------------------------------------

def make_endpoint(host, port=None, starttls=None, sni=None, family=None):
    """An Endpoint with the port and STARTTLS defaults filled in; ValueError for a host that
    is not a host name or an address."""
    host = address.check_host(host)
    if starttls is None and port is not None:
        starttls = tls.PORT_PROTOCOLS.get(port)
    if port is None:
        port = tls.PROTOCOL_PORTS.get(starttls, 443)
    return tls.Endpoint(host, port, None if starttls == "none" else starttls, sni, family)


def parse_endpoint(spec, family=None):
    """``[NAME@]HOST[:PORT][/STARTTLS]``, HOST[:PORT] as address.parse_endpoint reads it:
    ``[::1]:443``, ``[::1]``, ``::1``, ``host:993``."""
    value = str(spec).strip()
    sni, starttls = None, None
    if "@" in value:
        sni, value = value.split("@", 1)
        if not sni:
            raise ValueError("%r has an empty NAME before '@'" % spec)
    if "/" in value:
        value, starttls = value.rsplit("/", 1)
        if starttls not in tls.STARTTLS + ("none",):
            raise ValueError("%r: unknown STARTTLS protocol %r (one of %s, none)" % (
                spec, starttls, ", ".join(tls.STARTTLS)))
    where = address.parse_endpoint(value, None)  # ::1:993 refused, with the spellings
    return make_endpoint(where.host, where.port, starttls, sni, family)


endpoint_type = cli.value_type(parse_endpoint, "endpoint")


def read_endpoint_file(path):
    try:
        lines = bounded.read_text(path, errors="strict").splitlines()
    except OSError as exc:
        raise cli.UsageError("cannot read the endpoint file %s: %s" % (
            path, exc.strerror)) from None
    except UnicodeDecodeError:
        raise cli.UsageError("the endpoint file %s is not UTF-8 text" % path) from None
    endpoints = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                endpoints.append(parse_endpoint(line))
            except ValueError as exc:
                raise cli.UsageError("%s line %d: %s" % (path, number, exc)) from None
    return endpoints


def once(endpoints):
    """The same endpoint twice (by its label) is checked once."""
    unique = {}
    for endpoint in endpoints:
        unique.setdefault(endpoint.label, endpoint)
    return list(unique.values())


def endpoints_from(args):
    if args.host is None and (args.port or args.sni or args.starttls):
        raise cli.UsageError("-p, --sni and --starttls go with -H")
    endpoints = []
    if args.host is not None:
        try:
            endpoints.append(make_endpoint(args.host, args.port, args.starttls, args.sni))
        except ValueError as exc:
            raise cli.UsageError("-H %s" % exc) from None
    endpoints.extend(args.endpoint)
    for path in args.endpoint_file:
        endpoints.extend(read_endpoint_file(path))
    for endpoint in endpoints:
        try:
            address.check_family(endpoint.host, args.family)
        except ValueError as exc:
            raise cli.UsageError(str(exc)) from None
        endpoint.family = args.family
    endpoints = once(endpoints)
    if not endpoints and not args.file:
        raise cli.UsageError("nothing to check: give -H, --endpoint, --endpoint-file or --file")
    return endpoints


# -- what was found -----------------------------------------------------------------------

class Subject:
    """One thing checked, as gathered: an endpoint (an Attempt) or a local file (certificates
    or error). Plain data: nothing changes it after build_check."""

    def __init__(self, label, perf_prefix, chain=(), presented=None, error=None,
                 is_file=False, revocation=None):
        self.label = label
        self.perf_prefix = perf_prefix
        self.chain = list(chain)
        self.presented = presented
        self.error = error
        self.is_file = is_file
        # One revocation.Status per chain element; None: not checked (off, a file), or a
        # list holding None when the check ran out of time.
        self.revocation = revocation
        self.dane = None     # DANE: a DaneResult (--dane), set by gather_dane_ari
        self.renewal = None  # ARI: an ari.Renewal of the leaf (--ari), set by gather_dane_ari

    @classmethod
    def from_attempt(cls, attempt):
        endpoint = attempt.endpoint
        prefix = endpoint.label.split(" ")[0]
        if attempt.presented is not None:
            # The trust store's part of the verified path is judged too: an expired root
            # fails curl and openssl as surely as an expired leaf.
            return cls(endpoint.label, prefix, attempt.presented.chain
                       + attempt.presented.from_store, attempt.presented)
        error = attempt.error
        stage = error.stage if error else attempt.stage
        reason = error.reason if error else "no result"
        if error is not None and error.timed_out:
            words = "%s during %s" % (reason, stage)
        else:
            words = "%s failed: %s" % (stage, reason)
        return cls(endpoint.label, prefix, error=words)

    @classmethod
    def from_file(cls, path, certificates):
        """``certificates``: what load_file returned, or the OSError/ValueError it raised."""
        if isinstance(certificates, OSError):
            return cls(path, path, error="cannot read the file: %s" % (
                certificates.strerror or certificates).lower(), is_file=True)
        if isinstance(certificates, ValueError):
            return cls(path, path, error="cannot read the file: %s" % certificates,
                       is_file=True)
        return cls(path, path, certificates, is_file=True)


def spread(endpoints, resolve):
    """Every endpoint whose host name has several addresses (of its family, all names
    resolved concurrently) as one endpoint per address, ``NAME@[ADDRESS]:PORT``, in the
    resolver's order; an address, a name with one address and a name that does not resolve
    (the connection then says why, as with --first-address) stay as they are."""
    names = [e for e in endpoints if address.family_of(e.host) is None]
    limit = deadline.remaining(None)
    answers = dict(zip((id(e) for e in names), fanout.run_all(
        [functools.partial(resolve, e.host, e.port, e.family, limit)
         for e in names], limit=limit)))
    spread_out = []
    for endpoint in endpoints:
        found, error = answers.get(id(endpoint), (None, None))
        if error is not None and not isinstance(error, address.ResolveError):
            raise error  # a bug, not an answer: the runner reports it
        addresses = list(dict.fromkeys(addr for _, addr in found or ()))
        if len(addresses) < 2:
            spread_out.append(endpoint)
            continue
        log.info("%s: %d addresses, each checked: %s", endpoint.label, len(addresses),
                 ", ".join(addresses))
        spread_out.extend(tls.Endpoint(addr, endpoint.port, endpoint.starttls, endpoint.name,
                                       endpoint.family) for addr in addresses)
    return once(spread_out)  # a name's address also given as NAME@ADDRESS: checked once


def gather(endpoints, files, fetch, load_file, options, resolve=None):
    """Every endpoint (concurrently) and file: a Subject each, endpoints first.
    With ``resolve``, every address of a name is an endpoint of its own (``spread``)."""
    if resolve is not None and endpoints:
        endpoints = spread(endpoints, resolve)
    attempts = tls.fetch_all(endpoints, fetch=fetch, **options) if endpoints else []
    loaded = []
    for path in files:
        try:
            loaded.append((path, load_file(path)))
        except (OSError, ValueError) as exc:
            loaded.append((path, exc))
    return ([Subject.from_attempt(a) for a in attempts]
            + [Subject.from_file(path, certs) for path, certs in loaded])


def days_between(later, earlier):
    return (later - earlier).total_seconds() / 86400


def days_left(cert, now):
    """The days ``cert`` has left, as the check shows and judges them: rounded to two
    decimals. This one value is the perfdata, the value -w/-c judge and the long output's
    "days left"; the status line says it in whole units (``in_words``)."""
    return round(days_between(cert.not_after, now), 2)


def in_words(days):
    """'10 days', '1 day', '5 hours', '12 minutes': the nearest whole unit, so 9.99 days
    (perfdata 9.99d) is '10 days'; below a day in hours, below an hour in minutes."""
    span = abs(days)
    hours = math.floor(span * 24 + 0.5)
    if hours >= 24:
        whole = math.floor(span + 0.5)
        return "%d day%s" % (whole, plugin.plural(whole))
    if hours >= 1:
        return "%d hour%s" % (hours, plugin.plural(hours))
    minutes = math.floor(span * 1440 + 0.5)
    return "%d minute%s" % (minutes, plugin.plural(minutes))


def day(moment):
    return moment.strftime("%Y-%m-%d")


def stamp(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def rsa_strength(cert):
    if cert.key_type.startswith("EC "):
        return next(rsa for bits, rsa in EC_AS_RSA if cert.key_bits >= bits)
    return EDWARDS_AS_RSA.get(cert.key_type, cert.key_bits)


def role(subject, index, cert):
    """How a chain element is named in messages."""
    if subject.is_file:
        return "certificate" if len(subject.chain) == 1 else "certificate %r (#%d)" % (
            cert.name, index + 1)
    if index == 0:
        return "certificate"
    return "%s %r" % ("root" if cert.self_issued else "intermediate", cert.name)


# -- evaluation ---------------------------------------------------------------------------

class Settings:
    """What the check judges against; built from the arguments."""

    def __init__(self, args):
        self.warning = args.warning
        self.critical = args.critical
        self.severity = {"untrusted": args.untrusted, "self-signed": args.self_signed,
                         "incomplete": args.incomplete, "mismatch": args.mismatch,
                         "weak-signature": args.weak_signature, "weak-key": args.weak_key,
                         "policy": args.policy,
                         "revocation-unknown": args.revocation_unknown}
        self.min_key_size = args.min_key_size
        self.max_validity = args.max_validity
        self.min_tls_version = args.min_tls_version
        self.client = bool(args.client_cert)
        self.dane_ari = DaneAriSettings(args)


def judge_subject(subject, settings, now):
    """Every finding about one subject as [(state, words)], problems first. Pure."""
    if subject.error:
        return [(Critical, subject.error)]
    if not subject.chain:
        return [(Critical, "no certificate presented")]
    findings = []
    leaf = subject.chain[0]
    weak = False  # a weak key or signature found: it says why OpenSSL refuses the chain
    for index, cert in enumerate(subject.chain):
        who = role(subject, index, cert)
        left = days_left(cert, now)
        before_leaf = (index > 0 and not subject.is_file and cert.not_after < leaf.not_after)
        tail = ", before the leaf" if before_leaf else ""
        if now < cert.not_before:
            findings.append((Critical, "%s not yet valid (valid from %s)" % (
                who, stamp(cert.not_before))))
        elif cert.not_after <= now:
            findings.append((Critical, "%s expired %s ago (%s)%s" % (
                who, in_words(days_between(cert.not_after, now)), day(cert.not_after),
                tail)))
        else:
            state = plugin.state_of(left, limit_for(settings.warning, cert),
                                    limit_for(settings.critical, cert))
            if state != Ok:
                findings.append((state, "%s expires in %s (%s)%s" % (
                    who, in_words(days_between(cert.not_after, now)), day(cert.not_after),
                    tail)))
        if settings.min_key_size and (index == 0 or not cert.self_issued):
            if rsa_strength(cert) < settings.min_key_size:
                weak = True
                findings.append((settings.severity["weak-key"], "%s has a weak key (%s %d "
                                 "bits, minimum %d)" % (who, cert.key_type, cert.key_bits,
                                                        settings.min_key_size)))
        if cert.signature_hash in ("sha1", "md5") and (index == 0 or not cert.self_issued):
            weak = True
            findings.append((settings.severity["weak-signature"], "%s is signed with %s" % (
                who, cert.signature_hash.upper().replace("SHA1", "SHA-1"))))
    if settings.max_validity:
        validity = days_between(leaf.not_after, leaf.not_before)
        if validity > settings.max_validity + 1e-9:
            findings.append((settings.severity["policy"], "certificate is valid for %d days, "
                             "longer than %g" % (round(validity), settings.max_validity)))
    findings.extend(judge_revocation(subject, settings))
    presented = subject.presented
    if presented is not None:
        problem = presented.trust.problem
        if problem:
            findings.append((settings.severity[problem],
                             TRUST_WORDS[problem].format(presented.trust.reason)))
        elif presented.trust.refused and not weak:
            findings.append((settings.severity["weak-key"], presented.trust.refused))
        if presented.name_matches is False:
            findings.append((settings.severity["mismatch"], "name mismatch: %r is not among "
                             "the certificate's names (%s)" % (
                                 presented.endpoint.name,
                                 ", ".join(leaf.sans) or "no SANs, CN %r" % leaf.subject_cn)))
        if settings.min_tls_version:
            wanted = tls.TLS_VERSIONS.index(settings.min_tls_version)
            version = presented.version.replace("TLSv", "")
            if version in tls.TLS_VERSIONS and tls.TLS_VERSIONS.index(version) < wanted:
                findings.append((settings.severity["policy"], "negotiated %s, below TLS %s" % (
                    presented.version, settings.min_tls_version)))
            for old in presented.older_versions:
                findings.append((settings.severity["policy"], "accepts %s, below TLS %s" % (
                    old, settings.min_tls_version)))
    findings.extend(dane_ari_findings(subject, settings.dane_ari, now))
    findings = plugin.worst_first(findings, state=lambda f: f[0])
    return [f for f in findings if f[0] != Ok]


def judge_revocation(subject, settings):
    """The revocation findings of one endpoint: revoked (CRITICAL with serial, date and
    reason), unknown (--revocation-unknown), a must-staple leaf served without a staple."""
    if subject.revocation is None:
        return []
    findings = []
    leaf = subject.chain[0]
    if leaf.must_staple and subject.presented is not None and \
            subject.presented.staple is None:
        findings.append((Critical, "certificate demands a stapled OCSP answer (must-staple) "
                         "but the server sent none"))
    for index, (cert, status) in enumerate(zip(subject.chain, subject.revocation)):
        who = role(subject, index, cert)
        if status is None:
            findings.append((settings.severity["revocation-unknown"], "%s revocation not "
                             "known: no answer within the --timeout" % who))
        elif status.state == "revoked":
            findings.append((Critical, "%s REVOKED %s%s, serial %s, per the %s" % (
                who, stamp(status.revoked_at) if status.revoked_at else "(no date)",
                " (%s)" % status.reason if status.reason else "", cert.serial,
                status.source)))
        elif status.state == "unknown":
            findings.append((settings.severity["revocation-unknown"],
                             "%s revocation not known: %s" % (who, status.why)))
    return findings


def judge(subjects, settings, now):
    """The verdict on every subject at the moment ``now``. Pure.

    Findings: each subject's problems, its label first. Status line: the one subject's OK
    words, or "N endpoints ok" naming the soonest; with problems the problem subjects worst
    first, then how many others are ok. Long output: per subject (most significant state
    first) its headline and one line per certificate. Perfdata: the days left of the leaf
    and of the soonest chain element, with -w/-c."""
    judged = []  # (subject, state, words, findings)
    for subject in subjects:
        found = judge_subject(subject, settings, now)
        if found:
            judged.append((subject, found[0][0], "%s %s" % (
                subject.label, ", ".join(words for _, words in found)), found))
        else:
            judged.append((subject, Ok, describe(subject, now), found))
    findings = [(state, "%s %s" % (subject.label, words))
                for subject, _, _, found in judged for state, words in found]
    judged = plugin.by_significance(judged, state=lambda j: j[1])
    bad = plugin.worst_first([j for j in judged if j[1] != Ok], state=lambda j: j[1])
    if bad:
        summary = "; ".join(words for _, _, words, _ in bad)
        good = len(judged) - len(bad)
        if good:
            summary += "; %d other%s ok" % (good, plugin.plural(good))
    elif len(judged) == 1:
        summary = judged[0][2]
    else:
        first = min(judged, key=lambda j: soonest(j[0]).not_after)
        summary = "%d endpoints ok, soonest: %s" % (len(judged), first[2])
    long = []
    for subject, state, _, found in judged:
        long.append("%s: %s" % (str(state).upper(), headline(subject, found,
                                                             settings.client)))
        long.extend(detail(subject, index, cert, now) for index, cert in enumerate(subject.chain))
        long.extend(dane_ari_details(subject, now))
    perfdata = []
    for subject in subjects:
        if subject.chain:
            prefix = text.label(subject.perf_prefix)
            for suffix, cert in (("_days_leaf", subject.chain[0]),
                                 ("_days_chain", soonest(subject))):
                perfdata.append(nagiosplugin.Performance(
                    prefix + suffix, days_left(cert, now), "d",
                    limit_for(settings.warning, cert), limit_for(settings.critical, cert)))
    return plugin.Verdict(findings, summary, perfdata, long,
                          state=plugin.most_significant(*(j[1] for j in judged)))




def soonest(subject):
    return min(subject.chain, key=lambda c: c.not_after)


def describe(subject, now):
    """The OK words: when the soonest certificate expires, and who issued it."""
    cert = soonest(subject)
    index = subject.chain.index(cert)
    words = "%s %s expires in %s (%s)" % (subject.label, role(subject, index, cert),
                                          in_words(days_between(cert.not_after, now)),
                                          day(cert.not_after))
    if len(subject.chain) > 1 and subject.is_file:
        words += ", soonest of %d" % len(subject.chain)
    return words + ", issuer %s" % (cert.issuer_cn or cert.issuer)


def headline(subject, findings, client=False):
    if subject.error:
        return "%s %s" % (subject.label, subject.error)
    parts = [subject.label]
    presented = subject.presented
    if presented is not None:
        parts.append("at %s, %s %s, chain of %d presented%s" % (
            presented.address, presented.version, presented.cipher, len(presented.chain),
            " (+%d from the trust store)" % len(presented.from_store)
            if presented.from_store else ""))
        trust = presented.trust
        if trust.problem:
            parts.append("not trusted (%s)" % trust.problem)
        elif trust.refused:
            parts.append("not trusted (%s; it verifies at security level 0 only)"
                         % trust.refused)
        else:
            parts.append("trusted")
        if presented.client_asked:
            parts.append("client certificate asked for, %s" % (
                "ours accepted" if client else "none sent and none required"))
        elif client:
            parts.append("client certificate not asked for")
        if presented.name_matches is not None:
            parts.append("name %r %s" % (presented.endpoint.name,
                                         "matches" if presented.name_matches else "does not "
                                         "match"))
    else:
        parts.append("file with %d certificate%s" % (
            len(subject.chain), plugin.plural(len(subject.chain))))
    if findings:
        parts.append("; ".join(words for _, words in findings))
    return ", ".join(parts)


def detail(subject, index, cert, now):
    line = ("%s #%d: subject %s; SANs %s; issuer %s; serial %s; notBefore %s; notAfter %s "
            "(%s days left); key %s %d bits; signature %s; sha256 %s" % (
                subject.label, index + 1, cert.subject or "(empty)",
                ", ".join(cert.sans) or "none",
                cert.issuer, cert.serial, stamp(cert.not_before), stamp(cert.not_after),
                days_left(cert, now), cert.key_type, cert.key_bits,
                cert.signature_hash or "n/a", cert.fingerprint[:16]))
    if subject.revocation is not None:
        line += "; revocation: %s" % revocation_words(subject.revocation[index])
    return line


def revocation_words(status):
    if status is None:
        return "no answer within the --timeout"
    if status.state == "unpublished":
        return "not published (%s)" % status.why
    if status.state == "unknown":
        return "unknown, %s" % status.why
    return "%s per the %s%s" % (status.state, status.source,
                                " (%s)" % status.note if status.note else "")


# -- DANE (RFC 7671/7672) and ACME Renewal Information (RFC 9773) -------------------------

def add_dane_ari_options(parser):
    dane_group = parser.add_argument_group(
        "DANE (the chain against the DNSSEC-validated TLSA records of _PORT._tcp.NAME)")
    dane_group.add_argument(
        "--dane", kind=cli.PLAIN, action="store_true",
        help="compare the served chain with the TLSA records of _PORT._tcp.NAME (NAME: "
             "--sni or the -H name): usages 2 (DANE-TA) and 3 (DANE-EE), selectors 0 and 1, "
             "matching types 0, 1 and 2; no record matching is CRITICAL. Only an answer "
             "the resolver validated (AD bit) counts, and only from a resolver on loopback "
             "or with --dns-trust-ad")
    dane_group.add_argument(
        "--dns-server", kind=cli.HOST, type=dns_server_type, metavar="IP[:PORT]",
        help="the validating resolver to ask for TLSA (default: the name servers of "
             "/etc/resolv.conf)")
    dane_group.add_argument(
        "--dns-trust-ad", kind=cli.PLAIN, action="store_true",
        help="trust the AD bit of a resolver that is not on loopback (only when the path "
             "to it cannot be tampered with)")
    cli.add_state_option(dane_group, "--dane-unknown", "state when there is no validated "
                         "TLSA answer (unsigned, not validated, no record, no usable "
                         "record, DNS failure); never ok", "unknown",
                         ("warning", "critical", "unknown"))
    ari_group = parser.add_argument_group(
        "ARI (the renewal window the CA suggests for the leaf, RFC 9773)")
    ari_group.add_argument(
        "--ari", kind=cli.URL, type=cli.url_type, metavar="DIRECTORY_URL",
        help="ask this ACME directory's renewalInfo for the leaf: WARNING inside the "
             "suggested renewal window, CRITICAL after its end; the answer is cached until "
             "the CA's Retry-After (1 minute to 1 day; 6 hours when none)")
    cli.add_state_option(ari_group, "--ari-unknown", "state when the CA gives no renewal "
                         "information and none is cached", "unknown",
                         ("ok", "warning", "critical", "unknown"))
    ari_group.add_argument(
        "--cache-dir", kind=cli.FILE_WRITTEN, metavar="DIR", type=cli.absolute_path,
        help="keep the CA's answers (ARI), fetched CRLs and what was read of each --file "
             "(read again when its bytes change) in this existing directory, which "
             "must belong to the running user and not be writable by others (default: "
             "/var/cache/osop-checks, or $XDG_CACHE_HOME/osop-checks where that is not "
             "writable)")


def _dns_server(text):
    from osop_checks.sources import dns

    return dns.parse_server(text)


dns_server_type = cli.value_type(_dns_server, "server")


class DaneAriSettings:
    """The states --dane and --ari findings take."""

    def __init__(self, args):
        self.dane_unknown = args.dane_unknown
        self.ari_unknown = args.ari_unknown


class DaneResult:
    """The TLSA lookup of one endpoint (a dane.Lookup) and, when it has usable records, how
    each compares with the served chain ([dane.Comparison]); ``error``: why DANE could not
    be asked at all (an address without a name)."""

    def __init__(self, lookup=None, comparisons=(), error=None):
        self.lookup = lookup
        self.comparisons = list(comparisons)
        self.error = error


def check_dane_ari_usage(args):
    if not args.dane and (args.dns_server or args.dns_trust_ad):
        raise cli.UsageError("--dns-server and --dns-trust-ad go with --dane")


def gather_dane_ari(subjects, args, now):
    """Set ``dane`` (--dane) and ``renewal`` (--ari) of every subject with a chain: one TLSA
    lookup per name and port, one renewalInfo per leaf, concurrently."""
    if not (args.dane or args.ari):
        return
    import cryptography.x509  # noqa: F401  (once, before the threads: see sources.tls)

    try:
        # The lookups bound themselves by deadline.remaining(); waiting for them a part of
        # the deadline's margin longer lets their own words ("no answer from DNS server
        # ... within 3.2 s") arrive, still within --timeout.
        limit = deadline.remaining(None)
        limit = None if limit is None else limit + deadline.MARGIN / 2
    except deadline.Timeout:
        limit = 0  # the handshakes took it all: each lookup says so, their verdicts stand
    if args.dane:
        dane_of = {}
        for subject in subjects:
            if subject.presented is not None:
                endpoint = subject.presented.endpoint
                dane_of.setdefault((endpoint.name, endpoint.port), []).append(subject)
        servers = _dane_servers(args)
        keys = list(dane_of)
        for key, (found, error) in zip(keys, fanout.run_all(
                [functools.partial(_tlsa, name, port, servers, args.dns_trust_ad)
                 for name, port in keys], limit=limit)):
            if error is not None:
                raise error  # a bug, not an answer
            if found is None:
                found = DaneResult(error="no TLSA answer within the --timeout")
            for subject in dane_of[key]:
                subject.dane = _compare_chain(found, subject)
    if args.ari:
        from osop_checks.sources import ari

        cache_for = _ari_cache(args)
        leaves = {}
        for subject in subjects:
            if subject.chain:
                leaves.setdefault(subject.chain[0].der, []).append(subject)
        ders = list(leaves)
        stamp_now = now.timestamp()
        for der, (renewal, error) in zip(ders, fanout.run_all(
                [functools.partial(ari.renewal_info, args.ari, der, cache_for, stamp_now)
                 for der in ders], limit=limit)):
            if error is not None:
                raise error
            if renewal is None:
                renewal = ari.Renewal(args.ari, error="no answer within the --timeout")
            for subject in leaves[der]:
                subject.renewal = renewal


def _dane_servers(args):
    from osop_checks.sources import dns

    if args.dns_server:
        return [args.dns_server]
    try:
        return dns.system_servers()
    except dns.DnsError:
        return []


def _tlsa(name, port, servers, trust_ad):
    from osop_checks.sources import dane

    if address.family_of(name) is not None:
        return DaneResult(error="no host name for TLSA records (%s is an address: give "
                                "--sni or a name)" % name)
    if not servers:
        return DaneResult(error="no name server configured in /etc/resolv.conf (give "
                                "--dns-server)")
    return DaneResult(dane.lookup(dane.tlsa_name(name, port), servers, trust_ad))


def _compare_chain(found, subject):
    from osop_checks.sources import dane

    if found.lookup is None or not found.lookup.validated:
        return found
    return DaneResult(found.lookup, dane.compare(
        found.lookup.records, [cert.der for cert in subject.presented.chain]))


def _ari_cache(args):
    """cache_for(cert_id): the state.Cache of one certificate's renewalInfo (None: no cache
    directory can be written)."""
    from osop_checks import state as state_files

    # this user's, not writable by others (who could forge a window far in the future)
    directory = state_files.cache_directory(args.cache_dir)

    def cache_for(cert_id):
        return state_files.Cache(directory, "tls_expiry_ari", [args.ari, cert_id],
                                 "the CA's renewalInfo")

    return cache_for


def dane_ari_findings(subject, settings, now):
    """The DANE and ARI findings of one subject as [(state, words)]. Pure."""
    return dane_findings(subject.dane, settings) + ari_findings(subject.renewal, settings, now)


def dane_findings(result, settings):
    """No validated TLSA: --dane-unknown; records, none of which matches: CRITICAL naming
    them; one matching: nothing to say (the long output says which)."""
    if result is None:
        return []
    unknown = settings.dane_unknown
    if result.error:
        return [(unknown, "DANE: %s" % result.error)]
    lookup = result.lookup
    if lookup.kind not in ("ok", "nxdomain", "nodata"):
        return [(unknown, "DANE: no TLSA answer for %s: %s" % (lookup.name, lookup.error))]
    if not lookup.validated:
        return [(unknown, "DANE: TLSA of %s not DNSSEC-validated: %s" % (
            lookup.name, lookup.trust))]
    if not lookup.records:
        return [(unknown, "DANE: %s (DNSSEC-validated)" % lookup.error)]
    usable = [c for c in result.comparisons if c.record.usable]
    if not usable:
        return [(unknown, "DANE: no usable TLSA record at %s (%s; only usages 2 and 3 are "
                          "checked)" % (lookup.name, ", ".join(
                              c.record.text() for c in result.comparisons)))]
    if any(c.position is not None for c in usable):
        return []
    return [(Critical, "DANE: TLSA mismatch, no record of %s matches the served chain (%s)"
             % (lookup.name, "; ".join(c.record.text() for c in usable)))]


def ari_findings(renewal, settings, now):
    """Inside the CA's suggested window WARNING, after its end CRITICAL; no answer (and none
    cached): --ari-unknown."""
    if renewal is None:
        return []
    if renewal.start is None:
        return [(settings.ari_unknown, "ARI: no renewal information: %s" % renewal.error)]
    if now >= renewal.end:
        return [(Critical, "ARI: the CA's suggested renewal window ended %s ago (%s): "
                           "renew now" % (in_words(days_between(now, renewal.end)),
                                          stamp(renewal.end)))]
    if now >= renewal.start:
        return [(nagiosplugin.Warn, "ARI: the CA suggests renewing since %s (window until "
                                    "%s)" % (stamp(renewal.start), stamp(renewal.end)))]
    return []


def dane_ari_details(subject, now):
    """Long-output lines: the TLSA records and what each matched; the CA's window, where
    its answer came from and the explanation URL."""
    lines = []
    result = subject.dane
    if result is not None and result.lookup is not None:
        lookup = result.lookup
        lines.append("%s DANE: %s from %s; %s" % (
            subject.label, lookup.name, lookup.server or "no server",
            lookup.trust or lookup.error))
        for comparison in result.comparisons:
            record = comparison.record
            if not record.usable:
                what = "not checked (usage %d)" % record.usage
            elif comparison.unlinked:
                what = "matches a certificate served, but %s" % comparison.unlinked
            elif comparison.position is None:
                what = "matches nothing served"
            else:
                what = "matches %s" % role(subject, comparison.position,
                                           subject.presented.chain[comparison.position])
            lines.append("%s DANE: TLSA %s %s" % (subject.label, record.text(64), what))
    renewal = subject.renewal
    if renewal is not None and renewal.start is not None:
        source = "cached answer of %s" % stamp(datetime.datetime.fromtimestamp(
            renewal.asked_at, datetime.timezone.utc)) if renewal.cached else "asked now"
        if renewal.error:
            source += ", the CA did not answer now: %s" % renewal.error
        lines.append("%s ARI: the CA suggests renewing between %s and %s (%s, %s)" % (
            subject.label, stamp(renewal.start), stamp(renewal.end), renewal.url, source))
        if renewal.explanation:
            lines.append("%s ARI: explanation %s" % (subject.label, renewal.explanation))
    return lines


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def build_check(args, fetch=tls.fetch, load_file=None, now=utc_now, resolve=None):
    """``resolve`` (host, port, family, timeout) -> [(4|6, address)]: address.resolve by
    default; not asked with --first-address. ``load_file`` (path) -> certificates:
    tls.load_file with each file's cache by default (``file_loader``)."""
    endpoints = endpoints_from(args)
    check_dane_ari_usage(args)
    options = {"cafile": args.ca_file, "min_version": args.min_tls_version}
    if args.ca_file:
        try:
            tls.load_cafile(args.ca_file)
        except OSError as exc:
            raise cli.UsageError("cannot read the --ca-file %s: %s" % (
                args.ca_file, exc.strerror)) from None
        except ValueError as exc:
            raise cli.UsageError("the --ca-file %s %s" % (args.ca_file, exc)) from None
    if args.client_key and not args.client_cert:
        raise cli.UsageError("--client-key goes with --client-cert")
    if args.client_cert:
        try:
            tls.load_client_identity(args.client_cert, args.client_key)
        except OSError as exc:
            raise cli.UsageError("cannot read the client certificate or key %s: %s" % (
                exc.filename or args.client_cert, exc.strerror)) from None
        except ValueError as exc:
            raise cli.UsageError(str(exc)) from None
        options["client"] = (args.client_cert, args.client_key)
    every = None if args.first_address else resolve or address.resolve
    if load_file is None:
        load_file = file_loader(args)
    subjects = gather(endpoints, args.file, fetch, load_file, options, every)
    moment = now() if callable(now) else now
    if args.revocation != "off":
        look_up_revocation(subjects, args, moment)
    gather_dane_ari(subjects, args, moment)
    return judge(subjects, Settings(args), moment)


def file_loader(args):
    """tls.load_file with the cache of each --file in the cache directory (see load_file):
    a file is parsed again only when its bytes change."""
    if not args.file:
        return tls.load_file
    from osop_checks import state as state_files

    # this user's, not writable by others (who could make an expired certificate look new)
    directory = state_files.cache_directory(args.cache_dir, asking="cryptography")

    def load_file(path):
        return tls.load_file(path, state_files.Cache(
            directory, "tls_expiry-file", {"file": os.path.abspath(path)},
            "cryptography (reading the file)"))

    return load_file


def look_up_revocation(subjects, args, moment):
    """Every endpoint's chain's revocation, concurrently, CRLs shared (part of gathering:
    each Subject gets its list of revocation.Status)."""
    from osop_checks import state as state_files

    served = [s for s in subjects if s.presented is not None and s.chain]
    if not served:
        return
    directory = None
    if any(cert.crl_urls for s in served for cert in s.chain):
        directory = state_files.cache_directory(args.cache_dir, "--cache-dir or --revocation off")
    asked = revocation.Revocation(args.revocation, directory, moment)
    answers = asked.check_all([(s.chain, s.presented.staple) for s in served])
    for subject, statuses in zip(served, answers):
        subject.revocation = statuses if statuses is not None else [None] * len(
            subject.chain)


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
