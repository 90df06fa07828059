"""What a network caller of osop-checks-api may ask a check to do (osop_checks.api.policy).

Every option of every check's parser says what kind of value it takes (cli.KINDS); the policy
is derived from that, so an option without a kind fails here before it can slip through.
"""
import importlib
import ipaddress
import os
import pwd
import pkgutil
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import osop_checks.checks
from osop_checks import cli
from osop_checks.api import policy, protocol


def check_parsers():
    """[(module name, parser)] of every check."""
    found = []
    for info in sorted(pkgutil.iter_modules(osop_checks.checks.__path__), key=lambda i: i.name):
        module = importlib.import_module("osop_checks.checks." + info.name)
        if hasattr(module, "build_parser"):
            found.append((info.name, module.build_parser()))
    return found


def options_of(parser):
    return [action for action in parser._actions if action.option_strings]


@pytest.mark.parametrize("name,parser", check_parsers(), ids=lambda x: x if isinstance(x, str)
                         else "")
def test_every_option_of_every_check_says_what_kind_of_value_it_takes(name, parser):
    untagged = ["/".join(a.option_strings) for a in parser._actions if a.kind is None]
    assert not untagged, "check_%s: give these options kind= (cli.KINDS): %s" % (
        name, ", ".join(untagged))
    assert all(a.kind in cli.KINDS for a in parser._actions)


# -- the decision, on plain data ------------------------------------------------------------


def option(kind, nargs=None, type=None, default=None, const=None, dest="x"):
    """An argparse action as the policy sees one: plain data."""
    return types.SimpleNamespace(kind=kind, nargs=nargs, type=type, default=default,
                                 const=const, dest=dest)


def test_a_key_must_be_one_of_the_checks_option_strings_or_a_long_option():
    actions = {"-v": option(cli.PLAIN, nargs=0), "-p": option(cli.PATH),
               "--path": option(cli.PATH)}
    # argparse would read "-vp/etc" as -v and -p /etc: a short key not as written is refused
    assert "not one of the check's options" in policy.refused_key(actions, "-vp", "/etc")
    assert "not one of the check's options" in policy.refused_key(actions, "-x", "1")
    assert policy.refused_key(actions, "--bogus", "x") is None  # the parser's usage line
    assert policy.refused_key(actions, "--path=/etc", "x") is not None
    assert policy.refused_key(actions, "-p", "/etc") is None  # the value is decided later


@pytest.mark.parametrize("kind", [cli.PROGRAM, cli.FILE_WRITTEN, cli.SECRET, None])
def test_programs_written_files_secrets_and_untagged_options_are_never_taken(kind):
    actions = {"--it": option(kind)}
    for value in ("/bin/sh", "x", True, None, ["a"]):
        line = policy.refused_key(actions, "--it", value)
        assert line.startswith("--it ") and "never takes it from a caller" in line
        assert "/bin/sh" not in line


def test_a_value_of_a_multi_value_option_may_not_pass_for_an_option():
    actions = {"--many": option(cli.PLAIN, nargs="+")}
    assert policy.refused_key(actions, "--many", ["a", "-p/etc"]) is not None
    assert policy.refused_key(actions, "--many", ["a", "b"]) is None


def test_the_config_file_is_read_into_allowances(tmp_path):
    rules = policy.parse(
        "[api]\nallow-client = sat1.example.org\n  master1.example.org\n"
        "[check_tls_expiry]\nhosts = mail.example.org *.Example.org 192.0.2.0/24 "
        "2001:db8::/32 [::1]\nports = 443 993\nfiles = /etc/ssl/../ssl/x.pem\n"
        "[check_dyndns_match]\nurls = https://ip.example.org/ ssdp\n")
    assert rules.clients == ("sat1.example.org", "master1.example.org")
    tls = rules.allowance("check_tls_expiry")
    assert tls.ports == (443, 993) and tls.files == (os.path.realpath("/etc/ssl/x.pem"),)
    assert tls.hosts == ("mail.example.org", "*.example.org",
                         ipaddress.ip_network("192.0.2.0/24"),
                         ipaddress.ip_network("2001:db8::/32"), ipaddress.ip_address("::1"))
    assert rules.allowance("check_dyndns_match").urls == ("https://ip.example.org/", "ssdp")
    assert rules.allowance("check_backup_age") is policy.NOTHING


