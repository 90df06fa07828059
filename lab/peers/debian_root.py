"""Debian root filesystems made with debootstrap, cached between runs.

Used for a real systemd booted with systemd-nspawn and for real apt of other Debian releases.
The first build downloads from Debian's mirror (a minute or two); later runs copy the cache.
"""
import contextlib
import fcntl
import hashlib
import os
import shlex
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


def apt_root(release, packages=(), preseed=()):
    """A cached minbase root of ``release`` with ``packages`` installed by the release's own
    apt (dependencies, virtual ones included, resolved as on a real host; debootstrap's
    --include cannot) and fresh package lists, so later ``apt-get install`` works offline
    of ``apt-get update``. ``preseed``: debconf-set-selections lines answered before the
    install. Built once (needs the mirror); pristine like ``cached_root``."""
    base = cached_root(release)
    # the key of a root without preseed stays what it was, so existing caches stay valid
    key = hashlib.sha256((",".join(sorted(packages))
                          + ("|" + "\n".join(preseed) if preseed else "")).encode()
                         ).hexdigest()[:8]
    path = "%s-apt-%s" % (base, key)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, ".complete")):
            fresh_copy(base, path)
            with open(os.path.join(path, "usr/sbin/policy-rc.d"), "w") as handle:
                handle.write("#!/bin/sh\nexit 101\n")  # packages start no daemon here
            os.chmod(os.path.join(path, "usr/sbin/policy-rc.d"), 0o755)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            if preseed:
                subprocess.run(["chroot", path, "debconf-set-selections"], check=True,
                               input="\n".join(preseed) + "\n", text=True,
                               capture_output=True, timeout=60)
            install = ["apt-get", "-q", "-y", "--no-install-recommends", "install"]
            for cmd in [["apt-get", "-q", "update"]] + ([install + list(packages)]
                                                        if packages else []):
                # /proc mounted in a private namespace: icinga2's postinst reads /proc/self/fd
                subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', path]
                               + cmd, check=True, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
            open(os.path.join(path, ".complete"), "w").close()
    return path


@contextlib.contextmanager
def booted_copy(release, packages, dest):
    """A fresh copy of ``apt_root(release, packages)`` at ``dest`` with /proc mounted and
    apt's archives on a cache shared between runs (downloads once per .deb version); all
    unmounted and removed afterwards. Run commands in it with ``chroot``.

    One copy of a release at a time uses the shared archives (an exclusive lock on them,
    waited for): two apt-gets in two copies would otherwise meet on the archives' own lock
    and one of them fail ("Unable to lock directory /var/cache/apt/archives/")."""
    root = fresh_copy(apt_root(release, packages), dest)
    archives = os.path.join(CACHE, "apt-archives-" + release)
    os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
    mounts = []
    lock = open(archives + ".lock", "w")
    try:
        import fcntl

        # blocks until the other copy is done: its own commands have time limits
        fcntl.flock(lock, fcntl.LOCK_EX)
        for args, target in ((["-t", "proc", "proc"], "proc"),
                             (["--bind", archives], "var/cache/apt/archives")):
            subprocess.run(["mount"] + args + [os.path.join(root, target)], check=True)
            mounts.append(os.path.join(root, target))
        yield root
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        lock.close()  # the lock goes with it
        shutil.rmtree(root, ignore_errors=True)



PLAIN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
             "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}


def chroot(root, *argv, user=None, timeout=120, env=None):
    """``argv`` run in ``root`` (as ``user`` through runuser), with a plain environment."""
    cmd = ["chroot", root] + (["runuser", "-u", user, "--"] if user else []) + list(argv)
    env = dict(PLAIN_ENV, **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def overlaid(root, changes, *argv, binds=(), read_only=(), timeout=120, env=None):
    """``argv`` run as root in the pristine ``root`` seen through an overlay whose upper
    layer is under ``changes`` (a directory kept from one call to the next, so a module's
    runs see each other's writes): nothing of the cached root is copied (``fresh_copy`` of a
    root with python3 is some 400 MB) or changed. In a private mount namespace with /proc,
    /dev, and the host directories ``binds`` (writable) and ``read_only`` each at its own
    path inside; a plain environment plus ``env``. One call at a time per ``changes``."""
    merged, upper, work = (os.path.join(changes, name) for name in ("merged", "upper", "work"))
    for path in (merged, upper, work):
        os.makedirs(path, exist_ok=True)
    quote = shlex.quote
    steps = ["mount -t overlay overlay -o %s %s" % (
                 quote("lowerdir=%s,upperdir=%s,workdir=%s" % (root, upper, work)),
                 quote(merged)),
             "mount -t proc proc %s" % quote(merged + "/proc"),
             "mount --rbind /dev %s" % quote(merged + "/dev")]
    for path in list(binds) + list(read_only):
        inside = quote(merged + os.path.abspath(path))
        steps.append("mkdir -p %s && mount --bind %s %s" % (inside, quote(path), inside))
        if path in read_only:
            steps.append("mount -o remount,bind,ro %s" % inside)
    steps.append('exec chroot %s "$@"' % quote(merged))
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           " && ".join(steps), "sh"] + list(argv),
                          capture_output=True, text=True, env=dict(PLAIN_ENV, **(env or {})),
                          timeout=timeout)
