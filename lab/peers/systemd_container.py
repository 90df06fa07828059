"""A real systemd (Debian bookworm, systemd 252) booted with systemd-nspawn, for
check_systemd_units.

This machine's PID 1 is not systemd, so the tests boot one: a cached debootstrap root
(lab/peers/debian_root.py, with systemd, systemd-sysv and dbus) is copied fresh for each
session, unit files made for each case are installed into the copy, and
``systemd-nspawn -D ROOT --register=no --keep-unit -b`` boots it in the background (host network,
nothing listens). The container's PID 1 is found as the nspawn process's child, and the check
reaches it through the command prefix ``nsenter -t PID -a systemctl``. Leaving the context kills
(SIGTERM: a clean poweroff) the nspawn process and removes the copy.

Needs root, debootstrap and systemd-container (installed with apt-get when missing and root).
"""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from lab.peers import debian_root

RELEASE = "bookworm"
INCLUDE = ("systemd", "systemd-sysv", "dbus")

# Every case the tests judge, as unit files. Timers fire on 2099-01-01 only, so none of them
# elapses during a test; the "last trigger" of a Persistent timer is read by systemd from the
# mtime of its stamp file in /var/lib/systemd/timers at boot, which is how a timer whose
# service last ran long ago is made for real (see STAMPS).
UNITS = {
    # failed: the main process exits 1
    "osop-fail.service": """\
[Unit]
Description=osop test: a service that fails
[Service]
Type=simple
ExecStart=/bin/false
[Install]
WantedBy=multi-user.target
""",
    # a oneshot that ran and exited successfully: inactive/dead, Result=success
    "osop-oneshot.service": """\
[Unit]
Description=osop test: a oneshot that succeeds
[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
""",
    # a oneshot that stays active after it exited: active/exited
    "osop-remain.service": """\
[Unit]
Description=osop test: a oneshot that remains after exit
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
""",
    # its start condition fails: skipped, inactive/dead, ConditionResult=no
    "osop-condition.service": """\
[Unit]
Description=osop test: a start condition that fails
ConditionPathExists=/nonexistent/osop
[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
""",
    # must be active and is: a long-running service
    "osop-running.service": """\
[Unit]
Description=osop test: a running service
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
""",
    # must be active but is stopped: installed, never enabled
    "osop-stopped.service": """\
[Unit]
Description=osop test: a stopped service
[Service]
ExecStart=/bin/sleep infinity
""",
    # a timer that never ran (active since boot, elapses in 2099)
    "osop-never.timer": """\
[Unit]
Description=osop test: a timer that never ran
[Timer]
OnCalendar=2099-01-01
[Install]
WantedBy=timers.target
""",
    "osop-never.service": """\
[Unit]
Description=osop test: the service of the timer that never ran
[Service]
Type=oneshot
ExecStart=/bin/true
""",
    # a timer whose service last ran three days ago (stamp file)
    "osop-old.timer": """\
[Unit]
Description=osop test: a timer that last ran long ago
[Timer]
OnCalendar=2099-01-01
Persistent=true
[Install]
WantedBy=timers.target
""",
    "osop-old.service": """\
[Unit]
Description=osop test: the service of the timer that last ran long ago
[Service]
Type=oneshot
ExecStart=/bin/true
""",
    # a timer whose service ran an hour ago (stamp file)
    "osop-recent.timer": """\
[Unit]
Description=osop test: a timer that ran an hour ago
[Timer]
OnCalendar=2099-01-01
Persistent=true
[Install]
WantedBy=timers.target
""",
    "osop-recent.service": """\
[Unit]
Description=osop test: the service of the timer that ran an hour ago
[Service]
Type=oneshot
ExecStart=/bin/true
""",
}

# Persistent timers' last trigger, in seconds before the boot.
STAMPS = {"osop-old.timer": 3 * 86400, "osop-recent.timer": 3600}

# The host-health cases (tests/integration/test_systemd_units_hosts.py), in a container of
# their own: a unit running and enabled, one installed but neither enabled nor loaded, one
# masked, one that fails in this boot (the test resets it: nothing failed now, the journal
# remembers), and a lingering user whose user manager runs a failing and a running unit.
HOST_INCLUDE = INCLUDE + ("dbus-user-session", "libpam-systemd")
HOST_UNITS = {
    "osop-running.service": UNITS["osop-running.service"],
    "osop-stopped.service": UNITS["osop-stopped.service"],
    "osop-flap.service": """\
[Unit]
Description=osop test: a service that fails once in this boot
[Service]
Type=oneshot
ExecStart=/bin/false
[Install]
WantedBy=multi-user.target
""",
}
MASKED = ("osop-masked.service",)
# installed with an [Install] section but not enabled: the test starts it, so it runs now
# and would not come back after a reboot
DISABLED_UNITS = {
    "osop-disabled.service": """\
[Unit]
Description=osop test: a service that runs but is not enabled
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
""",
}
LINGERING_USER = "vet"
USER_UNITS = {
    "osop-user-fail.service": """\
[Unit]
Description=osop test: a user unit that fails
[Service]
Type=oneshot
ExecStart=/bin/false
[Install]
WantedBy=default.target
""",
    "osop-user-sync.service": """\
[Unit]
Description=osop test: a user unit that runs
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=default.target
""",
}


