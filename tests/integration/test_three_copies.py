"""check_three_copies against real trees: copies made with real rsync (locally and over a
real sshd on loopback), local copies on tmpfs filesystems of their own, the off-site host
down, a wrong host key, a host that never answers, and proof that no copy is touched."""
import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import time

import pytest

from lab.peers import need_root, run_plugin
from lab.peers.copies import OLD, make_source, rsync, tmpfs, write
from lab.peers.foreign_user import shared_tempdir
from lab.peers.sshd import BlackHole, free_port, keygen

pytestmark = pytest.mark.peer

class Trees:
    def __init__(self, base, data2, server):
        self.server = server
        self.state = os.path.join(base, "state.json")
        self.source = os.path.join(base, "source")
        self.data2 = os.path.join(data2, "data2")
        self.office = os.path.join(base, "office")
        self.offsite = os.path.join(base, "offsite")
        make_source(self.source)
        rsync(self.source, self.data2)
        rsync(self.source, self.office, server, "127.0.0.1")
        rsync(self.source, self.offsite, server, "127.0.0.2")

    def argv(self, *extra, offsite=None, known_hosts=None):
        return ["--source", self.source, "--copy", "data2=" + self.data2,
                "--copy", "office=127.0.0.1:" + self.office,
                "--copy", "offsite=" + (offsite or "127.0.0.2:" + self.offsite),
                "--offsite", "offsite", "--settle", "0", "--state-file", self.state] + \
            self.server.options(known_hosts) + list(extra)

    def run(self, *extra, **kw):
        out = run_plugin("check_three_copies", self.argv(*extra, **kw))
        assert "Traceback" not in out.output + out.stderr
        assert out.output.startswith("THREE_COPIES "), out.output + out.stderr
        return out


@pytest.fixture
def trees(tmp_path, sshd):
    with tmpfs() as fs:
        yield Trees(str(tmp_path), fs, sshd)


def test_fresh_copies_are_ok(trees):
    out = trees.run("--verify-sample", "50")
    assert out.exitcode == 0, out.output
    assert out.status_line.startswith("THREE_COPIES OK - 3 of 3 copies ok, all in sync |")
    assert "copies_ok=3;;3:;0;3" in out.status_line
    assert "offsite_missing=0;;0;0" in out.status_line
    assert "offsite: OK, in sync, missing 0, differing 0, extra 0" in out.output
    assert "sha256 17 of 17 sampled files checked" in out.output, out.output


def test_a_stale_copy_by_its_stamp(trees):
    now = time.time()
    for copy, age in ((trees.data2, 3600), (trees.office, 3 * 86400 + 4 * 3600 + 30),
                      (trees.offsite, 27 * 3600)):
        write(os.path.join(copy, ".last-sync"), b"", now - age)
    out = trees.run("--stamp", ".last-sync")
    assert out.exitcode == 2, out.output
    assert "THREE_COPIES CRITICAL - 2 of 3 copies ok (at least 3 needed): office is 3d 4h " \
           "old (limit 50h), offsite is 1d 3h old (warning 26h)" in out.status_line
    assert "office: CRITICAL, age 3d 4h (stamp)" in out.output


def test_a_change_within_the_settle_window_does_not_count(trees):
    write(os.path.join(trees.source, "docs", "new.txt"), b"new", time.time())
    out = trees.run("--settle", "1h")
    assert out.exitcode == 0, out.output
    assert "1 pending" in out.output
    out = trees.run()
    assert out.exitcode == 2
    assert "data2 lacks 1 entry (e.g. docs/new.txt)" in out.status_line


def test_a_missing_copy(trees):
    shutil.rmtree(trees.offsite)
    out = trees.run()
    assert out.exitcode == 2, out.output
    assert "2 of 3 copies ok (at least 3 needed): offsite does not exist, no off-site copy " \
           "ok" in out.status_line


def test_a_diverged_copy_files_deleted_and_one_of_another_size(trees):
    os.remove(os.path.join(trees.office, "docs", "d01", "file04.txt"))
    os.remove(os.path.join(trees.office, "new\nline.txt"))
    write(os.path.join(trees.office, "a", "x"), b"xx")
    out = trees.run()
    assert out.exitcode == 2, out.output
    assert "office lacks 2 entries (e.g. docs/d01/file04.txt)" in out.status_line
    assert "office differs in 1 entry (e.g. a/x (size 2, source 1))" in out.status_line
    assert "office missing: docs/d01/file04.txt, new line.txt" in out.output


