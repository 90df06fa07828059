"""A day (a week, in fact) in the veterinary practice, with the real check_three_copies.

The practice is lab/peers/netns.py's: its server, the office PC and the off-site box
(vault.example.org, reached over IPv6) as network namespaces, each host with its own sshd.
/data1 is the live data, /data2 (a filesystem of its own) its local mirror; the sync job copies
/data1 one way with ``rsync -a --delete`` to /data2 and over ssh to both hosts, each night at
03:10. The off-site box sleeps (its link down) outside its backup window, 03:00 to 04:00.

The clock: ``Day.t0`` is night 1, 03:10; every later moment is ``t0 + hours``, and the check
runs at it under libfaketime (``lab.peers.faked_clock(moment)``, the clock then runs on from
there), in the server's namespace, with its state file in the test's temp dir. What happens to
the files at a moment (an edit, a deletion) gets that moment's mtime by os.utime; nothing
sleeps. A file's ctime cannot be shifted: the kernel sets it from the real clock, and the check
dates a change the copy lacks by it. So the real clock is the moment of the morning's edits,
the only changes judged while pending: t0 is 5 hours before the real now, and the practice's
time zone (``TZ``, for the check and for the titles) makes t0 read 03:10. Every other change
is synced before a check sees it, or (the canary deleted in a copy) is old in any case.

``PHASES`` is the day in order, shared by the tests (tests/integration/test_practice_day.py)
and `make demo` (lab/demo/practice.py): each phase says what happens, when the check runs and
what it must say.
"""
import os
import shutil
import subprocess
import time

from lab.peers import faked_clock, run_plugin

HOUR = 3600
CANARY = "canary.odt"
THRESHOLDS = ["-w", "26h", "-c", "50h", "--churn-warning", "10%", "--churn-critical", "30%"]


def _write(path, content, mtime):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
    os.utime(path, (mtime, mtime))


EDITS = 5  # hours after night 1's sync (08:10): the real clock's moment, see the module