def add_host_cases(root, user=LINGERING_USER, user_units=USER_UNITS, masked=MASKED,
                   disabled=DISABLED_UNITS):
    """Mask ``masked`` (a link to /dev/null, as systemctl mask makes), install ``disabled``
    without enabling them, and add ``user`` (uid 1000, lingering: its user manager starts
    at boot) with ``user_units`` enabled."""
    system = os.path.join(root, "etc/systemd/system")
    for name, text in disabled.items():
        with open(os.path.join(system, name), "w") as handle:
            handle.write(text)
    for name in masked:
        os.symlink("/dev/null", os.path.join(system, name))
    added = debian_root.chroot(root, "useradd", "-m", "-u", "1000", "-s", "/bin/sh", user)
    if added.returncode:
        raise RuntimeError("useradd %s in the container's root: %s" % (user, added.stderr))
    home = os.path.join(root, "home", user)
    units = os.path.join(home, ".config/systemd/user")
    wants = os.path.join(units, "default.target.wants")
    os.makedirs(wants)
    for name, text in user_units.items():
        with open(os.path.join(units, name), "w") as handle:
            handle.write(text)
        os.symlink(os.path.join("..", name), os.path.join(wants, name))
    for top, dirs, files in os.walk(os.path.join(home, ".config")):
        for entry in [top] + [os.path.join(top, n) for n in dirs + files]:
            os.lchown(entry, 1000, 1000)
    linger = os.path.join(root, "var/lib/systemd/linger")
    os.makedirs(linger, exist_ok=True)
    open(os.path.join(linger, user), "w").close()

NSENTER = "nsenter"


