"""Debian root filesystems made with debootstrap, cached between runs.

Used for a real systemd booted with systemd-nspawn and for real apt of other Debian releases.
The first build downloads from Debian's mirror (a minute or two); later runs copy the cache.
"""
import fcntl
import hashlib
import os
import shutil
import subprocess

CACHE = os.environ.get("OSOP_TEST_CACHE", "/var/cache/osop-checks-tests")
MIRROR = os.environ.get("OSOP_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def cached_root(release="bookworm", include=(), variant="minbase"):
    """Path of a pristine cached root for ``release`` with packages ``include``; built once.

    Callers that change the root must work on a copy (see ``fresh_copy``)."""
    key = hashlib.sha256(("%s|%s|%s" % (release, variant, ",".join(sorted(include))))
                         .encode()).hexdigest()[:12]
    path = os.path.join(CACHE, "%s-%s" % (release, key))
    os.makedirs(CACHE, exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, ".complete")):
            shutil.rmtree(path, ignore_errors=True)
            cmd = ["debootstrap", "--variant=%s" % variant]
            if include:
                cmd.append("--include=" + ",".join(include))
            cmd += [release, path, MIRROR]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=900)
            open(os.path.join(path, ".complete"), "w").close()
    return path


def fresh_copy(root, dest):
    """A writable copy of a cached root (cp -a keeps owners, modes and device nodes)."""
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", root, dest], check=True, timeout=600)
    return dest


def updated_root(release="bookworm", include=(), variant="minbase"):
    """A cached root of ``release`` whose sources add ``-updates`` and ``-security`` and whose
    package lists are fetched: debootstrap installed the release's own versions, so apt sees
    the updates published since as pending upgrades (security ones among them).

    Built once from ``cached_root`` (a minute more, needs the mirror); pristine like it, so
    callers that change it must work on a ``fresh_copy``."""
    base = cached_root(release, include, variant)
    path = base + "-updated"
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, ".complete")):
            fresh_copy(base, path)
            security = MIRROR.rsplit("/", 1)[0] + "/debian-security"
            with open(os.path.join(path, "etc/apt/sources.list"), "w") as handle:
                handle.write("deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n"
                             % (MIRROR, release, MIRROR, release, security, release))
            subprocess.run(["chroot", path, "apt-get", "-q", "update"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
            open(os.path.join(path, ".complete"), "w").close()
    return path
