"""Least privilege: every check as the unprivileged nagios user, as Icinga and NRPE run it.

The tests run as root; here each check also runs through `runuser -u nagios` against the very
same inputs, and must give the same answer (exit code and status line, numbers aside), or,
where nagios truly may not read the input, a clear UNKNOWN that names the missing permission
(never a wrong answer such as "does not exist"). The one case that needs root has a shipped
sudoers snippet (icinga2-conf/sudoers.d/osop-checks) that visudo accepts and that grants one
fixed command line, nothing more.
"""
import os
import re
import shutil
import subprocess

import pytest

from tests.helpers import FIXTURES
from lab.peers import ROOT, need, need_root, run_plugin
from lab.peers.systemd_container import recorded_systemctl
from lab.peers.foreign_user import USER, shared_tempdir
SUDOERS = os.path.join(ROOT, "icinga2-conf", "sudoers.d", "osop-checks")


def normalised(line):
    """The status line with its numbers (free space, ages that move on) taken out."""
    return re.sub(r"\d+(\.\d+)?", "N", line.split(" | ", 1)[0])


@pytest.fixture(scope="module")
def world(tls_ca):
    """Inputs readable by nagios, and the same kind of inputs readable by root alone, in a
    directory nagios may enter (pytest's own tmp dirs are root's, mode 0700)."""
    need_root()
    with shared_tempdir("osop-least-privilege-") as base:
        yield _build(base, tls_ca)


def _tree(path, mode=0o755):
    os.makedirs(os.path.join(path, "daily", "2024-05-02"))
    for i in range(5):
        with open(os.path.join(path, "daily", "2024-05-02", "f%d" % i), "w") as handle:
            handle.write("x" * i)
    for top, _dirs, files in os.walk(path):
        os.chmod(top, 0o755)
        for name in files:
            os.chmod(os.path.join(top, name), 0o644)
    os.chmod(path, mode)
    return path


def _build(base, tls_ca):
    w = {"base": base}
    w["tree"] = _tree(os.path.join(base, "backup"))
    w["root_tree"] = _tree(os.path.join(base, "root-only-backup"), 0o700)
    for name in ("copy1", "copy2", "copy3"):
        shutil.copytree(w["tree"], os.path.join(base, name), copy_function=shutil.copy2)
        w[name] = os.path.join(base, name)
    w["root_copy"] = os.path.join(base, "root-only-copy")
    shutil.copytree(w["tree"], w["root_copy"], copy_function=shutil.copy2)
    os.chmod(w["root_copy"], 0o700)
    issued = tls_ca.issue("least-privilege", days=30)
    w["cert"] = os.path.join(base, "cert.pem")
    shutil.copy(issued.chain_path, w["cert"])
    os.chmod(w["cert"], 0o644)
    w["root_cert"] = os.path.join(base, "root-only-cert.pem")
    shutil.copy(issued.chain_path, w["root_cert"])
    os.chmod(w["root_cert"], 0o600)
    w["aptroot"] = os.path.join(base, "aptroot")
    for part in ("etc/apt", "var/lib/apt/lists", "var/lib/dpkg"):
        if os.path.isdir("/" + part):
            shutil.copytree("/" + part, os.path.join(w["aptroot"], part), symlinks=True,
                            ignore=shutil.ignore_patterns("lock*", "info", "partial",
                                                          "auxfiles", "updates"))
    subprocess.run(["chmod", "-R", "a+rX", w["aptroot"]], check=True)
    systemd = os.path.join(base, "systemd")  # the recorded outputs, where nagios may read them
    shutil.copytree(os.path.join(FIXTURES, "systemd"), systemd)
    subprocess.run(["chmod", "-R", "a+rX", systemd], check=True)
    # show: the recorded blocks of the units asked, run by the python nagios may run
    w["systemctl"] = recorded_systemctl(os.path.join(base, "systemctl"), systemd,
                                        "/usr/bin/python3")
    return w


def same(check, argv, code):
    """nagios gets root's answer; root's is ``code`` (None: this machine decides)."""
    return ("same", check, argv, code, code)


