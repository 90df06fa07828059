"""check_os_upgrades: pending OS upgrades (security apart), held packages, reboot, stale lists,
services running replaced code, the release's end of security support.

arguments -> gather: the host's package manager (apt or dnf, detected), its pending upgrades
(from the result cache while the dpkg status / rpm database and the package lists are
unchanged, else from a simulation) after include/exclude, the reboot, the lists' age, the
processes on deleted code (/proc), the release's support dates (distro-info-data), as Facts
-> judge (pure): security and other upgrades against their ranges, held packages, reboot,
list age, restarts and end of life with their own states -> a plugin.Verdict with the
counts, rendered by runtime.
"""
import os
import shutil
import time

import nagiosplugin
from nagiosplugin import Critical, Ok, Warn

from osop_checks import cli, plugin, proc, runtime, units
from osop_checks import state as state_files
from osop_checks.sources import apt, kernel, packages, processes, release

NAME = "OS_UPGRADES"

def parse_command(text):
    """A command line split as a shell would (never run by one) into an argv list."""
    import shlex  # only when a command is given

    try:
        argv = shlex.split(text)
    except ValueError:  # "No closing quotation": argparse's own words, as before
        raise ValueError("invalid command value: %r" % (text,)) from None
    if not argv:
        raise ValueError("empty command")
    return argv


command_type = cli.value_type(parse_command, "command")