def test_a_diverged_copy_same_size_and_mtime_only_the_sample_sees_it(trees):
    target = os.path.join(trees.offsite, "docs", "d02", "file05.txt")
    info = os.stat(target)
    with open(target, "r+b") as handle:
        handle.write(b"X")
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    out = trees.run()
    assert out.exitcode == 0, out.output
    out = trees.run("--verify-sample", "1000")
    assert out.exitcode == 2, out.output
    assert "offsite differs in 1 entry (e.g. docs/d02/file05.txt (content differs " \
           "(sha256)))" in out.status_line


def test_two_copies_on_one_filesystem_count_once(trees):
    data2b = os.path.join(os.path.dirname(trees.data2), "data2b")
    rsync(trees.source, data2b)
    argv = trees.argv()
    argv[argv.index("office=127.0.0.1:" + trees.office)] = "data2b=" + data2b
    out = run_plugin("check_three_copies", argv)
    assert out.exitcode == 2, out.output
    assert "2 of 2 copies ok (at least 3 needed): data2 and data2b are on the same " \
           "filesystem, counted once" in out.status_line


def test_a_copy_on_the_source_filesystem_is_no_copy(trees):
    inside = os.path.join(os.path.dirname(trees.source), "beside-source")
    rsync(trees.source, inside)
    out = trees.run("--copy", "beside=" + inside)
    assert out.exitcode == 1, out.output
    assert "beside is on the same filesystem as the source" in out.status_line


def test_the_offsite_host_down(trees):
    out = trees.run(offsite="ssh://127.0.0.3:%d%s" % (free_port("127.0.0.3"),
                                                               trees.offsite))
    assert out.exitcode == 2, out.output
    assert "2 of 3 copies ok (at least 3 needed): offsite is unreachable: connection " \
           "refused, no off-site copy ok" in out.status_line


def test_a_host_key_mismatch(trees, tmp_path):
    other = keygen(str(tmp_path / "other_host_key"))
    known = str(tmp_path / "known_hosts")
    trees.server.write_known_hosts(known)
    with open(known) as handle:
        lines = handle.read().splitlines()
    with open(known, "w") as handle:  # the right key for 127.0.0.1, another for 127.0.0.2
        handle.write("%s\n[127.0.0.2]:%d %s\n" % (lines[0], trees.server.port,
                                                  " ".join(other.split()[:2])))
    out = trees.run(known_hosts=known)
    assert out.exitcode == 2, out.output
    assert "offsite is unreachable: host key mismatch" in out.status_line


