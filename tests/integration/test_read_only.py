"""Read-only: a full run of every check leaves everything it watches exactly as it was.

The watched things are built for real: a backup tree (files, a stamp, a log, a certificate,
a symlink, an unreadable corner), three copies of it, and apt state in a temporary root
(/etc/apt, /var/lib/dpkg/status, /var/lib/apt/lists, /var/cache/apt copied from this
machine). Each is snapshotted (content hash, size, mode, mtime, ctime, link target of every
entry; a directory's mtime catches a lock or temporary file made and removed), every check
runs against them as Icinga would (the installed console script), and the snapshot is taken
again. atime is left out: reading is allowed to touch it.
"""
import hashlib
import os
import shutil
import stat

import pytest

from tests.helpers import FIXTURES
from lab.peers import need_root, run_plugin



def snapshot(*roots):
    """{path: (kind, mode, size, mtime_ns, ctime_ns, sha256 or link target)} of each tree."""
    found = {}
    for root in roots:
        for top, dirs, files in os.walk(root):
            for name in [""] + dirs + files:
                path = os.path.join(top, name) if name else top
                if name == "" and path != root and path in found:
                    continue
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    content = os.readlink(path)
                elif stat.S_ISREG(st.st_mode):
                    digest = hashlib.sha256()
                    with open(path, "rb") as handle:
                        for chunk in iter(lambda: handle.read(1 << 20), b""):
                            digest.update(chunk)
                    content = digest.hexdigest()
                else:
                    content = None
                found[path] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size,
                               st.st_mtime_ns, st.st_ctime_ns, st.st_uid, st.st_gid, content)
    return found


def diff(before, after):
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append("removed %s" % path)
        elif path not in before:
            changes.append("created %s" % path)
        elif before[path] != after[path]:
            fields = ("type", "mode", "size", "mtime", "ctime", "uid", "gid", "content")
            changed = [f for f, a, b in zip(fields, before[path], after[path]) if a != b]
            changes.append("changed %s: %s" % (path, ", ".join(changed)))
    return changes


@pytest.fixture(scope="module")
def watched(tmp_path_factory, tls_ca):
    """The backup tree, its three copies and an apt root, built once for this module."""
    need_root()
    base = tmp_path_factory.mktemp("read-only")
    tree = base / "backup"
    (tree / "daily" / "2024-05-01").mkdir(parents=True)
    (tree / "daily" / "2024-05-02").mkdir(parents=True)
    for i in range(20):
        (tree / "daily" / "2024-05-02" / ("file %d|x" % i)).write_bytes(os.urandom(64) * i)
    (tree / "daily" / "2024-05-01" / "old").write_text("old")
    (tree / "STAMP").write_text("2024-05-02T03:00:00Z\n")
    (tree / "backup.log").write_text("sending incremental file list\n"
                                     "total size is 1234  speedup is 1.00\n")
    issued = tls_ca.issue("read-only", days=30)
    shutil.copy(issued.chain_path, tree / "cert.pem")
    os.symlink("daily/2024-05-02", tree / "latest")
    corner = tree / "private"
    corner.mkdir()
    (corner / "secret").write_text("s")
    corner.chmod(0o700)
    copies = []
    for name in ("copy1", "copy2", "copy3"):
        shutil.copytree(tree, base / name, symlinks=True, copy_function=shutil.copy2)
        copies.append(base / name)
    root = base / "aptroot"
    for part in ("etc/apt", "var/lib/apt/lists", "var/lib/dpkg"):
        source = "/" + part
        if os.path.isdir(source):
            shutil.copytree(source, root / part, symlinks=True,
                            ignore=shutil.ignore_patterns("lock*", "info", "partial",
                                                          "auxfiles", "updates"))
    (root / "var/cache/apt").mkdir(parents=True)
    (root / "run").mkdir()
    outside = base / "outside"  # caches, state files, fake commands: not watched
    outside.mkdir()
    (outside / "cache").mkdir()  # os_upgrades writes only into a cache directory that exists
    systemctl = outside / "systemctl"
    systemctl.write_text(
        "#!/bin/sh\ncase \"$*\" in\n"
        "  *is-system-running*) cat %s/systemd/is-system-running_running_v252.txt ;;\n"
        "  *list-units*) cat %s/systemd/list-units_running_v252.json ;;\n"
        "  *) exit 1 ;;\nesac\n" % (FIXTURES, FIXTURES))
    systemctl.chmod(0o755)
    return {"tree": tree, "copies": copies, "root": root, "outside": outside,
            "systemctl": systemctl}


