"""`make demo` for check_three_copies: a real sshd on loopback, a small source tree and three
copies made with real rsync (one local on a tmpfs of its own, two over ssh)."""
import os
import shutil
import subprocess
import tempfile
import time


def scenarios(stack):
    from lab.peers.copies import make_source, rsync, write
    from lab.peers.sshd import Sshd, free_port

    if os.geteuid() != 0:
        raise RuntimeError("needs root (sshd, tmpfs)")
    server = stack.enter_context(Sshd())
    base = tempfile.mkdtemp(prefix="osop-demo-copies-")
    stack.callback(shutil.rmtree, base, True)
    fs = tempfile.mkdtemp(prefix="osop-demo-copy-fs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "osop-demo", fs], check=True)
    stack.callback(os.rmdir, fs)
    stack.callback(subprocess.run, ["umount", "-l", fs])

    def copies(name):
        source = os.path.join(base, name, "source")
        make_source(source)
        paths = {"data2": os.path.join(fs, name), "office": os.path.join(base, name, "office"),
                 "offsite": os.path.join(base, name, "offsite")}
        rsync(source, paths["data2"])
        rsync(source, paths["office"], server, "127.0.0.1")
        rsync(source, paths["offsite"], server, "127.0.0.2")
        argv = ["check_three_copies", "--source", source, "--copy", "data2=" + paths["data2"],
                "--copy", "office=127.0.0.1:" + paths["office"],
                "--copy", "offsite=127.0.0.2:" + paths["offsite"], "--offsite", "offsite",
                "--settle", "0", "--state-file", os.path.join(base, name, "state.json")] + \
            server.options()
        return paths, argv

    fresh, fresh_argv = copies("fresh")
    stale, stale_argv = copies("stale")
    now = time.time()
    for copy, age in (("data2", 3600), ("office", 7200), ("offsite", 3 * 86400 + 4 * 3600)):
        write(os.path.join(stale[copy], ".last-sync"), b"", now - age)
    diverged, diverged_argv = copies("diverged")
    os.remove(os.path.join(diverged["office"], "docs", "d01", "file04.txt"))
    write(os.path.join(diverged["office"], "a", "x"), b"xx")
    down_argv = [a if not a.startswith("offsite=") else
                 "offsite=ssh://127.0.0.3:%d%s" % (free_port("127.0.0.3"), fresh["offsite"])
                 for a in fresh_argv]
    return [
        ("three fresh copies (data2 on its own tmpfs, office and offsite over ssh), "
         "with 5 files' sha256 compared", fresh_argv + ["--verify-sample", "5"]),
        ("the off-site copy's stamp file is 3 days old", stale_argv + ["--stamp",
                                                                      ".last-sync"]),
        ("a diverged office copy: one file deleted, one changed", diverged_argv),
        ("the off-site host is down", down_argv),
        ("bad input: --copy without '='", ["check_three_copies", "--source", "/srv",
                                           "--copy", "data2"]),
    ]