def build_parser():
    parser = cli.Parser(
        NAME, "check_os_upgrades",
        "Pending OS upgrades (security updates apart), held packages, a required reboot and "
        "stale package lists, on apt (Debian, Ubuntu) and dnf/yum (RHEL family) hosts.",
        examples=[
            "check_os_upgrades",
            "check_os_upgrades --security-critical 0 -w 10 -c 50 --reboot-state critical",
            "check_os_upgrades --upgrade-mode upgrade --exclude '^linux-(image|headers)-'",
            "check_os_upgrades --max-list-age 2d --list-age-state critical",
            "check_os_upgrades --root /srv/container --apt-get 'chroot /srv/container apt-get'",
            "check_os_upgrades --eol-warning 180d --lts-state ok",
            "check_os_upgrades --restart-state critical",
        ],
        behind_the_scenes=[
            "apt: apt-get -s -o Debug::NoLocking=1 dist-upgrade (a simulation: no lock taken,",
            "nothing changed), held packages from /var/lib/dpkg/status, list age from the newest",
            "of /var/lib/apt/lists/* and /var/lib/apt/periodic/update-success-stamp, reboot",
            "from /run/reboot-required(.pkgs); security = an origin labelled Debian-Security or a",
            "suite ending in -security (as check_apt). dnf: dnf -q -C check-update and",
            "dnf -q -C updateinfo list --security (cached metadata only), needs-restarting -r,",
            "metadata age from /var/cache/dnf. Both: running kernel (uname -r) against the newest",
            "/boot/vmlinuz-*. The answer is cached in --cache-dir, keyed on the dpkg status (rpm",
            "database), the package lists (dnf metadata) and the apt sources/pinning; any change",
            "of those recomputes it. Restarts: executable mappings of deleted files under /usr,",
            "/lib*, /bin, /sbin, /opt in /proc/*/maps and /proc/*/exe (as needrestart), named by",
            "the systemd unit of /proc/PID/cgroup; as another user than root only that user's",
            "processes can be read. End of life: the release from /etc/os-release, its dates",
            "from /usr/share/distro-info/{debian,ubuntu}.csv (distro-info-data, offline).",
        ])
    pm = parser.add_argument_group("package manager")
    pm.add_argument("--package-manager", kind=cli.PLAIN,
                    choices=("auto", "apt", "dnf"), default="auto",
                    help="which package manager to ask (default: auto, apt where apt-get and "
                         "the dpkg status exist, else dnf, else yum)")
    pm.add_argument("--upgrade-mode", kind=cli.PLAIN, choices=apt.MODES, default="dist-upgrade",
                    help="apt: simulate this (default: dist-upgrade, which also counts new "
                         "packages such as a new kernel ABI; upgrade keeps those back)")
    pm.add_argument("--root", kind=cli.FILE_READ, metavar="DIR",
                    help="check the system below DIR (a container root): its dpkg status, "
                         "lists, /run/reboot-required, os-release and distro-info-data; "
                         "apt-get runs with -o Dir=DIR unless --apt-get is given; the running "
                         "kernel and processes are not looked at")
    pm.add_argument("--apt-get", kind=cli.PROGRAM, type=command_type, metavar="COMMAND",
                    help="the apt-get command, split like a shell would (default: apt-get), "
                         "e.g. 'chroot /srv/c apt-get' to use a container's own apt (give "
                         "--root /srv/c too, so that its files are read)")
    pm.add_argument("--dnf", kind=cli.PROGRAM, type=command_type, metavar="COMMAND",
                    help="the dnf command (default: dnf, or yum where there is no dnf)")
    pm.add_argument("--needs-restarting", kind=cli.PROGRAM, type=command_type, metavar="COMMAND",
                    default=["needs-restarting"],
                    help="dnf: the command asked whether a reboot is required (default: "
                         "needs-restarting; given -r)")
    sel = parser.add_argument_group("selection")
    sel.add_argument("--include", kind=cli.PLAIN, type=cli.regex_type, metavar="REGEX",
                     help="count only packages whose name matches this regular expression")
    sel.add_argument("--exclude", kind=cli.PLAIN, type=cli.regex_type, metavar="REGEX",
                     help="leave out packages whose name matches this regular expression")
    thr = parser.add_argument_group("thresholds")
    count = cli.range_type(units.COUNT)
    thr.add_argument("--security-warning", kind=cli.PLAIN, type=count, metavar="RANGE",
                     help="warn when the number of security upgrades is outside this range "
                          "(default: none)")
    thr.add_argument("--security-critical", kind=cli.PLAIN,
                     type=count, default=count("0"), metavar="RANGE",
                     help="critical when the number of security upgrades is outside this "
                          "range (default: 0, any security upgrade is CRITICAL)")
    thr.add_argument("-w", "--warning", kind=cli.PLAIN,
                     type=count, default=count("0"), metavar="RANGE",
                     help="warn when the number of other (non-security) upgrades is outside "
                          "this range (default: 0, WARNING from one upgrade)")
    thr.add_argument("-c", "--critical", kind=cli.PLAIN, type=count, metavar="RANGE",
                     help="critical when the number of other upgrades is outside this range "
                          "(default: none)")
    parser.add_threshold_pair("--security-warning", "--security-critical")
    parser.add_threshold_pair("--warning", "--critical")
    cli.add_state_option(thr, "--held-state", "state when packages are held back", "ok",
                         shown_default="ok, they are listed")
    cli.add_state_option(thr, "--reboot-state", "state when a reboot is required", "warning")
    cli.add_state_option(thr, "--restart-state",
                         "state when services run code of upgraded (deleted) libraries or "
                         "programs and need a restart", "warning")
    thr.add_argument("--eol-warning", kind=cli.PLAIN, type=cli.duration_type(minimum=0),
                     default=90 * 86400, metavar="DURATION",
                     help="warn this long before the release's regular security support ends "
                          "(and, with --lts-state ok, before its LTS ends), from "
                          "distro-info-data (default: 90d)")
    cli.add_state_option(thr, "--lts-state",
                         "state in the release's LTS years, after its regular security "
                         "support (fewer packages are fixed)", "warning")
    cli.add_state_option(thr, "--eol-state",
                         "state once LTS has ended too: no security support at all (Debian's "
                         "paid ELTS is not counted)", "critical")
    thr.add_argument("--max-list-age", kind=cli.PLAIN, type=cli.duration_type(minimum=0),
                     default=7 * 86400, metavar="DURATION",
                     help="package lists / metadata older than this are stale (e.g. 36h, "
                          "2d; default: 7d; 0 turns the test off)")
    cli.add_state_option(thr, "--list-age-state", "state when the lists are stale or missing",
                         "warning")
    cache = parser.add_argument_group("result cache")
    cache.add_argument("--cache-dir", kind=cli.FILE_WRITTEN, metavar="DIR", type=cli.absolute_path,
                       help="keep the last answer in this existing directory, which must "
                            "belong to the running user and not be writable by others "
                            "(default: /var/cache/osop-checks where it is the running user's, "
                            "as the Debian package makes it for nagios, else "
                            "$XDG_CACHE_HOME/osop-checks; only a default directory is created; "
                            "-v says when neither can be written)")
    cache.add_argument("--no-cache", kind=cli.PLAIN, action="store_true",
                       help="always ask the package manager, keep nothing")
    return parser