@pytest.mark.parametrize("content,words", [
    ("[check_x]\npaths = data\n", "not an absolute path"),
    ("[check_x]\nports = 22x\n", "is not a port"),
    ("[check_x]\nhosts = a b$c\n", "is not a host name"),
    ("[check_x]\nhosts = 10.0.0.0/33\n", "is not a network"),
    ("[check_x]\nurls = ftp://x/\n", "is not an http"),
    ("[check_x]\npath = /\n", "unknown key path"),
    ("[api]\nallow-clients = x\n", "unknown key allow-clients"),
    ("[check_y]\npaths = /\n", "[check_y] is not a check here"),
    ("no section\n", "api.conf"),
])
def test_a_wrong_config_file_is_refused_in_words(content, words):
    with pytest.raises(policy.PolicyError) as caught:
        policy.parse(content, "api.conf", commands=["check_x"])
    assert words in str(caught.value)


def test_a_missing_default_config_is_the_builtin_policy_a_missing_named_one_an_error(tmp_path):
    missing = str(tmp_path / "api.conf")
    assert policy.load(missing, explicit=False).checks == {}
    with pytest.raises(policy.PolicyError, match="config file %s does not exist" % missing):
        policy.load(missing, explicit=True)


def test_a_config_file_is_read_within_its_size_limit(tmp_path):
    huge = tmp_path / "api.conf"
    huge.write_text("#" * (policy.CONFIG_LIMIT + 1))
    with pytest.raises(policy.PolicyError, match="cannot read the config file .*larger than"):
        policy.load(str(huge))


def test_hosts_are_names_domains_addresses_and_networks():
    rules = [policy._host_rule(w) for w in ("mail.example.org", "*.lan.example.org",
                                              "192.0.2.0/24", "2001:db8::7")]
    allowed = ["mail.example.org", "MAIL.example.org.", "a.lan.example.org", "b.a.lan.example.org",
               "192.0.2.1", "::ffff:192.0.2.9", "2001:db8::7", "2001:DB8:0::7"]
    refused = ["example.org", "lan.example.org", "xlan.example.org", "mail.example.org.evil",
               "192.0.3.1", "169.254.169.254", "10.0.0.1", "2001:db8::8", "fe80::1%eth0",
               "127.0.0.1", "localhost"]
    assert [h for h in allowed if not policy.host_allowed(h, rules)] == []
    assert [h for h in refused if policy.host_allowed(h, rules)] == []


@given(st.ip_addresses(), st.ip_addresses(), st.integers(0, 128))
def test_an_address_is_allowed_exactly_when_its_network_holds_it(host, net_address, bits):
    network = ipaddress.ip_network("%s/%d" % (net_address, min(bits, net_address.max_prefixlen)),
                                   strict=False)
    mapped = getattr(host, "ipv4_mapped", None) or host
    expected = mapped.version == network.version and mapped in network
    assert policy.host_allowed(str(host), [network]) == expected


@given(st.from_regex(r"\A[a-z0-9-]{1,10}(\.[a-z0-9-]{1,10}){0,3}\Z").filter(
    lambda name: policy._literal(name) is None))
def test_a_name_is_never_allowed_by_an_address_rule(name):
    assert not policy.host_allowed(name, [ipaddress.ip_network("0.0.0.0/0"),
                                          ipaddress.ip_network("::/0")])


def test_a_port_is_the_checks_default_or_one_listed():
    assert policy.port_allowed(993, (443, 993), 443)
    assert policy.port_allowed(443, (993,), 443)  # leaving the option out gives it anyway
    assert not policy.port_allowed(22, (443, 993), 443)
    assert policy.port_allowed(161, (), 161)
    assert not policy.port_allowed(22, (), 161)
    assert not policy.port_allowed(22, (), None)


def test_a_url_is_one_listed_or_under_one_ending_in_a_slash():
    urls = ("https://ip.example.org/", "http://127.0.0.1:8080/ip")
    for url in ("https://ip.example.org/", "https://ip.example.org/v4?x=1",
                "http://127.0.0.1:8080/ip"):
        assert policy.url_allowed(url, urls), url
    for url in ("https://ip.example.org.evil/", "https://ip.example.org@evil/",
                "http://ip.example.org/", "http://127.0.0.1:8080/ip/more",
                "http://127.0.0.1:22/", "https://ip.example.org/\r\nHost: x",
                "https://ip.example.org/ x", "https://ip.example.org/\\..\\", "ssdp"):
        assert not policy.url_allowed(url, urls), url


