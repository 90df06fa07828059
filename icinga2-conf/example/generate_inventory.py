#!/usr/bin/env python3
"""Write the example inventory: example/hosts.conf and example/zones.conf.

50 hosts modelled on the organisations osop-checks is made for: the veterinary practice with
its server (/data1 live data, /data2 the backup partition with a mirror and rsnapshot
versions), the office PC holding the second copy, the off-site box at someone's home that a
timer powers on only for the backup window (TimePeriod "backup-window"), reached through
the router there under a DynDNS name, the gateway and a NAS read over SNMP, the mail server
with its TLS endpoints on IPv4 and IPv6, and 43 VMs in a data centre behind a satellite,
shaped by too few IPv4 addresses: IPv6-only web VMs whose sites two dual-stack reverse
proxies serve (many SNI names on one endpoint), databases behind NAT whose agents connect
out (host check cluster-zone), dual-stack application servers with a certificate file
checked where it lies, and a few old VMs with NRPE only.

The services come from the apply rules in services.conf and nrpe/services.conf; this script
only writes hosts with custom vars. `make icinga2-validate` proves the whole lot validates and
counts the services from icinga2's own output (at least 690).

    python3 icinga2-conf/example/generate_inventory.py     # rewrites the two files

`make regen` runs it with the other generators; tests/test_regen.py fails while the two files
are not what it writes.
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
    def __init__(self, name, address, client, comment, os_name="Linux", zone="master",
                 address6=None):
        # address None: an IPv6-only host (address6 only)
        self.name, self.address, self.client, self.comment = name, address, client, comment
        self.address6 = address6
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
                 '\timport "osop-example-host"']
        lines += ["\t%s = %s" % (name, q(value)) for name, value in (
            ("address", self.address), ("address6", self.address6)) if value]
        lines.append("\tzone = %s" % q(self.zone))
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
    # Icinga 2.14 on the master: its own checks through osop-checks-api (commands-api.conf;
    # forked where that file is not included)
    monitor.var("osop_api", True)
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
                "the practice's mail server (dual-stack): SMTP, submission, IMAP and POP3 "
                "with STARTTLS or TLS, each checked over IPv4 and IPv6",
                address6="2001:db8:25::25")
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
    """43 VMs in the data centre, checked through the satellite. Not every VM can have its
    own IPv4 address: the web VMs are IPv6-only behind two dual-stack reverse proxies that
    serve their sites, the databases sit behind NAT, and the application VMs are
    dual-stack."""
    hosts = []
    base_disks = ["/", "/boot", "/var", "/var/log"]
    sites = {n: ["shop%02d-%02d.example.org" % (n, v) for v in range(1, 21)]
             for n in range(1, 13)}  # 20 customer sites on each web VM
    for n in (1, 2):  # 2 reverse proxies: every site of six web VMs on one endpoint
        proxy = Host("proxy%02d.dc.example" % n, "192.0.2.%d" % (20 + n), "agent",
                     "reverse proxy %d (dual-stack): nginx terminating TLS for the sites of "
                     "web VMs %d to %d, one endpoint, a certificate per SNI name, each "
                     "checked over IPv4 and IPv6" % (n, 6 * n - 5, 6 * n), zone="dc",
                     address6="2001:db8:dc::%d" % (20 + n))
        for mount in base_disks:
            proxy.var('disks["%s"]' % mount, {})
        for web in range(6 * n - 5, 6 * n + 1):
            for site in sites[web]:
                proxy.var('tls_endpoints["%s"]' % site, {"port": 443, "sni": site})
        proxy.var("systemd", {"unit": ["nginx.service"]})
        hosts.append(proxy)
    for n in range(1, 13):  # 12 web VMs, IPv6-only
        vm = Host("web%02d.dc.example" % n, None, "agent",
                  "web VM %d (IPv6-only): 20 customer sites, served to the world through "
                  "proxy%02d" % (n, 1 + (n - 1) // 6), zone="dc",
                  address6="2001:db8:dc:10::%d" % n)
        vm.attr("check_command", "hostalive6")
        for mount in base_disks + ["/srv/www"]:
            vm.var('disks["%s"]' % mount, {})
        # the proxy's backend: the VM's own listener, on its only address
        vm.var('tls_endpoints["backend"]', {"port": 8443, "sni": "web%02d.dc.example" % n})
        vm.var('backups["www"]', {"path": "/var/backups/www", "warning": "26h",
                                  "critical": "50h"})
        vm.var('backups["configs"]', {"path": "/var/backups/etc", "warning": "8d",
                                      "critical": "15d"})
        hosts.append(vm)
    for n in range(1, 9):  # 8 database VMs behind NAT
        vm = Host("db%02d.dc.example" % n, "10.20.0.%d" % (40 + n), "agent",
                  "database VM %d behind NAT: PostgreSQL with dumps and WAL archive; its "
                  "agent connects out to the satellite, which cannot reach it" % n,
                  zone="dc")
        # No ping can reach it: the host is UP while its agent is connected to the zone.
        vm.attr("check_command", "cluster-zone")
        vm.var("nat", True)  # its TLS listeners are checked on the VM itself
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
    for n in range(1, 14):  # 13 application VMs, dual-stack
        vm = Host("app%02d.dc.example" % n, "192.0.2.%d" % (60 + n), "agent",
                  "application VM %d (dual-stack)" % n, zone="dc",
                  address6="2001:db8:dc:60::%d" % n)
        for mount in base_disks + ["/opt"]:
            vm.var('disks["%s"]' % mount, {})
        vm.var('tls_endpoints["app"]', {"port": 443, "sni": "app%02d.example.com" % n})
        vm.var('tls_endpoints["api"]', {"port": 8443, "sni": "api%02d.example.com" % n})
        vm.var('tls_endpoints["admin"]', {"port": 9443, "sni": "admin%02d.example.com" % n})
        # read on the VM that holds the file (services.conf: command_endpoint)
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
        " * zone that carries commands.conf to every agent. Agent endpoints have no host: each",
        " * agent connects to its parent, the only way there is for those behind NAT.",
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
