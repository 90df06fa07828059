"""check_os_upgrades on recorded real apt output (and synthetic dnf output), no I/O but files.

The apt fixtures were captured with `apt-get -s -o Debug::NoLocking=1 ...` on this Debian 12
machine and in debootstrap roots of bullseye and trixie (lab/peers/debian_root.py).
"""
import datetime
import os
import subprocess
import sys

import pytest
from nagiosplugin import Critical, Ok, Warn

from osop_checks import proc
from osop_checks.checks import os_upgrades
from osop_checks.sources import apt, dnf, kernel, packages, processes, release
from tests.helpers import FIXTURES, fixture, perf
from lab.peers import run_inprocess



# -- apt parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, total, security, kept_back", [
    ("apt/dist-upgrade_bookworm.txt", 122, 81, []),
    ("apt/upgrade_bookworm.txt", 122, 81, []),
    ("apt/dist-upgrade_bullseye.txt", 28, 28, []),
    ("apt/dist-upgrade_trixie.txt", 1, 1, []),
    ("apt/held_trixie.txt", 0, 0, ["libzstd1"]),
    ("apt/held-upgrade_trixie.txt", 0, 0, ["libzstd1"]),
    ("apt/held-upgrade_bullseye.txt", 25, 25, ["libc-bin", "libc6", "tzdata"]),
    ("apt/kernel-dist-upgrade_bullseye.txt", 33, 31, []),
    ("apt/kernel-upgrade_bullseye.txt", 29, 29, ["linux-image-amd64"]),
    ("apt/uptodate_bullseye.txt", 0, 0, []),
    ("apt/uptodate_trixie.txt", 0, 0, []),
])
def test_parse_real_simulations(name, total, security, kept_back):
    text = fixture(name)
    upgrades = apt.parse_simulation(text)
    assert len(upgrades) == total
    assert sum(u.security for u in upgrades) == security
    assert apt.parse_kept_back(text) == kept_back
    # The same count Monitoring Plugins' check_apt would give: its own regular expression.
    import re
    critical = re.compile(r"^[^\(]*\(.* (Debian-Security:|Ubuntu:[^/]*/[^-]*-security)")
    assert security == sum(1 for line in text.splitlines()
                           if line.startswith("Inst") and critical.search(line))


def test_inst_line_fields():
    upgrades = {u.package: u
                for u in apt.parse_simulation(fixture("apt/dist-upgrade_bookworm.txt"))}
    both = upgrades["libgcrypt20"]
    assert (both.current, both.candidate, both.arch) == ("1.10.1-3", "1.10.1-3+deb12u1", "amd64")
    assert both.origins == ["Debian:12.15/oldstable", "Debian-Security:12/oldstable-security"]
    assert both.security and both.pocket == "oldstable-security"
    plain = upgrades["base-files"]
    assert not plain.security and plain.pocket == "oldstable"
    assert upgrades["perl-modules-5.36"].arch == "all"


def test_new_packages_have_no_current_version():
    upgrades = {u.package: u for u in apt.parse_simulation(
        fixture("apt/kernel-dist-upgrade_bullseye.txt"))}
    new = upgrades["linux-image-5.10.0-46-amd64"]
    assert new.current is None and new.security
    assert upgrades["firmware-linux-free"].current is None
    assert not upgrades["firmware-linux-free"].security
    assert "(new)" in os_upgrades.describe_upgrade(new)


@pytest.mark.parametrize("origin, security", [
    ("Debian-Security:12/stable-security", True),
    ("Debian-Security:11/oldoldstable-security", True),
    ("Ubuntu:22.04/jammy-security", True),
    ("Ubuntu:22.04/jammy-updates", False),
    ("UbuntuESMApps:22.04/jammy-apps-security", True),  # check_apt's default misses these
    ("Debian:12.15/oldstable", False),
    ("cloud-sdk:cloud-sdk-bookworm", False),
    ("nodistro:nodistro", False),
])
def test_security_origins(origin, security):
    assert apt.is_security_origin(origin) is security


def test_ubuntu_and_local_origins_synthetic():
    text = fixture("apt/jammy_synthetic.txt")
    upgrades = {u.package: u for u in apt.parse_simulation(text)}
    assert upgrades["libssl3"].security and upgrades["libssl3"].pocket == "jammy-security"
    assert not upgrades["snapd"].security
    assert upgrades["localpkg"].origins == [] and not upgrades["localpkg"].security
    assert apt.parse_removals(text) == ["oldpkg"]
    assert apt.parse_deferred(text) == ["ubuntu-advantage-tools"]
    assert apt.parse_kept_back(text) == []


@pytest.mark.parametrize("text", [
    "",
    "E: Could not open lock file\n",
    "Reading package lists...\nInst foo garbage\n0 upgraded, 0 newly installed, 0 to remove "
    "and 0 not upgraded.\n",
    "Inst foo [1] (2 Debian:12/stable [amd64])\n2 upgraded, 0 newly installed, 0 to remove "
    "and 0 not upgraded.\n",
])
def test_layouts_not_understood_fail_loudly(text):
    with pytest.raises(proc.LayoutError):
        apt.parse_simulation(text)


def test_holds_from_dpkg_status():
    status = ("Package: libzstd1\nStatus: hold ok installed\nVersion: 1\n\n"
              "Package: bash\nStatus: install ok installed\n\n"
              "Package: tzdata\nStatus: hold ok installed\n")
    assert apt.parse_holds(status) == ["libzstd1", "tzdata"]