def denied(check, argv, code, theirs=3):
    """nagios may not read it: ``theirs`` (UNKNOWN unless said), naming the permission;
    root's answer is ``code``."""
    return ("denied", check, argv, code, theirs)


def assert_roots_answer(outcome, code):
    """Root's answer is the one the world gives: ``code``, or where this machine's own disk
    or apt state decides (None), a real answer (not UNKNOWN) with perfdata."""
    if code is None:
        assert outcome.exitcode != 3 and " | " in outcome.status_line, outcome.output
    else:
        assert outcome.exitcode == code, outcome.output


def cases():
    """(expectation, check, argv builder); builders take the world."""
    return [
        # this machine's disks: their free space decides
        same("disk_partitions", lambda w: ["-p", "/", "-p", w["tree"]], None),
        denied("disk_partitions", lambda w: ["-p", os.path.join(w["root_tree"], "daily")],
               None),
        # a certificate valid 30 more days, the default -w 21d: OK
        same("tls_expiry", lambda w: ["--file", w["cert"]], 0),
        # an unreadable --file is that certificate's own finding, CRITICAL as an endpoint
        # that cannot be reached
        denied("tls_expiry", lambda w: ["--file", w["root_cert"]], 0, 2),
        # the recorded degraded system, a unit failed: CRITICAL
        same("systemd_units", lambda w: ["--systemctl", w["systemctl"]], 2),
        # a copy of this machine's apt state: its pending upgrades decide
        same("os_upgrades", lambda w: ["--root", w["aptroot"], "--no-cache",
                                       "--max-list-age", "0"], None),
        # files written a moment ago, -w 1000d: OK
        same("backup_age", lambda w: ["-p", w["tree"], "-w", "1000d", "-c", "2000d"], 0),
        denied("backup_age", lambda w: ["-p", w["root_tree"], "-w", "1000d", "-c", "2000d"],
               0),
        # three exact copies, but all on the source's filesystem: counted once, none apart
        # from the source, so 0 of the 3 copies needed: CRITICAL
        same("three_copies", lambda w: ["--source", w["tree"], "--copy", "a=" + w["copy1"],
                                        "--copy", "b=" + w["copy2"], "--copy",
                                        "c=" + w["copy3"], "--settle", "0"], 2),
        denied("three_copies", lambda w: ["--source", w["tree"], "--copy", "a=" + w["copy1"],
                                          "--copy", "b=" + w["copy2"], "--copy",
                                          "c=" + w["root_copy"], "--settle", "0"], 2),
    ]


CASES = [pytest.param(c, id="%s %s #%d" % (c[1], c[0], i)) for i, c in enumerate(cases())]


@pytest.mark.parametrize("case", CASES)
def test_as_nagios(case, world, foreign_install):
    expectation, check, build, code, theirs = case
    # The test compares nagios with root, not speed: apt builds its package cache in memory
    # (2 s alone), and on a 2-core runner busy with the other worker it once took > 20 s.
    argv = ["-t", "120"] + [str(a) for a in build(world)]
    as_root = run_plugin("check_" + check, argv)
    as_nagios = foreign_install.run("check_" + check, argv,
                                    env={"HOME": "/var/lib/nagios", "XDG_CACHE_HOME": ""})
    for outcome in (as_root, as_nagios):
        assert "Traceback" not in outcome.output + outcome.stderr, outcome.output
    assert_roots_answer(as_root, code)
    if expectation == "same":
        assert as_nagios.exitcode == as_root.exitcode, (as_root.output, as_nagios.output)
        assert normalised(as_nagios.status_line) == normalised(as_root.status_line), (
            as_root.status_line, as_nagios.status_line)
    else:
        assert as_nagios.exitcode == theirs, as_nagios.output
        assert re.search(r"(?i)permission denied", as_nagios.status_line), as_nagios.output