def test_a_host_that_never_answers_times_out_within_the_timeout(trees):
    with BlackHole("127.0.0.3") as hole:
        started = time.monotonic()
        out = trees.run("-t", "6", offsite="ssh://127.0.0.3:%d%s" % (hole.port,
                                                                     trees.offsite))
        elapsed = time.monotonic() - started
        left = [pid for pid in os.listdir("/proc") if pid.isdigit()
                and str(hole.port).encode() in _cmdline(pid)]
    assert elapsed < 7, elapsed
    assert out.exitcode == 2, out.output
    assert "offsite is unreachable: timeout" in out.status_line
    assert left == [], "ssh left running: %s" % left


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def fingerprint(root):
    """Everything a check could change in a tree: names, types, modes, sizes, mtimes,
    contents, link targets."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            digest.update(repr((os.path.relpath(path, root), info.st_mode, info.st_size,
                                info.st_mtime_ns)).encode("utf-8", "surrogateescape"))
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
            elif stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
    info = os.stat(root)
    digest.update(repr((info.st_mode, info.st_mtime_ns)).encode())
    return digest.hexdigest()


def test_no_copy_is_written(trees):
    for copy in (trees.data2, trees.office, trees.offsite):
        write(os.path.join(copy, ".last-sync"), b"done\n", time.time() - 60)
    trees_before = {p: fingerprint(p) for p in (trees.source, trees.data2, trees.office,
                                                trees.offsite)}
    for extra in ([], ["--verify-sample", "1000", "--stamp", ".last-sync"], ["-vvv"]):
        out = trees.run(*extra)
        assert out.exitcode == 0, out.output
    assert {p: fingerprint(p) for p in trees_before} == trees_before


def test_the_commands_logged_at_vv_paste_into_a_shell(trees):
    """-vv shows each command run as a line that bash splits back into the argv that ran,
    pipes and tabs included, while the output still holds no '|' past the perfdata. A local
    tree within the walk's budget is listed without a command, and -vv says so; the source
    here is past it, so its find, sort and tr run; the copy data2 lacks what puts it past
    (CRITICAL) and is walked."""
    from osop_checks.sources import manifest

    for i in range(manifest.WALK_BUDGET):
        write(os.path.join(trees.source, "bulk", "%04d" % i), b"", OLD)
    rsync(trees.source, trees.data2)
    rsync(trees.source, trees.office, trees.server, "127.0.0.1")
    rsync(trees.source, trees.offsite, trees.server, "127.0.0.2")
    shutil.rmtree(os.path.join(trees.data2, "bulk"))
    out = trees.run("-vv")
    assert out.exitcode == 2 and "data2 lacks" in out.status_line, out.output
    assert "|" not in out.output.split("\n", 1)[1]
    ran = []
    for line in out.output.splitlines():
        if line.startswith("running: "):
            pasted = subprocess.run(["bash", "-c", "printf '%s\\0' " + line[len("running: "):]],
                                    capture_output=True, check=True).stdout
            ran.append([w.decode() for w in pasted.split(b"\0")[:-1]])
    for argv in manifest.listing_pipeline(manifest.Location(trees.source), source=True):
        assert argv in ran
    assert not [argv for argv in ran if argv[0] == "find" and trees.data2 in argv]
    assert "listed %s in this process: " % trees.data2 in out.output
    remote = [argv for argv in ran if argv[0] == "ssh"]
    assert len(remote) == 4, ran  # a probe and a listing for each of the two remote copies
    assert manifest.listing_argv(manifest.Location(trees.office)) in [
        shlex.split(argv[-1]) for argv in remote]


# -- bad input: one line, exit 3 ------------------------------------------------------------

def one_unknown_line(out, words):
    lines = out.output.strip().splitlines()
    assert out.exitcode == 3, out.output
    assert len(lines) == 1 and lines[0].startswith("THREE_COPIES UNKNOWN - "), out.output
    assert words in lines[0], lines[0]
    assert "Traceback" not in out.output + out.stderr


def test_an_unknown_host(trees):
    started = time.monotonic()
    out = trees.run(offsite="nosuch.invalid:/srv/data1")
    assert time.monotonic() - started < 30
    one_unknown_line(out, "copy offsite (nosuch.invalid:/srv/data1): ssh to nosuch.invalid "
                          "port %d: unknown host" % trees.server.port)


def test_ssh_not_installed_is_unknown_and_names_its_package(tmp_path):
    """A host without the ssh client: not the copy's fault (it is not 'unreachable'), this
    host lacks a tool. PATH holds every tool a local listing needs, but no ssh."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "find", "sort", "tr", "stat", "sha256sum", "cat"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    source = tmp_path / "source"
    make_source(str(source))
    for verbose in ([], ["-vv"]):
        out = run_plugin("check_three_copies", [
            "--source", source, "--copy", "x=backup@127.0.0.1:/srv", "--min-copies", "1"]
            + verbose, env={"PATH": str(bin_dir)})
        assert out.exitcode == 3, out.output
        assert out.status_line == "THREE_COPIES UNKNOWN - copy x (backup@127.0.0.1:/srv): " \
                                  "command not found: ssh (install openssh-client)"
        assert "Traceback" not in out.output + out.stderr


@pytest.mark.parametrize("argv, words", [
    (["--source", "/srv", "--copy", "data2", "--min-copies", "1"], "is not NAME=LOCATION"),
    (["--source", "/srv", "--copy", "a=data2", "--min-copies", "1"],
     "is not an absolute path"),
    (["--source", "srv", "--copy", "a=/data2", "--min-copies", "1"],
     "is not an absolute path"),
])
def test_usage_errors_as_a_process(argv, words):
    one_unknown_line(run_plugin("check_three_copies", argv), words)