def test_apt_argv_never_locks_and_roots():
    argv = apt.apt_argv(["apt-get"], "upgrade", "/srv/c")
    assert argv[:4] == ["apt-get", "-s", "-o", "Debug::NoLocking=1"]
    assert "Dir=/srv/c" in argv and "Dir::State::status=/srv/c/var/lib/dpkg/status" in argv
    assert argv[-1] == "upgrade"
    # A command prefix is taken as given: the container's apt reads its own files.
    assert apt.apt_argv(["chroot", "/srv/c", "apt-get"], "dist-upgrade", "/srv/c") == [
        "chroot", "/srv/c", "apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"]


# -- dnf parsing (synthetic fixtures: no RHEL host here) -------------------------------------

def test_dnf_check_update_and_security():
    upgrades = dnf.parse_check_update(fixture("dnf/check-update_el9_synthetic.txt"))
    assert [u.package for u in upgrades] == [
        "NetworkManager", "bash", "kernel", "openssl-libs", "python3-setuptools-wheel",
        "selinux-policy-targeted", "tzdata"]  # the Obsoleting section is not upgrades
    advisories = dnf.parse_updateinfo(fixture("dnf/updateinfo-security_el9_synthetic.txt"))
    dnf.classify(upgrades, advisories)
    assert sorted(u.package for u in upgrades if u.security) == [
        "kernel", "openssl-libs", "python3-setuptools-wheel"]
    kernel = [u for u in upgrades if u.package == "kernel"][0]
    assert kernel.origins == ["baseos", "RHSA-2024:3501"]


def test_dnf_wrapped_rows_and_dnf5_table():
    upgrades = dnf.parse_check_update(fixture("dnf/check-update_wrapped_synthetic.txt"))
    assert [(u.package, u.candidate) for u in upgrades] == [
        ("google-cloud-sdk-gke-gcloud-auth-plugin", "478.0.0-1"),
        ("vim-minimal", "2:9.0.2153-1.fc39")]
    assert dnf.parse_check_update(fixture("dnf/check-update_none_synthetic.txt")) == []
    assert dnf.parse_updateinfo(fixture("dnf/updateinfo-security_dnf5_synthetic.txt")) == {
        ("openssl-libs", "x86_64"): "FEDORA-2024-5a2f9b1c2",
        ("vim-minimal", "x86_64"): "FEDORA-2024-7c61d0e3a"}


@pytest.mark.parametrize("text", ["bash.x86_64 1.0 baseos extra\n", "bash 1.0 baseos\n"])
def test_dnf_layout_errors(text):
    with pytest.raises(proc.LayoutError):
        dnf.parse_check_update(text)


def test_split_nevra():
    assert dnf.split_nevra("openssl-libs-1:3.0.7-25.el9_3.x86_64") == (
        "openssl-libs", "1:3.0.7-25.el9_3", "x86_64")
    assert dnf.split_nevra("not-a-package") is None


# -- kernels ------------------------------------------------------------------------------

def test_kernel_comparison(tmp_path):
    for kernel_release in ("5.10.0-9-amd64", "5.10.0-32-amd64", "5.10.0-28-amd64"):
        (tmp_path / ("vmlinuz-" + kernel_release)).write_text("")
    (tmp_path / "config-5.10.0-99-amd64").write_text("")
    installed = kernel.installed_kernels(str(tmp_path))
    assert installed == ["5.10.0-9-amd64", "5.10.0-28-amd64", "5.10.0-32-amd64"]
    assert "newest installed 5.10.0-32-amd64" in kernel.kernel_reason("5.10.0-28-amd64",
                                                                        installed)
    assert kernel.kernel_reason("5.10.0-32-amd64", installed) is None
    # A container or a VM booted from outside: nothing installed, or newer than installed.
    assert kernel.kernel_reason("6.18.44-fc", []) is None
    assert kernel.kernel_reason("6.1.0-1-amd64", installed) is None


# -- the check, with an injected host --------------------------------------------------------

class FixtureHost:
    """A host answering from recorded apt output; counts how often it was asked."""
    name = "apt"

    def __init__(self, text, held=(), reboot=None, age=3600, inputs=()):
        self.text = text
        self.held = list(held)
        self.reboot_ = reboot or packages.Reboot()
        self.age = age
        self.inputs = list(inputs)
        self.asked = 0

    def identity(self):
        return {"fixture": self.text[:50]}

    def cache_inputs(self):
        return self.inputs

    def pending(self):
        self.asked += 1
        return packages.Pending("apt", upgrades=apt.parse_simulation(self.text),
                                held=self.held, kept_back=apt.parse_kept_back(self.text),
                                removals=apt.parse_removals(self.text),
                                deferred=apt.parse_deferred(self.text))

    def reboot(self):
        return packages.Reboot(list(self.reboot_.reasons), list(self.reboot_.packages))

    def list_age(self):
        if self.age is None:
            return packages.ListAge(None, None)
        return packages.ListAge("/var/lib/apt/lists/x", NOW - self.age)


NOW = 1_800_000_000.0


def run(host, *argv):
    module = _Module(host)
    return run_inprocess(module, ["--no-cache"] + list(argv))


class _Module:
    NAME = os_upgrades.NAME
    build_parser = staticmethod(os_upgrades.build_parser)

    def __init__(self, host):
        self.build_check = lambda args: os_upgrades.build_check(
            args, detect=lambda a: host, boot="/nonexistent", now=lambda: NOW,
            scan=processes.Scan, support=lambda root: None)


