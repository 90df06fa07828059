"""The SNMP options every check offers alike, and the snmp.Target they describe.

    group = snmp_options.add_arguments(parser)    # -H, -4/-6, --snmp, --community-file ...
    target = snmp_options.target_from_args(args)  # cli.UsageError when they do not fit

The command line side of ``osop_checks.sources.snmp`` (which gathers only): secrets (community,
v3 keys) come from a file or the environment (argv works but shows in ``ps``) through
cli.read_secret, which scrubs them from every line. pysnmp is not imported here, nor, until
target_from_args, the SNMP source and the address parser: a check with a local mode offers
these options without paying for them there (the defaults come from sources.snmp_defaults).
"""
import os

from osop_checks import cli
from osop_checks.sources import snmp_defaults as defaults

ENV_COMMUNITY = "OSOP_SNMP_COMMUNITY"
ENV_AUTH_KEY = "OSOP_SNMP_AUTH_KEY"
ENV_PRIV_KEY = "OSOP_SNMP_PRIV_KEY"


def add_arguments(parser, host=True, host_required=False, enable_switch=True, family=None):
    """The SNMP options every check offers alike, in a group of their own. ``enable_switch``
    adds --snmp for checks with a local mode; -H/--host is added here unless ``host`` is
    False (a check that already has -H; target_from_args reads args.host either way), and
    -4/-6 (cli.add_family_options) with it unless ``family`` is False."""
    group = parser.add_argument_group(
        "SNMP (remote agent)",
        "community and keys are best given by file or environment: argv shows in ps")
    if host:
        group.add_argument("-H", "--host", kind=cli.HOST, required=host_required, metavar="HOST",
                           type=cli.host_type,
                           help="the SNMP agent's host name or address (IPv6 bare or in "
                                "brackets: ::1, [2001:db8::7]); udp6 where it is IPv6")
    if family if family is not None else host:
        cli.add_family_options(group)
    if enable_switch:
        group.add_argument("--snmp", kind=cli.PLAIN, action="store_true",
                           help="read the data from HOST's SNMP agent instead of this machine")
    group.add_argument("--snmp-version", kind=cli.PLAIN, choices=("2c", "3"), default="2c",
                       help="SNMP version (default: 2c)")
    group.add_argument("--snmp-port", kind=cli.PORT,
                       type=cli.count_type(1, 65535), default=defaults.DEFAULT_PORT,
                       metavar="PORT", help="agent UDP port (default: %d)" % defaults.DEFAULT_PORT)
    group.add_argument("--snmp-timeout", kind=cli.PLAIN, type=cli.duration_type(minimum=0.1),
                       default=defaults.DEFAULT_TIMEOUT, metavar="DURATION",
                       help="wait this long for each answer (default: %gs; capped by -t)"
                       % defaults.DEFAULT_TIMEOUT)
    group.add_argument("--snmp-retries", kind=cli.PLAIN,
                       type=cli.count_type(0, 10), default=defaults.DEFAULT_RETRIES,
                       metavar="N", help="resend an unanswered request N times (default: %d)"
                       % defaults.DEFAULT_RETRIES)
    group.add_argument("--snmp-max-rows", kind=cli.PLAIN,
                       type=cli.count_type(1, 10000000), default=defaults.MAX_ROWS,
                       metavar="N", help="give up on a table of more than N rows, which "
                       "an agent that answers without end would send until the timeout "
                       "(default: %d)" % defaults.MAX_ROWS)
    group.add_argument("--community", kind=cli.SECRET, metavar="COMMUNITY",
                       help="v2c community (discouraged: visible in ps; use --community-file "
                            "or $%s)" % ENV_COMMUNITY)
    group.add_argument("--community-file", kind=cli.FILE_READ, metavar="FILE",
                       help="read the v2c community from the first line of FILE")
    group.add_argument("--snmp-user", kind=cli.PLAIN,
                       metavar="USER", help="v3 user (security name)")
    group.add_argument("--auth-proto", kind=cli.PLAIN,
                       type=str.upper, choices=list(defaults.AUTH_PROTOCOLS),
                       default="SHA", metavar="PROTO",
                       help="v3 authentication protocol: %s (default: SHA)"
                       % ", ".join(defaults.AUTH_PROTOCOLS))
    group.add_argument("--auth-key", kind=cli.SECRET, metavar="KEY",
                       help="v3 authentication pass phrase (discouraged; use --auth-key-file "
                            "or $%s)" % ENV_AUTH_KEY)
    group.add_argument("--auth-key-file", kind=cli.FILE_READ, metavar="FILE",
                       help="read the v3 authentication pass phrase from FILE")
    group.add_argument("--priv-proto", kind=cli.PLAIN,
                       type=str.upper, choices=list(defaults.PRIV_PROTOCOLS),
                       default="AES", metavar="PROTO",
                       help="v3 privacy (encryption) protocol: %s (default: AES)"
                       % ", ".join(defaults.PRIV_PROTOCOLS))
    group.add_argument("--priv-key", kind=cli.SECRET, metavar="KEY",
                       help="v3 privacy pass phrase (discouraged; use --priv-key-file or $%s)"
                       % ENV_PRIV_KEY)
    group.add_argument("--priv-key-file", kind=cli.FILE_READ, metavar="FILE",
                       help="read the v3 privacy pass phrase from FILE")
    return group


