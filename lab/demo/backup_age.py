"""check_backup_age for `make demo`: a backup layout made under /tmp (an rsync mirror made by
the real rsync, dated snapshots, rsnapshot, nightly dumps, a stamp file and a log), restic and
Borg repositories made by the real tools (a fresh one, an old one, a backup held running, a
damaged pack, a file whose backed-up copy differs), then a real path of this machine."""
import datetime
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from lab.peers import trees

HOUR, DAY = 3600, 86400


def _layout(root):
    now = time.time()
    source = os.path.join(root, "data1")
    trees.make_wide_tree(source, fanout=(4, 5), files_per_dir=10, age=(2 * DAY, 90 * DAY))
    mirror = os.path.join(root, "data2", "mirror")
    if shutil.which("rsync"):
        trees.rsync_copy(source, mirror)
    else:  # without rsync: a copy that keeps mtimes, as rsync -a would
        shutil.copytree(source, mirror, copy_function=shutil.copy2)
    snapshots = os.path.join(root, "snapshots")
    today = datetime.datetime.now().replace(hour=3, minute=0)
    if today > datetime.datetime.now():
        today -= datetime.timedelta(days=1)
    trees.make_snapshots(snapshots, [(today - datetime.timedelta(days=n)).strftime(
        "host1-%Y-%m-%d_%H%M") for n in (4, 3, 2)], files_per_snapshot=5, size=2000)
    rsnapshot = os.path.join(root, "rsnapshot")
    trees.make_snapshots(rsnapshot, ["daily.0", "daily.1", "weekly.0"], files_per_snapshot=4,
                         size=500, mtime={"daily.0": now - 20 * HOUR,
                                          "daily.1": now - 44 * HOUR,
                                          "weekly.0": now - 6 * DAY})
    rotation = {}
    for kept in (7, 3):  # retain daily 7: a full rotation, and one cut short after 3 nights
        rotation[kept] = os.path.join(root, "rsnapshot-%d" % kept)
        trees.make_snapshots(rotation[kept], ["daily.%d" % n for n in range(kept)],
                             files_per_snapshot=4, size=500,
                             mtime={"daily.%d" % n: now - 20 * HOUR - n * DAY
                                    for n in range(kept)})
    dumps = os.path.join(root, "dumps")
    trees.make_tree(dumps, {"db-%s.sql.gz" % (today - datetime.timedelta(days=n)).strftime(
        "%Y%m%d"): (0 if n == 0 else 40000, now - n * DAY - HOUR) for n in (2, 1, 0)})
    stamp = os.path.join(root, "last-success")
    trees.write_file(stamp, content=(datetime.datetime.now(datetime.timezone.utc)
                                     - datetime.timedelta(hours=5)).isoformat() + "\n")
    log = os.path.join(root, "backup.log")
    trees.write_file(log, content=(
        "=== backup started\nsending incremental file list\n"
        "sent 1,234 bytes  received 56 bytes  2,580.00 bytes/sec\n"
        "total size is 9,876,543  speedup is 7,656.24\n"
        "=== backup started\nsending incremental file list\n"
        "rsync: [sender] send_files failed to open \"/data1/locked.db\": Permission denied (13)\n"
        "total size is 9,876,543  speedup is 7,656.24\n"
        "rsync error: some files/attrs were not transferred (see previous errors) (code 23) at "
        "main.c(1338) [sender=3.2.7]\n"))
    return {"mirror": mirror, "snapshots": snapshots, "rsnapshot": rsnapshot, "dumps": dumps,
            "rotation": rotation[7], "rotation_short": rotation[3],
            "stamp": stamp, "log": log, "data": os.path.join(root, "data2")}


def _tool(env, *argv):
    subprocess.run(list(argv), check=True, capture_output=True, env=env, timeout=120)