def ensure_tools():
    """Install debootstrap and systemd-container when missing (root only); True when usable."""
    missing = [p for p, c in (("debootstrap", "debootstrap"),
                              ("systemd-container", "systemd-nspawn"))
               if not shutil.which(c, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q"] + missing, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return all(shutil.which(c, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
               for c in ("debootstrap", "systemd-nspawn", NSENTER))


def install_units(root, units=UNITS, stamps=STAMPS, now=None):
    """Write unit files into ``root``'s /etc/systemd/system, enable those with an [Install]
    section (the symlinks systemctl enable makes), and date the timers' stamp files."""
    now = time.time() if now is None else now
    system = os.path.join(root, "etc/systemd/system")
    for name, text in units.items():
        with open(os.path.join(system, name), "w") as handle:
            handle.write(text)
        for line in text.splitlines():
            if line.startswith("WantedBy="):
                wants = os.path.join(system, line.split("=", 1)[1] + ".wants")
                os.makedirs(wants, exist_ok=True)
                link = os.path.join(wants, name)
                if not os.path.lexists(link):
                    os.symlink("/etc/systemd/system/" + name, link)
    timers = os.path.join(root, "var/lib/systemd/timers")
    os.makedirs(timers, exist_ok=True)
    for name, age in stamps.items():
        stamp = os.path.join(timers, "stamp-" + name)
        open(stamp, "w").close()
        os.utime(stamp, (now - age, now - age))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


class Container:
    """A booted container: ``pid`` is its PID 1 as seen from here, ``systemctl`` the argv
    prefix that runs systemctl inside it, ``state`` what is-system-running said once settled."""

    def __init__(self, root, process, pid, state, console):
        self.root = root
        self.process = process
        self.pid = pid
        self.state = state
        self.console = console

    @property
    def systemctl(self):
        return [NSENTER, "-t", str(self.pid), "-a", "systemctl"]

    @property
    def systemctl_option(self):
        """The --systemctl value for check_systemd_units."""
        return " ".join(self.systemctl)

    def run(self, *args, check=False, timeout=30):
        """Run systemctl inside, as the tests' own look at the truth."""
        return subprocess.run(self.systemctl + list(args), capture_output=True, text=True,
                              timeout=timeout, check=check,
                              env=dict(os.environ, LC_ALL="C", TZ="UTC"))


@contextlib.contextmanager
def booted(units=UNITS, stamps=STAMPS, boot_timeout=90, settle=True, pristine=None,
           prepare=None):
    """Boot a fresh copy of the cached bookworm root (or of the root ``pristine``, e.g. a
    debian_root.apt_root with more packages) with ``units`` installed (and ``prepare(root)``
    called on it); yield a Container once ``is-system-running --wait`` has settled
    (``settle=False``: as soon as systemctl answers, still starting); power it off
    afterwards."""
    if os.geteuid() != 0:
        raise RuntimeError("booting a systemd container needs root")
    if not ensure_tools():
        raise RuntimeError("debootstrap, systemd-nspawn or nsenter is not installed")
    pristine = pristine or debian_root.cached_root(RELEASE, include=INCLUDE)
    workdir = tempfile.mkdtemp(prefix="osop-systemd-")
    root = debian_root.fresh_copy(pristine, os.path.join(workdir, "root"))
    install_units(root, units, stamps)
    if prepare is not None:
        prepare(root)
    console = open(os.path.join(workdir, "console.log"), "wb")
    process = subprocess.Popen(
        ["systemd-nspawn", "-q", "-D", root, "--register=no", "--keep-unit", "-b"],
        stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        pid = _wait_for_pid1(process, boot_timeout)
        state = _settle(pid, boot_timeout, settle)
        yield Container(root, process, pid, state, console.name)
    finally:
        _stop(process)
        console.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_pid1(process, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError("systemd-nspawn exited %s before the container booted"
                               % process.returncode)
        children = _children(process.pid)
        if children:
            pid = children[0]
            # PID 1 is systemd once the child has exec'd it
            try:
                with open("/proc/%d/comm" % pid) as handle:
                    if handle.read().strip() == "systemd":
                        return pid
            except OSError:
                pass
        time.sleep(0.1)
    raise RuntimeError("the container's PID 1 did not appear within %d s" % limit)


def _settle(pid, limit, wait=True):
    """is-system-running --wait: blocks until the boot is done (running or degraded)."""
    end = time.monotonic() + limit
    while True:
        try:
            result = subprocess.run([NSENTER, "-t", str(pid), "-a", "systemctl",
                                     "is-system-running"] + (["--wait"] if wait else []),
                                    capture_output=True,
                                    text=True, timeout=max(1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RuntimeError("the container did not finish booting within %d s"
                               % limit) from None
        state = result.stdout.strip()
        # before D-Bus/the manager answers, systemctl may fail: try again
        if state in ("running", "degraded", "maintenance") or (
                not wait and state in ("starting", "initializing")):
            return state
        if time.monotonic() > end:
            raise RuntimeError("the container did not settle: %r %r" % (state, result.stderr))
        time.sleep(0.2)


def _stop(process, limit=20):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # nspawn: a clean poweroff of the container
        try:
            process.wait(limit)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


try:
    import pytest
except ImportError:  # used by `make demo`/bench without pytest
    pytest = None

def _booted_for_a_test(boot):
    """Yield the Container that ``boot()`` (a context manager) boots, for a fixture: skipped
    where a container cannot boot, failed in CI."""
    from lab.peers import IN_CI, need_root

    need_root()
    if not ensure_tools():
        from lab.peers import need
        need("debootstrap", "systemd-nspawn", NSENTER)
    try:
        context = boot()
        container = context.__enter__()
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        if IN_CI:
            pytest.fail("cannot boot the systemd container: %s" % exc)
        pytest.skip("cannot boot the systemd container here: %s" % exc)
    try:
        yield container
    finally:
        context.__exit__(None, None, None)


if pytest is not None:
    @pytest.fixture(scope="session")
    def systemd_container():
        """One booted container with every case unit, shared by the session."""
        yield from _booted_for_a_test(booted)


def host_container():
    """The host-health cases' container (HOST_UNITS, a lingering user), booted: a context
    manager yielding a Container."""
    return booted(HOST_UNITS, {}, pristine=debian_root.cached_root(RELEASE,
                                                                   include=HOST_INCLUDE),
                  prepare=add_host_cases)


if pytest is not None:
    @pytest.fixture(scope="module")
    def systemd_host_container():
        """The host-health cases' container, for one test module."""
        yield from _booted_for_a_test(host_container)


def recorded_systemctl(path, recorded, python=sys.executable):
    """Write at ``path`` a systemctl that answers from the recorded systemd 252 outputs in
    the directory ``recorded`` (tests/fixtures/systemd): a degraded system, its units and
    timers; ``show`` answers exactly the units asked (recorded, or not-found). Run by
    ``python``, which must be one the check's user may run."""
    with open(path, "w") as handle:
        handle.write("""#!%s -S
import os, sys
d = %r
args = sys.argv[1:]
def cat(name):
    sys.stdout.write(open(os.path.join(d, name)).read())
if "is-system-running" in args:
    cat("is-system-running_degraded_v252.txt")
elif "list-units" in args:
    cat("list-units_degraded_v252.json")
elif "list-timers" in args:
    cat("list-timers_v252.json")
elif "show" in args:
    blocks = open(os.path.join(d, "show_cases_v252.txt")).read().strip().split("\\n\\n")
    known = {b.split("Id=", 1)[1].split("\\n", 1)[0]: b for b in blocks if "Id=" in b}
    names = args[args.index("--") + 1:]
    print("\\n\\n".join(known.get(n, "Id=%%s\\nLoadState=not-found\\nActiveState=inactive"
                                 "\\nSubState=dead" %% n) for n in names))
else:
    sys.exit(1)
""" % (python, recorded))
    os.chmod(path, 0o755)
    return path