# -- hosts: one per package manager --------------------------------------------------------

class AptHost:
    name = "apt"

    def __init__(self, args):
        self.command = args.apt_get or ["apt-get"]
        self.mode = args.upgrade_mode
        self.root = args.root

    def identity(self):
        return {"manager": "apt", "argv": apt.apt_argv(self.command, self.mode, self.root)}

    def cache_inputs(self):
        return apt.cache_inputs(self.root)

    def pending(self):
        return apt.pending(self.command, self.mode, self.root)

    def reboot(self):
        return apt.reboot_required(self.root)

    def list_age(self):
        return apt.list_age(self.root)


class DnfHost:
    name = "dnf"

    def __init__(self, args, command):
        self.command = command
        self.needs_restarting = args.needs_restarting
        self.root = args.root

    @staticmethod
    def _dnf():
        from osop_checks.sources import dnf  # only dnf hosts pay for it

        return dnf

    def identity(self):
        return {"manager": "dnf", "argv": self.command, "root": self.root}

    def cache_inputs(self):
        return self._dnf().cache_inputs(self.root)

    def pending(self):
        return self._dnf().pending(self.command)

    def reboot(self):
        try:
            return self._dnf().needs_restarting(self.needs_restarting)
        except proc.CommandError as exc:
            if exc.reason != proc.NOT_FOUND:
                raise
            return packages.Reboot(note="%s is not installed (dnf-utils / yum-utils)"
                                   % self.needs_restarting[0])

    def list_age(self):
        return self._dnf().metadata_age(self.root)


def detect_host(args, which=shutil.which, exists=os.path.exists):
    """The host's package manager: as asked, else apt where apt-get and a dpkg status exist,
    else dnf, else yum."""
    choice = args.package_manager
    if choice == "auto":
        if args.apt_get:
            choice = "apt"
        elif args.dnf:
            choice = "dnf"
        elif exists(apt.status_path(args.root)) and (args.root or which("apt-get")):
            choice = "apt"
        elif which("dnf") or which("yum"):
            choice = "dnf"
        else:
            raise nagiosplugin.CheckError(
                "found neither apt-get with a dpkg status nor dnf or yum: no package manager "
                "to ask (see --package-manager)")
    if choice == "apt":
        return AptHost(args)
    return DnfHost(args, args.dnf or (["dnf"] if which("dnf") or not which("yum") else ["yum"]))


def ask(host, args):
    """The host's pending upgrades, from the cache while its key is unchanged."""
    if args.no_cache:
        return host.pending()
    directory = state_files.cache_directory(args.cache_dir, "--cache-dir or --no-cache",
                                            "the package manager")
    cache = state_files.Cache(directory, "os_upgrades", host.identity(), "the package manager")
    # The key is taken before asking: a change while apt runs is seen by the next run.
    key = state_files.stat_key(host.cache_inputs())
    answer = cache.load(key, _cached)
    if answer is None:
        answer = host.pending()
        cache.store(key, {"pending": answer.to_json()})
    return answer


def _cached(data):
    """The Pending kept in a cache file's ``data``, with the time it was asked."""
    pending = packages.Pending.from_json(data["pending"])
    pending.cached_at = data.get("time")
    return pending


def selected(name, args):
    return ((args.include is None or args.include.search(name))
            and (args.exclude is None or not args.exclude.search(name)))