@given(st.text(alphabet="abc/@:?#.%[]\\ \t", max_size=30))
def test_a_url_under_an_allowed_one_has_its_scheme_and_host(tail):
    from urllib.parse import urlsplit

    url = "https://ip.example.org/" + tail
    if policy.url_allowed(url, ("https://ip.example.org/",)):
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("https", "ip.example.org")


def test_a_path_is_at_or_under_an_allowed_one_and_a_symlink_cannot_lead_out(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "out").symlink_to("/etc")
    (tmp_path / "allowed2").mkdir()
    paths = [os.path.realpath(str(allowed))]
    assert policy.path_allowed(str(allowed), paths)
    assert policy.path_allowed(str(allowed / "sub"), paths)
    assert policy.path_allowed(str(allowed / "sub" / "missing"), paths)
    for path in ("/etc", str(allowed / "out"), str(allowed / "out" / "shadow"),
                 str(allowed / ".." / "allowed2"), str(tmp_path / "allowed2"), "/"):
        assert not policy.path_allowed(path, paths), path
    # a path on another host can only be normalised
    assert policy.path_allowed("/srv/data/../data/x", ["/srv/data"], local=False)
    assert not policy.path_allowed("/srv/data/../etc", ["/srv/data"], local=False)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["a", "..", ".", "", "out", "sub"]), max_size=6))
def test_no_spelling_of_a_path_leads_out_of_the_allowed_one(tmp_path_factory, parts):
    base = tmp_path_factory.getbasetemp() / "spelling"
    if not base.exists():
        (base / "allowed" / "sub").mkdir(parents=True)
        (base / "allowed" / "out").symlink_to("/etc")
    allowed = os.path.realpath(str(base / "allowed"))
    path = os.path.join(allowed, *parts) if parts else allowed
    if policy.path_allowed(path, [allowed]):
        real = os.path.realpath(path)
        assert real == allowed or real.startswith(allowed + "/")


def test_a_file_read_is_one_listed_after_realpath(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "ca.pem")
    files = [os.path.realpath(str(tmp_path / "ca.pem"))]
    assert policy.file_allowed(str(tmp_path / "link"), files)
    assert policy.file_allowed(str(tmp_path / "." / "ca.pem"), files)
    assert not policy.file_allowed("/etc/shadow", files)


CHECKS = protocol.load_checks()


def refusal(command, body, conf=""):
    check = CHECKS[command]
    return policy.refuse(check.actions, policy.parse(conf).allowance(command), command, body)