def test_an_unreadable_copy_directory(foreign_install):
    with shared_tempdir("osop-copies-perm-") as base, tmpfs(dir=base) as fs:
        source = os.path.join(base, "source")
        make_source(source)
        subprocess.run(["chmod", "-R", "a+rX", source], check=True)
        copy = os.path.join(fs, "copy")
        rsync(source, copy)
        os.chmod(fs, 0o755)
        os.chmod(copy, 0o700)
        argv = ["--source", source, "--copy", "c=" + copy, "--min-copies", "1"]
        out = foreign_install.run("check_three_copies", argv, user="nobody")
        one_unknown_line(out, "cannot read copy c (%s): permission denied" % copy)
        # Readable at the top, not below: find fails, the listing is incomplete: UNKNOWN.
        os.chmod(copy, 0o755)
        os.chmod(os.path.join(copy, "docs", "d01"), 0o700)
        out = foreign_install.run("check_three_copies", argv, user="nobody")
        one_unknown_line(out, "Permission denied")
        os.chmod(os.path.join(copy, "docs", "d01"), 0o755)
        os.chmod(source, 0o700)
        out = foreign_install.run("check_three_copies", argv, user="nobody")
        one_unknown_line(out, "the source %s cannot be read" % source)


def test_a_remote_source(trees):
    argv = ["--source", "127.0.0.2:" + trees.source, "--copy", "data2=" + trees.data2,
            "--copy", "office=127.0.0.1:" + trees.office, "--min-copies", "2",
            "--settle", "0", "--verify-sample", "5"] + trees.server.options()
    out = run_plugin("check_three_copies", argv)
    assert out.exitcode == 0, out.output
    assert "2 of 2 copies ok, all in sync" in out.status_line
    # The same host and filesystem as the source is no copy.
    out = run_plugin("check_three_copies", argv + ["--copy",
                                                   "offsite=127.0.0.2:" + trees.offsite])
    assert out.exitcode == 1, out.output
    assert "offsite is on the same filesystem as the source" in out.status_line


# -- the state file, a loss that spreads, canaries, sleeping copies (real trees) ------------

def test_a_deleted_directory_spread_by_rsync_delete_is_critical_for_source_and_copies(trees):
    out = trees.run("--canary", "a.b")
    assert out.exitcode == 0, out.output
    assert "first run: baseline recorded" in out.output
    shutil.rmtree(os.path.join(trees.source, "docs"))
    out = trees.run("--canary", "a.b")
    assert out.exitcode == 2, out.output
    assert "source lost 96% of its bytes since" in out.status_line, out.status_line
    assert "(most in docs/)" in out.status_line
    rsync(trees.source, trees.data2)
    rsync(trees.source, trees.office, trees.server, "127.0.0.1")
    rsync(trees.source, trees.offsite, trees.server, "127.0.0.2")
    out = trees.run("--canary", "a.b")
    assert out.exitcode == 2, out.output
    assert "(alarm held since" in out.status_line
    for name in ("data2", "office", "offsite"):
        assert "%s lost 96%% of its bytes since" % name in out.status_line, out.status_line
    out = trees.run("--canary", "a.b", "--accept-changes")
    assert out.exitcode == 0, out.output
    assert trees.run("--canary", "a.b").exitcode == 0


def test_a_canary_missing_in_one_copy_and_a_rewritten_one(trees):
    assert trees.run("--canary", "a/x").exitcode == 0
    os.remove(os.path.join(trees.office, "a", "x"))
    out = trees.run("--canary", "a/x")
    assert out.exitcode == 2, out.output
    assert "canary a/x is missing in office" in out.status_line
    write(os.path.join(trees.source, "a", "x"), b"encrypted!")
    out = trees.run("--canary", "a/x")
    assert "canary a/x changed since" in out.status_line, out.status_line
    assert "canary a/x differs in data2" in out.status_line


def test_a_third_of_the_files_rewritten_is_churn(trees):
    assert trees.run().exitcode == 0
    with open(trees.state) as handle:
        state = json.load(handle)
    # the last run, and the first (the baseline), an hour ago
    state["source"]["tree"]["time"] = state["baseline"] = time.time() - 3600
    with open(trees.state, "w") as handle:
        json.dump(state, handle)
    for i in range(0, 12, 2):  # 6 of the 17 files
        path = os.path.join(trees.source, "docs", "d%02d" % (i % 3), "file%02d.txt" % i)
        write(path, b"ransom", time.time() - 60)
    out = trees.run("--churn-critical", "30%")
    assert out.exitcode == 2, out.output
    assert "35% of the source's files changed since" in out.status_line, out.status_line