def gather(args, detect, uname, boot, scan=processes.scan, support=release.support):
    """What the host's package manager says, after include/exclude, the processes on
    replaced code and the release's support: the Facts."""
    host = detect(args)
    pending = ask(host, args)
    pending.upgrades = [u for u in pending.upgrades if selected(u.package, args)]
    pending.held = [p for p in pending.held if selected(p, args)]
    pending.kept_back = [p for p in pending.kept_back if selected(p, args)]
    pending.deferred = [p for p in pending.deferred if selected(p, args)]
    reboot = host.reboot()
    if not args.root:
        reason = kernel.kernel_reason(uname().release, kernel.installed_kernels(boot))
        if reason:
            reboot.reasons.append(reason)
    return Facts(host.name, pending, reboot, host.list_age(),
                 None if args.root else scan(), support(args.root))


class Facts:
    """What gather found: the package manager's name, the pending upgrades (packages.Pending),
    whether a reboot is required (packages.Reboot), the package lists' age
    (packages.ListAge), the processes on replaced code (processes.Scan, None: not looked at)
    and the release's support (release.Support, None: not looked at)."""

    def __init__(self, manager, pending, reboot, lists, scan=None, support=None):
        self.manager = manager
        self.pending = pending
        self.reboot = reboot
        self.lists = lists
        self.scan = scan
        self.support = support


# -- judgement ----------------------------------------------------------------------------

class Limits:
    """What the host is judged against: the ranges of security and other upgrades (None:
    none), the states of held packages, a required reboot and stale lists, the lists' maximum
    age in seconds (0: not judged)."""

    def __init__(self, security_warning=None, security_critical=None, warning=None,
                 critical=None, held_state=Ok, reboot_state=Warn, max_list_age=7 * 86400,
                 list_age_state=Warn, restart_state=Warn, eol_warning=90 * 86400,
                 lts_state=Warn, eol_state=Critical, verbose=0):
        self.security_warning, self.security_critical = security_warning, security_critical
        self.warning, self.critical = warning, critical
        self.held_state, self.reboot_state = held_state, reboot_state
        self.max_list_age, self.list_age_state = max_list_age, list_age_state
        self.restart_state = restart_state
        self.eol_warning, self.lts_state, self.eol_state = eol_warning, lts_state, eol_state
        self.verbose = verbose


def limits_of(args):
    return Limits(args.security_warning, args.security_critical, args.warning, args.critical,
                  args.held_state, args.reboot_state, args.max_list_age, args.list_age_state,
                  args.restart_state, args.eol_warning, args.lts_state, args.eol_state,
                  args.verbose)


def describe_upgrade(u):
    if u.current is None:
        change = "%s (new)" % u.candidate
    elif u.current:
        change = "%s -> %s" % (u.current, u.candidate)
    else:
        change = u.candidate
    where = ", ".join(u.origins)
    return "%s%s %s%s" % ("[SECURITY] " if u.security else "", u.package, change,
                          " (%s)" % where if where else "")


def judge_lists(age, limits):
    """The package lists' age (whole seconds, None: no lists) against --max-list-age."""
    maximum = limits.max_list_age
    if age is None:
        return (limits.list_age_state if maximum else Ok,
                "no package lists (never updated?)"), None
    warning = units.range_of(end=maximum) if maximum else None
    performance = nagiosplugin.Performance("list_age", age, "s", warning, None, 0)
    if maximum and age > maximum:
        return (limits.list_age_state, "package lists %s old (max %s)" % (
            units.format_duration(age), units.format_duration(maximum))), performance
    return (Ok, "package lists %s old" % units.format_duration(age)), performance


EPOCH_DAY = 719163  # datetime.date(1970, 1, 1).toordinal()


def _day_end(day):
    """The end of a table's last day of support (00:00 UTC of the day after), in seconds."""
    return (day.toordinal() - EPOCH_DAY + 1) * 86400


