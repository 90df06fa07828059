import os
import shutil
import tempfile
import time


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
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        return found
    from lab.peers.debian_root import updated_root

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