def test_security_upgrades_are_critical_by_default():
    out = run(FixtureHost(fixture("apt/dist-upgrade_bookworm.txt")))
    assert out.exitcode == 2
    assert out.status_line.startswith("OS_UPGRADES CRITICAL - 122 upgrades (81 security)")
    data = perf(out)
    assert data["upgrades"].startswith("122;")
    assert data["security_upgrades"].startswith("81;")
    assert data["other_upgrades"].startswith("41;")
    assert data["reboot_required"].startswith("0;")
    assert data["list_age"].startswith("3600s;")
    lines = out.output.splitlines()[1:]
    marked = [i for i, line in enumerate(lines) if line.startswith("[SECURITY] ")]
    assert len(marked) == 81 and marked == list(range(81))  # security first
    assert "[SECURITY] libgcrypt20 1.10.1-3 -> 1.10.1-3+deb12u1 (Debian:12.15/oldstable, " \
           "Debian-Security:12/oldstable-security)" in lines
    assert "base-files 12.4+deb12u11 -> 12.4+deb12u15 (Debian:12.15/oldstable)" in lines


def test_other_upgrades_warn_from_one_and_thresholds():
    text = fixture("apt/dist-upgrade_bookworm.txt")
    out = run(FixtureHost(text), "--security-critical", "100")
    assert out.exitcode == 1  # 41 other upgrades: WARNING from 1
    out = run(FixtureHost(text), "--security-critical", "100", "-w", "50", "-c", "60")
    assert out.exitcode == 0
    out = run(FixtureHost(text), "--security-critical", "100", "-w", "10", "-c", "40")
    assert out.exitcode == 2
    out = run(FixtureHost(text), "--security-warning", "50", "--security-critical", "90",
              "-w", "50")
    assert out.exitcode == 1


def test_include_exclude():
    text = fixture("apt/dist-upgrade_bookworm.txt")
    out = run(FixtureHost(text), "--include", "^python3", "--exclude", "venv")
    assert "6 upgrades (5 security)" in out.status_line
    out = run(FixtureHost(text), "--include", "^nothing-like-this$")
    assert out.exitcode == 0
    assert out.status_line.startswith("OS_UPGRADES OK - no upgrades pending, lists 1h old")


def test_up_to_date_is_ok():
    out = run(FixtureHost(fixture("apt/uptodate_trixie.txt")))
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith("OS_UPGRADES OK - no upgrades pending")


def test_held_packages_reported_with_their_state():
    host = FixtureHost(fixture("apt/held_trixie.txt"), held=["libzstd1"])
    out = run(host)
    assert out.exitcode == 0
    assert "no upgrades pending, 1 held" in out.status_line
    assert "held: libzstd1 (an upgrade is kept back)" in out.output
    assert perf(out)["held"].startswith("1;")
    assert run(FixtureHost(fixture("apt/held_trixie.txt"), held=["libzstd1"]),
               "--held-state", "warn").exitcode == 1


def test_ubuntu_removals_and_phased_updates_in_long_output():
    out = run(FixtureHost(fixture("apt/jammy_synthetic.txt")))
    assert out.status_line.startswith("OS_UPGRADES CRITICAL - 3 upgrades (1 security)")
    lines = out.output.splitlines()
    assert lines[1] == ("[SECURITY] libssl3 3.0.2-0ubuntu1.10 -> 3.0.2-0ubuntu1.12 "
                        "(Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security)")
    assert "localpkg 1.0 -> 1.1" in lines
    assert "to remove: oldpkg" in lines
    assert "deferred by phasing (Ubuntu): ubuntu-advantage-tools" in lines


def test_kept_back_without_hold_is_listed():
    out = run(FixtureHost(fixture("apt/kernel-upgrade_bullseye.txt")))
    assert "1 kept back" in out.status_line
    assert "kept back (by --upgrade-mode upgrade or a conflict): linux-image-amd64" in out.output


@pytest.mark.parametrize("state, code", [("ok", 0), ("warn", 1), ("crit", 2)])
def test_reboot_state(state, code):
    reboot = packages.Reboot(["/run/reboot-required exists"], ["linux-image-6.1.0-21-amd64"])
    out = run(FixtureHost(fixture("apt/uptodate_trixie.txt"), reboot=reboot),
              "--reboot-state", state)
    assert out.exitcode == code
    assert "reboot required" in out.status_line
    assert perf(out)["reboot_required"].startswith("1;")
    assert "reboot required by: linux-image-6.1.0-21-amd64" in out.output


def test_running_kernel_older_than_installed(tmp_path):
    (tmp_path / "vmlinuz-6.1.0-21-amd64").write_text("")
    (tmp_path / "vmlinuz-6.1.0-18-amd64").write_text("")
    host = FixtureHost(fixture("apt/uptodate_trixie.txt"))

    class Module(_Module):
        def __init__(self):
            self.build_check = lambda args: os_upgrades.build_check(
                args, detect=lambda a: host, boot=str(tmp_path), now=lambda: NOW,
                uname=lambda: os.uname_result(("Linux", "h", "6.1.0-18-amd64", "#1", "x")))
    out = run_inprocess(Module(), ["--no-cache"])
    assert out.exitcode == 1
    assert "reboot required: running kernel 6.1.0-18-amd64, newest installed " \
           "6.1.0-21-amd64" in out.output


def test_stale_and_missing_lists():
    text = fixture("apt/uptodate_trixie.txt")
    out = run(FixtureHost(text, age=10 * 86400), "--max-list-age", "2d")
    assert out.exitcode == 1
    assert "package lists 1w 3d old (max 2d)" in out.status_line
    assert run(FixtureHost(text, age=10 * 86400), "--max-list-age", "2d",
               "--list-age-state", "crit").exitcode == 2
    assert run(FixtureHost(text, age=10 * 86400), "--max-list-age", "0").exitcode == 0
    out = run(FixtureHost(text, age=None))
    assert out.exitcode == 1 and "no package lists" in out.status_line
    assert "list_age" not in perf(out)