def _repositories(root, stack):
    """restic and Borg repositories of a small tree, by the real tools; None without them."""
    if not (shutil.which("restic") and shutil.which("borg")):
        return None
    now = time.time()
    password = os.path.join(root, "repo-password")
    trees.write_file(password, content="demo only, not a secret\n")
    os.chmod(password, 0o644)  # Icinga runs the demo's services as its own user
    env = dict(os.environ, RESTIC_PASSWORD_FILE=password, BORG_PASSCOMMAND="cat " + password,
               BORG_CACHE_DIR=os.path.join(root, "borg-cache"))
    src = os.path.join(root, "www")
    trees.make_tree(src, {"index.html": (2000, now - DAY), "app.py": (5000, now - 2 * DAY),
                          "data.db": (40000, now - HOUR)})

    def local(epoch):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))

    def restic_repo(name, *snapshots):
        repo = os.path.join(root, name)
        _tool(env, "restic", "-r", repo, "init")
        for host, when in snapshots:
            _tool(env, "restic", "-r", repo, "backup", "--host", host, "--time", local(when),
                  src)
        return repo

    this = socket.gethostname()
    repos = {"password": password, "src": src}
    repos["fresh"] = restic_repo("restic-fresh", (this, now - 2 * HOUR))
    repos["hosts"] = restic_repo("restic-hosts", ("web1", now - 30 * HOUR),
                                 ("web2", now - HOUR))
    repos["running"] = restic_repo("restic-running", ("web1", now - 30 * HOUR))
    backup = subprocess.Popen(["restic", "-r", repos["running"], "backup", "--host", "web1",
                               "--stdin", "--stdin-filename", "db.sql"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    stack.callback(backup.wait)
    stack.callback(backup.send_signal, signal.SIGKILL)
    repos["damaged"] = restic_repo("restic-damaged", (this, now - HOUR))
    for directory, _, files in os.walk(os.path.join(repos["damaged"], "data")):
        for name in files:
            path = os.path.join(directory, name)
            os.chmod(path, 0o644)
            with open(path, "r+b") as handle:
                handle.seek(os.path.getsize(path) // 2)
                handle.write(b"XXXXXXXX")
    _tool(env, "restic", "-r", repos["fresh"], "backup", src)  # this host, the live tree
    changed = os.path.join(src, "app.py")
    before = os.stat(changed)
    with open(changed, "r+b") as handle:
        handle.write(b"#")  # same size, same mtime: only a restore can tell
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns))
    borg = os.path.join(root, "borg")
    _tool(env, "borg", "init", "-e", "repokey", borg)
    for days in (3, 2, 1):
        _tool(env, "borg", "create", "--timestamp",
              local(now - days * DAY).replace(" ", "T"),
              "%s::%s-%s" % (borg, this, local(now - days * DAY)[:10]), src)
    _tool(env, "borg", "create", "%s::%s-today.checkpoint" % (borg, this), src)
    repos["borg"], repos["prefix"] = borg, this + "-"
    subprocess.run(["chmod", "-R", "a+rX", root], check=False)
    wait = time.monotonic() + 20
    while not os.listdir(os.path.join(repos["running"], "locks")) and time.monotonic() < wait:
        time.sleep(0.2)
    return repos


def _repo_scenarios(r, root):
    if r is None:  # restic and borgbackup not installed: the file modes only
        return []
    check, pw = "check_backup_age", ["--password-file", r["password"]]
    return [
        ("restic: a fresh repository of this host",
         [check, "--mode", "restic", "--repo", r["fresh"], *pw]),
        ("restic: web1's newest snapshot is 30h old; web2's fresh one does not hide it",
         [check, "--mode", "restic", "--repo", r["hosts"], *pw, "--host", "web1", "-w", "26h"]),
        ("restic: a backup running now (the repository locked by a live restic) and the "
         "newest snapshot too old: WARNING, not CRITICAL",
         [check, "--mode", "restic", "--repo", r["running"], *pw, "-w", "20h", "-c", "26h"]),
        ("restic: a damaged pack found by --verify",
         [check, "--mode", "restic", "--repo", r["damaged"], *pw, "--verify", "100%",
          "--state-file", os.path.join(root, "verify-state.json")]),
        ("restic: --restore-sample finds a file whose backed-up copy differs from the live "
         "file (same size and mtime)",
         [check, "--mode", "restic", "--repo", r["fresh"], *pw, "--restore-sample", "3"]),
        ("borg (as borgmatic makes them): {hostname}- archives, a checkpoint never counts",
         [check, "--mode", "borg", "--repo", r["borg"], *pw, "--prefix", r["prefix"],
          "--min-snapshots", "3"]),
    ]


def scenarios(stack):
    root = tempfile.mkdtemp(prefix="osop-demo-backup-age-")
    os.chmod(root, 0o755)  # Icinga runs the demo's services as its own user
    stack.callback(shutil.rmtree, root, True)
    p = _layout(root)
    repos = _repositories(root, stack)
    check = "check_backup_age"
    return _repo_scenarios(repos, root) + [
        ("an rsync -a mirror by mtime: rsync kept the source's old mtimes",
         [check, "-p", p["mirror"], "-w", "26h", "-c", "50h"]),
        ("the same mirror by ctime: the time of the last sync",
         [check, "-p", p["mirror"], "--time", "ctime", "-w", "26h", "-c", "50h",
          "--min-files", "100"]),
        ("dated snapshot directories, the newest 2 days old",
         [check, "-p", p["snapshots"], "--mode", "snapshot", "--name-format",
          "host1-%Y-%m-%d_%H%M", "-w", "26h", "-c", "50h"]),
        ("rsnapshot daily.0",
         [check, "-p", p["rsnapshot"], "--mode", "snapshot", "--name-format", "rsnapshot"]),
        ("rsnapshot with retain daily 7: seven versions, the oldest 6 days back",
         [check, "-p", p["rotation"], "--mode", "snapshot", "--name-format", "rsnapshot",
          "--min-snapshots", "7", "--oldest-snapshot", "6d"]),
        ("the same rotation cut short: only 3 versions to restore from",
         [check, "-p", p["rotation_short"], "--mode", "snapshot", "--name-format", "rsnapshot",
          "--min-snapshots", "7", "--oldest-snapshot", "6d"]),
        ("nightly dumps: the newest one is 0 bytes",
         [check, "-p", p["dumps"], "--mode", "snapshot", "--type", "file", "--glob",
          "db-*.sql.gz", "--min-size", "1KiB"]),
        ("a stamp file with an ISO timestamp, and the backup's log (rsync error in the last "
         "run)",
         [check, "--stamp", p["stamp"], "-p", p["data"], "--log", p["log"], "--log-start",
          "^=== backup started"]),
        ("a backup that is gone: --path does not exist",
         [check, "-p", os.path.join(p["data"], "gone")]),
        ("no backup matching the pattern",
         [check, "-p", p["mirror"], "--glob", "*.tar.gz"]),
        ("bad input: a relative path", [check, "-p", "backup/data"]),
        ("a real path of this machine: /var/log by ctime",
         [check, "-p", "/var/log", "--time", "ctime", "-w", "1d", "-c", "7d",
          "--skip-unreadable"]),
    ]
