"""check_os_upgrades on recorded real apt output (and synthetic dnf output), no I/O but files.

The apt fixtures were captured with `apt-get -s -o Debug::NoLocking=1 ...` on this Debian 12
machine and in debootstrap roots of bullseye and trixie (lab/peers/debian_root.py).
"""
import os
import subprocess
import sys

import pytest
from nagiosplugin import Critical, Ok, Warn

from osop_checks import proc
from osop_checks.checks import os_upgrades
from osop_checks.sources import apt, dnf, kernel, packages
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
    for release in ("5.10.0-9-amd64", "5.10.0-32-amd64", "5.10.0-28-amd64"):
        (tmp_path / ("vmlinuz-" + release)).write_text("")
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
            args, detect=lambda a: host, boot="/nonexistent", now=lambda: NOW)


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