def test_the_values_are_judged_as_the_checks_own_parser_reads_them():
    conf = ("[check_tls_expiry]\nhosts = *.example.org 192.0.2.0/24\n"
            "[check_three_copies]\npaths = /srv /backup\nhosts = vault.example.org\n"
            "[check_dyndns_match]\nhosts = office.example.org\nurls = https://ip.example.org/\n")
    admitted = [
        ("check_tls_expiry", {"-H": "a.example.org", "-w": "30d"}),
        ("check_tls_expiry", {"--endpoint": ["sni@[::ffff:192.0.2.1]", "b.example.org:443"]}),
        ("check_three_copies", {"--source": "/srv/data", "--copy": [
            "a=/backup/a", "b=backup@vault.example.org:/srv/b"], "--canary": "x/.canary",
            "--stamp": "done"}),
        ("check_dyndns_match", {"-H": "Office.example.org.", "--ip-url":
                                "https://ip.example.org/v4", "--expect": "192.0.2.1"}),
        ("check_disk_partitions", {"--snmp-port": 161, "-w": "20%", "--bogus": 1}),
    ]
    for command, body in admitted:
        assert refusal(command, body, conf) is None, (command, body)
    refused = [
        ("check_tls_expiry", {"-H": "10.0.0.1"}, "-H names a host not allowed (10.0.0.1): "
         "allow it in api.conf [check_tls_expiry] hosts"),
        ("check_tls_expiry", {"--endpoint": "a.example.org:22"}, "--endpoint names port 22"),
        ("check_tls_expiry", {"-H": "a.example.org", "-p": 22}, "-p names port 22: allow it "
         "in api.conf [check_tls_expiry] ports"),
        ("check_tls_expiry", {"--ca-file": "/etc/shadow"}, "--ca-file names a file the check "
         "reads (/etc/shadow): allow it in api.conf [check_tls_expiry] files"),
        ("check_three_copies", {"--source": "/srv/data", "--copy": "b=vault.example.org:/etc"},
         "--copy names a path outside those allowed (vault.example.org:/etc)"),
        ("check_three_copies", {"--source": "/srv/data", "--copy": "b=evil.example.org:/srv"},
         "--copy names a host not allowed"),
        ("check_three_copies", {"--source": "/srv/d", "--copy": "a=/backup/a",
                                "--stamp": "../../etc/shadow"}, "--stamp names a path outside"),
        ("check_dyndns_match", {"-H": "office.example.org", "--router-upnp": True},
         "--router-upnp names a URL the check fetches (ssdp)"),
        ("check_dyndns_match", {"-H": "office.example.org", "--server": "192.0.2.53"},
         "--server names a host not allowed"),
        ("check_dyndns_match", {"-H": "office.example.org", "--snmp": "[::1]"},
         "--snmp names a host not allowed"),
        ("check_disk_partitions", {"-p": "/"}, "-p names a path outside those allowed (/)"),
        ("check_disk_partitions", {"--snmp-port": 22}, "--snmp-port names port 22"),
        ("check_backup_age", {"--log": "/etc/shadow"}, "--log names a file"),
        ("check_os_upgrades", {"--apt-get": "/bin/sh"}, "--apt-get names a program"),
        ("check_dyndns_match", {"-H": "office.example.org", "--community": "s3cr3t"},
         "--community is a secret"),
    ]
    for command, body, words in refused:
        line = refusal(command, body, conf)
        assert line is not None and words in line, (command, body, line)
        assert "s3cr3t" not in line


PLAIN_VALUES = {"-v": True, "-t": "10", "-w": "1", "-c": "2"}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(CHECKS)), st.data())
def test_under_the_builtin_policy_only_plain_options_and_default_ports_pass(command, data):
    """Any body of plain options passes; any value of another kind that its own parser
    would take is refused, a port equal to the check's default aside."""
    check = CHECKS[command]
    plain = sorted(flag for flag, a in check.actions.items() if a.kind == cli.PLAIN
                   and flag.startswith("--") and a.nargs != 0)
    other = sorted(flag for flag, a in check.actions.items() if a.kind != cli.PLAIN)
    body = {flag: data.draw(st.text(max_size=8)) for flag in data.draw(
        st.lists(st.sampled_from(plain), max_size=3, unique=True))}
    assert refusal(command, body) is None
    flag = data.draw(st.sampled_from(other))
    action = check.actions[flag]
    value = data.draw(st.sampled_from(["/", "/etc/shadow", "127.0.0.1", "10.0.0.1:22",
                                       "a=/srv", "a=host:/srv", "http://127.0.0.1:22/",
                                       "22", str(action.default), "x.example.org"]))
    line = refusal(command, dict(body, **{flag: value}))
    if line is None:
        assert action.kind == cli.PORT and value == str(action.default) or \
            policy.read(action, value) is None, (flag, value)
    else:
        assert line.startswith(flag + " ")


# -- through a real daemon on loopback: every option of every check, a hostile value each ----

SECRET = "hunter2-secret-of-the-caller"
COMMUNITY = "community-in-the-daemons-env"
KEY_MARKER = "PRIVATE-KEY-MATERIAL-0123"


class Listeners:
    """A TCP listener and a UDP socket on 127.0.0.1 and 127.0.0.2, one port for all: whether
    anything arrived at an address since the last look."""

    def __init__(self):
        import socket

        for _ in range(20):
            self.port = free_port()
            self.sockets = {}
            try:
                for host in ("127.0.0.1", "127.0.0.2"):
                    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    self.sockets[host, "tcp"] = tcp
                    tcp.bind((host, self.port))
                    tcp.listen(64)
                    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    self.sockets[host, "udp"] = udp
                    udp.bind((host, self.port))
                break
            except OSError:
                self.close()
        for sock in self.sockets.values():
            sock.setblocking(False)

    def arrived(self, host):
        """What came to ``host`` since the last look: ["tcp", b"datagram" ...] (drained)."""
        seen = []
        while True:
            try:
                conn, _ = self.sockets[host, "tcp"].accept()
            except BlockingIOError:
                break
            conn.close()
            seen.append("tcp")
        while True:
            try:
                seen.append(self.sockets[host, "udp"].recv(65536))
            except BlockingIOError:
                break
        return seen

    def close(self):
        for sock in self.sockets.values():
            sock.close()


