"""check_backup_age --mode restic / borg against real repositories made here with Debian's
restic and borgbackup: snapshots of two hosts, a backup held running (a lock of a live
process), a backup cut off (a stale lock, a Borg checkpoint archive), and the password kept out
of argv, output and logs; Debian 13's restic 0.18 and borg 1.4 (the latter with the check on
Debian 13's python3, in its root)."""
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from lab.peers import faked_clock, need, need_root, run_plugin
from osop_checks import runtime

pytestmark = pytest.mark.peer

PASSWORD = "correct horse battery staple 4711"
HOUR = 3600


def local(epoch):
    """A moment as restic backup --time and borg create --timestamp read it (local time)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


class Repos:
    """The repositories of this module: restic and Borg, with a password file, a tree to back
    up, and a PATH whose restic and borg record their argv before they exec the real ones."""

    def __init__(self, base):
        self.base = base
        self.password = os.path.join(base, "password")
        with open(self.password, "w") as handle:
            handle.write(PASSWORD + "\n")
        os.chmod(self.password, 0o600)
        self.src = os.path.join(base, "src")
        os.makedirs(self.src)
        for i in range(5):
            with open(os.path.join(self.src, "f%d" % i), "w") as handle:
                handle.write("data %d\n" % i * 100)
        self.bin = os.path.join(base, "bin")
        self.argv_log = os.path.join(base, "argv.log")
        os.makedirs(self.bin)
        for tool in ("restic", "borg"):
            path = os.path.join(self.bin, tool)
            with open(path, "w") as handle:
                handle.write('#!/bin/sh\nprintf "%%s\\n" "$0 $*" >> %s\nexec /usr/bin/%s "$@"\n'
                             % (self.argv_log, tool))
            os.chmod(path, 0o755)
        self.tool_env = {"RESTIC_PASSWORD_FILE": self.password,
                         "BORG_PASSCOMMAND": "cat " + self.password,
                         "BORG_CACHE_DIR": os.path.join(base, "borg-cache-of-the-backup")}

    def tool(self, *argv, stdin=None, **env):
        env = dict(os.environ, **dict(self.tool_env, **env))
        return subprocess.run(list(argv), check=True, capture_output=True, env=env,
                              input=stdin, timeout=60)

    def popen(self, *argv):
        env = dict(os.environ, **self.tool_env)
        return subprocess.Popen(list(argv), env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restic_repo(self, name, *snapshots):
        """A restic repository with a snapshot of --path src per (host, epoch)."""
        repo = os.path.join(self.base, name)
        self.tool("restic", "-r", repo, "init")
        for host, when in snapshots:
            self.tool("restic", "-r", repo, "backup", "--host", host, "--time", local(when),
                      self.src)
        return repo

    def check(self, *argv, wrap=()):
        env = {"PATH": self.bin + ":" + os.environ["PATH"]}
        for name in ("RESTIC_PASSWORD_FILE", "BORG_PASSCOMMAND", "RESTIC_REPOSITORY",
                     "BORG_REPO"):
            env[name] = ""
        out = run_plugin("check_backup_age", [str(a) for a in argv] + ["-vv"], env=env,
                         wrap=wrap)
        assert out.output.startswith("BACKUP_AGE "), out.output + out.stderr
        for text in (out.output, out.stderr):
            assert PASSWORD not in text and "Traceback" not in text
        return out


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    need("restic", "borg")
    return Repos(str(tmp_path_factory.mktemp("repos")))


def wait_for(predicate, what, seconds=30):
    end = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("not within %ds: %s" % (seconds, what))
        time.sleep(0.2)


def restic_locks(repos, repo):
    out = repos.tool("restic", "-r", repo, "list", "locks", "--no-lock")
    return out.stdout.split()


def test_restic_host_filter_and_no_password_anywhere(repos):
    now = time.time()
    repo = repos.restic_repo("two-hosts", ("web1", now - 30 * HOUR), ("web2", now - 600))
    open(repos.argv_log, "w").close()
    old = repos.check("--mode", "restic", "--repo", repo, "--password-file", repos.password,
                      "--host", "web1", "-w", "26h")
    assert old.exitcode == 1, old.output
    assert " (web1:%s) is 1d 6h old, limit 26h" % repos.src in old.status_line
    fresh = repos.check("--mode", "restic", "--repo", repo, "--password-file", repos.password,
                        "-w", "26h")
    assert fresh.exitcode == 0 and "(web2:%s) is 10m " % repos.src in fresh.status_line
    with open(repos.argv_log) as handle:
        argv = handle.read()
    assert "snapshots --json --no-lock" in argv and PASSWORD not in argv
    assert "running: restic snapshots --json --no-lock" in fresh.output  # the -vv log


def test_restic_running_backup_warns_and_its_stale_lock_does_not(repos):
    now = time.time()
    repo = repos.restic_repo("running", ("web1", now - 30 * HOUR))
    argv = ("--mode", "restic", "--repo", repo, "--password-file", repos.password,
            "-w", "20h", "-c", "26h")
    assert repos.check(*argv).exitcode == 2
    backup = repos.popen("restic", "-r", repo, "backup", "--host", "web1", "--stdin",
                         "--stdin-filename", "db.sql")
    try:
        wait_for(lambda: restic_locks(repos, repo), "restic backup takes its lock")
        running = repos.check(*argv)
        assert running.exitcode == 1, running.output
        assert re.search(r"is 1d 6h old, limit 26h; backup running since \d\d:\d\d \(pid %d "
                         r"on this host\) \|" % backup.pid, running.status_line)
        longer = repos.check(*argv, "--max-run", "1m", wrap=faked_clock("+2h"))
        assert longer.exitcode == 2 and "longer than --max-run 1m" in longer.status_line
    finally:
        backup.kill()
        backup.wait()
    assert restic_locks(repos, repo)  # killed: its lock stays behind
    stale = repos.check(*argv)
    assert stale.exitcode == 2, stale.output
    assert "by pid %d on this host, but its process is gone: a stale lock" % backup.pid \
        in stale.status_line


def borg_archives(repos, repo):
    # a cache of its own: the backup holds the lock of its cache
    out = repos.tool("borg", "list", "--bypass-lock", "--consider-checkpoints", "--short",
                     repo, BORG_CACHE_DIR=os.path.join(repos.base, "listing-cache"))
    return out.stdout.decode().split()


def test_borg_checkpoint_stale_lock_and_running_backup(repos):
    now = time.time()
    repo = os.path.join(repos.base, "borg")
    repos.tool("borg", "init", "-e", "repokey", repo)
    repos.tool("borg", "create", "--timestamp", local(now - 30 * HOUR).replace(" ", "T"),
               repo + "::web1-full", repos.src)
    # a backup cut off: borg writes a checkpoint archive every second, then is killed
    cut = repos.popen("borg", "create", "--checkpoint-interval", "1", repo + "::web1-cut", "-")
    try:
        chunk = os.urandom(1024 * 1024)
        end = time.monotonic() + 40
        while not any(a.endswith(".checkpoint") for a in borg_archives(repos, repo)):
            assert time.monotonic() < end, "no checkpoint archive within 40 s"
            for _ in range(8):
                cut.stdin.write(chunk)
            cut.stdin.flush()
            time.sleep(0.5)
    finally:
        cut.send_signal(signal.SIGKILL)
        cut.wait()
    argv = ("--mode", "borg", "--repo", repo, "--password-file", repos.password, "-w", "26h")
    stale = repos.check(*argv)
    assert stale.exitcode == 2, stale.output
    assert stale.status_line.startswith("BACKUP_AGE CRITICAL - newest borg archive web1-full "
                                        "is 1d 6h old, limit 26h; the repository is locked")
    assert "pid %d on this host, but its process is gone: a stale lock" % cut.pid \
        in stale.status_line
    repos.tool("borg", "break-lock", repo)
    full = repos.check(*argv)
    assert full.exitcode == 1, full.output  # judged by the full archive, not the checkpoint
    assert "newest borg archive web1-full is 1d 6h old, limit 26h |" in full.status_line
    assert "snapshots=1;;;0" in full.status_line
    running = repos.popen("borg", "create", repo + "::web1-now", "-")
    try:
        wait_for(lambda: os.path.isdir(os.path.join(repo, "lock.exclusive")), "borg's lock")
        out = repos.check(*argv, "-c", "26h")
        assert out.exitcode == 1, out.output
        assert "; backup running since " in out.status_line
        assert "(pid %d on this host)" % running.pid in out.status_line
    finally:
        running.kill()
        running.wait()
    assert stat.S_IMODE(os.stat(repos.password).st_mode) == 0o600


def test_missing_repository_and_path_are_critical(repos):
    out = repos.check("--mode", "restic", "--repo", os.path.join(repos.base, "nope", "repo"),
                      "--password-file", repos.password)
    assert out.exitcode == 2 and "--repo %s/nope/repo does not exist" % repos.base \
        in out.status_line
    out = repos.check("-p", os.path.join(repos.base, "gone"))
    assert out.exitcode == 2, out.output
    assert "(nearest existing parent %s, on the filesystem mounted at " % repos.base \
        in out.status_line


def damage(path):
    """Overwrite 8 bytes in the middle of ``path``; the original bytes back."""
    os.chmod(path, 0o600)
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        where = handle.tell()
        before = handle.read(8)
        handle.seek(where)
        handle.write(b"XXXXXXXX")
    return lambda: _restore(path, where, before)


def _restore(path, where, before):
    with open(path, "r+b") as handle:
        handle.seek(where)
        handle.write(before)


def test_restic_damaged_pack_is_critical_until_a_check_passes(repos):
    now = time.time()
    repo = repos.restic_repo("damaged", ("web1", now - HOUR))
    state = os.path.join(repos.base, "damaged.state.json")
    packs = sorted(os.path.join(d, f) for d, _, files in os.walk(os.path.join(repo, "data"))
                   for f in files)
    repair = [damage(p) for p in packs]
    argv = ("--mode", "restic", "--repo", repo, "--password-file", repos.password,
            "--verify", "100%", "--state-file", state, "-w", "3d", "-c", "4d")
    found = repos.check(*argv)
    assert found.exitcode == 2, found.output
    assert re.search(r"CRITICAL - restic check of [-\d: ]+ \(0s ago\) failed: ",
                     found.status_line)
    for fix in repair:
        fix()
    remembered = repos.check(*argv, wrap=faked_clock("+6h"))  # not due: no check run
    assert remembered.exitcode == 2 and "(6h ago) failed" in remembered.status_line
    assert "running: restic check" not in remembered.output
    passed = repos.check(*argv, wrap=faked_clock("+25h"))
    assert passed.exitcode == 0, passed.output
    assert "integrity: restic check of " in passed.output and ") passed" in passed.output


def test_restore_sample_finds_a_file_whose_backed_up_copy_differs(repos):
    """A live file rewritten with its size and mtime kept (bit rot, a tool that resets the
    mtime): the check cannot tell it changed, so the restored copy must equal it, and does
    not."""
    tree = os.path.join(repos.base, "restore-src")
    os.makedirs(tree)
    for i in range(4):
        with open(os.path.join(tree, "f%d" % i), "w") as handle:
            handle.write("contents %d\n" % i * 50)
    repo = os.path.join(repos.base, "restore-restic")
    repos.tool("restic", "-r", repo, "init")
    repos.tool("restic", "-r", repo, "backup", tree)  # this host: live files compared
    borg_repo = os.path.join(repos.base, "restore-borg")
    repos.tool("borg", "init", "-e", "repokey", borg_repo)
    repos.tool("borg", "create", borg_repo + "::now", tree)
    fine = repos.check("--mode", "restic", "--repo", repo, "--password-file", repos.password,
                       "--restore-sample", "4")
    assert fine.exitcode == 0, fine.output
    assert "4 of 4 files restored fine (4 compared with the live file)" in fine.status_line
    changed = os.path.join(tree, "f2")
    before = os.stat(changed)
    with open(changed, "r+") as handle:
        handle.write("X")
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    for mode, where in (("restic", repo), ("borg", borg_repo)):
        out = repos.check("--mode", mode, "--repo", where, "--password-file", repos.password,
                          "--restore-sample", "4")
        assert out.exitcode == 2, out.output
        assert "CRITICAL - restored %s differs from the live file, which is unchanged since " \
            "the snapshot" % changed \
            in out.status_line, out.output
    assert not [name for name in os.listdir("/tmp") if name.startswith("osop-restore-")]


def test_sleeping_sftp_repository_ok_after_a_good_listing_and_aging(repos, sshd):
    """restic over sftp to a real sshd (ssh in batch mode, the check's key and known_hosts);
    the box asleep (nothing listens on its port any more) is judged by its last listing."""
    from lab.peers.sshd import free_port

    now = time.time()
    repo = repos.restic_repo("sleepy", ("web1", now - HOUR))
    state = os.path.join(repos.base, "sleepy.state.json")
    ssh_options = ["--ssh-identity", sshd.client_key, "--ssh-known-hosts", sshd.known_hosts,
                   "--sleeping", "--state-file", state, "--password-file", repos.password]
    awake = repos.check("--mode", "restic", "--repo",
                        "sftp://root@127.0.0.1:%d/%s" % (sshd.port, repo), *ssh_options)
    assert awake.exitcode == 0, awake.output
    assert "is 1h old" in awake.status_line
    assert "BatchMode=yes" in awake.output  # -vv shows the sftp.command given to restic
    # the box went to sleep: nothing listens where it was (the same location, another port
    # stands in for it, the state file is the same)
    down = "sftp://root@127.0.0.1:%d/%s" % (free_port(), repo)
    for shift, code, words in (("+13h", 0, "is 14h old; repository host asleep (connection "
                                           "refused), last listed 13h ago"),
                               ("+29h", 1, "limit 26h; repository host asleep (connection "
                                           "refused), last listed 1d 5h ago: did the box "
                                           "wake up?"),
                               ("+3d", 2, "limit 50h; repository host asleep")):
        out = repos.check("--mode", "restic", "--repo", down, *ssh_options,
                          wrap=faked_clock(shift))
        assert out.exitcode == code, out.output
        assert words in out.status_line, out.output


def test_borg_over_ssh_in_batch_mode(repos, sshd):
    repo = os.path.join(repos.base, "borg-ssh")
    repos.tool("borg", "init", "-e", "repokey", repo)
    repos.tool("borg", "create", repo + "::now", repos.src)
    out = repos.check("--mode", "borg", "--repo", "ssh://root@127.0.0.1:%d%s" % (
        sshd.port, repo), "--password-file", repos.password, "--ssh-identity",
        sshd.client_key, "--ssh-known-hosts", sshd.known_hosts)
    assert out.exitcode == 0, out.output
    assert "newest borg archive now is " in out.status_line


def test_restic_018_of_debian_13(repos, tmp_path):
    """Debian 13's restic 0.18 (its binary, from the trixie root the suite builds, runs here
    as it is): the same judgement, and the newest snapshot's size and files from its
    summary."""
    from lab.peers import debian_root

    from lab.peers.other_pythons import DEBIAN_PACKAGES

    root = debian_root.apt_root("trixie", DEBIAN_PACKAGES)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(os.path.join(root, "usr/bin/restic"), bin_dir / "restic")
    now = time.time()
    repo = str(tmp_path / "repo")
    env = dict(os.environ, RESTIC_PASSWORD_FILE=repos.password)
    restic18 = [str(bin_dir / "restic"), "-r", repo]
    assert b"restic 0.18" in subprocess.run(restic18[:1] + ["version"], check=True,
                                            capture_output=True).stdout
    subprocess.run(restic18 + ["init"], check=True, capture_output=True, env=env)
    for host, when in (("web1", now - 30 * HOUR), ("web2", now - 600)):
        subprocess.run(restic18 + ["backup", "--host", host, "--time", local(when), repos.src],
                       check=True, capture_output=True, env=env)
    out = run_plugin("check_backup_age", ["--mode", "restic", "--repo", repo, "--password-file",
                                          repos.password, "--host", "web1", "-w", "26h"],
                     env={"PATH": "%s:%s" % (bin_dir, os.environ["PATH"])})
    assert out.exitcode == 1, out.output
    assert " (web1:%s) is 1d 6h old, limit 26h" % repos.src in out.status_line
    assert "files=5;;;0" in out.status_line and "size=%dB;;;0" % sum(
        os.path.getsize(os.path.join(repos.src, f)) for f in os.listdir(repos.src)) \
        in out.status_line


class Trixie:
    """Debian 13's root as the suite builds it (lab/peers/other_pythons.DEBIAN_PACKAGES:
    python3 3.13 with its python3-* libraries, borg 1.4), run through an overlay
    (debian_root.overlaid) with this checkout (read-only), ``work`` and the module's
    repositories (their password file, the tree to back up, the borg that logs its argv) at
    their own paths inside; the check is this checkout's on Debian 13's python3."""

    def __init__(self, root, changes, work, repos):
        from lab.peers import other_pythons

        self.root, self.changes, self.work, self.repos = root, changes, work, repos
        other_pythons.write_console_scripts(os.path.join(work, "bin"), "/usr/bin/python3")

    def run(self, *argv, **env):
        from lab.peers import ROOT, debian_root

        env = dict({"PATH": self.repos.bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC",
                    "PYTHONPATH": ROOT, "PYTHONDONTWRITEBYTECODE": "1"}, **env)
        return debian_root.overlaid(self.root, self.changes, *argv, env=env,
                                    binds=(self.work, self.repos.base), read_only=(ROOT,))

    def check(self, *argv):
        ran = self.run(os.path.join(self.work, "bin", "check_backup_age"), *argv, "-vv")
        out = runtime.Outcome(ran.returncode, ran.stdout)
        assert out.output.startswith("BACKUP_AGE "), out.output + ran.stderr
        for words in (out.output, ran.stderr):
            assert PASSWORD not in words and "Traceback" not in words
        return out


@pytest.fixture(scope="module")
def trixie(repos, tmp_path_factory):
    from lab.peers import debian_root, other_pythons

    need_root()
    need("debootstrap", "unshare", "chroot")
    root = debian_root.apt_root("trixie", other_pythons.DEBIAN_PACKAGES)
    return Trixie(root, str(tmp_path_factory.mktemp("trixie-overlay")),
                  str(tmp_path_factory.mktemp("trixie-work")), repos)


def test_borg_14_of_debian_13_with_the_check_on_its_python3(repos, trixie):
    """A real repository of Debian 13's borg 1.4 (the passphrase in its environment): an
    archive of web1 30 hours old, a fresh one of db1, then a checkpoint of web1 (borg 1.4
    names one ``NAME.checkpoint``), judged by the check on Debian 13's python3; borg check
    --verify-data passes; the password in no argv."""
    repo = os.path.join(trixie.work, "borg")
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 30 * HOUR))
    open(repos.argv_log, "w").close()
    made = trixie.run("sh", "-ec", 'python3 --version\nborg --version\n'
                      'borg init --encryption=repokey "$1"\n'
                      'borg create --timestamp "$2" "$1::web1-old" "$3"\n'
                      'borg create "$1::db1-now" "$3"\n'
                      'borg create "$1::web1-now.checkpoint" "$3"\n', "sh", repo, when,
                      repos.src, BORG_PASSPHRASE=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert re.match(r"Python 3\.13\.\d+\nborg 1\.4\.\d+\n", made.stdout), made.stdout
    argv = ("--mode", "borg", "--repo", repo, "--password-file", repos.password)
    web1 = trixie.check(*argv, "--prefix", "web1-", "-w", "26h", "-c", "50h")
    assert web1.exitcode == 1, web1.output  # the checkpoint is no backup, db1 not of web1
    assert "WARNING - newest borg archive web1-old is 1d 6h old, limit 26h |" \
        in web1.status_line and "snapshots=1;;;0" in web1.status_line
    # the checkpoint matches the pattern too, and still does not count
    glob = trixie.check(*argv, "--glob-archives", "web1-*", "-w", "20h", "-c", "26h")
    assert glob.exitcode == 2, glob.output
    assert "CRITICAL - newest borg archive web1-old is 1d 6h old, limit 26h |" \
        in glob.status_line
    state = os.path.join(trixie.work, "verify.state.json")
    fresh = trixie.check(*argv, "-w", "26h", "-c", "50h", "--verify", "100%",
                         "--state-file", state)
    assert fresh.exitcode == 0, fresh.output
    assert re.search(r"OK - newest borg archive db1-now is \d+s old", fresh.status_line)
    assert "snapshots=2;;;0" in fresh.status_line
    assert re.search(r"integrity: borg check of [-\d: ]+ \(\d+s ago\) passed", fresh.output)
    with open(repos.argv_log) as handle:
        logged = handle.read()
    assert "list --json --bypass-lock --consider-checkpoints" in logged, logged
    assert "check --verify-data" in logged and PASSWORD not in logged, logged


def test_restic_that_exits_before_passing_on_its_ssh_words_is_told_apart_by_ssh_itself(
        tmp_path):
    """restic may end on "unable to start the sftp session" before it has copied what its
    ssh said: the same ssh command asked again says why (here: nothing listens, a box asleep),
    so --sleeping judges the sleep instead of answering UNKNOWN."""
    import socket

    from osop_checks.sources import repository, restic

    need("ssh")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = tmp_path / "restic"
    fake.write_text("#!/bin/sh\necho 'Fatal: unable to open repository at sftp:x:/r: unable to "
                    "start the sftp session, error: EOF' >&2\nexit 1\n")
    fake.chmod(0o755)
    command = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" \
              "/dev/null -p %d -s -- 127.0.0.1 sftp" % port
    repo = restic.Repository("sftp:127.0.0.1:/r", None, str(fake),
                             ("-o", "sftp.command=" + command))
    with pytest.raises(repository.Unreachable) as caught:
        repo.run(["snapshots", "--json"])
    assert caught.value.kind == "connection refused", caught.value