def practice_zone(t0, local=3 * HOUR + 10 * 60):
    """A TZ of whole seconds' offset (within 12 h) in which ``t0`` reads ``local`` (03:10)."""
    offset = (local - t0) % 86400
    if offset >= 43200:
        offset -= 86400
    sign, offset = ("-", offset) if offset >= 0 else ("+", -offset)  # POSIX: west positive
    return "PRX%s%02d:%02d:%02d" % (sign, offset // HOUR, offset // 60 % 60, offset % 60), \
        offset if sign == "-" else -offset


class Day:
    """The practice's data, its sync job, what its users do, and its check, on ``practice``
    (a lab.peers.netns.Practice); ``base`` a temp dir, ``data2`` a filesystem of its own."""

    def __init__(self, practice, base, data2):
        self.practice = practice
        self.t0 = int(time.time()) - EDITS * HOUR
        self.zone, self._offset = practice_zone(self.t0)
        self.data1 = os.path.join(base, "data1")
        self.copies = {
            "data2": os.path.join(data2, "data1"),
            "office": os.path.join(base, "office-pc", "backup", "data1"),
            "offsite": os.path.join(base, "vault", "backup", "data1"),
        }
        self.hosts = {"office": practice["office"], "offsite": practice["offsite"]}
        for copy in self.hosts:  # the hosts' backup disks
            os.makedirs(os.path.dirname(self.copies[copy]))
        self.state_file = os.path.join(base, "state", "three_copies.json")
        os.makedirs(os.path.dirname(self.state_file))
        self.make_data1()

    def at(self, hours):
        return self.t0 + int(hours * HOUR)

    def clock(self, hours, fmt="%a %H:%M"):
        """The moment ``hours`` after t0 on the practice's clock."""
        return time.strftime(fmt, time.gmtime(self.at(hours) + self._offset))

    # -- the practice's files and what its people (and others) do to them

    def make_data1(self):
        """60 files: letters in docs/, x-rays in images/, the books in accounts/, a canary."""
        old = self.t0 - 90 * 86400
        self.make_docs()
        for i in range(18):
            _write(os.path.join(self.data1, "images", "xray%02d.dcm" % i),
                   bytes(range(256)) * (8 + i), old + i * 86400)
        for i in range(14):
            _write(os.path.join(self.data1, "accounts", "ledger%02d.csv" % i),
                   b"date;amount\n" * (10 + i), old + i * 86400)
        _write(os.path.join(self.data1, CANARY), b"canary: leave me alone\n" * 20, old)

    def make_docs(self):
        old = self.t0 - 90 * 86400
        for i in range(27):
            _write(os.path.join(self.data1, "docs", "2024", "letter%02d.odt" % i),
                   b"Dear owner of patient %d\n" % i * 40, old + i * 86400)

    def files(self, under=""):
        root = os.path.join(self.data1, under)
        return sorted(os.path.join(d, f) for d, _dirs, names in os.walk(root) for f in names)

    def morning_edits(self, hours):
        """A letter written, a ledger updated, an x-ray added."""
        _write(os.path.join(self.data1, "docs", "2024", "letter-new.odt"), b"Dear Mrs M.\n" * 50,
               self.at(hours))
        ledger = os.path.join(self.data1, "accounts", "ledger13.csv")
        with open(ledger, "ab") as handle:
            handle.write(b"today;42.00\n")
        os.utime(ledger, (self.at(hours + 0.5), self.at(hours + 0.5)))
        _write(os.path.join(self.data1, "images", "xray-new.dcm"), b"\x00\x01" * 900,
               self.at(hours + 1))

    def remove_docs(self, hours):
        """rm -rf /data1/docs"""
        shutil.rmtree(os.path.join(self.data1, "docs"))
        os.utime(self.data1, (self.at(hours), self.at(hours)))

    def restore_docs(self, hours):
        """The admin puts docs/ back as it was, from an older backup."""
        self.make_docs()

    def encrypt(self, hours, count, canary=False):
        """Ransomware rewrites ``count`` files (and the canary, with ``canary``)."""
        victims = [f for f in self.files() if not f.endswith(CANARY)][::2][:count]
        if canary:
            victims.append(os.path.join(self.data1, CANARY))
        for path in victims:
            with open(path, "rb") as handle:
                data = handle.read()
            _write(path, bytes(b ^ 0x5A for b in data), self.at(hours))
        return victims

    def drop_canary(self, copy):
        os.remove(os.path.join(self.copies[copy], CANARY))

    # -- the sync job, as the practice's server runs it each night

    def host_location(self, copy):
        return "root@%s:%s/" % (self.hosts[copy].hostname, self.copies[copy])

    def rsync(self, source, dest):
        """rsync -a --delete from the server, started (a Popen; communicate() waits)."""
        cmd = ["rsync", "-a", "--delete", "-e", " ".join(self.practice.ssh_command()),
               source.rstrip("/") + "/", dest]
        return subprocess.Popen(self.practice.on_server(cmd), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def sync(self, hours=None, stamp=None):
        """rsync -a --delete /data1/ to /data2 and over ssh to each host (at once); with
        ``stamp``, the job then writes that file into each copy it synced (mtime: the job's
        moment ``hours``). Returns {copy: None when synced, else rsync's complaint}."""
        running = {}
        for copy, path in self.copies.items():
            if copy in self.hosts:
                dest = self.host_location(copy)
            else:
                os.makedirs(path, exist_ok=True)
                dest = path + "/"
            running[copy] = self.rsync(self.data1, dest)
        done = {}
        for copy, process in running.items():
            _out, err = process.communicate(timeout=120)
            done[copy] = None if process.returncode == 0 else err.strip()
            if done[copy] is None and stamp:
                when = "@%d" % self.at(hours)
                stamp_path = os.path.join(self.copies[copy], stamp)
                if copy in self.hosts:
                    self.practice.ssh(self.hosts[copy].hostname, ["touch", "-d", when, stamp_path])
                else:
                    subprocess.run(["touch", "-d", when, stamp_path], check=True)
        return done

    # -- the check, as the practice's Icinga runs it on the server

    def argv(self, *extra):
        return ["--source", self.data1, "--copy", "data2=" + self.copies["data2"],
                "--copy", "office=" + self.host_location("office").rstrip("/"),
                "--copy", "offsite=" + self.host_location("offsite").rstrip("/"),
                "--offsite", "offsite", "--sleeping", "offsite", "--canary", CANARY,
                "--state-file", self.state_file, "-t", "30"] + THRESHOLDS \
            + self.practice.ssh_options() + list(extra)

    def wrap(self, hours):
        """The server's namespace and its clock at ``t0 + hours``."""
        return self.practice.on_server(["env", "TZ=" + self.zone] + faked_clock(self.at(hours)))

    def check(self, hours, *extra):
        return run_plugin("check_three_copies", self.argv(*extra), wrap=self.wrap(hours),
                          timeout=90)


# -- the day, in order: (title, what happens first, when the check runs, its extra options,
#    the exit code it must give, phrases (regular expressions) its output must hold)

def _awake_sync(hours):
    def step(day):
        day.hosts["offsite"].wake()
        synced = day.sync(hours)
        assert synced == {"data2": None, "office": None, "offsite": None}, synced
    return step


def _box_sleeps(day):
    day.hosts["offsite"].sleep()


def _nothing(day):
    pass


def _asleep_sync(hours):
    def step(day):
        synced = day.sync(hours)
        assert synced["data2"] is None and synced["office"] is None, synced
        assert synced["offsite"], "the sleeping box took a sync"
    return step


PHASES = [
    ("night 1: the sync job at 03:10 with the off-site box awake, then the check",
     _awake_sync(0), 0.1, (), 0, [r"3 of 3 copies ok", r"offsite: OK, in sync"]),
    ("the box went to sleep at 04:00; from 08:10 a letter, a ledger and an x-ray are saved",
     lambda day: (_box_sleeps(day), day.morning_edits(EDITS)), 6.3, (), 0,
     [r"offsite asleep, last verified in sync 6h \d+m ago",
      r"oldest office 1h 1\dm \(3 changes pending\)"]),
    ("the same day, lunch time", _nothing, 10, (), 0,
     [r"offsite asleep, last verified in sync 9h"]),
    ("the same day, late evening", _nothing, 20, (), 0,
     [r"offsite asleep, last verified in sync 19h"]),
    ("night 2: the box wakes at 03:00, the sync job runs at 03:10",
     _awake_sync(24), 24.1, (), 0, [r"3 of 3 copies ok", r"offsite: OK, in sync"]),
    ("the next morning, the box asleep again",
     _box_sleeps, 30, (), 0, [r"offsite asleep, last verified in sync 5h \d+m ago"]),
    ("night 3: the box does not wake; the sync job reaches data2 and the office PC only",
     _asleep_sync(48), 49, (), 0, [r"offsite asleep, last verified in sync 1d"]),
    ("early next morning, 26 h 24 m after the box was last verified (-w 26h)",
     _nothing, 50.5, (), 1, [r"offsite not verified for 1d 2h: did the box wake up\?"]),
    ("night 4: the box does not wake either; past -c 50h",
     _asleep_sync(72), 74.5, (), 2, [r"offsite not verified for 2d 2h: did the box wake up\?"]),
    ("night 5: the box wakes again, the sync job runs",
     _awake_sync(96), 96.1, (), 0, [r"3 of 3 copies ok"]),
    ("09:10: rm -rf /data1/docs", lambda day: (_box_sleeps(day), day.remove_docs(102)),
     102.1, (), 2, [r"source lost \d+% of its entries since .*\(most in docs/\)"]),
    ("night 6: the sync job's rsync --delete spreads it to every copy",
     _awake_sync(120), 120.1, (), 2,
     [r"source lost \d+% .*\(most in docs/\)", r"data2 lost \d+% .*\(most in docs/\)",
      r"office lost \d+% .*\(most in docs/\)", r"offsite lost \d+% .*\(most in docs/\)"]),
    ("the admin restores docs/ from an older backup, runs the sync job and accepts",
     lambda day: (day.restore_docs(121), day.sync(121)), 121.2, ("--accept-changes",), 0,
     [r"3 of 3 copies ok"]),
    ("the canary vanishes from the office PC's copy", lambda day: day.drop_canary("office"),
     121.6, (), 2, [r"canary canary.odt is missing in office"]),
    ("the admin runs the sync job again and accepts",
     lambda day: day.sync(122), 122.1, ("--accept-changes",), 0, [r"3 of 3 copies ok"]),
    ("night 7: at 01:00 a third of the files are encrypted, the sync job takes them at 03:10",
     lambda day: (day.encrypt(142, 21), _awake_sync(144)(day)), 144.1, (), 2,
     [r"3\d% of the source's files changed since .*a wave of rewritten files\?"]),
    ("the admin accepts the new contents", _nothing, 144.2, ("--accept-changes",), 0,
     [r"3 of 3 copies ok"]),
    ("night 8: a few files are encrypted again, the canary with them; synced at 03:10",
     lambda day: (day.encrypt(166, 3, canary=True), _awake_sync(168)(day)), 168.1, (), 2,
     [r"canary canary.odt changed since"]),
]