def free_port():
    from lab.peers.tls import free_port as port

    return port()


class World:
    """The files, links and listeners the attack is made of, and the policy file that allows
    the harmless ones (the same allowance for every check)."""

    def __init__(self, base, listeners):
        self.base = base
        self.port = listeners.port
        self.listeners = listeners
        self.allowed = os.path.join(base, "allowed")
        os.makedirs(os.path.join(self.allowed, "copy"))
        self.allowed_file = os.path.join(self.allowed, "file")
        self.private_key = os.path.join(base, "private.key")
        with open(self.private_key, "w") as handle:
            handle.write("-----BEGIN PRIVATE KEY-----\n%s\n" % KEY_MARKER)
        os.chmod(self.private_key, 0o600)
        with open(self.allowed_file, "w") as handle:
            handle.write("harmless\n")
        self.out_link = os.path.join(self.allowed, "out")  # under an allowed path, to /etc
        os.symlink("/etc", self.out_link)
        self.key_link = os.path.join(self.allowed, "key-link")
        os.symlink(self.private_key, self.key_link)
        self.marker = os.path.join(base, "program-ran")
        self.program = os.path.join(base, "program")
        with open(self.program, "w") as handle:
            handle.write("#!/bin/sh\ntouch %s\n" % self.marker)
        os.chmod(self.program, 0o755)
        self.written_dir = os.path.join(base, "written")
        os.makedirs(self.written_dir)
        self.written_file = os.path.join(self.written_dir, "new-file")
        self.state_dir = os.path.join(base, "state")
        self.config = os.path.join(base, "api.conf")
        with open(self.config, "w") as handle:
            for command in sorted(CHECKS):
                handle.write("[%s]\npaths = %s\nhosts = 127.0.0.1 allowed.osop.test\n"
                             "ports = %d\nurls = http://127.0.0.1:%d/\nfiles = %s\n" % (
                                 command, self.allowed, self.port, self.port, self.allowed_file))

    def hostile(self, kind, relative=False):
        """Values of ``kind`` this host does not allow; for a relative path, ones that lead
        out of the allowed location they are joined with."""
        port = self.port
        if kind == cli.PATH and relative:
            return ["out/passwd", "../out/passwd"]
        return {
            cli.PROGRAM: [self.program, "/bin/sh"],
            cli.FILE_WRITTEN: [self.written_file, "/etc/passwd", self.written_dir],
            cli.SECRET: [SECRET],
            cli.FILE_READ: [self.private_key, "/etc/shadow", self.key_link],
            cli.PATH: ["/etc", self.out_link, os.path.join(self.out_link, "passwd"),
                       "127.0.0.1:/etc", "ssh://127.0.0.2:%d%s" % (port, self.allowed)],
            cli.HOST: ["169.254.169.254", "10.0.0.1", "unlisted.osop.test", "127.0.0.2",
                       "127.0.0.2:%d" % port],
            cli.URL: ["http://127.0.0.1:22/", "http://127.0.0.2:%d/ip" % port,
                      "http://169.254.169.254/latest/meta-data/", True],
            cli.PORT: [22, port + 1],
            None: ["anything"],
        }[kind]

    def harmless(self, kind, relative=False):
        if kind == cli.PATH:
            return ["copy"] if relative else [self.allowed]
        return {cli.HOST: ["127.0.0.1", "127.0.0.1:%d" % self.port, "allowed.osop.test"],
                cli.URL: ["http://127.0.0.1:%d/ip" % self.port],
                cli.PORT: [self.port], cli.FILE_READ: [self.allowed_file]}[kind]

    def required(self, command):
        """What the check needs besides the option asked (allowed under the policy file)."""
        return {
            "check_dyndns_match": {"-H": "allowed.osop.test", "--expect": "192.0.2.1"},
            "check_three_copies": {"--source": self.allowed, "--copy": "a=" + self.allowed},
        }.get(command, {})

    def aim(self, command, flag):
        """Options that point a host option at the listeners' port, so that a connection
        the check made would be seen."""
        port = self.port
        return {
            ("check_disk_partitions", "-H"): {"--snmp": True, "--snmp-port": port,
                                              "--snmp-retries": 0},
            ("check_disk_partitions", "--host"): {"--snmp": True, "--snmp-port": port,
                                                  "--snmp-retries": 0},
            ("check_dyndns_match", "--snmp"): {"--snmp-port": port, "--snmp-retries": 0},
            ("check_tls_expiry", "-H"): {"-p": port},
            ("check_tls_expiry", "--host"): {"-p": port},
            ("check_disk_partitions", "--snmp-port"): {"-H": "127.0.0.1", "--snmp": True},
            ("check_tls_expiry", "-p"): {"-H": "127.0.0.1"},
            ("check_tls_expiry", "--port"): {"-H": "127.0.0.1"},
        }.get((command, flag), {})