def _secret(value, path, env, what):
    if path:
        return cli.read_secret(path=path, what=what)
    if value is not None:
        return cli.read_secret(value=value, what=what)
    if env in os.environ:
        return cli.read_secret(env=env, what=what)
    return None


def target_from_args(args):
    """A Target from the options of add_arguments; cli.UsageError when they do not fit."""
    from osop_checks import address
    from osop_checks.sources import snmp

    if not getattr(args, "host", None):
        raise cli.UsageError("SNMP needs -H/--host")
    family = getattr(args, "family", None)
    try:
        host = address.check_family(address.parse_host(args.host), family)
    except ValueError as exc:
        raise cli.UsageError("SNMP agent: %s" % exc) from None
    if args.snmp_version == "2c":
        community = _secret(args.community, args.community_file, ENV_COMMUNITY,
                            "SNMP community")
        if community is None:
            raise cli.UsageError("SNMP v2c needs a community: --community-file FILE, $%s or "
                                 "--community" % ENV_COMMUNITY)
        if len(community.encode("utf-8", "replace")) > defaults.MAX_SECRET:
            raise cli.UsageError("the SNMP community is longer than %d bytes" % defaults.MAX_SECRET)
        if args.snmp_user:
            raise cli.UsageError("--snmp-user is for --snmp-version 3")
        return snmp.Target(host, args.snmp_port, "2c", community=community,
                      timeout=args.snmp_timeout, retries=args.snmp_retries,
                      max_rows=args.snmp_max_rows, family=family)
    if not args.snmp_user:
        raise cli.UsageError("SNMP v3 needs --snmp-user")
    auth_key = _secret(args.auth_key, args.auth_key_file, ENV_AUTH_KEY,
                       "SNMP authentication key")
    priv_key = _secret(args.priv_key, args.priv_key_file, ENV_PRIV_KEY, "SNMP privacy key")
    if priv_key and not auth_key:
        raise cli.UsageError("SNMP v3 privacy needs an authentication key as well")
    for key, what in ((auth_key, "authentication"), (priv_key, "privacy")):
        if key is not None and len(key) < 8:
            raise cli.UsageError("the SNMP v3 %s pass phrase must be at least 8 characters"
                                 % what)
    return snmp.Target(host, args.snmp_port, "3", user=args.snmp_user,
                  auth_proto=args.auth_proto, auth_key=auth_key,
                  priv_proto=args.priv_proto, priv_key=priv_key,
                  timeout=args.snmp_timeout, retries=args.snmp_retries,
                  max_rows=args.snmp_max_rows, family=family)
