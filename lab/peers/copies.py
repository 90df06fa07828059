"""Copies of a tree as the practice makes them: a filesystem of their own (tmpfs), real
``rsync -a --delete`` locally or over the test sshd, and a source with the names that break
naive listings. Used by the three_copies tests, the practice's day and `make demo`."""
import contextlib
import os
import subprocess
import tempfile
import time

from lab.peers import need

OLD = time.time() - 30 * 86400


@contextlib.contextmanager
def tmpfs(dir=None):
    """A directory that is a filesystem of its own (a copy on another "disk")."""
    path = tempfile.mkdtemp(prefix="osop-copy-fs-", dir=dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "osop-test", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
        os.rmdir(path)


def write(path, content, mtime=OLD):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
    os.utime(path, (mtime, mtime))


def make_source(root):
    """A small tree with the names that break naive listings."""
    for i in range(12):
        write(os.path.join(root, "docs", "d%02d" % (i % 3), "file%02d.txt" % i),
              ("content %d\n" % i * (i + 1)).encode())
    write(os.path.join(root, "tab\there.txt"), b"tab")
    write(os.path.join(root, "new\nline.txt"), b"newline")
    write(os.path.join(root, "sp ace", "\u00fcn\u00ef.txt"), b"unicode")
    write(os.path.join(root, "a.b"), b"sorts before a/")
    write(os.path.join(root, "a", "x"), b"x")
    os.makedirs(os.path.join(root, "empty"))
    os.symlink("a.b", os.path.join(root, "link"))
    os.utime(os.path.join(root, "link"), (OLD, OLD), follow_symlinks=False)
    for dirpath, _dirnames, _files in os.walk(root, topdown=False):
        os.utime(dirpath, (OLD, OLD))


def rsync(source, dest, server=None, host=None):
    """A real copy: rsync -a --delete, locally or over the test sshd."""
    need("rsync")
    cmd = ["rsync", "-a", "--delete"]
    if server:
        cmd += ["-e", "ssh -p %d -i %s -o UserKnownHostsFile=%s -o BatchMode=yes "
                      "-o StrictHostKeyChecking=yes" % (server.port, server.client_key,
                                                        server.known_hosts)]
        dest = "root@%s:%s" % (host, dest)
    subprocess.run(cmd + [source.rstrip("/") + "/", dest.rstrip("/") + "/"], check=True,
                   timeout=60, capture_output=True)