def test_a_sleeping_offsite_box(trees):
    down = "ssh://127.0.0.3:%d%s" % (free_port("127.0.0.3"), trees.offsite)
    out = trees.run("--sleeping", "offsite")
    assert out.exitcode == 0, out.output  # awake: verified now
    with open(trees.state) as handle:
        state = json.load(handle)
    assert state["copies"]["offsite"]["verified"]["verdict"] == "in sync"
    # The box went to sleep; the check's state says it was verified 14h ago (under the
    # location the service uses: the same copies, another port when asleep is not needed).
    state["copies"]["offsite"]["verified"]["time"] = time.time() - 14 * 3600
    with open(trees.state, "w") as handle:
        json.dump(state, handle)
    argv = trees.argv("--sleeping", "offsite", offsite=down)
    out = run_plugin("check_three_copies", argv)
    assert out.exitcode == 0, out.output
    assert "offsite asleep, last verified in sync 14h ago" in out.status_line
    state["copies"]["offsite"]["verified"]["time"] = time.time() - 51 * 3600
    with open(trees.state, "w") as handle:
        json.dump(state, handle)
    out = run_plugin("check_three_copies", argv)
    assert out.exitcode == 2, out.output
    assert "offsite not verified for 2d 3h: did the box wake up?" in out.status_line


@pytest.mark.parametrize("spoil, words", [
    ("corrupt", "is corrupt: not JSON"),
    ("symlink", "is a symbolic link, which is never followed"),
    ("foreign", "belongs to uid 65534, not to this user"),
])
def test_a_bad_state_file_is_one_unknown_line(trees, tmp_path, spoil, words):
    if spoil == "corrupt":
        with open(trees.state, "w") as handle:
            handle.write('{"version": 1, "sou')
    elif spoil == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text("{}")
        os.symlink(target, trees.state)
    else:
        need_root()
        with open(trees.state, "w") as handle:
            handle.write("{}")
        os.chown(trees.state, 65534, 65534)
    before = open(trees.state).read()
    one_unknown_line(trees.run(), "the state file %s %s" % (trees.state, words))
    assert open(trees.state).read() == before  # never silently replaced
    if spoil == "corrupt":
        out = trees.run("--accept-changes")
        assert out.exitcode == 0, out.output


@pytest.mark.parametrize("extra, words", [
    (["--sleeping", "nas"], "--sleeping nas names no --copy (copies: data2, office, offsite)"),
    (["--canary", "/etc/passwd"], "must be a file inside the source"),
    (["--canary", "../outside"], "must be a file inside the source"),
    (["--shrink-warning", "many"], "is not a percentage"),
    (["--churn-critical", "5GiB"], "is not a percentage"),
])
def test_bad_new_options_as_a_process(trees, extra, words):
    one_unknown_line(trees.run(*extra), words)
    assert not os.path.exists(trees.state)


def test_with_a_stamp_a_change_after_it_is_pending_and_one_before_it_a_defect(trees):
    # ctimes cannot be set: the stamps get an mtime between the tree's making and the new
    # file's (the rsyncs ran in between).
    new = os.path.join(trees.source, "docs", "new.txt")
    write(new, b"new", time.time() - 3600)
    made = max(os.lstat(os.path.join(trees.source, p)).st_ctime for p in ("a.b", "a"))
    stamp = (made + os.stat(new).st_ctime) / 2
    assert made < stamp < os.stat(new).st_ctime
    for copy in (trees.data2, trees.office, trees.offsite):
        write(os.path.join(copy, ".last-sync"), b"", stamp)
    argv = [a for a in trees.argv("--stamp", ".last-sync") if a != "--settle"]
    argv.remove("0")  # the default settle: with --stamp, what changed after the stamp
    out = run_plugin("check_three_copies", argv)
    assert out.exitcode == 0, out.output
    assert "1 pending" in out.output
    os.remove(os.path.join(trees.office, "a.b"))  # older than the stamp: a defect at once
    out = run_plugin("check_three_copies", argv)
    assert out.exitcode == 2, out.output
    assert "office lacks 1 entry (e.g. a.b)" in out.status_line, out.status_line