def spelled(action, values):
    """Each value as the option's own parser takes it (a --copy is NAME=LOCATION): values it
    takes in no spelling are left out (they are usage errors, not this test's business)."""
    found = []
    for value in values:
        named = (action.metavar or "").startswith("NAME=")  # --copy NAME=LOCATION
        for spelling in ([value] if not isinstance(value, str) else
                         ["c=" + value] if named else [value]):
            if value is True:
                if action.nargs == "?":
                    found.append(True)
                break
            if action.kind in (cli.PROGRAM, cli.FILE_WRITTEN, cli.SECRET, None) or \
                    policy.read(action, str(spelling)) is not None:
                found.append(spelling)
                break
    return found


def option_cases():
    """(command, flag, kind, relative) of every option of every check that is not plain,
    under its long name: generated from the parsers."""
    cases = []
    for command, check in sorted(CHECKS.items()):
        seen = set()
        for action in check.actions.values():
            if action.kind == cli.PLAIN or id(action) in seen:
                continue
            seen.add(id(action))
            long = [f for f in action.option_strings if f.startswith("--")]
            cases.append((command, (long or action.option_strings)[0], action.kind,
                          bool(getattr(action, "relative_to", None))))
    return cases


OPTION_CASES = option_cases()


@pytest.mark.peer  # a daemon on loopback
def test_the_attack_covers_every_kind_that_is_not_plain():
    kinds = {kind for _, _, kind, _ in OPTION_CASES}
    assert kinds == set(cli.KINDS) - {cli.PLAIN}
    assert len(OPTION_CASES) > 40


@pytest.fixture(scope="module")
def attack(tmp_path_factory):
    from lab.peers import ifw_api
    from lab.peers.foreign_user import shared_tempdir

    # where the daemon's own user (not root) sees what it is asked about
    with shared_tempdir("api-policy-") as base:
        listeners = Listeners()
        world = World(base, listeners)
        account = pwd.getpwnam(ifw_api.DAEMON_USER)
        os.makedirs(world.state_dir)  # the daemon's own, as StateDirectory= makes it
        os.chown(world.state_dir, account.pw_uid, account.pw_gid)
        pki = ifw_api.api_pki(str(tmp_path_factory.mktemp("api-policy")))
        with open(world.config) as handle:
            allowed = handle.read()
        daemon = ifw_api.ApiDaemon(pki, workers=2, env={"OSOP_SNMP_COMMUNITY": COMMUNITY},
                                   policy=allowed, extra=["--state-dir", world.state_dir,
                                                          "--cache-dir",
                                                          os.path.join(base, "cache"), "-v"])
        with daemon:
            yield world, daemon
        listeners.close()


def answer_of(daemon, command, body):
    status, answer = daemon.call(command, body)
    assert isinstance(answer, dict) and command in answer, (status, answer)
    return status, answer[command]


@pytest.mark.parametrize("command,flag,kind,relative", OPTION_CASES,
                         ids=["%s %s" % (c[0][6:], c[1]) for c in OPTION_CASES])
