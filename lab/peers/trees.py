"""Real directory trees for tests, `make demo` and `bench/`: files with chosen sizes and times,
dated snapshot directories, and copies made by the real ``rsync -a``.

Generic on purpose (check_backup_age and check_three_copies both use it): every helper takes
the root it works under and returns plain data; nothing here knows about a check.
"""
import os
import random
import shutil
import subprocess
import time

DAY = 86400


def write_file(path, size=0, mtime=None, content=None):
    """Create ``path`` (and its parents) holding ``content`` or ``size`` bytes; set its atime
    and mtime to ``mtime`` (seconds since the epoch) when given. Returns the path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    if data is None:
        data = b"x" * size
    with open(path, "wb") as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def set_time(path, mtime):
    """Set a file's or directory's atime and mtime (ctime becomes 'now': the kernel's rule)."""
    os.utime(path, (mtime, mtime), follow_symlinks=False)


def make_tree(root, files, dir_mtime=None):
    """Build ``files`` under ``root``: a mapping of relative path -> (size, mtime) or -> text.

    Directories get ``dir_mtime`` afterwards when given (creating files bumps a directory's
    mtime, so it is set last, deepest first). Returns ``root``."""
    for rel, spec in files.items():
        if isinstance(spec, (str, bytes)):
            write_file(os.path.join(root, rel), content=spec)
        else:
            size, mtime = spec
            write_file(os.path.join(root, rel), size=size, mtime=mtime)
    os.makedirs(root, exist_ok=True)
    if dir_mtime is not None:
        set_dir_times(root, dir_mtime)
    return root


def set_dir_times(root, mtime):
    """Give every directory under ``root`` (itself included) this mtime, deepest first."""
    for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -t[0].count(os.sep)):
        set_time(dirpath, mtime)


def make_wide_tree(root, fanout=(10, 10), files_per_dir=10, size=(0, 64),
                   age=(DAY, 30 * DAY), now=None, seed=1, dir_mtime=None):
    """A regular tree: ``fanout`` directories per level (10 x 10 = 100 leaf directories), each
    leaf holding ``files_per_dir`` files ``f<n>.dat`` of random sizes in ``size`` (bytes) and
    random mtimes between ``age[1]`` and ``age[0]`` seconds before ``now``.

    Fast enough for a million files (no per-file Python objects kept). Returns a dict:
    files, bytes, newest (path), newest_mtime, oldest_mtime."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    total_files = total_bytes = 0
    newest, newest_mtime, oldest_mtime = None, float("-inf"), float("inf")
    leaves = [root]
    for width in fanout:
        leaves = [os.path.join(d, "d%03d" % i) for d in leaves for i in range(width)]
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC
    payload = b"x" * size[1]
    for leaf in leaves:
        os.makedirs(leaf, exist_ok=True)
        dir_fd = os.open(leaf, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for n in range(files_per_dir):
                name = "f%05d.dat" % n
                nbytes = rng.randint(size[0], size[1])
                mtime = int(now - rng.uniform(age[0], age[1]))
                fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
                try:
                    if nbytes:
                        os.write(fd, payload[:nbytes])
                    os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)
                total_files += 1
                total_bytes += nbytes
                oldest_mtime = min(oldest_mtime, mtime)
                if mtime > newest_mtime:
                    newest, newest_mtime = os.path.join(leaf, name), mtime
        finally:
            os.close(dir_fd)
    if dir_mtime is not None:
        set_dir_times(root, dir_mtime)
    return {"files": total_files, "bytes": total_bytes, "newest": newest,
            "newest_mtime": newest_mtime, "oldest_mtime": oldest_mtime}


def make_snapshots(root, names, files_per_snapshot=3, size=100, mtime=None):
    """Snapshot directories ``root/<name>`` (``daily.0``, ``2024-05-01_0300`` ...), each with a
    few files. ``mtime`` maps a name to the mtime its directory gets (rsnapshot touches
    ``daily.0`` when a run ends). Returns the list of paths."""
    paths = []
    for name in names:
        path = os.path.join(root, name)
        for n in range(files_per_snapshot):
            write_file(os.path.join(path, "data", "file%d" % n), size=size)
        when = (mtime or {}).get(name)
        if when is not None:
            set_dir_times(path, when)
        paths.append(path)
    return paths


def rsync_copy(source, dest, extra=()):
    """Copy ``source``'s contents into ``dest`` with the real ``rsync -a`` (mtimes kept, so only
    ctimes tell when the copy was made). Returns rsync's output."""
    from lab.peers import need

    need("rsync")
    os.makedirs(dest, exist_ok=True)
    proc = subprocess.run(["rsync", "-a"] + list(extra) + [source.rstrip("/") + "/", dest],
                          capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout


def remove(path):
    shutil.rmtree(path, ignore_errors=True)