def test_usage_errors_are_one_unknown_line():
    host = FixtureHost(fixture("apt/uptodate_trixie.txt"))
    for argv in (["--reboot-state", "maybe"], ["--max-list-age", "soon"], ["-w", "x"],
                 ["--include", "("], ["--upgrade-mode", "full"]):
        out = run(host, *argv)
        assert out.exitcode == 3
        lines = out.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("OS_UPGRADES UNKNOWN - "), out.output


def test_garbage_from_apt_is_unknown():
    out = run(FixtureHost("Reading package lists...\nsomething new\n"))
    assert out.exitcode == 3
    assert out.output.startswith("OS_UPGRADES UNKNOWN - apt-get printed no 'N upgraded")
    assert "Traceback" not in out.output


# -- the judgement on plain data ------------------------------------------------------------

def facts(security=0, other=0, held=(), kept_back=(), reboot=None, list_age=3600):
    """Facts of a host with ``security`` security and ``other`` other upgrades pending."""
    upgrades = [packages.Upgrade("p%02d" % i, "1", "2", security=i < security)
                for i in range(security + other)]
    lists = packages.ListAge(None, None) if list_age is None else packages.ListAge(
        "/var/lib/apt/lists/x", NOW - list_age)
    return os_upgrades.Facts("apt", packages.Pending("apt", upgrades=upgrades, held=list(held),
                                                     kept_back=list(kept_back)),
                             reboot or packages.Reboot(), lists)


def limits(*argv):
    """The Limits of a command line."""
    return os_upgrades.limits_of(os_upgrades.build_parser().parse_args(list(argv)))


def rendered(verdict):
    return sorted(str(p) for p in verdict.perfdata)


def test_judge_counts_against_their_ranges():
    verdict = os_upgrades.judge(facts(3, 5), limits(), NOW)
    assert verdict.state == Critical
    assert verdict.findings[:2] == [(Critical, "3 security upgrades"),
                                    (Warn, "5 other upgrades")]
    assert verdict.summary == "8 upgrades (3 security), lists 1h old"
    assert rendered(verdict) == [
        "held=0;;;0", "list_age=3600s;604800;;0", "other_upgrades=5;0;;0",
        "reboot_required=0;;;0;1", "security_upgrades=3;;0;0", "upgrades=8;;;0"]
    assert verdict.long == ["[SECURITY] p00 1 -> 2", "[SECURITY] p01 1 -> 2",
                            "[SECURITY] p02 1 -> 2", "p03 1 -> 2", "p04 1 -> 2", "p05 1 -> 2",
                            "p06 1 -> 2", "p07 1 -> 2",
                            "newest package list: /var/lib/apt/lists/x, 1h old"]
    relaxed = os_upgrades.judge(facts(3, 5), limits("--security-warning", "2",
                                                    "--security-critical", "5", "-w", "10"),
                                NOW)
    assert relaxed.state == Warn and relaxed.findings[:2] == [
        (Warn, "3 security upgrades"), (Ok, "5 other upgrades")]
    assert "security_upgrades=3;2;5;0" in rendered(relaxed)
    none = os_upgrades.judge(facts(), limits(), NOW)
    assert (none.state, none.summary) == (Ok, "no upgrades pending, lists 1h old")


def test_judge_held_kept_back_and_reboot_with_their_states():
    reboot = packages.Reboot(["/run/reboot-required exists"], ["linux-image-amd64"])
    host = facts(held=["libzstd1"], kept_back=["libzstd1", "tzdata"], reboot=reboot)
    verdict = os_upgrades.judge(host, limits(), NOW)
    assert verdict.state == Warn  # the reboot; held packages are OK by default
    assert verdict.findings[2:4] == [(Ok, "1 held"), (Warn, "reboot required")]
    assert verdict.summary == ("no upgrades pending, 1 held, 1 kept back, reboot required, "
                               "lists 1h old")
    assert verdict.long[:4] == [
        "held: libzstd1 (an upgrade is kept back)",
        "kept back (by --upgrade-mode upgrade or a conflict): tzdata",
        "reboot required: /run/reboot-required exists",
        "reboot required by: linux-image-amd64"]
    assert "held=1;;;0" in rendered(verdict) and "reboot_required=1;;;0;1" in rendered(verdict)
    strict = os_upgrades.judge(host, limits("--held-state", "crit", "--reboot-state", "ok"),
                               NOW)
    assert strict.state == Critical
    assert strict.findings[2:4] == [(Critical, "1 held"), (Ok, "reboot required")]


def test_judge_stale_and_missing_lists():
    stale = os_upgrades.judge(facts(list_age=9 * 86400), limits(), NOW)
    assert stale.state == Warn
    assert stale.findings[-1] == (Warn, "package lists 1w 2d old (max 1w)")
    assert stale.summary == "no upgrades pending, package lists 1w 2d old (max 1w)"
    assert "list_age=777600s;604800;;0" in rendered(stale)
    off = os_upgrades.judge(facts(list_age=9 * 86400), limits("--max-list-age", "0"), NOW)
    assert off.state == Ok and "list_age=777600s;;;0" in rendered(off)
    missing = os_upgrades.judge(facts(list_age=None), limits("--list-age-state", "crit"), NOW)
    assert missing.state == Critical
    assert missing.findings[-1] == (Critical, "no package lists (never updated?)")
    assert missing.summary == "no upgrades pending, no package lists"
    assert not any(p.startswith("list_age") for p in rendered(missing))
    # half a second over the limit: the line says so, the state counts whole seconds
    edge = os_upgrades.judge(facts(list_age=7 * 86400 + 0.5), limits(), NOW)
    assert edge.state == Ok and "package lists 1w old (max 1w)" in edge.summary