def test_dyndns_match_as_nagios(world, dns_site, http_echo, foreign_install):
    """Real DNS (dnsmasq) and a real echo service; nagios keeps its state file where it may
    write (not root's), and gets root's answer."""
    from lab.peers.dns import RESOLVER_ADDRESS

    dns_site.set_records({"office.dyn.test": ["198.51.100.23"]})
    echo = http_echo("198.51.100.23\n")
    argv = ["-t", "10", "-H", "office.dyn.test",
            "--server", "%s:%d" % (RESOLVER_ADDRESS, dns_site.port), "--ip-url", echo.url]
    as_root = run_plugin("check_dyndns_match", argv)
    as_nagios = foreign_install.run("check_dyndns_match", argv,
                                    env={"HOME": "/var/lib/nagios", "XDG_CACHE_HOME": ""})
    assert as_root.exitcode == 0, as_root.output
    assert as_nagios.exitcode == 0, as_nagios.output + as_nagios.stderr
    assert normalised(as_nagios.status_line) == normalised(as_root.status_line)


def test_three_copies_over_ssh_as_nagios(world, sshd, foreign_install):
    """With a key nagios may read, nagios gets root's answer over ssh; with root's key (mode
    0600 in a 0700 directory) a clear UNKNOWN naming the file, not a host-key verdict."""
    import pwd

    nagios = pwd.getpwnam(USER)
    key = os.path.join(world["base"], "nagios_key")
    shutil.copy(sshd.client_key, key)
    os.chown(key, nagios.pw_uid, nagios.pw_gid)
    os.chmod(key, 0o600)
    known = os.path.join(world["base"], "known_hosts")
    sshd.write_known_hosts(known)
    os.chmod(known, 0o644)
    copies = ["--source", world["tree"], "--copy",
              "b=ssh://root@127.0.0.1%s" % world["copy2"], "--min-copies", "1",
              "--settle", "0", "--ssh-port", str(sshd.port), "-t", "20"]
    as_root = run_plugin("check_three_copies", copies + [
        "--ssh-identity", key, "--ssh-known-hosts", known])
    as_nagios = foreign_install.run("check_three_copies", copies + [
        "--ssh-identity", key, "--ssh-known-hosts", known])
    assert as_root.exitcode == 0, as_root.output
    assert as_nagios.exitcode == 0, as_nagios.output + as_nagios.stderr
    assert normalised(as_nagios.status_line) == normalised(as_root.status_line)
    denied = foreign_install.run("check_three_copies", copies + sshd.options())
    assert denied.exitcode == 3, denied.output
    assert re.search(r"(?i)cannot read .*permission denied", denied.status_line), denied.output


# -- the sudoers snippet for the one check that needs root ---------------------------------