def runs(w):
    """(check, argv, exit code) for every check against the watched things; the code is
    None where this machine's own disks or apt state decide it."""
    tree, (c1, c2, c3), root, outside = w["tree"], w["copies"], w["root"], w["outside"]
    # the copies lie on the source's filesystem: counted once, none apart, CRITICAL
    copies = ["--source", tree, "--copy", "one=%s" % c1, "--copy", "two=%s" % c2,
              "--copy", "three=%s" % c3]
    plans = [
        ("disk_partitions", ["-p", tree, "-p", c1, "-p", root], None),
        ("tls_expiry", ["--file", tree / "cert.pem", "--file", c3 / "cert.pem"], 0),  # 30 days
        ("systemd_units", ["--systemctl", w["systemctl"]], 0),  # the recorded running system
        ("os_upgrades", ["--root", root, "--cache-dir", outside / "cache",
                         "--max-list-age", "0"], None),
        ("backup_age", ["-p", tree / "daily", "--mode", "snapshot"], 2),  # 2024-05-02
        ("backup_age", ["-p", tree, "-w", "1000d", "-c", "2000d"], 0),  # written just now
        ("backup_age", ["-p", tree, "--mode", "stamp", "--stamp", tree / "STAMP"], 2),
        ("backup_age", ["-p", tree, "--log", tree / "backup.log"], 0),  # fresh, a clean log
        ("three_copies", copies + ["--offsite", "three", "--verify-sample", "5"], 2),
        ("three_copies", copies + ["--stamp", "STAMP"], 2),
    ]
    return plans


def test_every_check_leaves_what_it_watches_unchanged(watched):
    roots = [watched["tree"]] + watched["copies"] + [watched["root"]]
    before = snapshot(*roots)
    assert len(before) > 100, "the apt root or the trees were not built"
    ran = []
    for check, argv, code in runs(watched):
        outcome = run_plugin("check_" + check, ["-t", "120", "-vvv"] + argv)  # what, not how fast
        if code is None:  # this machine's state: a real answer with perfdata, whichever
            assert outcome.exitcode != 3 and " | " in outcome.status_line, outcome.output
        else:
            assert outcome.exitcode == code, outcome.output
        assert "Traceback" not in outcome.output + outcome.stderr, outcome.output
        ran.append((check, outcome.status_line))
        changes = diff(before, snapshot(*roots))
        assert not changes, "check_%s %s changed what it watches:\n%s" % (
            check, " ".join(map(str, argv)), "\n".join(changes[:20]))
    print("\n".join("%s: %s" % r for r in ran))
    assert {c for c, _ in ran} >= {"disk_partitions", "tls_expiry", "os_upgrades"}, ran


def test_the_snapshot_sees_a_change(watched, tmp_path):
    """The snapshot is not blind: a touch, a chmod, a lock file made and removed all show."""
    tree = tmp_path / "t"
    shutil.copytree(watched["tree"], tree, symlinks=True)
    before = snapshot(tree)
    (tree / "STAMP").touch()
    assert any("STAMP" in c and "mtime" in c for c in diff(before, snapshot(tree)))
    before = snapshot(tree)
    (tree / "cert.pem").chmod(0o600)
    assert any("cert.pem" in c and "mode" in c for c in diff(before, snapshot(tree)))
    before = snapshot(tree)
    (tree / "daily" / "lock").write_text("")
    (tree / "daily" / "lock").unlink()
    assert any(c.endswith("daily: mtime, ctime") for c in diff(before, snapshot(tree)))