# -- the result cache -----------------------------------------------------------------------

def test_cache_hit_and_recompute_on_change(tmp_path):
    status = tmp_path / "status"
    lists = tmp_path / "lists"
    lists.mkdir()
    status.write_text("a")
    (lists / "x_Packages").write_text("b")
    host = FixtureHost(fixture("apt/dist-upgrade_trixie.txt"), inputs=[str(status), str(lists)])
    cache = str(tmp_path / "cache")
    os.mkdir(cache)
    argv = ["--cache-dir", cache]
    module = _Module(host)
    first = run_inprocess(module, argv)
    second = run_inprocess(module, argv)
    assert host.asked == 1
    assert first.status_line == second.status_line
    assert "answer cached at" in second.output and "answer cached at" not in first.output
    status.write_text("aa")  # dpkg status changed: ask again
    run_inprocess(module, argv)
    assert host.asked == 2
    run_inprocess(module, argv)
    assert host.asked == 2
    (lists / "y_Packages").write_text("new list")  # a list appeared
    run_inprocess(module, argv)
    assert host.asked == 3
    os.utime(lists / "x_Packages", (1, 1))  # a list changed (same size)
    run_inprocess(module, argv)
    assert host.asked == 4
    run_inprocess(module, argv + ["--no-cache"])
    assert host.asked == 5


def test_cache_applies_include_after_loading(tmp_path):
    host = FixtureHost(fixture("apt/dist-upgrade_bookworm.txt"))
    module = _Module(host)
    argv = ["--cache-dir", str(tmp_path)]
    run_inprocess(module, argv)
    out = run_inprocess(module, argv + ["--include", "^libgcrypt"])
    assert host.asked == 1
    assert "2 upgrades (2 security)" in out.status_line


