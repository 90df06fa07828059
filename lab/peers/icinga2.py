"""A real Icinga 2 (Debian icinga2-bin) for tests, `make icinga2-validate` and `make demo`.

Each Instance lives in a temp directory: its own DataDir, LogDir, CacheDir, SpoolDir,
InitRunDir and ConfigDir (-D on the command line), runs as root with
ICINGA2_USER/ICINGA2_GROUP=root, and reads a main config written here that includes the shipped
icinga2-conf/ files. PluginDir stays the system one (for the ITL's nrpe); OsopPluginDir points
at the venv's console scripts (check_*), the way an admin with a virtualenv would set it.

    python -m lab.peers.icinga2 validate   # icinga2 daemon -C on the full example (>= 690)
    python -m lab.peers.icinga2 demo       # watch this machine + loopback peers, print a table

The running daemon has its API on an ephemeral loopback port with a certificate from
`icinga2 pki new-ca` / `new-cert` / `sign-csr`; checks are forced through
/v1/actions/reschedule-check and read back from /v1/objects/services.
"""
import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from lab.peers import BIN, ROOT

CONF = os.path.join(ROOT, "icinga2-conf")
SYSTEM_PLUGIN_DIR = "/usr/lib/nagios/plugins"
ENV = {"ICINGA2_USER": "root", "ICINGA2_GROUP": "root"}
MIN_SERVICES = 690
_OPTIONS = {}  # (binary, command, option): listed by that command's --help


def icinga2_binary():
    return shutil.which("icinga2", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def ensure_installed():
    """The icinga2 binary; installs Debian's icinga2-bin + icinga2-common when missing (root)."""
    binary = icinga2_binary()
    if binary is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "icinga2-bin", "icinga2-common"], env=env, check=False,
                       stdout=subprocess.DEVNULL, timeout=900)
        binary = icinga2_binary()
    if binary is None:
        raise RuntimeError("icinga2 is not installed (Debian packages icinga2-bin icinga2-common)")
    return binary