@pytest.mark.peer  # a daemon on loopback
def test_a_hostile_value_of_any_option_is_refused_and_nothing_runs(attack, command, flag,
                                                                   kind, relative):
    world, daemon = attack
    action = CHECKS[command].actions[flag]
    values = spelled(action, world.hostile(kind, relative))
    assert values, "no hostile value of kind %s that %s takes" % (kind, flag)
    mtime = os.stat("/etc/passwd").st_mtime_ns
    for value in values:
        body = dict(world.required(command), **world.aim(command, flag))
        body[flag] = value
        body["-t"] = 2
        status, got = answer_of(daemon, command, body)
        label = "%s %s=%r: %s" % (command, flag, value, got["checkresult"])
        assert status == 403 and got["exitcode"] == 3, label
        assert got["checkresult"].startswith(CHECKS[command].name + " UNKNOWN - " + flag + " ")
        if kind in (cli.PATH, cli.HOST, cli.URL, cli.PORT, cli.FILE_READ):
            assert "allow it in api.conf [%s]" % command in got["checkresult"], label
        assert SECRET not in got["checkresult"] and KEY_MARKER not in got["checkresult"]
        # nothing ran: no program started, nothing written, nothing sent
        assert not os.path.exists(world.marker), label
        assert not os.path.exists(world.written_file) and not os.listdir(world.written_dir)
        assert os.stat("/etc/passwd").st_mtime_ns == mtime
        assert world.listeners.arrived("127.0.0.2") == [], label


ALLOWABLE = [case for case in OPTION_CASES
             if case[2] in (cli.PATH, cli.HOST, cli.URL, cli.PORT, cli.FILE_READ)]


@pytest.mark.parametrize("command,flag,kind,relative", ALLOWABLE,
                         ids=["%s %s" % (c[0][6:], c[1]) for c in ALLOWABLE])
@pytest.mark.peer  # a daemon on loopback
def test_the_same_option_with_a_value_the_policy_file_allows_is_run(attack, command, flag,
                                                                    kind, relative):
    world, daemon = attack
    action = CHECKS[command].actions[flag]
    values = spelled(action, world.harmless(kind, relative))
    assert values, "no allowed value of kind %s that %s takes" % (kind, flag)
    body = dict(world.required(command), **world.aim(command, flag))
    body[flag] = values[0]
    body["-t"] = 2
    status, got = answer_of(daemon, command, body)
    assert status == 200, (body, got)
    assert "api.conf" not in got["checkresult"], (body, got)
    world.listeners.arrived("127.0.0.1")


@pytest.mark.peer  # a daemon on loopback
def test_a_host_allowed_is_connected_to_and_one_not_allowed_never(attack):
    world, daemon = attack
    world.listeners.arrived("127.0.0.1")
    status, got = answer_of(daemon, "check_tls_expiry", {"-H": "127.0.0.1", "-p": world.port,
                                                         "-t": 1})
    assert status == 200 and "TLS handshake" in got["checkresult"], got  # it never answers
    assert "tcp" in world.listeners.arrived("127.0.0.1")
    status, got = answer_of(daemon, "check_tls_expiry", {"-H": "127.0.0.2", "-p": world.port})
    assert status == 403
    assert world.listeners.arrived("127.0.0.2") == []


@pytest.mark.peer  # a daemon on loopback
def test_the_daemons_snmp_community_goes_only_to_an_allowed_host(attack):
    world, daemon = attack
    world.listeners.arrived("127.0.0.1")
    body = {"--snmp": True, "--snmp-port": world.port, "--snmp-retries": 0,
            "--snmp-timeout": "0.2", "-t": 2}
    status, got = answer_of(daemon, "check_disk_partitions", dict(body, **{"-H": "127.0.0.2"}))
    assert status == 403 and COMMUNITY not in got["checkresult"]
    assert world.listeners.arrived("127.0.0.2") == []
    status, got = answer_of(daemon, "check_disk_partitions", dict(body, **{"-H": "127.0.0.1"}))
    assert status == 200, got
    assert "no SNMP response" in got["checkresult"], got  # what it sent arrived, unanswered
    datagrams = world.listeners.arrived("127.0.0.1")
    assert any(COMMUNITY.encode() in d for d in datagrams if isinstance(d, bytes)), datagrams


@pytest.mark.peer  # a daemon on loopback
def test_no_secret_of_a_caller_reaches_the_daemons_log(attack):
    world, daemon = attack
    answer_of(daemon, "check_disk_partitions", {"--community": SECRET})
    assert "403" in daemon.stderr()
    assert SECRET not in daemon.stderr() and COMMUNITY not in daemon.stderr()


