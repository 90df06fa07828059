"""Real filesystems in loop devices, mounted in a mount namespace of their own.

``LoopDisks(root)`` (root only) starts a process that holds a private mount namespace
(``unshare --mount --propagation private sleep infinity``); inside it each ``add(name, fstype,
size, options)`` makes an image file under ``root``, its filesystem (mkfs.ext4, mkfs.btrfs),
and mounts it on ``root/name`` through a loop device. ``fstab()`` binds an fstab that lists
them over /etc/fstab, in that namespace only. ``wrap`` is the command prefix that runs a
check in there (``nsenter -t PID -m``), ``sh(script)`` runs a shell script in there. The
machine's own mounts and /etc/fstab are never touched; the mounts, the loop devices and the
namespace go with ``stop()``.
"""
import os
import shutil
import subprocess
import time

from lab.peers import Started, end_process

MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "btrfs": ["mkfs.btrfs", "-q", "-f"]}


class LoopDisks(Started):
    def __init__(self, root):
        self.root = str(root)
        self.holder = None
        self.disks = {}  # name: (mount point, fstype, fstab options)

    def start(self):
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL)
        # the namespace exists once sleep runs in it (its mount namespace differs from ours)
        ours = os.readlink("/proc/self/ns/mnt")
        for _ in range(1000):
            if self.holder.poll() is not None:
                raise RuntimeError("unshare --mount failed (exit %d)" % self.holder.returncode)
            try:
                if os.readlink("/proc/%d/ns/mnt" % self.holder.pid) != ours and \
                        os.readlink("/proc/%d/exe" % self.holder.pid).endswith("/sleep"):
                    return self
            except OSError:
                pass
            time.sleep(0.01)  # waiting for a process to start, not for time to pass
        raise RuntimeError("unshare --mount did not start sleep in 10 s")

    @property
    def wrap(self):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--"]

    def sh(self, script, *args, check=True, timeout=120):
        """``script`` run by sh in the namespace; a CompletedProcess."""
        result = subprocess.run(self.wrap + ["sh", "-ec", script, "sh"] + [str(a) for a in args],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode:
            raise RuntimeError("%s: %s" % (script.strip().splitlines()[0], result.stderr))
        return result

    def add(self, name, fstype="ext4", size="64M", options="defaults", fstab_options=None):
        """A filesystem of ``fstype`` mounted on ROOT/NAME; its mount point."""
        image = os.path.join(self.root, name + ".img")
        point = os.path.join(self.root, name)
        os.makedirs(point, exist_ok=True)
        subprocess.run(["truncate", "-s", size, image], check=True)
        subprocess.run(MKFS[fstype] + [image], check=True, capture_output=True)
        self.sh('mount -t "$1" -o "loop,$2" "$3" "$4"', fstype, options, image, point)
        self.disks[name] = (point, fstype, fstab_options or options)
        return point

    def fstab(self):
        """Bind an fstab listing the filesystems (as added) over /etc/fstab, in here."""
        path = os.path.join(self.root, "fstab")
        with open(path, "w") as handle:
            handle.write("# osop-checks lab: loop filesystems\n")
            for name, (point, fstype, options) in self.disks.items():
                handle.write("%s %s %s %s 0 2\n" % (
                    os.path.join(self.root, name + ".img"), point, fstype, options))
        self.sh('mount --bind "$1" /etc/fstab', path)

    def stop(self):
        if self.holder is not None and self.holder.poll() is None:
            self.sh("for m in $(awk -v r=\"$1/\" 'index($2, r) == 1 {print $2}' "
                    "/proc/self/mounts | sort -r); do umount \"$m\" || umount -l \"$m\"; "
                    "done", self.root, check=False)
        end_process(self.holder)
        shutil.rmtree(self.root, ignore_errors=True)