def test_sudoers_snippet_is_accepted_by_visudo():
    need("visudo")
    done = subprocess.run(["visudo", "-cf", SUDOERS], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_sudoers_snippet_grants_fixed_command_lines_only():
    """Only nagios, only as root, only our plugins, each with all its arguments written out
    (a command without arguments would allow any), no wildcards, no shell escapes."""
    aliases, rules = {}, []
    with open(SUDOERS) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line.startswith("Cmnd_Alias"):
                name, _, command = line[len("Cmnd_Alias"):].partition("=")
                aliases[name.strip()] = command.strip()
            elif line and not line.startswith("Defaults"):
                rules.append(line)
    assert aliases and rules
    for name, command in aliases.items():
        argv = command.split()
        assert re.match(r"^/usr/lib/nagios/plugins/check_[a-z_]+$", argv[0]), command
        assert len(argv) > 1, "%s allows any arguments" % name
        assert not any(ch in command for ch in "*?[]\\,!\"'"), command
    for rule in rules:
        user, _, rest = rule.partition(" ")
        assert user == USER, rule
        assert re.match(r"^ALL = \(root\) NOPASSWD: [A-Z_, ]+$", rest.strip()), rule
        granted = [a.strip() for a in rest.split(":", 1)[1].split(",")]
        assert set(granted) <= set(aliases), rule


def test_sudoers_grants_what_the_root_only_case_needs(world):
    """The snippet's backup_age command is the same kind of command the denied case needs:
    run it as root (what sudo would do) on a root-only tree, and nagios gets an answer."""
    with open(SUDOERS) as handle:
        command = next(line.split("=", 1)[1].split() for line in handle
                       if line.startswith("Cmnd_Alias OSOP_BACKUP_AGE"))
    argv = [world["root_tree"] if a == "/srv/backup" else a for a in command[1:]]
    outcome = run_plugin("check_backup_age", argv)
    # the root-only tree was written moments ago, the snippet says -w 26h: root reads it, OK
    assert outcome.exitcode == 0 and "permission" not in outcome.output.lower(), outcome.output


# -- the shipped CheckCommand that runs sudo: what icinga2 runs is what sudoers grants ------

SUDO_SERVICE = """
object Host "root-only" { check_command = "dummy"; address = "127.0.0.1" }
object Service "backup root-only" {
	import "osop-backup-age-sudo"
	host_name = "root-only"
	vars.backup_age_path = "/srv/backup"
	vars.backup_age_warning = "26h"
	vars.backup_age_critical = "50h"
}
"""
# In a mount namespace of its own: sudo reads only the shipped snippet (through its sudo.conf),
# and finds a check_backup_age where the snippet names it.
_SUDO_LIST = """conf=$1; shift
mount --bind "$conf" /etc/sudo.conf && mount -t tmpfs none /usr/lib/nagios/plugins &&
touch /usr/lib/nagios/plugins/check_backup_age &&
chmod 755 /usr/lib/nagios/plugins/check_backup_age &&
exec sudo -n -l -U nagios "$@"
"""


def granted_command():
    with open(SUDOERS) as handle:
        return next(line.split("=", 1)[1].split() for line in handle
                    if line.startswith("Cmnd_Alias OSOP_BACKUP_AGE"))


def sudo_allows(directory, argv):
    """`sudo -l -U nagios ARGV` with the shipped snippet as the only sudoers: may nagios?"""
    sudoers = os.path.join(directory, "sudoers")
    shutil.copy(SUDOERS, sudoers)
    os.chown(sudoers, 0, 0)
    os.chmod(sudoers, 0o440)
    conf = os.path.join(directory, "sudo.conf")
    with open(conf, "w") as handle:
        handle.write("Plugin sudoers_policy sudoers.so sudoers_file=%s\n" % sudoers)
    script = os.path.join(directory, "sudo-list.sh")
    with open(script, "w") as handle:
        handle.write(_SUDO_LIST)
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "sh", script,
                           conf] + argv, capture_output=True, text=True, timeout=30)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return done.returncode == 0 and done.stdout.strip() == " ".join(argv)


def test_the_sudo_command_icinga2_builds_is_exactly_what_sudoers_grants(tmp_path):
    """osop_backup_age_sudo (templates.conf) run by a real icinga2: its argv, with
    OsopPluginDir where Debian puts the plugins, is the snippet's Cmnd_Alias word for word,
    and sudo itself, given only the snippet, lets nagios run that line and no other."""
    import time

    from lab.peers import icinga2

    need("icinga2")
    need("sudo")
    need("unshare")
    need_root()
    name = "root-only!backup root-only"
    with icinga2.running(str(tmp_path / "icinga2"), SUDO_SERVICE) as instance:
        since = time.time()
        assert instance.force_checks('service.name == "backup root-only"') == 1
        services, pending = instance.wait_for_results(since, names=[name], timeout=60)
        assert not pending, instance.log_tail()
    command = services[name]["last_check_result"]["command"]
    assert command[:3] == ["/usr/bin/sudo", "-n", os.path.join(icinga2.BIN, "check_backup_age")]
    argv = ["/usr/lib/nagios/plugins/check_backup_age"] + command[3:]
    assert argv == granted_command(), " ".join(argv)
    assert sudo_allows(str(tmp_path), argv)
    assert not sudo_allows(str(tmp_path), argv[:-1] + [argv[-1] + "0"])
    assert not sudo_allows(str(tmp_path), argv + ["-v"])
