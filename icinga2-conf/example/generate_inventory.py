#!/usr/bin/env python3
"""Write the example inventory: example/hosts.conf and example/zones.conf.

50 hosts modelled on the organisations osop-checks is made for: the veterinary practice with
its server (/data1 live data, /data2 the backup partition with a mirror and rsnapshot
versions), the office PC holding the second copy, the off-site box at someone's home that a
timer powers on only for the backup window (TimePeriod "backup-window"), reached through
the router there under a DynDNS name, the gateway and a NAS read over SNMP, the mail server
with its TLS endpoints, and 43 VMs in a data centre (web VMs with many vhosts, databases,
application servers, a few old ones with NRPE only) behind a satellite.

The services come from the apply rules in services.conf and nrpe/services.conf; this script
only writes hosts with custom vars. `make icinga2-validate` proves the whole lot validates and
counts the services from icinga2's own output (at least 690).

    python3 icinga2-conf/example/generate_inventory.py     # rewrites the two files
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

MASTER = "monitor.office.example"
SATELLITE = "satellite.dc.example"

# The off-site box is powered on by a timer from 01:55 to 04:30; its services are checked in
# this window only (the timer's margins let the agent connect first and the sync finish).
BACKUP_WINDOW = "02:00-04:00"


def q(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[ %s ]" % ", ".join(q(v) for v in value)
    if isinstance(value, dict):
        return "{ %s }" % "; ".join("%s = %s" % (k, q(v)) for k, v in value.items())
    return '"%s"' % str(value).replace("\\", "\\\\").replace('"', '\\"')


class Host:
    def __init__(self, name, address, client, comment, os_name="Linux", zone="master"):
        self.name, self.address, self.client, self.comment = name, address, client, comment
        self.os = os_name
        self.zone = zone  # the zone whose endpoints check it (its agent's parent)
        self.attrs = []   # (attribute, value): the host's own, beside the template's
        self.vars = []    # (attribute text, value)

    def attr(self, name, value):
        self.attrs.append((name, value))
        return self

    def var(self, path, value):
        self.vars.append((path, value))
        return self

    def render(self):
        lines = ["/* %s */" % self.comment, "object Host %s {" % q(self.name),
                 '\timport "osop-example-host"', "\taddress = %s" % q(self.address),
                 "\tzone = %s" % q(self.zone)]
        lines += ["\t%s = %s" % (name, q(value)) for name, value in self.attrs]
        lines.append("\tvars.client = %s" % q(self.client))
        if self.os:
            lines.append("\tvars.os = %s" % q(self.os))
        lines += ["\tvars.%s = %s" % (path, q(value)) for path, value in self.vars]
        lines.append("}")
        return "\n".join(lines)


def office():
    hosts = []
    monitor = Host(MASTER, "10.0.0.5", "local",
                   "the Icinga master in the office: its own checks run right here")
    monitor.var('tls_endpoints["icingaweb"]', {"port": 443, "sni": "monitor.office.example"})
    hosts.append(monitor)

    server = Host("office-server.office.example", "10.0.0.10", "agent",
                  "the practice's server: /data1 live data, /data2 the backup partition (a "
                  "mirror of /data1 and rsnapshot's versions of it)")
    server.var('disks["/"]', {})
    server.var('disks["/boot"]', {"warning": "20%", "critical": "10%"})
    server.var('disks["/data1"]', {"warning": "15%,100GiB", "critical": "5%,20GiB"})
    server.var('disks["/data2"]', {"warning": "10%", "critical": "5%"})
    server.var('backups["data2 nightly"]', {
        "path": "/data2/backup/daily", "warning": "26h", "critical": "50h"})
    # The mirror follows a loss the next night; the versions are what is left to restore from.
    server.var('backups["data1 versions"]', {
        "path": "/data2/snapshots", "mode": "snapshot", "name_format": "rsnapshot",
        "warning": "26h", "critical": "50h", "min_snapshots": 7, "oldest_snapshot": "6d"})
    server.var('backups["postgres dumps"]', {
        "path": "/data2/backup/postgres", "glob": "*.sql.gz", "warning": "26h",
        "critical": "50h"})
    server.var('backups["mail archive"]', {
        "path": "/data2/backup/mail", "warning": "8d", "critical": "15d"})
    server.var('copies["data1"]', {
        "source": "/data1",
        "copies": ["server=/data2/data1", "pc2=backup@office-pc2.office.example:/backup/data1",
                   "offsite=backup@offsite.dyndns.example:/backup/office/data1"],
        # A nightly sync: -w/-c are the copies' ages, and a change made today is pending,
        # not missing, until the night (settle follows -w: leave settle, missing_critical
        # unset). The off-site box sleeps outside the backup window, and the office PC is
        # switched off now and then (an unreachable copy not marked sleeping is CRITICAL):
        # both are judged by their last verification while off. The canary is a file
        # written once into /data1 and never touched.
        "offsite": ["offsite"], "sleeping": ["pc2", "offsite"], "canary": [".osop-canary"],
        "warning": "26h", "critical": "50h"})
    server.var('dyndns["office.dyndns.example"]', {
        "ip_url": ["https://api.ipify.org", "https://ifconfig.me/ip"], "grace": "15m"})
    server.var('tls_endpoints["nextcloud"]', {"port": 443, "sni": "cloud.office.example"})
    server.var('tls_endpoints["ldap"]', {"port": 389, "starttls": "ldap"})
    hosts.append(server)

    pc2 = Host("office-pc2.office.example", "10.0.0.21", "agent",
               "the office PC, an ordinary desktop (Xubuntu): holds the second copy of /data1")
    pc2.var('disks["/"]', {})
    pc2.var('disks["/backup"]', {"warning": "10%", "critical": "5%"})
    pc2.var('backups["copy of data1"]', {
        "path": "/backup/data1", "time": "ctime", "warning": "26h", "critical": "50h"})
    hosts.append(pc2)

    offsite = Host("offsite-box.office.example", "offsite.dyndns.example", "agent",
                   "the off-site box at someone's home: a 15 W machine that a timer powers on "
                   "for the backup window only, reached through the router there (port "
                   "forward) under a DynDNS name")
    # A ping would only reach the router, and the box is off 22 hours a day: the host stays
    # UP and says why; whether the box woke and took its copy is judged by "copies data1" on
    # the server. Its agent connects to the master when it wakes.
    offsite.attr("check_command", "dummy")
    offsite.var("dummy_state", 0)
    offsite.var("dummy_text", "powered on only for the backup window (%s), not pinged: "
                "whether it woke and took its copy of /data1 is judged by the server's copies "
                "service" % BACKUP_WINDOW)
    offsite.var("check_period", "backup-window")  # every service of the box
    offsite.var('disks["/"]', {})
    offsite.var('disks["/backup"]', {"warning": "10%,200GiB", "critical": "5%,50GiB"})
    for name, path in (("office data1", "/backup/office/data1"),
                       ("mail", "/backup/mail"), ("web", "/backup/web")):
        offsite.var('backups["%s"]' % name, {
            "path": path, "time": "ctime", "warning": "26h", "critical": "50h"})
    # The name the server's sync uses: checked inside the network it must point at.
    offsite.var('dyndns["offsite.dyndns.example"]', {"ip_url": ["https://api.ipify.org"]})
    hosts.append(offsite)

    gateway = Host("gateway.office.example", "10.0.0.1", "snmp",
                   "the office gateway/router: its disks over SNMP v2c",
                   os_name=None)
    gateway.var("snmp", {"snmp": True,
                         "community_file": "/etc/icinga2/secrets/snmp-community"})
    hosts.append(gateway)

    nas = Host("nas.office.example", "10.0.0.30", "snmp",
               "a NAS that cannot run plugins: its volumes over SNMP v3", os_name=None)
    nas.var("snmp", {"snmp": True, "snmp_user": "monitor",
                     "auth_proto": "SHA-256", "auth_key_file": "/etc/icinga2/secrets/nas-auth",
                     "priv_proto": "AES", "priv_key_file": "/etc/icinga2/secrets/nas-priv"})
    nas.var('disks["/volume1"]', {"warning": "10%", "critical": "5%"})
    nas.var('disks["/volume2"]', {"warning": "10%", "critical": "5%"})
    hosts.append(nas)

    mail = Host("mail.example.com", "203.0.113.25", "agent",
                "the practice's mail server: SMTP, submission, IMAP and POP3 with STARTTLS "
                "or TLS")
    mail.var('disks["/"]', {})
    mail.var('disks["/var/vmail"]', {"warning": "15%", "critical": "5%"})
    for name, endpoint in (
            ("smtp", {"port": 25, "starttls": "smtp"}),
            ("submission", {"port": 587, "starttls": "smtp"}),
            ("imap", {"port": 143, "starttls": "imap"}),
            ("imaps", {"port": 993}),
            ("pop3", {"port": 110, "starttls": "pop3"}),
            ("pop3s", {"port": 995}),
            ("webmail", {"port": 443, "sni": "webmail.example.com"})):
        mail.var('tls_endpoints["%s"]' % name, endpoint)
    mail.var('backups["maildir"]', {"path": "/var/backups/vmail", "warning": "26h",
                                    "critical": "50h"})
    hosts.append(mail)
    return hosts


def vms():
    """43 VMs in the data centre, checked through the satellite."""
    hosts = []
    base_disks = ["/", "/boot", "/var", "/var/log"]
    for n in range(1, 13):  # 12 web VMs, 20 customer vhosts each
        vm = Host("web%02d.dc.example" % n, "192.0.2.%d" % (10 + n), "agent",
                  "web VM %d: nginx with 20 customer vhosts" % n, zone="dc")
        for mount in base_disks + ["/srv/www"]:
            vm.var('disks["%s"]' % mount, {})
        for v in range(1, 21):
            site = "shop%02d-%02d.example.org" % (n, v)
            vm.var('tls_endpoints["%s"]' % site, {"port": 443, "sni": site})
        vm.var('backups["www"]', {"path": "/var/backups/www", "warning": "26h",
                                  "critical": "50h"})
        vm.var('backups["configs"]', {"path": "/var/backups/etc", "warning": "8d",
                                      "critical": "15d"})
        hosts.append(vm)
    for n in range(1, 9):  # 8 database VMs
        vm = Host("db%02d.dc.example" % n, "192.0.2.%d" % (40 + n), "agent",
                  "database VM %d: PostgreSQL with dumps and WAL archive" % n, zone="dc")
        for mount in base_disks + ["/var/lib/postgresql", "/var/backups"]:
            vm.var('disks["%s"]' % mount, {})
        vm.var('backups["pg dumps"]', {"path": "/var/backups/postgres", "glob": "*.dump",
                                       "warning": "26h", "critical": "50h",
                                       "min_size": "1MiB"})
        vm.var('backups["wal archive"]', {"path": "/var/backups/wal", "warning": "1h",
                                          "critical": "3h"})
        vm.var('tls_endpoints["postgres"]', {"port": 5432, "starttls": "postgres"})
        vm.var('tls_endpoints["pgbouncer"]', {"port": 6432, "starttls": "postgres"})
        hosts.append(vm)
    for n in range(1, 16):  # 15 application VMs
        vm = Host("app%02d.dc.example" % n, "192.0.2.%d" % (60 + n), "agent",
                  "application VM %d" % n, zone="dc")
        for mount in base_disks + ["/opt"]:
            vm.var('disks["%s"]' % mount, {})
        vm.var('tls_endpoints["app"]', {"port": 443, "sni": "app%02d.example.com" % n})
        vm.var('tls_endpoints["api"]', {"port": 8443, "sni": "api%02d.example.com" % n})
        vm.var('tls_endpoints["admin"]', {"port": 9443, "sni": "admin%02d.example.com" % n})
        vm.var('tls_endpoints["cert file"]', {"file": ["/etc/ssl/app/app.pem"]})
        vm.var('backups["config"]', {"path": "/var/backups/app", "warning": "26h",
                                     "critical": "50h"})
        if n % 3 == 0:
            vm.var("systemd", {"unit": ["app.service", "app-worker.service"]})
        hosts.append(vm)
    for n in range(1, 9):  # 8 old VMs with NRPE only
        vm = Host("legacy%02d.dc.example" % n, "192.0.2.%d" % (90 + n), "nrpe",
                  "old VM %d: NRPE only, fixed commands from nrpe/osop_checks.cfg" % n,
                  zone="dc")
        checks = ["disk_partitions", "os_upgrades", "systemd_units", "backup_age"]
        if n == 8:  # one old VM runs every shipped NRPE command
            checks += ["tls_expiry", "three_copies", "dyndns_match"]
        vm.var("nrpe_checks", checks)
        vm.var('tls_endpoints["www"]', {"port": 443, "sni": "legacy%02d.example.org" % n})
        hosts.append(vm)
    return hosts


def zones(hosts):
    lines = [
        "/*",
        " * Endpoints and zones of the example: the master in the office, a satellite in the",
        " * data centre, one agent zone per host with vars.client = \"agent\" (its endpoint has",
        " * the host's name: services.conf uses command_endpoint = host.name), and the global",
        " * zone that carries commands.conf to every agent.",
        " * Written by example/generate_inventory.py.",
        " */",
        'object Endpoint "%s" { }' % MASTER,
        'object Zone "master" { endpoints = [ "%s" ] }' % MASTER,
        'object Endpoint "%s" { host = "192.0.2.2" }' % SATELLITE,
        'object Zone "dc" { endpoints = [ "%s" ]; parent = "master" }' % SATELLITE,
        'object Zone "global-templates" { global = true }',
        "",
    ]
    for host in hosts:
        if host.client == "agent":
            lines.append('object Endpoint "%s" { }' % host.name)
            lines.append('object Zone "%s" { endpoints = [ "%s" ]; parent = "%s" }' % (
                host.name, host.name, host.zone))
    return "\n".join(lines) + "\n"


def hosts_conf(hosts):
    head = [
        "/*",
        " * The example inventory: %d hosts. Written by example/generate_inventory.py;"
        % len(hosts),
        " * the services come from the apply rules of services.conf and nrpe/services.conf.",
        " */",
        "",
        'template Host "osop-example-host" {',
        '\tcheck_command = "hostalive"',
        "\tmax_check_attempts = 3",
        "\tcheck_interval = 1m",
        "\tretry_interval = 30s",
        "}",
        "",
        "/*",
        " * When the practice's off-site box is awake: its timer powers it on a few minutes",
        " * before and off a while after. Hosts with vars.check_period = \"backup-window\" have",
        " * their services checked in this window only (services.conf).",
        " */",
        'object TimePeriod "backup-window" {',
        '\tdisplay_name = "backup window: the off-site box is awake"',
        "\tranges = {",
    ] + ['\t\t"%s" = "%s"' % (day, BACKUP_WINDOW) for day in (
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")] + [
        "\t}",
        "}",
        "",
    ]
    return "\n".join(head) + "\n\n".join(h.render() for h in hosts) + "\n"


def render():
    """{file name: text} of the example."""
    hosts = office() + vms()
    assert len(hosts) == 50, len(hosts)
    return {"hosts.conf": hosts_conf(hosts), "zones.conf": zones(hosts)}


def main():
    for name, text in render().items():
        with open(os.path.join(HERE, name), "w") as handle:
            handle.write(text)
    hosts = office() + vms()
    print("wrote %d hosts (%d agents, %d NRPE, %d SNMP)" % (
        len(hosts), sum(h.client == "agent" for h in hosts),
        sum(h.client == "nrpe" for h in hosts), sum(h.client == "snmp" for h in hosts)))


if __name__ == "__main__":
    main()
