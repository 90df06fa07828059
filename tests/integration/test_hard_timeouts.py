"""Timeouts are hard: a check killed by its --timeout ends within it and leaves no process.

Each case runs the installed console script with -t 2 against something that never ends (a
fake systemctl or apt-get that starts a long sleep, ssh to a listener that never answers), and
proves (1) the check printed its one UNKNOWN line within 3 s, (2) no child or grandchild it
started is still alive: the fake commands write their PIDs (and their sleeps') to a pidfile,
and every descendant of the check is also recorded from /proc while it runs.
"""
import os
import stat
import subprocess
import time

from lab.peers import BIN, need

TIMEOUT = 2


def alive(pid):
    """Running, or stopped; a zombie waiting for its reaper counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(") ", 1)[1][0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _children():
    """{pid: ppid} of every process now."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as handle:
                    table[int(name)] = int(handle.read().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return table


def descendants(root):
    table = _children()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def fake_command(tmp_path, name, pidfile):
    """A command that records its PID, starts a 60 s sleep (recorded too) and waits."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\necho $$ >> %s\nsleep 60 &\necho $! >> %s\nwait\n"
                    % (pidfile, pidfile))
    path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return str(path)


def run_and_watch(name, argv):
    """Run the console script; return (exit code, output, seconds, descendants seen)."""
    cmd = [os.path.join(BIN, name), "-t", str(TIMEOUT)] + [str(a) for a in argv]
    start = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    while process.poll() is None and time.monotonic() - start < TIMEOUT + 5:
        seen |= descendants(process.pid)
        time.sleep(0.05)
    try:
        out, err = process.communicate(timeout=TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err, time.monotonic() - start, seen


def assert_hard_stop(name, argv, pidfile=None, prefix=None, state="UNKNOWN"):
    code, out, err, seconds, seen = run_and_watch(name, argv)
    assert seconds < TIMEOUT + 1, "%s ran %.1f s with -t %d: %s" % (name, seconds, TIMEOUT, out)
    assert code == ("OK", "WARNING", "CRITICAL", "UNKNOWN").index(state), out + err
    lines = out.splitlines()
    assert lines and lines[0].startswith("%s %s" % (prefix, state)), out
    assert "Traceback" not in out + err
    recorded = set()
    if pidfile is not None:
        assert os.path.exists(pidfile), "the fake command never ran: " + out
        recorded = {int(x) for x in open(pidfile).read().split()}
        assert len(recorded) >= 2, recorded  # the command and its sleep
    suspects = recorded | seen
    assert suspects, "no child process was seen; the case does not test anything"
    deadline = time.monotonic() + 1  # SIGKILLed processes vanish at once; reaping may lag
    while time.monotonic() < deadline and any(alive(p) for p in suspects):
        time.sleep(0.05)
    left = sorted(p for p in suspects if alive(p))
    assert not left, "left behind: %s" % [
        open("/proc/%d/cmdline" % p, "rb").read().replace(b"\0", b" ") for p in left]
    return out


def test_systemd_units_kills_a_hanging_systemctl_and_its_children(tmp_path):
    pidfile = str(tmp_path / "pids")
    out = assert_hard_stop("check_systemd_units",
                           ["--systemctl", fake_command(tmp_path, "systemctl", pidfile)],
                           pidfile, "SYSTEMD_UNITS")
    assert "within" in out.splitlines()[0]


def test_systemd_units_through_a_prefix_command(tmp_path):
    """--systemctl 'PREFIX systemctl': the prefix (here env) and everything below it."""
    pidfile = str(tmp_path / "pids")
    fake = fake_command(tmp_path, "systemctl", pidfile)
    assert_hard_stop("check_systemd_units", ["--systemctl", "env FOO=bar %s" % fake],
                     pidfile, "SYSTEMD_UNITS")


def test_os_upgrades_kills_a_hanging_apt_get(tmp_path):
    pidfile = str(tmp_path / "pids")
    assert_hard_stop("check_os_upgrades", [
        "--package-manager", "apt", "--apt-get", fake_command(tmp_path, "apt-get", pidfile),
        "--no-cache"], pidfile, "OS_UPGRADES")


def test_os_upgrades_kills_a_hanging_dnf(tmp_path):
    pidfile = str(tmp_path / "pids")
    assert_hard_stop("check_os_upgrades", [
        "--package-manager", "dnf", "--dnf", fake_command(tmp_path, "dnf", pidfile),
        "--needs-restarting", fake_command(tmp_path, "needs-restarting", pidfile),
        "--no-cache"], pidfile, "OS_UPGRADES")


def test_three_copies_kills_ssh_to_a_black_hole(blackhole_tcp, tmp_path):
    need("ssh")
    source = tmp_path / "source"
    source.mkdir()
    (source / "file").write_text("x")
    assert_hard_stop("check_three_copies", [
        "--source", str(source), "--min-copies", "1",
        "--copy", "hole=ssh://nagios@127.0.0.1:%d/srv/copy" % blackhole_tcp.port,
        "--ssh-known-hosts", "/dev/null"], None, "THREE_COPIES", state="CRITICAL")
    # documented: a copy whose ssh gets no answer in time is unreachable, CRITICAL


def test_backup_age_kills_its_stuck_walkers(tmp_path):
    """The forked walkers of a wide tree, each stopped (SIGSTOP) the moment it appears, as a
    walker stuck on a hung mount would be: the check answers within its timeout, and the
    stopped walkers are killed and reaped, not left behind."""
    import signal

    from lab.peers import trees

    trees.make_wide_tree(str(tmp_path / "tree"), fanout=(40, 40), files_per_dir=2)
    cmd = [os.path.join(BIN, "check_backup_age"), "-t", str(TIMEOUT), "-p",
           str(tmp_path / "tree"), "--workers", "3"]
    start = time.monotonic()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = set()
    while process.poll() is None and time.monotonic() - start < TIMEOUT + 5:
        try:
            children = set()
            for tid in os.listdir("/proc/%d/task" % process.pid):
                with open("/proc/%d/task/%s/children" % (process.pid, tid)) as handle:
                    children |= {int(x) for x in handle.read().split()}
        except OSError:
            continue
        for pid in children - stopped:
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
            except ProcessLookupError:
                pass
    out, err = process.communicate(timeout=TIMEOUT + 5)
    seconds = time.monotonic() - start
    assert stopped, "no walker was forked: the case tests nothing (%s)" % out
    assert seconds < TIMEOUT + 1, "ran %.1f s: %s" % (seconds, out)
    assert process.returncode == 3 and out.startswith("BACKUP_AGE UNKNOWN"), out + err
    assert "Traceback" not in out + err
    time.sleep(0.2)
    left = [p for p in stopped if alive(p)]
    for pid in left:  # a failing run must not leave stopped processes on the machine
        os.kill(pid, signal.SIGKILL)
    assert not left, "stopped walkers left behind"