def judge_support(support, limits, now):
    """The release's support (release.Support, None: not looked at) at ``now``: a finding
    (None where nothing is said on the status line) and the long-output lines. WARNING from
    --eol-warning before regular security support ends, --lts-state in the LTS years after
    (and with that OK, WARNING from --eol-warning before LTS ends), --eol-state once no
    support is left."""
    if support is None:
        return None, []
    if support.label is None:
        return None, ["end of life: not known, %s" % support.note]
    label, eol, lts = support.label, support.eol, support.lts
    dates = "regular security support until %s" % (eol or "a date not yet announced")
    if support.source == "debian":
        dates += ", LTS until %s" % (lts or "a date not yet announced")
    elif support.source == "ubuntu":
        dates += " (ESM needs Ubuntu Pro and is not counted)"
    lines = ["%s: %s" % (label, dates)]
    if eol is None:
        return None, lines
    end = _day_end(eol)
    if now < end - limits.eol_warning:
        return None, lines
    if now < end:
        return (Warn, "%s security support ends %s (in %s)" % (
            label, eol, units.format_duration(end - now))), lines
    if lts is not None and now < _day_end(lts):
        lts_end = _day_end(lts)
        words = "%s in LTS since %s (fewer packages fixed), until %s" % (label, eol, lts)
        if limits.lts_state == Ok and now >= lts_end - limits.eol_warning:
            return (Warn, "%s (in %s)" % (words, units.format_duration(lts_end - now))), lines
        return (limits.lts_state, words), lines
    return (limits.eol_state, "%s has no security support since %s (%s ended)" % (
        label, lts or eol, "LTS" if lts else "security support")), lines


def restarts(scan):
    """The stale processes of ``scan`` by what a restart acts on: {unit or 'NAME (pid N)':
    [Stale]}."""
    found = {}
    for stale in scan.stale:
        found.setdefault(stale.unit or "%s (pid %d)" % (stale.name, stale.pid), []).append(stale)
    return found


def judge_restarts(scan, limits):
    """Processes on replaced code (processes.Scan, None: not looked at): a finding (None
    when there are none), the perfdata and the long-output lines."""
    if scan is None:
        return None, [], []
    found = restarts(scan)
    lines = []
    for name in sorted(found):
        files = sorted({f for stale in found[name] for f in stale.files})
        pids = ", ".join("%d %s" % (stale.pid, stale.name) for stale in found[name][:5])
        lines.append("restart needed: %s%s: %s%s" % (
            name, " (%s%s)" % (pids, ", ..." if len(found[name]) > 5 else "")
            if found[name][0].unit else "", ", ".join(files[:5]),
            " and %d more" % (len(files) - 5) if len(files) > 5 else ""))
    if scan.truncated:
        lines.append("restarts: only the first %d processes were read (the byte limit of "
                     "their maps)" % scan.scanned)
    if scan.unreadable and limits.verbose:
        lines.append("restarts: the maps of %d process%s could not be read%s" % (
            scan.unreadable, plugin.plural(scan.unreadable, "", "es"),
            "" if scan.root else " (processes of other users: run as root to see them)"))
    performance = [nagiosplugin.Performance("restarts_needed", len(found), "", None, None, 0)]
    if not found:
        return None, performance, lines
    return (limits.restart_state, "restart needed: %s" % ", ".join(sorted(found))), \
        performance, lines


