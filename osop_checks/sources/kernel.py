"""The running kernel against the newest installed one: is a reboot due?"""
import os
import re


def version_key(text):
    """Natural order of kernel release strings: '6.1.0-9-amd64' < '6.1.0-21-amd64'."""
    return [(1, int(part), "") if part[0] in "0123456789" else (0, 0, part)
            for part in re.findall(r"[0-9]+|[^0-9]+", text)]  # '²' is \d, not int()


def installed_kernels(boot="/boot"):
    """Kernel releases with an image in ``boot`` (vmlinuz-<release>, vmlinux-<release>)."""
    try:
        names = os.listdir(boot)
    except OSError:
        return []
    found = set()
    for name in names:
        for prefix in ("vmlinuz-", "vmlinux-"):
            if name.startswith(prefix) and len(name) > len(prefix):
                found.add(name[len(prefix):])
    return sorted(found, key=version_key)


def kernel_reason(running, installed):
    """A reboot reason when a newer kernel than the running one is installed, else None.

    Where no kernel image is installed (a container, a VM booted from outside) there is
    nothing to compare, and a running kernel newer than every installed one is no reason."""
    if not installed or not running:
        return None
    newest = installed[-1]
    if newest != running and version_key(newest) > version_key(running):
        return "running kernel %s, newest installed %s" % (running, newest)
    return None