@pytest.mark.peer  # a daemon on loopback
def test_state_files_are_the_daemons_own_under_its_state_dir(attack):
    world, daemon = attack
    source = os.path.join(world.allowed, "source")
    os.makedirs(source, exist_ok=True)
    with open(os.path.join(source, "data"), "w") as handle:
        handle.write("x\n")
    status, got = answer_of(daemon, "check_three_copies", {
        "--source": source, "--copy": ["a=" + os.path.join(world.allowed, "copy")],
        "--min-copies": 1})
    assert status == 200, got
    states = os.listdir(os.path.join(world.state_dir, "osop-checks"))
    assert any(name.startswith("three_copies_") for name in states), (states, got)


@pytest.mark.peer  # a daemon on loopback
def test_a_named_config_file_that_is_missing_stops_the_daemon_at_start(tmp_path):
    from lab.peers import ifw_api

    missing = "/nonexistent/osop-checks/api.conf"
    daemon = ifw_api.ApiDaemon(ifw_api.api_pki(str(tmp_path)), extra=["--config", missing])
    with pytest.raises(RuntimeError) as stopped:
        daemon.start()
    assert daemon.returncode == 2
    assert missing + " does not exist" in str(stopped.value)


def test_a_start_up_error_names_the_user_unless_it_says_it_did(tmp_path, capsys):
    """Whether a TLS file's error named the daemon's user is its field, not its words: a CA
    file whose name holds "(as user x)" still gets the user said; an unreadable one, which
    names it with the group to give the file, not twice."""
    import ssl

    from osop_checks import state
    from osop_checks.api import daemon

    odd = tmp_path / "ca (as user x).pem"
    odd.write_text("not a PEM file\n")
    files = {"CA": str(odd), "certificate": str(tmp_path / "absent.pem"),
             "key": str(tmp_path / "absent.key")}
    unloadable = daemon.tls_file_trouble(files, "CA", ssl.SSLError(9, "PEM lib"))
    unreadable = daemon.tls_file_trouble(files, "certificate", OSError(2, "No such file"))
    assert (unloadable.user_named, unreadable.user_named) == (False, True)
    for error in (unloadable, unreadable):
        assert daemon.start_failed(error, 1, user_named=error.user_named) == 1
    user = state.running_as()
    assert capsys.readouterr().err.splitlines() == [
        "osop-checks-api: cannot load the CA %s: PEM lib (as user %s)" % (odd, user),
        "osop-checks-api: cannot read the certificate %s: No such file or directory (as "
        "user %s)" % (tmp_path / "absent.pem", user)]


@pytest.mark.skipif(os.path.exists(policy.DEFAULT_CONFIG),
                    reason="this machine has a config file of its own")
@pytest.mark.peer  # a daemon on loopback
def test_without_a_config_file_only_plain_options_are_taken(tmp_path):
    from lab.peers import ifw_api

    pki = ifw_api.api_pki(str(tmp_path))
    with ifw_api.ApiDaemon(pki, workers=1, policy=None) as d:
        status, answer = d.call("check_disk_partitions", {"-p": "/"})
        assert status == 403, answer
        assert "allow it in api.conf [check_disk_partitions] paths" in \
            answer["check_disk_partitions"]["checkresult"]
        status, answer = d.call("check_disk_partitions", {"-w": "1%", "-c": "0%"})
        assert status == 200 and answer["check_disk_partitions"]["exitcode"] != 3, answer


def test_the_shipped_api_conf_allows_nothing_and_its_examples_are_valid():
    """icinga2-conf/systemd/api.conf (the package's conffile): as shipped, the built-in
    policy; every commented example, uncommented, a policy the daemon reads."""
    from lab.peers import ROOT

    with open(os.path.join(ROOT, "icinga2-conf", "systemd", "api.conf")) as handle:
        shipped = handle.read()
    commands = protocol.load_checks()
    as_shipped = policy.parse(shipped, commands=commands)
    assert not as_shipped.clients and all(
        not any(getattr(as_shipped.allowance(c), f) for f in policy.FIELDS) for c in commands)
    examples = "\n".join(line.lstrip("#") for line in shipped.splitlines()
                         if line.startswith("[") or (line.startswith("#") and
                                                     line[1:2] not in ("", " ")))
    uncommented = policy.parse(examples, commands=commands)
    assert uncommented.clients
    assert uncommented.allowance("check_os_upgrades").files
    assert uncommented.allowance("check_tls_expiry").hosts