def judge(facts, limits, now):
    """The Verdict on ``facts`` (what gather found) against ``limits`` at time ``now``: one
    finding per count and fact, a status line with the counts, the upgrades in the long
    output."""
    pending, reboot = facts.pending, facts.reboot
    security = [u for u in pending.upgrades if u.security]
    other = [u for u in pending.upgrades if not u.security]
    held = pending.held
    kept_back = [p for p in pending.kept_back if p not in set(held)]
    age = facts.lists.age(now)
    listed, list_performance = judge_lists(None if age is None else int(age), limits)
    findings = [
        (plugin.state_of(len(security), limits.security_warning, limits.security_critical),
         "%d security upgrades" % len(security)),
        (plugin.state_of(len(other), limits.warning, limits.critical),
         "%d other upgrades" % len(other)),
        (limits.held_state if held else Ok, "%d held" % len(held)),
        (limits.reboot_state if reboot.required else Ok,
         "reboot required" if reboot.required else "no reboot required"),
        listed]
    restart, restart_performance, restart_lines = judge_restarts(facts.scan, limits)
    support, support_lines = judge_support(facts.support, limits, now)
    extra = [finding for finding in (restart, support) if finding is not None]
    findings += extra
    perfdata = restart_performance + [
        nagiosplugin.Performance("security_upgrades", len(security), "",
                                 limits.security_warning, limits.security_critical, 0),
        nagiosplugin.Performance("other_upgrades", len(other), "", limits.warning,
                                 limits.critical, 0),
        nagiosplugin.Performance("upgrades", len(security) + len(other), "", None, None, 0),
        nagiosplugin.Performance("held", len(held), "", None, None, 0),
        nagiosplugin.Performance("reboot_required", int(reboot.required), "", None, None, 0,
                                 1)]
    if list_performance is not None:
        perfdata.append(list_performance)
    words = summary(security, other, held, kept_back, reboot, age, limits.max_list_age)
    for state, text in plugin.worst_first(extra, state=lambda finding: finding[0]):
        if state != Ok:
            words += ", " + text
    return plugin.Verdict(findings, words, perfdata,
                          details(facts, security, other, kept_back, age) + restart_lines
                          + support_lines)


def summary(security, other, held, kept_back, reboot, age, max_age):
    """The status line: the counts, held and kept-back packages, the reboot, the lists."""
    if security or other:
        count = len(security) + len(other)
        parts = ["%d upgrade%s (%d security)" % (count, plugin.plural(count), len(security))]
    else:
        parts = ["no upgrades pending"]
    if held:
        parts.append("%d held" % len(held))
    if kept_back:
        parts.append("%d kept back" % len(kept_back))
    if reboot.required:
        parts.append("reboot required")
    if age is None:
        parts.append("no package lists")
    elif max_age and age > max_age:
        parts.append("package lists %s old (max %s)" % (
            units.format_duration(age), units.format_duration(max_age)))
    else:
        parts.append("lists %s old" % units.format_duration(age))
    return ", ".join(parts)


def details(facts, security, other, kept_back, age):
    """The long output: every upgrade (security first), removals, held, deferred and kept
    back packages, the reboot's reasons, the newest list, the cached answer's time."""
    pending, reboot = facts.pending, facts.reboot
    lines = [describe_upgrade(u) for u in sorted(security, key=lambda u: u.package)]
    lines += [describe_upgrade(u) for u in sorted(other, key=lambda u: u.package)]
    if pending.removals:
        lines.append("to remove: %s" % " ".join(pending.removals))
    for name in pending.held:
        lines.append("held: %s%s" % (name, " (an upgrade is kept back)"
                                     if name in pending.kept_back else ""))
    if pending.deferred:
        lines.append("deferred by phasing (Ubuntu): %s" % " ".join(pending.deferred))
    if kept_back:
        lines.append("kept back (by --upgrade-mode upgrade or a conflict): %s"
                     % " ".join(kept_back))
    for reason in reboot.reasons:
        lines.append("reboot required: %s" % reason)
    if reboot.packages:
        lines.append("reboot required by: %s" % " ".join(reboot.packages))
    if reboot.note:
        lines.append("reboot: not known, %s" % reboot.note)
    if facts.lists.newest:
        lines.append("newest package list: %s, %s old" % (
            facts.lists.newest, units.format_duration(age)))
    if pending.cached_at:
        lines.append("answer cached at %s (dpkg status/rpm database and lists unchanged "
                     "since)" % units.format_time(pending.cached_at))
    return lines


def build_check(args, detect=detect_host, uname=os.uname, boot="/boot", now=time.time,
                scan=processes.scan, support=release.support):
    return judge(gather(args, detect, uname, boot, scan, support), limits_of(args), now())


def main(argv=None):
    runtime.main(NAME, build_parser, build_check, argv)