def test_unwritable_cache_dir_is_unknown(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = run_inprocess(_Module(FixtureHost(fixture("apt/uptodate_trixie.txt"))),
                        ["--cache-dir", str(blocker / "sub")])
    assert out.exitcode == 3
    assert "cannot write the cache directory" in out.status_line


def test_corrupt_cache_is_recomputed(tmp_path):
    host = FixtureHost(fixture("apt/dist-upgrade_trixie.txt"))
    module = _Module(host)
    run_inprocess(module, ["--cache-dir", str(tmp_path)])
    for path in tmp_path.iterdir():
        path.write_text("{not json")
    out = run_inprocess(module, ["--cache-dir", str(tmp_path)])
    assert out.exitcode == 2 and host.asked == 2


# -- detection and processes ------------------------------------------------------------------

def test_detection(tmp_path):
    args = os_upgrades.build_parser().parse_args([])
    assert os_upgrades.detect_host(args, which=lambda c: "/usr/bin/" + c,
                                   exists=lambda p: True).name == "apt"
    host = os_upgrades.detect_host(args, which=lambda c: "/usr/bin/yum" if c == "yum" else None,
                                   exists=lambda p: False)
    assert host.name == "dnf" and host.command == ["yum"]
    with pytest.raises(Exception, match="no package manager"):
        os_upgrades.detect_host(args, which=lambda c: None, exists=lambda p: False)


def test_missing_apt_get_is_one_unknown_line(tmp_path):
    from lab.peers import run_plugin

    out = run_plugin("check_os_upgrades", ["--no-cache", "--apt-get", "/nonexistent/apt-get"])
    assert out.exitcode == 3
    assert out.output == "OS_UPGRADES UNKNOWN - command not found: /nonexistent/apt-get\n"


def test_import_is_light():
    code = ("import sys, osop_checks.checks.os_upgrades; "
            "print(sorted(m for m in ('psutil','requests','cryptography','pysnmp','dns',"
            "'osop_checks.sources.dnf') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_hung_apt_get_ends_within_the_timeout():
    from lab.peers import run_plugin
    import time as _time

    start = _time.monotonic()
    out = run_plugin("check_os_upgrades", ["--no-cache", "-t", "2",
                                           "--apt-get", "sh -c 'sleep 30; echo never'"])
    assert _time.monotonic() - start < 3 + 1.5  # the --timeout plus start-up
    assert out.exitcode == 3
    assert out.output.startswith("OS_UPGRADES UNKNOWN - ")
    assert len(out.output.splitlines()) == 1
    import psutil

    leftover = [p.pid for p in psutil.process_iter(["cmdline"])
                if "sleep 30; echo never" in " ".join(p.info["cmdline"] or ())]
    assert leftover == []


def test_dnf_host_end_to_end_on_replayed_output(tmp_path):
    """The dnf path as a process: a stand-in dnf replays the synthetic fixtures with dnf's
    exit codes (100: upgrades available), needs-restarting exits 1 (reboot required)."""
    from lab.peers import run_plugin

    fake = tmp_path / "dnf"
    fake.write_text(
        "#!/bin/sh\n"
        "case \"$*\" in\n"
        "  *check-update*) cat %s; exit 100;;\n"
        "  *updateinfo*) cat %s; exit 0;;\n"
        "esac\nexit 1\n" % (os.path.join(FIXTURES, "dnf/check-update_el9_synthetic.txt"),
                            os.path.join(FIXTURES, "dnf/updateinfo-security_el9_synthetic.txt")))
    restart = tmp_path / "needs-restarting"
    restart.write_text("#!/bin/sh\ncat %s\nexit 1\n" % os.path.join(
        FIXTURES, "dnf/needs-restarting-reboot_el9_synthetic.txt"))
    for script in (fake, restart):
        script.chmod(0o755)
    root = tmp_path / "root"
    (root / "var/cache/dnf").mkdir(parents=True)
    (tmp_path / "cache").mkdir()
    (root / "var/cache/dnf/baseos.solv").write_text("")
    out = run_plugin("check_os_upgrades", [
        "--package-manager", "dnf", "--dnf", str(fake), "--needs-restarting", str(restart),
        "--root", str(root), "--cache-dir", str(tmp_path / "cache")])
    assert out.exitcode == 2, out.output
    assert out.status_line.startswith(
        "OS_UPGRADES CRITICAL - 7 upgrades (3 security), reboot required, lists ")
    lines = out.output.splitlines()
    assert lines[1] == "[SECURITY] kernel 5.14.0-427.22.1.el9_4 (baseos, RHSA-2024:3501)"
    assert "reboot required by: kernel systemd" in lines
    again = run_plugin("check_os_upgrades", [
        "--package-manager", "dnf", "--dnf", str(fake), "--needs-restarting", str(restart),
        "--root", str(root), "--cache-dir", str(tmp_path / "cache")])
    assert "answer cached at" in again.output
    fake.write_text("#!/bin/sh\necho 'Error: Failed to load repo metadata' >&2\nexit 1\n")
    (root / "var/cache/dnf/baseos.solv").write_text("refreshed")  # the key changes
    broken = run_plugin("check_os_upgrades", [
        "--package-manager", "dnf", "--dnf", str(fake), "--root", str(root),
        "--no-cache"])
    assert broken.output == ("OS_UPGRADES UNKNOWN - dnf failed (exit 1): Error: Failed to "
                             "load repo metadata\n")


def test_dnf_without_needs_restarting_says_so(tmp_path):
    from lab.peers import run_plugin

    fake = tmp_path / "dnf"
    fake.write_text("#!/bin/sh\nexit 0\n")  # check-update: no upgrades
    fake.chmod(0o755)
    (tmp_path / "var/cache/dnf").mkdir(parents=True)
    (tmp_path / "var/cache/dnf/baseos.solv").write_text("")
    out = run_plugin("check_os_upgrades", [
        "--dnf", str(fake), "--needs-restarting", "/nonexistent/needs-restarting",
        "--root", str(tmp_path), "--no-cache"])
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith("OS_UPGRADES OK - no upgrades pending, lists ")
    assert "reboot: not known, /nonexistent/needs-restarting is not installed " \
           "(dnf-utils / yum-utils)" in out.output


def test_a_broken_needs_restarting_is_not_taken_for_a_missing_one(tmp_path):
    """needs-restarting is installed but fails, and bash's own words for that hold "command
    not found": the failure is told, not hidden behind "is not installed"."""
    from lab.peers import run_plugin

    fake = tmp_path / "dnf"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    broken = tmp_path / "needs-restarting"
    broken.write_text("#!/bin/bash\nosop-no-such-helper -r\n")
    broken.chmod(0o755)
    (tmp_path / "var/cache/dnf").mkdir(parents=True)
    (tmp_path / "var/cache/dnf/baseos.solv").write_text("")
    out = run_plugin("check_os_upgrades", [
        "--dnf", str(fake), "--needs-restarting", str(broken), "--root", str(tmp_path),
        "--no-cache"])
    assert out.exitcode == 3, out.output
    assert out.output.startswith("OS_UPGRADES UNKNOWN - needs-restarting failed (exit 127): "), \
        out.output
    assert "is not installed" not in out.output


def test_a_cache_dir_is_never_created_from_an_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = run_inprocess(os_upgrades, ["--cache-dir", "foo"])
    assert relative.exitcode == 3 and "not an absolute path" in relative.status_line
    absent = run_inprocess(os_upgrades, ["--cache-dir", str(tmp_path / "absent"),
                                         "--max-list-age", "0"])
    assert absent.exitcode == 3 and "(it must exist)" in absent.status_line
    assert os.listdir(tmp_path) == []


# -- the release's end of life (distro-info-data) -------------------------------------------

def at(day):
    """Noon UTC of an ISO date, in seconds."""
    import datetime
    return datetime.datetime.fromisoformat(day + "T12:00:00+00:00").timestamp()


DEBIAN_CSV = """version,codename,series,created,release,eol,eol-lts,eol-elts
10,Buster,buster,2017-06-17,2019-07-06,2022-09-10,2024-06-30,2029-06-30
11,Bullseye,bullseye,2019-07-06,2021-08-14,2024-08-14,2026-08-31,2031-06-30
12,Bookworm,bookworm,2021-08-14,2023-06-10,2026-07-11,2028-06-30,2033-06-30
13,Trixie,trixie,2023-06-10,2025-08-09,2028-08-09,2030-06-30,2035-06-30
14,Forky,forky,2025-08-09
15,Duke,duke,2027-08-01
16,Sid,sid,1993-08-16
"""  # the rows of distro-info-data 0.66+deb13u2's debian.csv (Debian 13)


def support_of(codename, version="", table=DEBIAN_CSV, distro="debian"):
    return release.parse_table(table, distro,
                               release.Release(distro, version, codename, codename))


def eol_facts(support):
    base = facts()
    return os_upgrades.Facts("apt", base.pending, base.reboot, base.lists, None, support)


def test_release_from_os_release():
    found = release.parse_os_release(fixture("os-release/bullseye.txt"))
    assert (found.distro, found.version, found.codename) == ("debian", "11", "bullseye")
    mint = release.parse_os_release('ID=linuxmint\nID_LIKE="ubuntu debian"\n'
                                    'VERSION_CODENAME=virginia\nUBUNTU_CODENAME=jammy\n')
    assert release.table_of(mint) == "ubuntu" and mint.codename == "jammy"
    assert release.table_of(release.parse_os_release("ID=rocky\nVERSION_ID=9\n")) is None


def test_support_dates_from_the_table():
    assert support_of("bullseye") == release.Support(
        "Debian 11 (bullseye)", datetime.date(2024, 8, 14), datetime.date(2026, 8, 31),
        source="debian")
    assert support_of("", version="10").lts == datetime.date(2024, 6, 30)
    assert support_of("forky").eol is None  # testing: no end announced
    missing = support_of("duke", table=DEBIAN_CSV.replace("15,Duke", "15,Dukx")
                         .replace(",duke,", ",dukx,"))
    assert missing.label is None and "does not list duke" in missing.note
    assert "columns" in release.parse_table("garbage\n", "debian", None).note
    ubuntu = release.parse_table(
        "version,codename,series,created,release,eol,eol-server,eol-esm,eol-legacy\n"
        "22.04 LTS,Jammy Jellyfish,jammy,2021-10-14,2022-04-21,2027-06-01,2027-06-01,"
        "2032-04-21,2034-04-25\n", "ubuntu", release.Release("ubuntu", "22.04", "jammy", "x"))
    assert (ubuntu.label, ubuntu.eol, ubuntu.lts) == (
        "Ubuntu 22.04 LTS (jammy)", datetime.date(2027, 6, 1), None)


@pytest.mark.parametrize("codename, day, state, words", [
    # in Debian 11's LTS years, Debian 10's are over
    ("bullseye", "2025-06-01", Warn,
     "Debian 11 (bullseye) in LTS since 2024-08-14 (fewer packages fixed), until 2026-08-31"),
    ("buster", "2025-06-01", Critical,
     "Debian 10 (buster) has no security support since 2024-06-30 (LTS ended)"),
    # today: Debian 11's LTS ended on 2026-08-31 as well (ELTS is not counted)
    ("bullseye", "2026-12-06", Critical,
     "Debian 11 (bullseye) has no security support since 2026-08-31 (LTS ended)"),
    ("bookworm", "2026-12-06", Warn,
     "Debian 12 (bookworm) in LTS since 2026-07-11 (fewer packages fixed), until 2028-06-30"),
    ("bookworm", "2026-05-01", Warn, "Debian 12 (bookworm) security support ends 2026-07-11 "
     "(in 10w 1d)"),
    ("bookworm", "2026-04-01", Ok, None),
    ("trixie", "2026-12-06", Ok, None),
    ("forky", "2026-12-06", Ok, None),
])
def test_judge_end_of_life(codename, day, state, words):
    verdict = os_upgrades.judge(eol_facts(support_of(codename)), limits(), at(day))
    assert verdict.state == state
    if words:
        assert verdict.findings[-1] == (state, words)
        assert verdict.summary.endswith(", " + words)
    else:
        assert len(verdict.findings) == 5
    assert any(line.startswith(support_of(codename).label + ": regular security support "
                               "until ") for line in verdict.long)


def test_judge_lts_accepted_and_its_end_warned():
    accepted = limits("--lts-state", "ok")
    assert os_upgrades.judge(eol_facts(support_of("bullseye")), accepted,
                             at("2025-06-01")).state == Ok
    ending = os_upgrades.judge(eol_facts(support_of("bullseye")), accepted, at("2026-07-01"))
    assert ending.state == Warn and "until 2026-08-31 (in " in ending.summary
    assert os_upgrades.judge(eol_facts(support_of("bullseye")), limits("--eol-state", "warn"),
                             at("2026-12-06")).state == Warn
    # --eol-warning 0: only the end itself
    assert os_upgrades.judge(eol_facts(support_of("bookworm")), limits("--eol-warning", "0"),
                             at("2026-07-11")).state == Ok
    assert os_upgrades.judge(eol_facts(support_of("bookworm")), limits("--eol-warning", "0"),
                             at("2026-07-12")).state == Warn


def test_judge_end_of_life_not_known_is_said_not_judged():
    verdict = os_upgrades.judge(eol_facts(release.Support(
        note="no /usr/share/distro-info/debian.csv: install distro-info-data")), limits(), NOW)
    assert verdict.state == Ok
    assert verdict.long[-1] == ("end of life: not known, no /usr/share/distro-info/debian.csv: "
                                "install distro-info-data")


def test_support_read_below_a_root(tmp_path):
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_text('ID=debian\nVERSION_ID="10"\n'
                                                 'VERSION_CODENAME=buster\n')
    (tmp_path / "etc/os-release").symlink_to("../usr/lib/os-release")
    assert "install distro-info-data" in release.support(str(tmp_path)).note
    (tmp_path / "usr/share/distro-info").mkdir(parents=True)
    (tmp_path / "usr/share/distro-info/debian.csv").write_text(DEBIAN_CSV)
    assert release.support(str(tmp_path)).label == "Debian 10 (buster)"


# -- services on replaced code (/proc) ------------------------------------------------------

def test_deleted_code_from_real_maps():
    maps = fixture("proc/maps_sleep-preloaded-libz-replaced_bookworm.txt")
    assert processes.deleted_code(maps) == {"/usr/local/lib/libosopz.so.1"}
    # not code: a deleted data file, memfd, a JIT's file in /tmp, a deleted file not mapped
    # executable
    assert processes.deleted_code(
        "7f0-7f1 r--p 00000000 fe:00 12 /usr/lib/locale/locale-archive (deleted)\n"
        "7f1-7f2 r-xp 00000000 00:01 13 /memfd:libffi (deleted)\n"
        "7f2-7f3 r-xs 00000000 fe:00 14 /tmp/ffiXXXX (deleted)\n"
        "7f3-7f4 r-xp 00000000 fe:00 15 /usr/sbin/nginx\n") == set()


@pytest.mark.parametrize("name, unit", [
    ("proc/cgroup_unit-in-nspawn-container_bookworm.txt", "osop-heldlib.service"),
    ("proc/cgroup_nspawn-container-pid1_bookworm.txt", "init.scope"),
    ("proc/cgroup_no-systemd-host.txt", None),
])
def test_unit_of_real_cgroups(name, unit):
    assert processes.unit_of(fixture(name)) == unit


def test_unit_of_user_services_and_sessions():
    assert processes.unit_of("0::/user.slice/user-1000.slice/user@1000.service/app.slice/"
                             "pipewire.service\n") == "pipewire.service"
    assert processes.unit_of("0::/user.slice/user-1000.slice/session-3.scope\n") == \
        "session-3.scope"


def fake_proc(tmp_path, pid, maps, exe="/usr/sbin/nginx", comm="nginx",
              cgroup="0::/system.slice/nginx.service\n"):
    base = tmp_path / str(pid)
    base.mkdir()
    (base / "maps").write_text(maps)
    (base / "comm").write_text(comm + "\n")
    (base / "cgroup").write_text(cgroup)
    os.symlink(exe, base / "exe")


def test_scan_finds_deleted_libraries_and_programs(tmp_path):
    fake_proc(tmp_path, 10, fixture("proc/maps_sleep-preloaded-libz-replaced_bookworm.txt"))
    fake_proc(tmp_path, 11, "7f-8f r-xp 0 fe:00 1 /usr/sbin/postfix\n", comm="master",
              exe="/usr/lib/postfix/sbin/master (deleted)",
              cgroup="0::/system.slice/postfix@-.service\n")
    fake_proc(tmp_path, 12, "7f-8f r-xp 0 fe:00 1 /usr/bin/bash\n")
    fake_proc(tmp_path, 13, "")  # a kernel thread
    found = processes.scan(str(tmp_path), own=1)
    assert found.stale == [
        processes.Stale(10, "nginx", "nginx.service", ["/usr/local/lib/libosopz.so.1"]),
        processes.Stale(11, "master", "postfix@-.service", ["/usr/lib/postfix/sbin/master"])]
    assert (found.scanned, found.truncated) == (3, False)
    capped = processes.scan(str(tmp_path), own=1, total_limit=10)
    assert capped.truncated and capped.scanned == 1


def scan_of(*stale, unreadable=0, root=True):
    return processes.Scan(list(stale), scanned=100, unreadable=unreadable, root=root)


def test_judge_restarts_by_unit():
    base = facts()
    scan = scan_of(processes.Stale(5, "nginx", "nginx.service", ["/usr/lib/libssl.so.3"]),
                   processes.Stale(6, "nginx", "nginx.service", ["/usr/lib/libssl.so.3"]),
                   processes.Stale(7, "master", "postfix.service", ["/usr/sbin/postfix"]),
                   processes.Stale(9, "java", None, ["/opt/jdk/lib/libjvm.so"]))
    verdict = os_upgrades.judge(os_upgrades.Facts("apt", base.pending, base.reboot,
                                                  base.lists, scan), limits(), NOW)
    assert verdict.state == Warn
    assert verdict.summary == ("no upgrades pending, lists 1h old, restart needed: "
                               "java (pid 9), nginx.service, postfix.service")
    assert verdict.long[-3:] == [
        "restart needed: java (pid 9): /opt/jdk/lib/libjvm.so",
        "restart needed: nginx.service (5 nginx, 6 nginx): /usr/lib/libssl.so.3",
        "restart needed: postfix.service (7 master): /usr/sbin/postfix"]
    assert "restarts_needed=3;;;0" in rendered(verdict)
    strict = os_upgrades.judge(os_upgrades.Facts("apt", base.pending, base.reboot, base.lists,
                                                 scan), limits("--restart-state", "crit"), NOW)
    assert strict.state == Critical
    clean = os_upgrades.judge(os_upgrades.Facts("apt", base.pending, base.reboot, base.lists,
                                                scan_of()), limits(), NOW)
    assert clean.state == Ok and "restarts_needed=0;;;0" in rendered(clean)


def test_judge_restarts_says_with_v_what_a_user_could_not_read():
    base = facts()
    scan = scan_of(unreadable=42, root=False)
    quiet = os_upgrades.judge(os_upgrades.Facts("apt", base.pending, base.reboot, base.lists,
                                                scan), limits(), NOW)
    assert not any("could not be read" in line for line in quiet.long)
    verbose = os_upgrades.judge(os_upgrades.Facts("apt", base.pending, base.reboot,
                                                  base.lists, scan), limits("-v"), NOW)
    assert verbose.long[-1] == ("restarts: the maps of 42 processes could not be read "
                                "(processes of other users: run as root to see them)")
