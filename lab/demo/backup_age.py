"""check_backup_age for `make demo`: a backup layout made under /tmp (an rsync mirror made by
the real rsync, dated snapshots, rsnapshot, nightly dumps, a stamp file and a log), then a real
path of this machine."""
import datetime
import os
import shutil
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


def scenarios(stack):
    root = tempfile.mkdtemp(prefix="osop-demo-backup-age-")
    os.chmod(root, 0o755)  # Icinga runs the demo's services as its own user
    stack.callback(shutil.rmtree, root, True)
    p = _layout(root)
    check = "check_backup_age"
    return [
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
        ("no backup matching the pattern",
         [check, "-p", p["mirror"], "--glob", "*.tar.gz"]),
        ("bad input: a relative path", [check, "-p", "backup/data"]),
        ("a real path of this machine: /var/log by ctime",
         [check, "-p", "/var/log", "--time", "ctime", "-w", "1d", "-c", "7d",
          "--skip-unreadable"]),
    ]
