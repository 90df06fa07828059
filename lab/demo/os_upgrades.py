import calendar
import os
import shutil
import tempfile
import time

from lab.peers import faked_clock


def _situation_root(stack, source):
    """A temporary root with the apt state of ``source``, a pending reboot and week-old lists."""
    tmp = tempfile.mkdtemp(prefix="osop-demo-upgrades-")
    stack.callback(shutil.rmtree, tmp, True)
    root = os.path.join(tmp, "root")
    for part in ("etc/apt", "var/lib/apt/lists", "var/lib/dpkg"):
        shutil.copytree(os.path.join(source, part), os.path.join(root, part), symlinks=True,
                        ignore=shutil.ignore_patterns("lock*", "info"))
    os.makedirs(os.path.join(root, "run"))
    os.makedirs(os.path.join(root, "var/cache/apt"))
    with open(os.path.join(root, "run/reboot-required"), "w") as handle:
        handle.write("*** System restart required ***\n")
    with open(os.path.join(root, "run/reboot-required.pkgs"), "w") as handle:
        handle.write("libc6\n")
    lists = os.path.join(root, "var/lib/apt/lists")
    old = time.time() - 9 * 86400
    for name in os.listdir(lists):
        os.utime(os.path.join(lists, name), (old, old))
    return tmp, root


_EOL_QUIET = ["--no-cache", "--max-list-age", "0", "--security-critical", "1000", "-w", "1000"]


def _eol_root(stack):
    """A temporary root that is Debian 11 (its own os-release) with Debian 13's
    distro-info-data and no package lists; None without faketime."""
    if not shutil.which("faketime"):
        return None
    from lab.peers.debian_root import apt_root, cached_root

    source = apt_root("trixie", ["distro-info-data"])
    tmp = tempfile.mkdtemp(prefix="osop-demo-eol-")
    stack.callback(shutil.rmtree, tmp, True)
    root = os.path.join(tmp, "root")
    shutil.copytree(os.path.join(source, "usr/share/distro-info"),
                    os.path.join(root, "usr/share/distro-info"))
    for part in ("etc/apt/sources.list.d", "var/lib/dpkg", "var/lib/apt/lists/partial",
                 "var/cache/apt"):
        os.makedirs(os.path.join(root, part), exist_ok=True)
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    shutil.copy(os.path.join(cached_root("bullseye"), "usr/lib/os-release"),
                os.path.join(root, "etc/os-release"))
    return root


def _restart_holder(stack):
    """A process that has a copy of libz loaded, then the copy replaced as dpkg does (the
    copy goes to /usr/local/lib: root only)."""
    import ctypes.util
    import subprocess
    import sys

    directory = tempfile.mkdtemp(prefix="osop-demo-", dir="/usr/local/lib")
    stack.callback(shutil.rmtree, directory, True)
    copy = os.path.join(directory, "libosopz.so.1")
    shutil.copy("/usr/lib/x86_64-linux-gnu/libz.so.1" if os.path.exists(
        "/usr/lib/x86_64-linux-gnu/libz.so.1") else ctypes.util.find_library("z"), copy)
    holder = subprocess.Popen([sys.executable, "-c", "import ctypes, sys, time\n"
                               "ctypes.CDLL(sys.argv[1]); print(flush=True); time.sleep(3600)",
                               copy], stdout=subprocess.PIPE)
    stack.callback(holder.kill)
    holder.stdout.readline()  # loaded
    shutil.copy(copy, copy + ".dpkg-new")
    os.replace(copy + ".dpkg-new", copy)
    return holder.pid


def scenarios(stack):
    found = [
        ("this machine's pending upgrades (apt-get -s dist-upgrade, cached afterwards)",
         ["check_os_upgrades"]),
        ("the same again: answered from the result cache",
         ["check_os_upgrades"]),
        ("upgrade mode, libraries only, security upgrades warn from 1, critical above 50",
         ["check_os_upgrades", "--upgrade-mode", "upgrade", "--include", "^lib",
          "--security-warning", "0", "--security-critical", "50", "-w", "100"]),
    ]
    if os.geteuid() == 0:
        found.append(("a process still running a copy of libz that was replaced since "
                      "(restart needed)", ["check_os_upgrades"],
                      lambda: _restart_holder(stack), ()))
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        return found
    from lab.peers.debian_root import updated_root

    eol = _eol_root(stack)
    if eol:
        found.append(("Debian 11 in its LTS years (the clock at 2025-06-01): WARNING, the "
                      "dates in the long output", ["check_os_upgrades", "--root", eol]
                      + _EOL_QUIET, None, faked_clock(calendar.timegm((2025, 6, 1, 12, 0, 0)))))
        found.append(("Debian 11 today, its LTS over too (distro-info-data of Debian 13): "
                      "CRITICAL", ["check_os_upgrades", "--root", eol] + _EOL_QUIET))
    for release in ("bullseye", "trixie"):
        root = updated_root(release)
        found.append(("a %s root, asked through its own apt (chroot)" % release,
                      ["check_os_upgrades", "--no-cache", "--root", root,
                       "--apt-get", "chroot %s apt-get" % root, "--max-list-age", "0"]))
    tmp, root = _situation_root(stack, updated_root("trixie"))
    found.append(("a trixie root that needs a reboot and whose lists are 9 days old",
                  ["check_os_upgrades", "--root", root, "--cache-dir", tmp,
                   "--max-list-age", "2d", "--reboot-state", "crit"]))
    return found