def all_check_names():
    """Every check, as setup.cfg announces it (console script check_<name>)."""
    return generator().check_modules(ROOT)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quote(value):
    """A Python value as Icinga 2 DSL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[ %s ]" % ", ".join(quote(v) for v in value)
    if isinstance(value, dict):
        return "{ %s }" % " ".join("%s = %s" % (quote(k), quote(v)) for k, v in value.items())
    return '"%s"' % (str(value).replace("\\", "\\\\").replace('"', '\\"')
                     .replace("$", "$$").replace("\n", "\\n"))


# Runs a binary of a Debian root (a debootstrap of another release) in a private mount
# namespace, chrooted, sharing this machine's network: the host's / is at /mnt inside.
CHROOT = ('mount --rbind / "$0/mnt" && mount -t proc proc "$0/proc" && mount --rbind /dev '
          '"$0/dev" && exec chroot "$0" "$@"')


def trixie_root():
    """A cached Debian 13 root with its icinga2 (2.14): lab.peers.debian_root, built once."""
    from lab.peers import debian_root

    root = debian_root.cached_root("trixie", include=("icinga2-bin", "icinga2-common",
                                                      "ca-certificates"))
    hosts = os.path.join(root, "etc", "hosts")
    if not os.path.exists(hosts):  # debootstrap writes none: "localhost" (ifw-api's default)
        with open(hosts + ".tmp", "w") as handle:
            handle.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        os.replace(hosts + ".tmp", hosts)
    return root


def host_programs(directory, programs):
    """A directory of wrappers that run this machine's ``programs`` (absolute paths) from a
    chrooted icinga2 (chroot /mnt: the host's / there); the PluginDir of such an instance.
    Each call costs the wrapper's sh and chroot on top of the program itself."""
    os.makedirs(directory, exist_ok=True)
    for program in programs:
        path = os.path.join(directory, os.path.basename(program))
        with open(path, "w") as handle:
            handle.write('#!/bin/sh\nexec /usr/sbin/chroot /mnt %s "$@"\n' % program)
        os.chmod(path, 0o755)
    return directory


def proc_stats(pids=None):
    """(pid, fields of /proc/PID/stat after the command name: state is fields[0]) of every
    process now, or of ``pids``; a process gone meanwhile is left out."""
    for entry in os.listdir("/proc") if pids is None else [str(p) for p in pids]:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                yield int(entry), handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def process_cpu(pid, group=False):
    """CPU seconds (user + system) of process ``pid`` alone, or with ``group`` of every
    process in the process group ``pid`` leads, each with the children it reaped."""
    total = 0
    for _pid, fields in proc_stats(None if group else [pid]):
        if group and int(fields[2]) == pid:  # process group (field 5 of stat)
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        elif not group:
            total += int(fields[11]) + int(fields[12])  # utime stime
    return total / os.sysconf("SC_CLK_TCK")


class Icinga2:
    """One icinga2 instance in ``base``: write its config, validate it, or run it with its API.

    With ``root`` (a Debian root, e.g. trixie_root()) it is that root's icinga2, chrooted
    (see CHROOT): every path it is given is this machine's, seen under /mnt."""

    def __init__(self, base, node="master.osop.test", plugin_dir=BIN, api_port=None,
                 zone=None, root=None):
        self.root = root
        self.binary = "/usr/sbin/icinga2" if root else ensure_installed()
        self.base = base
        self.node = node
        self.zone = zone or node
        self.plugin_dir = plugin_dir
        self.api_port = api_port or free_port()
        self.password = "osop-%d" % os.getpid()
        self.dirs = {name: os.path.join(base, sub) for name, sub in (
            ("DataDir", "lib"), ("LogDir", "log"), ("CacheDir", "cache"),
            ("SpoolDir", "spool"), ("InitRunDir", "run"), ("ConfigDir", "etc"),
            ("ZonesDir", os.path.join("etc", "zones.d")))}
        for path in self.dirs.values():
            os.makedirs(path, exist_ok=True)
        self.main_conf = os.path.join(self.dirs["ConfigDir"], "icinga2.conf")
        self.process = None
        self.log_path = os.path.join(self.dirs["LogDir"], "stdout.log")

    # -- running the binary -----------------------------------------------------------------

    def inside(self, path):
        """A path of this machine as the icinga2 binary sees it."""
        return "/mnt" + os.path.abspath(path) if self.root else path

    def argv(self, *args):
        if self.root is None:
            return [self.binary] + list(args)
        return ["unshare", "--mount", "sh", "-c", CHROOT, self.root, self.binary] + list(args)

    def defines(self):
        return ["-D%s=%s" % (k, self.inside(v)) for k, v in self.dirs.items()]

    def env(self):
        return dict(os.environ, **ENV)

    def has_option(self, command, option):
        """Whether this icinga2's ``command --help`` lists ``option``."""
        key = (self.binary, command, option)
        if key not in _OPTIONS:
            proc = subprocess.run(self.argv(command, "--help"), capture_output=True,
                                  text=True, env=self.env(), timeout=60)
            _OPTIONS[key] = option in proc.stdout + proc.stderr
        return _OPTIONS[key]

    def run(self, *args, timeout=120, check=True):
        proc = subprocess.run(self.argv(*args), capture_output=True, text=True,
                              env=self.env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError("icinga2 %s failed (exit %d):\n%s%s" % (
                " ".join(args[:2]), proc.returncode, proc.stdout[-4000:], proc.stderr[-2000:]))
        return proc

    # -- configuration ------------------------------------------------------------------------

    def write_config(self, includes=(), text="", api=False, checker=False, zones=None,
                     perfdata=False):
        """The instance's main config: constants, the ITL, the given files, and ``text``;
        ``perfdata``: perfdata writers in ``text`` get the check results."""
        lines = [
            "/* written by lab/peers/icinga2.py */",
            "const PluginDir = %s" % quote(self.inside(SYSTEM_PLUGIN_DIR)),
            "const OsopPluginDir = %s" % quote(self.inside(self.plugin_dir)),
            "const NodeName = %s" % quote(self.node),
            "const ZoneName = %s" % quote(self.zone),
            'const TicketSalt = ""',
            "include <itl>",
            "include <plugins>",
            'object IcingaApplication "app" { enable_perfdata = %s }'
            % ("true" if perfdata else "false"),
        ]
        if checker:
            lines.append('object CheckerComponent "checker" { }')
        if api:
            lines += [
                'object ApiListener "api" {',
                '\tbind_host = "127.0.0.1"',
                "\tbind_port = %d" % self.api_port,
                "\taccept_config = true",
                "\taccept_commands = true",
                "}",
                'object ApiUser "root" { password = %s; permissions = [ "*" ] }'
                % quote(self.password),
            ]
        if zones:
            lines.append(zones)
        elif api:  # the API needs this node's own endpoint and zone
            lines += ["object Endpoint NodeName { }",
                      "object Zone ZoneName { endpoints = [ NodeName ] }"]
        lines += ['include "%s"' % self.inside(path) for path in includes]
        lines.append(text)
        with open(self.main_conf, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return self.main_conf

    def validate(self):
        """`icinga2 daemon -C`: returns (ok, output, {type: count}) from Icinga's own words."""
        # icinga2 2.14 writes the objects file `object list` reads only when asked to
        # (--dump-objects); 2.13 always writes it and has no such option.
        dump = ["--dump-objects"] if self.has_option("daemon", "--dump-objects") else []
        proc = self.run("daemon", "-C", *dump, "-c", self.inside(self.main_conf),
                        *self.defines(), check=False, timeout=300)
        output = proc.stdout + proc.stderr
        return proc.returncode == 0, output, instantiated(output)

    # -- certificates (pki needs ICINGA2_USER/GROUP=root too) -----------------------------------

    def make_ca(self):
        self.run("pki", "new-ca", *self.defines())
        return os.path.join(self.dirs["DataDir"], "ca")

    def make_cert(self, ca_instance=None):
        """A certificate for this node signed by ``ca_instance``'s CA (default: our own)."""
        ca_instance = ca_instance or self
        certs = os.path.join(self.dirs["DataDir"], "certs")
        os.makedirs(certs, exist_ok=True)
        key, csr, crt = (os.path.join(certs, self.node + ext) for ext in (".key", ".csr", ".crt"))
        self.run("pki", "new-cert", "--cn", self.node, "--key", key, "--csr", csr,
                 *self.defines())
        ca_instance.run("pki", "sign-csr", "--csr", csr, "--cert", crt, *ca_instance.defines())
        shutil.copy(os.path.join(ca_instance.dirs["DataDir"], "ca", "ca.crt"),
                    os.path.join(certs, "ca.crt"))
        return crt

    def install_pki(self):
        """CA and this node's certificate, made once with `icinga2 pki` and cached (4096-bit
        keys take icinga2 seconds each): ca/ and certs/ land in this DataDir."""
        source = cached_pki([self.node])
        data = self.dirs["DataDir"]
        shutil.rmtree(os.path.join(data, "ca"), ignore_errors=True)
        shutil.copytree(os.path.join(source, "ca"), os.path.join(data, "ca"))
        certs = os.path.join(data, "certs")
        os.makedirs(certs, exist_ok=True)
        for name in (self.node + ".key", self.node + ".crt", "ca.crt"):
            shutil.copy(os.path.join(source, "certs", name), os.path.join(certs, name))

    # -- the daemon and its API -----------------------------------------------------------------

    def start(self, wait=60):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv("daemon", "-c", self.inside(self.main_conf), *self.defines()),
            stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True)
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("icinga2 exited with %s:\n%s" % (
                    self.process.returncode, self.log_tail()))
            try:
                if self.api("GET", "/v1/status/IcingaApplication", timeout=2).ok:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("icinga2's API did not answer within %ds:\n%s" % (wait, self.log_tail()))

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:  # the worker and any check still running share the daemon's process group
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self.process = None

    def cpu_seconds(self):
        """CPU time of the daemon's processes and the checks they ran and reaped (user +
        system, children included), for measuring what a round of checks costs."""
        return process_cpu(self.process.pid, group=True) if self.process is not None else 0.0

    def log_tail(self, size=6000):
        try:
            with open(self.log_path, "rb") as handle:
                return handle.read().decode(errors="replace")[-size:]
        except OSError:
            return ""

    def api(self, method, path, body=None, timeout=10):
        import requests
        import urllib3

        urllib3.disable_warnings()
        return requests.request(
            method, "https://127.0.0.1:%d%s" % (self.api_port, path), json=body,
            auth=("root", self.password), verify=False, timeout=timeout,
            headers={"Accept": "application/json"})

    def api_get_with_body(self, path, body):
        import requests

        return requests.post(
            "https://127.0.0.1:%d%s" % (self.api_port, path), json=body,
            auth=("root", self.password), verify=False, timeout=30,
            headers={"Accept": "application/json", "X-HTTP-Method-Override": "GET"})

    def force_checks(self, filter_="true"):
        reply = self.api("POST", "/v1/actions/reschedule-check",
                         {"type": "Service", "filter": filter_, "force": True,
                          "next_check": time.time()})
        reply.raise_for_status()
        return len(reply.json().get("results", []))

    def wait_for_results(self, since, names=None, timeout=90, accept=None):
        """Wait until every service (or those named) has a check result newer than ``since``;
        ``accept(attrs)`` may reject a result to keep waiting (e.g. before a config sync)."""
        import requests

        deadline = time.monotonic() + timeout
        while True:
            try:
                services = self.api_get_with_body("/v1/objects/services", {
                    "attrs": ["name", "host_name", "display_name", "state", "last_check_result",
                              "check_command", "command_endpoint"]}).json()["results"]
            except requests.exceptions.RequestException:
                # icinga2 busy with a round of ~50 checks can drop an API connection in its
                # TLS handshake: ask again, until the deadline
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
                continue
            services = {s["name"]: s["attrs"] for s in services}
            if names is not None:
                services = {k: v for k, v in services.items() if k in names}
            pending = [k for k, v in services.items()
                       if not v["last_check_result"]
                       or v["last_check_result"]["execution_end"] < since
                       or (accept is not None and not accept(v))]
            if not pending or time.monotonic() > deadline:
                return services, pending
            time.sleep(0.5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


PKI_CACHE = os.path.join(os.environ.get("OSOP_TEST_CACHE", "/var/cache/osop-checks-tests"),
                         "icinga2-pki")


def cached_pki(nodes):
    """DataDir of a cache instance holding a CA (`pki new-ca`) and a certificate per node
    (`pki new-cert` + `pki sign-csr`, ca.crt beside it); made on first use, then reused."""
    import fcntl

    try:
        os.makedirs(PKI_CACHE, exist_ok=True)
        base = PKI_CACHE
    except OSError:
        base = os.path.join(tempfile.gettempdir(), "osop-icinga2-pki-%d" % os.getuid())
        os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        keeper = Icinga2(base, node="pki-cache")
        data = keeper.dirs["DataDir"]
        if not os.path.exists(os.path.join(data, "ca", "ca.crt")):
            shutil.rmtree(os.path.join(data, "ca"), ignore_errors=True)
            keeper.make_ca()
        for node in nodes:
            if not os.path.exists(os.path.join(data, "certs", node + ".crt")):
                keeper.node = node
                keeper.make_cert()
    return data


def instantiated(output):
    """{'Service': 720, 'Host': 50, ...} from `Instantiated N Services.` lines."""
    counts = {}
    for number, kind in re.findall(r"Instantiated (\d+) (\w+?)s?\.", output):
        counts[kind] = int(number)
    # "Instantiated 1 Service." vs "Instantiated 720 Services.": both end up under "Service";
    # types whose name ends in s (e.g. none in use) would lose it, which we accept.
    return counts


def parse_perfdata(text):
    """Nagios perfdata 'label'=value[UOM];warn;crit;min;max ... as {label: (value, uom)}."""
    result = {}
    for match in re.finditer(r"('(?:[^']|'')*'|[^'= ][^= ]*)=(-?[\d.]+(?:[eE][-+]?\d+)?)"
                             r"([a-zA-Z%]*)((?:;[^ ]*)?)", text or ""):
        label = match.group(1)
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        result[label] = (float(match.group(2)), match.group(3))
    return result


# -- the full shipped example ---------------------------------------------------------------------

def example_includes():
    return [os.path.join(CONF, f) for f in (
        "commands.conf", "templates.conf", "services.conf", os.path.join("nrpe", "services.conf"),
        os.path.join("example", "zones.conf"), os.path.join("example", "hosts.conf"))]


def validate_example(base, extra_includes=(), root=None):
    """Validate the shipped config with the example inventory; (ok, output, counts).
    With ``root`` (trixie_root()), by that root's icinga2."""
    instance = Icinga2(base, node="monitor.office.example", root=root)
    instance.write_config(example_includes() + list(extra_includes))
    return instance.validate()


def cmd_validate(args):
    with tempfile.TemporaryDirectory(prefix="osop-icinga2-") as base:
        ok, output, counts = validate_example(base)
    if not ok or args.verbose:
        print(output)
    services = counts.get("Service", 0)
    print("icinga2 daemon -C: %s; instantiated %s" % (
        "valid" if ok else "INVALID",
        ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items()))))
    if ok and services < MIN_SERVICES:
        print("too few services: %d < %d" % (services, MIN_SERVICES))
        return 1
    return 0 if ok else 1


# -- watching this machine (make demo, bench) -----------------------------------------------------

def load(path, name):
    """A script of icinga2-conf/ as a module under a name of its own (cached)."""
    import importlib.util

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def generator():
    """icinga2-conf/generate.py as a module (the one place that names the custom vars)."""
    return load(os.path.join(CONF, "generate.py"), "osop_icinga2_generate")


def graphs():
    """icinga2-conf/graphs.py as a module (graph templates and dashboards)."""
    return load(os.path.join(CONF, "graphs.py"), "osop_icinga2_graphs")


def inventory():
    """icinga2-conf/example/generate_inventory.py as a module."""
    return load(os.path.join(CONF, "example", "generate_inventory.py"),
                "osop_icinga2_inventory")


def argv_to_vars(name, parser, argv):
    """A check's argv as the custom vars of its CheckCommand (the inverse of commands.conf):
    {'disk_partitions_path': ['/'], 'disk_partitions_warning': '20%'}. Count switches (-vv)
    become true (one level)."""
    import argparse

    names = generator().var_names(name, parser)
    by_flag = {}
    for action in parser._actions:
        for flag in action.option_strings:
            by_flag[flag] = action
    result = {}
    items = list(argv)
    i = 0
    while i < len(items):
        token = items[i]
        i += 1
        value = None
        if token.startswith("--") and "=" in token:
            token, value = token.split("=", 1)
        action = by_flag.get(token)
        if action is None and re.match(r"^-[a-zA-Z0-9]", token) and token[:2] in by_flag:
            action = by_flag[token[:2]]
            rest = token[2:]
            if action.nargs == 0:
                # -vv: a repeated short switch
                if set(rest) - {token[1]}:
                    raise ValueError("cannot map %r" % token)
            else:
                value = rest
        if action is None or action not in names:
            raise ValueError("%s: %r is not an option of its parser" % (name, token))
        var = names[action]
        if action.nargs == 0:
            result[var] = True
            continue
        if value is None:
            value = items[i]
            i += 1
        if isinstance(action, argparse._AppendAction):
            result.setdefault(var, []).append(value)
        else:
            result[var] = value
    return result


def vars_to_argv(name, parser, variables):
    """Custom vars of osop_<name> as the argv Icinga builds from them (order aside)."""
    names = {var: action for action, var in generator().var_names(name, parser).items()}
    argv = []
    for var, value in variables.items():
        action = names[var]
        flag = generator().key_of(action)
        if action.nargs == 0:
            if value:
                argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def scenario_services(stack, names=None, problems=None, started=None):
    """[(check, title, argv)]: the scenarios of every demo module (lab/demo/*.py, except
    this one's) whose command is a check, starting their peers on ``stack``. ``started``:
    {module name: its scenarios, or the exception its start raised} of the modules `make demo`
    already ran on ``stack`` (their peers still up): taken as they are, not started twice.
    A demo module whose peers cannot start here is left out; ``problems`` collects why."""
    import importlib
    import pkgutil

    from lab import demo

    out = []
    for info in sorted(pkgutil.iter_modules(demo.__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name in demo.LAST:
            continue
        try:
            if started is not None and info.name in started:
                scenarios = started[info.name]
                if isinstance(scenarios, Exception):
                    raise scenarios
            else:
                scenarios = importlib.import_module("lab.demo." + info.name).scenarios(stack)
        except Exception as exc:  # a peer that cannot start here
            if problems is not None:
                problems[info.name] = "%s: %s" % (type(exc).__name__, exc)
            print("note: demo %s: peers did not start: %s" % (info.name, exc), file=sys.stderr)
            continue
        for title, argv, *setup in scenarios:
            if setup:
                continue  # a scenario that prepares its world or runs wrapped (the practice)
            check = argv[0][len("check_"):] if argv and argv[0].startswith("check_") else None
            if title.startswith("bad input"):
                continue  # shows the plugin's own argument checks; no service would be built so
            if check and (names is None or check in names):
                out.append((check, title, list(argv[1:])))
    return out


def service_objects(host, scenarios, prefix="", api=None, scheduled=True):
    """Icinga2 text for one Service per scenario on ``host``, with the check's template;
    ``api``: {var: value} of ifw-api (e.g. ifw_api_port), sending the check to osop-checks-api
    through its osop_<check>_api command instead. ``scheduled=False``: no active checks, so a
    service runs only when forced (once, for a check whose answer depends on its last run)."""
    import importlib

    text = []
    for number, (check, title, argv) in enumerate(scenarios, 1):
        parser = importlib.import_module("osop_checks.checks." + check).build_parser()
        variables = argv_to_vars(check, parser, argv)
        if api is not None:
            variables.update(api)
        text.append('object Service %s {' % quote("%s%s %d" % (prefix, check, number)))
        text.append("\timport %s" % quote("osop-" + check.replace("_", "-")))
        if api is not None:
            text.append("\tcheck_command = %s" % quote("osop_%s_api" % check))
        text.append("\thost_name = %s" % quote(host))
        text.append("\tdisplay_name = %s" % quote(title))
        text.append("\tcheck_interval = 1m")
        text.append("\tretry_interval = 1m")
        if not scheduled:
            text.append("\tenable_active_checks = false")
        for key, value in variables.items():
            text.append("\tvars.%s = %s" % (key, quote(value)))
        text.append("}")
    return "\n".join(text) + "\n"


def local_inventory(host="this-machine"):
    """The host that is the Icinga instance itself, watched by the shipped apply rules."""
    return "\n".join([
        'object Host %s {' % quote(host),
        '\tcheck_command = "dummy"',
        '\taddress = "127.0.0.1"',
        '\tvars.client = "local"',
        '\tvars.disks["/"] = { warning = "10%"; critical = "5%" }',
        '\tvars.os = "Linux"',
        "}",
    ]) + "\n"


def check_of(attrs):
    """The check name of a service's osop_<name> CheckCommand (None for others)."""
    command = attrs.get("check_command") or ""
    return command[len("osop_"):] if command.startswith("osop_") else None


def shipped_includes():
    return [os.path.join(CONF, f) for f in ("commands.conf", "templates.conf", "services.conf")]


@contextlib.contextmanager
def running(base, text, node="master.osop.test", includes=None, root=None, plugin_dir=BIN,
            perfdata=False):
    """A started icinga2 with the shipped commands/templates/apply rules and ``text``
    (``root``: that Debian root's icinga2, see Icinga2; ``perfdata``: perfdata writers on)."""
    instance = Icinga2(base, node=node, root=root, plugin_dir=plugin_dir)
    instance.install_pki()
    includes = list(shipped_includes() if includes is None else includes)
    instance.write_config(includes, text, api=True, checker=True, perfdata=perfdata)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


def watch(stack, rounds=2, out=None, started=None):
    """Run icinga2 watching this machine (shipped apply rules) and every check's demo
    scenarios on their loopback peers for a few forced rounds; print a table of services.
    ``started``: the demo modules `make demo` already ran (see scenario_services). Raises
    MissingServices, after the table, when a demo group did not start or a check has no
    service with a result: the table a user reads shows every check, or the demo fails."""
    out = out or sys.stdout  # the one in force now, as the demo's own prints use
    base = stack.enter_context(tempfile.TemporaryDirectory(prefix="osop-icinga2-demo-"))
    problems = {}
    scenarios = scenario_services(stack, problems=problems, started=started)
    host = "this-machine"
    text = local_inventory(host) + service_objects(host, scenarios)
    instance = stack.enter_context(running(base, text))
    services = {}
    for number in range(1, rounds + 1):
        since = time.time()
        instance.force_checks()
        services, pending = instance.wait_for_results(since, timeout=120)
        print("icinga2 check round %d of %d: %d services checked%s" % (
            number, rounds, len(services) - len(pending),
            ", %d still pending" % len(pending) if pending else ""), file=out)
    print_table(services, out)
    missing = missing_checks(services)
    if problems or missing:
        raise MissingServices(problems, missing)
    return services


class MissingServices(RuntimeError):
    """The Icinga table lacks a demo group (its peers did not start) or a check."""

    def __init__(self, problems, missing):
        self.problems, self.missing = problems, missing
        words = ["demo %s did not start (%s)" % item for item in sorted(problems.items())]
        words += ["no service of osop_%s has a result" % check for check in missing]
        super().__init__("the Icinga table is incomplete: " + "; ".join(words))


def services_per_check(services):
    """{check: number of its services that have a check result} (every check, 0 included)."""
    counts = dict.fromkeys(all_check_names(), 0)
    for attrs in services.values():
        check = check_of(attrs)
        if check in counts and attrs.get("last_check_result"):
            counts[check] += 1
    return counts


def missing_checks(services):
    """The checks without a service that has a result."""
    return [check for check, count in services_per_check(services).items() if not count]


STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def print_table(services, out=None):
    """host, service, command, state and the status line of each service; then a count."""
    out = out or sys.stdout
    rows = []
    for name, attrs in sorted(services.items()):
        result = attrs.get("last_check_result") or {}
        first = (result.get("output") or "(pending)").splitlines()[0].strip()
        state = STATES.get(int(result.get("exit_status", 3)), "?") if result else "PENDING"
        service = attrs.get("display_name") or name
        service = service if len(service) <= 60 else service[:57] + "..."
        rows.append((attrs.get("host_name", ""), service,
                     attrs.get("check_command") or "", state, first))
    heads = ("host", "service", "command", "state")
    width = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(heads)]
    line = "  ".join("%%-%ds" % w for w in width) + "  %s"
    print(line % (heads + ("output",)), file=out)
    for row in rows:
        print(line % (row[:4] + (row[4][:110],)), file=out)
    counts = {}
    for row in rows:
        counts[row[3]] = counts.get(row[3], 0) + 1
    print("%d services: %s" % (len(rows), ", ".join(
        "%d %s" % (n, state) for state, n in sorted(counts.items()))), file=out)
    out.flush()


def cmd_demo(args):
    try:
        with contextlib.ExitStack() as stack:
            services = watch(stack, rounds=args.rounds)
    except MissingServices as exc:
        print("FAILED: %s" % exc, file=sys.stderr)
        return 1
    bad = [n for n, a in services.items() if not a.get("last_check_result")]
    return 1 if bad else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m lab.peers.icinga2")
    sub = parser.add_subparsers(dest="command", required=True)
    val = sub.add_parser("validate", help="icinga2 daemon -C on the shipped config + example")
    val.add_argument("-v", "--verbose", action="store_true", help="show icinga2's output")
    dem = sub.add_parser("demo", help="watch this machine and the demo peers, print a table")
    dem.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    return {"validate": cmd_validate, "demo": cmd_demo}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
