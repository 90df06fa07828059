"""Icinga Director and Icinga Web 2 as Debian 12 ships them, for tests and `make demo-web`.

A bookworm root filesystem (lab/peers/debian_root.apt_root, built once and cached) holds
icinga2 2.13 with the IDO (icinga2-ido-mysql), MariaDB, apache2 with PHP, Icinga Web 2 2.11
with its monitoring module and Icinga Director 1.10. ``Stack`` runs a fresh copy of it:
our plugins copied in where the osop-checks .deb puts them (osop_checks for Debian's python3,
plugins/check_* in /usr/lib/nagios/plugins), the daemons started by hand, chrooted, in this
machine's network namespace, everything on loopback:

- mariadbd without networking (its unix socket only): the Director, IDO and Icinga Web 2
  databases;
- icinga2 as nagios, its API on 127.0.0.1:<api_port>, the IDO feature on, the stock conf.d
  example hosts and services emptied (only what the Director deploys is monitored);
- apache2 on 127.0.0.1:<web_port>: Icinga Web 2's form login, except for the one client whose
  User-Agent carries this stack's secret (the headless browser), for which apache sets
  REMOTE_USER, so Icinga Web 2's external login backend lets it in without a form;
- ``icingacli director daemon run``: `config deploy --wait` waits for it to see Icinga
  start the new config.

    python -m lab.peers.director build      # build the root once, print its path
    python -m lab.peers.director demo-web   # make demo-web
"""
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from lab.peers import FAKETIME_PRELOAD, ROOT, Started, end_process
from lab.peers.icinga2 import free_port

RELEASE = "bookworm"
PACKAGES = (
    "icinga2", "icinga2-ido-mysql", "mariadb-server", "apache2", "libapache2-mod-php",
    "icingaweb2", "icingacli", "icingaweb2-module-monitoring", "icingaweb2-module-director",
    "php-mysql", "php-intl", "php-mbstring", "php-gd", "php-curl", "php-xml",
    # what our plugins need, as the osop-checks .deb depends on it
    "python3", "python3-nagiosplugin", "python3-psutil", "python3-cryptography",
    "python3-requests", "python3-dnspython", "ca-certificates")
# icinga2-ido-mysql would ask for (and create) its database during the install
PRESEED = ("icinga2-ido-mysql icinga2-ido-mysql/dbconfig-install boolean false",
           "icinga2-ido-mysql icinga2-ido-mysql/enable boolean false")
# The graph stack (Stack(graphs=True)): Graphite fed by icinga2's GraphiteWriter, shown by
# icingaweb2-module-graphite 1.2 with our templates.
GRAPH_PACKAGES = ("graphite-carbon", "graphite-web", "icingaweb2-module-graphite",
                  # icinga2's clock set back and stepped (Stack.set_clock): 10 s points
                  # without waiting for them
                  "libfaketime")
GRAPH_TEMPLATES = os.path.join(ROOT, "icinga2-conf", "graphite")
# Ten-second points, so a few forced check rounds 10 s apart on icinga2's clock draw a line.
STORAGE_SCHEMAS = "[osop]\npattern = .*\nretentions = 10s:1d\n"
BASKET = os.path.join(ROOT, "icinga2-conf", "director", "osop-checks.json")
PLUGIN_DIR = "/usr/lib/nagios/plugins"
NODE = "director.osop.test"
WEB_USER = "admin"
BROWSER_USER = "browser"  # the name apache gives the headless browser (REMOTE_USER)
MODULES = ("monitoring", "director", "incubator", "reactbundle")
SERVICE_LIST = "/icingaweb2/monitoring/list/services?limit=100"
# Mounted for every daemon, in a mount namespace of its own (gone when it ends).
CHROOT = ('mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" && '
          'exec chroot "$0" "$@"')
HOST_AT_MNT = 'mount --rbind / "$0/mnt" && '  # this machine's / at /mnt, for host_plugins
HOST_PLUGIN_DIR = "/usr/lib/osop-host-plugins"
# Stack(clock=...): icinga2 under libfaketime, its offset from this machine's clock read from
# this file of the root at every call of the clock (so set_clock moves it at once); the
# monotonic clock, which its timers use, is left alone.
CLOCK_FILE = "/run/osop-icinga2-clock"
FAKETIME = ("env", FAKETIME_PRELOAD, "FAKETIME_TIMESTAMP_FILE=" + CLOCK_FILE,
            "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1")


def director_root():
    """The pristine cached root with every package installed (a few minutes, once), the
    graph stack's among them: one root for every Stack, with or without graphs."""
    from lab.peers import debian_root

    return debian_root.apt_root(RELEASE, PACKAGES + GRAPH_PACKAGES, PRESEED)


class Stack(Started):
    """One running Director stack in a fresh copy of ``director_root()`` under ``base``."""

    def __init__(self, base=None, host_plugins=False, graphs=False, clock=None):
        """``host_plugins``: icinga2 runs this machine's check_* (those of the venv, through
        wrappers that chroot into this machine's / mounted at /mnt), as root, so they see
        the files and peers `make demo` sets up here; else the copy installed in the root,
        run as nagios, as on a real Debian host. ``clock``: icinga2's clock that many
        seconds off this machine's (libfaketime), moved later by ``set_clock``: icinga2
        stamps its check results, and so Graphite's points, with it."""
        self.host_plugins = host_plugins
        self.graphs = graphs
        self.clock = clock
        self.base = base or tempfile.mkdtemp(prefix="osop-director-")
        os.makedirs(self.base, exist_ok=True)
        self.root = os.path.join(self.base, "root")
        self.api_port = free_port()
        self.web_port = free_port()
        self.browser_agent = "osop-browser-" + secrets.token_hex(12)
        self.api_password = secrets.token_hex(12)
        self.db_password = secrets.token_hex(12)
        self.web_password = secrets.token_hex(6)
        self.processes = {}
        self.logs = os.path.join(self.base, "logs")

    # -- running things in the root -------------------------------------------------------------

    def path(self, *parts):
        """A path inside the root, as this machine sees it."""
        return os.path.join(self.root, *[p.lstrip("/") for p in parts])

    def argv(self, *argv, user=None, host_at_mnt=False):
        inner = (["runuser", "-u", user, "--"] if user else []) + list(argv)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                (HOST_AT_MNT if host_at_mnt else "") + CHROOT, self.root] + inner

    def env(self, extra=None):
        return dict({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
                     "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}, **(extra or {}))

    def run(self, *argv, user=None, input=None, timeout=120, check=True, env=None):
        proc = subprocess.run(self.argv(*argv, user=user), capture_output=True, text=True,
                              env=self.env(env), input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError("%s failed (exit %d):\n%s%s" % (
                " ".join(argv[:4]), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        return proc

    def icingacli(self, *args, input=None, timeout=120, check=True):
        return self.run("icingacli", *args, input=input, timeout=timeout, check=check)

    def sql(self, text, database=None, timeout=120):
        return self.run("mysql", *([database] if database else []), input=text,
                        timeout=timeout).stdout

    def write(self, path, text, mode=0o644, owner=None):
        full = self.path(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)
        os.chmod(full, mode)
        if owner:
            self.run("chown", owner, path)

    def daemon(self, name, *argv, user=None, host_at_mnt=False, env=None):
        """``argv`` started in the root as a daemon in the foreground, its output in logs/."""
        os.makedirs(self.logs, exist_ok=True)
        log = open(os.path.join(self.logs, name + ".log"), "ab")
        self.processes[name] = subprocess.Popen(
            self.argv(*argv, user=user, host_at_mnt=host_at_mnt), stdout=log,
            stderr=subprocess.STDOUT, env=self.env(env), start_new_session=True)
        log.close()

    def log_tail(self, name, size=4000):
        try:
            with open(os.path.join(self.logs, name + ".log"), "rb") as handle:
                return handle.read().decode(errors="replace")[-size:]
        except OSError:
            return ""

    def wait_for(self, what, test, name=None, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name and self.processes[name].poll() is not None:
                raise RuntimeError("%s exited (%s):\n%s" % (
                    name, self.processes[name].returncode, self.log_tail(name)))
            try:
                if test():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.3)
        raise RuntimeError("%s: not ready within %ds\n%s" % (
            what, timeout, self.log_tail(name) if name else ""))

    # -- the stack ------------------------------------------------------------------------------

    def start(self):
        from lab.peers import debian_root

        debian_root.fresh_copy(director_root(), self.root)
        # Icinga Web 2 (and so the Director's daemon) resolves this machine's name
        self.write("/etc/hosts", "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost\n"
                   % socket.gethostname())
        self.install_plugins()
        self.start_database()
        if self.graphs:
            self.start_graphite()
        self.start_icinga2()
        self.configure_web()
        self.daemon("apache2", "apache2ctl", "-DFOREGROUND")
        # a first request is redirected to check that the browser keeps cookies
        self.wait_for("apache2", lambda: self.http("/icingaweb2/authentication/login")
                      .status_code in (200, 302), "apache2")
        self.director_setup()
        return self

    def install_plugins(self):
        """osop_checks and plugins/check_* where the .deb puts them, for Debian's python3."""
        target = self.path("/usr/lib/python3/dist-packages/osop_checks")
        shutil.copytree(os.path.join(ROOT, "osop_checks"), target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        os.makedirs(self.path(PLUGIN_DIR), exist_ok=True)
        for name in os.listdir(os.path.join(ROOT, "plugins")):
            if name.startswith("check_"):
                shutil.copy(os.path.join(ROOT, "plugins", name), self.path(PLUGIN_DIR, name))
                os.chmod(self.path(PLUGIN_DIR, name), 0o755)

    def start_database(self):
        os.makedirs(self.path("/run/mysqld"), exist_ok=True)
        self.run("chown", "mysql:mysql", "/run/mysqld")
        self.daemon("mariadb", "mariadbd", "--user=mysql", "--skip-networking",
                    "--socket=/run/mysqld/mysqld.sock", "--skip-log-bin")
        self.wait_for("mariadb", lambda: self.run("mysqladmin", "ping", check=False,
                                                  timeout=10).returncode == 0, "mariadb")
        grants = "".join(
            "CREATE DATABASE %s CHARACTER SET %s;\n"
            "CREATE USER '%s'@'localhost' IDENTIFIED BY '%s';\n"
            "GRANT ALL ON %s.* TO '%s'@'localhost';\n" % (
                db, charset, db, self.db_password, db, db)
            for db, charset in (("director", "utf8"), ("icinga", "latin1"),
                                ("icingaweb", "utf8mb4")))
        self.sql(grants)
        self.sql(open(self.path("/usr/share/icinga2-ido-mysql/schema/mysql.sql")).read(),
                 "icinga")
        self.sql(open(self.path("/usr/share/icingaweb2/schema/mysql.schema.sql")).read(),
                 "icingaweb")
        digest = self.run("php", "-r", "echo password_hash($argv[1], PASSWORD_DEFAULT);",
                          self.web_password).stdout
        self.sql("INSERT INTO icingaweb_user (name, active, password_hash) "
                 "VALUES ('%s', 1, '%s');\n" % (WEB_USER, digest), "icingaweb")

    def start_icinga2(self):
        self.run("icinga2", "api", "setup", "--cn", NODE, timeout=300)
        plugin_dir = PLUGIN_DIR
        run_as = {}
        if self.host_plugins:
            from lab.peers import BIN
            from lab.peers.icinga2 import all_check_names, host_programs

            plugin_dir = HOST_PLUGIN_DIR
            host_programs(self.path(plugin_dir), [os.path.join(BIN, "check_" + name)
                                                  for name in all_check_names()])
            run_as = {"ICINGA2_USER": "root", "ICINGA2_GROUP": "root"}  # chroot needs root
        # after `api setup`, which writes its own NodeName and ZoneName
        self.write("/etc/icinga2/constants.conf",
                   'const PluginDir = "%s"\n'
                   'const ManubulonPluginDir = "/usr/lib/nagios/plugins"\n'
                   'const PluginContribDir = "/usr/lib/nagios/plugins"\n'
                   'const NodeName = "%s"\nconst ZoneName = "master"\n'
                   'const TicketSalt = ""\n' % (plugin_dir, NODE))
        # the Director's kickstart connects to the endpoint's host and port
        self.write("/etc/icinga2/zones.conf",
                   'object Endpoint NodeName {\n\thost = "127.0.0.1"\n\tport = "%d"\n}\n'
                   'object Zone ZoneName {\n\tendpoints = [ NodeName ]\n}\n'
                   'object Zone "global-templates" {\n\tglobal = true\n}\n'
                   'object Zone "director-global" {\n\tglobal = true\n}\n' % self.api_port)
        for stock in ("hosts.conf", "services.conf"):
            self.write("/etc/icinga2/conf.d/" + stock,
                       "/* emptied: the Director deploys what is monitored */\n")
        self.write("/etc/icinga2/features-available/api.conf",
                   'object ApiListener "api" {\n\tbind_host = "127.0.0.1"\n'
                   '\tbind_port = %d\n\taccept_config = true\n\taccept_commands = true\n}\n'
                   % self.api_port)
        self.write("/etc/icinga2/conf.d/api-users.conf",
                   'object ApiUser "root" {\n\tpassword = "%s"\n\tpermissions = [ "*" ]\n}\n'
                   % self.api_password)
        self.write("/etc/icinga2/features-available/ido-mysql.conf",
                   'library "db_ido_mysql"\nobject IdoMysqlConnection "ido-mysql" {\n'
                   '\thost = "localhost"\n\tsocket_path = "/run/mysqld/mysqld.sock"\n'
                   '\tuser = "icinga"\n\tpassword = "%s"\n\tdatabase = "icinga"\n}\n'
                   % self.db_password, mode=0o640)
        self.run("chgrp", "nagios", "/etc/icinga2/features-available/ido-mysql.conf")
        self.run("icinga2", "feature", "enable", "ido-mysql", "api",
                 *(["graphite"] if self.graphs else []))
        self.run("/usr/lib/icinga2/prepare-dirs", "/etc/default/icinga2", env=run_as)
        faked = ()
        if self.clock is not None:
            self.set_clock(self.clock)
            faked = FAKETIME  # after chroot: the library and its file are the root's
        self.daemon("icinga2", *faked, "icinga2", "daemon", host_at_mnt=self.host_plugins,
                    env=run_as)
        self.wait_for("icinga2's API", lambda: self.api("GET", "/v1/status/IcingaApplication")
                      .ok, "icinga2", timeout=120)

    def configure_web(self):
        db = 'type = "db"\ndb = "mysql"\nhost = "localhost"\nusername = "%s"\n' \
             'password = "%s"\ndbname = "%s"\ncharset = "%s"\n'
        files = {
            "resources.ini": "".join(
                "[%s]\n%s\n" % (name, db % (user, self.db_password, user, charset))
                for name, user, charset in (("director_db", "director", "utf8"),
                                            ("icinga_ido", "icinga", "latin1"),
                                            ("icingaweb_db", "icingaweb", "utf8mb4"))),
            "config.ini": '[global]\nshow_stacktraces = "1"\nconfig_backend = "db"\n'
                          'config_resource = "icingaweb_db"\n\n[logging]\nlog = "file"\n'
                          'level = "ERROR"\nfile = "/var/log/icingaweb2/icingaweb2.log"\n',
            # the external backend first: REMOTE_USER (the headless browser) logs in; everyone
            # else gets the form of the database backend
            "authentication.ini": '[browser]\nbackend = "external"\n\n[icingaweb2]\n'
                                  'backend = "db"\nresource = "icingaweb_db"\n',
            "roles.ini": '[admins]\nusers = "%s, %s"\npermissions = "*"\n' % (
                WEB_USER, BROWSER_USER),
            "modules/monitoring/backends.ini": '[icinga]\ntype = "ido"\n'
                                               'resource = "icinga_ido"\n',
            "modules/monitoring/commandtransports.ini":
                '[icinga2]\ntransport = "api"\nhost = "127.0.0.1"\nport = "%d"\n'
                'username = "root"\npassword = "%s"\n' % (self.api_port, self.api_password),
            "modules/monitoring/config.ini": '[security]\nprotected_customvars = '
                                             '"*pw*,*pass*,community,*key*"\n',
            "modules/director/config.ini": '[db]\nresource = "director_db"\n',
            "modules/director/kickstart.ini":
                '[config]\nendpoint = "%s"\nhost = "127.0.0.1"\nport = "%d"\n'
                'username = "root"\npassword = "%s"\n' % (NODE, self.api_port,
                                                          self.api_password),
        }
        for name, text in files.items():
            self.write("/etc/icingaweb2/" + name, text, mode=0o660)
        os.makedirs(self.path("/etc/icingaweb2/enabledModules"), exist_ok=True)
        for module in MODULES + (("graphite",) if self.graphs else ()):
            if not os.path.lexists(self.path("/etc/icingaweb2/enabledModules", module)):
                os.symlink("/usr/share/icingaweb2/modules/" + module,
                           self.path("/etc/icingaweb2/enabledModules", module))
        os.makedirs(self.path("/var/log/icingaweb2"), exist_ok=True)
        self.run("chown", "-R", "www-data:icingaweb2", "/etc/icingaweb2", "/var/log/icingaweb2")
        self.write("/etc/apache2/ports.conf", "ServerName localhost\nListen 127.0.0.1:%d\n"
                   % self.web_port)
        self.write("/etc/apache2/sites-enabled/000-default.conf",
                   "<VirtualHost 127.0.0.1:%d>\n\tDocumentRoot /var/www/html\n"
                   '\tSetEnvIf User-Agent "^%s$" REMOTE_USER=%s\n</VirtualHost>\n' % (
                       self.web_port, self.browser_agent, BROWSER_USER))

    def start_graphite(self):
        """carbon-cache (10 s points) and graphite-web on loopback ports; icinga2's
        GraphiteWriter feature pointed at carbon (enabled by start_icinga2); the graphite
        module of Icinga Web 2 pointed at graphite-web, with our templates where the .deb
        installs them."""
        self.carbon_port, self.carbon_pickle, self.carbon_query, self.graphite_port = (
            free_port(), free_port(), free_port(), free_port())
        self.write("/etc/carbon/carbon.conf", (
            "[cache]\nSTORAGE_DIR = /var/lib/graphite/\n"
            "LOCAL_DATA_DIR = /var/lib/graphite/whisper/\n"
            "WHITELISTS_DIR = /var/lib/graphite/lists/\nCONF_DIR = /etc/carbon/\n"
            "LOG_DIR = /var/log/carbon/\nPID_DIR = /var/run/\nENABLE_LOGROTATION = False\n"
            "MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = 500\n"
            "MAX_CREATES_PER_MINUTE = inf\nENABLE_UDP_LISTENER = False\n"
            "LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = %d\n"
            "PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = %d\n"
            "CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = %d\n") % (
                self.carbon_port, self.carbon_pickle, self.carbon_query))
        self.write("/etc/carbon/storage-schemas.conf", STORAGE_SCHEMAS)
        for path in ("/var/lib/graphite/whisper", "/var/log/carbon", "/var/log/graphite"):
            os.makedirs(self.path(path), exist_ok=True)
        self.daemon("carbon", "carbon-cache", "--config=/etc/carbon/carbon.conf", "--debug",
                    "--nodaemon", "start")
        with open(self.path("/etc/graphite/local_settings.py"), "a") as handle:
            handle.write("\nSECRET_KEY = %r\nCARBONLINK_HOSTS = ['127.0.0.1:%d:a']\n"
                         "ALLOWED_HOSTS = ['*']\nLOG_DIR = '/var/log/graphite'\n"
                         % (secrets.token_hex(16), self.carbon_query))
        self.run("graphite-manage", "migrate", "--run-syncdb", timeout=300)
        self.daemon("graphite-web", "graphite-manage", "runserver", "--noreload",
                    "127.0.0.1:%d" % self.graphite_port)
        self.write("/etc/icinga2/features-available/graphite.conf",
                   'object GraphiteWriter "graphite" {\n\thost = "127.0.0.1"\n'
                   '\tport = %d\n\tenable_send_thresholds = true\n}\n' % self.carbon_port)
        self.write("/etc/icingaweb2/modules/graphite/config.ini",
                   '[graphite]\nurl = "http://127.0.0.1:%d"\n'
                   # the last quarter of an hour: a fresh stack's points fill the plot
                   '[ui]\ndefault_time_range = "15"\ndefault_time_range_unit = "minutes"\n'
                   % self.graphite_port,
                   mode=0o660)
        templates = self.path("/etc/icingaweb2/modules/graphite/templates/osop-checks")
        os.makedirs(templates, exist_ok=True)
        for name in os.listdir(GRAPH_TEMPLATES):
            shutil.copy(os.path.join(GRAPH_TEMPLATES, name), templates)

    def director_setup(self):
        self.icingacli("director", "migration", "run", timeout=300)
        self.icingacli("director", "kickstart", "run", timeout=300)
        self.daemon("director", "icingacli", "director", "daemon", "run", user="www-data")

    # -- talking to it -----------------------------------------------------------------------------

    def url(self, path="/icingaweb2/"):
        return "http://127.0.0.1:%d%s" % (self.web_port, path)

    def http(self, path, browser=False):
        """A GET of ``path``; ``browser``: as the headless browser (logged in by apache)."""
        import requests

        headers = {"User-Agent": self.browser_agent} if browser else {}
        return requests.get(self.url(path), timeout=10, allow_redirects=False,
                            headers=headers)

    def api(self, method, path, body=None, timeout=10):
        import requests
        import urllib3

        urllib3.disable_warnings()
        headers = {"Accept": "application/json"}
        if method == "GET" and body is not None:
            method, headers["X-HTTP-Method-Override"] = "POST", "GET"
        return requests.request(method, "https://127.0.0.1:%d%s" % (self.api_port, path),
                                json=body, auth=("root", self.api_password), verify=False,
                                timeout=timeout, headers=headers)

    def restore_basket(self, path=BASKET):
        with open(path) as handle:
            return self.icingacli("director", "basket", "restore", input=handle.read()).stdout

    def create(self, kind, name, properties):
        """``icingacli director <kind> create <name> --json ...`` (kind: host, service)."""
        return self.icingacli("director", kind, "create", name, "--json",
                              json.dumps(properties)).stdout

    def deploy(self, wait=120):
        return self.icingacli("director", "config", "deploy", "--wait", str(wait),
                              timeout=wait + 60).stdout

    def set_clock(self, offset):
        """icinga2's clock ``offset`` seconds off this machine's from now on (a Stack made
        with ``clock``); replaced whole, so libfaketime never reads half a line."""
        self.clock = offset
        self.write(CLOCK_FILE + ".new", "%+d\n" % offset)
        os.replace(self.path(CLOCK_FILE + ".new"), self.path(CLOCK_FILE))

    def now(self):
        """The time on icinga2's clock (what its check results' times compare with)."""
        return time.time() + (self.clock or 0)

    def force_checks(self, filter_="true"):
        """Every service (and host: the list shows theirs too) checked now (icinga2's now:
        the API's default)."""
        for kind in ("Host", "Service"):
            reply = self.api("POST", "/v1/actions/reschedule-check", {
                "type": kind, "filter": filter_, "force": True})
            reply.raise_for_status()
        return len(reply.json()["results"])

    def services(self):
        reply = self.api("GET", "/v1/objects/services", {"attrs": [
            "name", "host_name", "display_name", "check_command", "last_check_result",
            "vars"]}, timeout=30)
        reply.raise_for_status()
        return {s["name"]: s["attrs"] for s in reply.json()["results"]}

    def wait_for_results(self, since, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            services = self.services()
            pending = [n for n, a in services.items() if not a["last_check_result"]
                       or a["last_check_result"]["execution_end"] < since]
            if not pending or time.monotonic() > deadline:
                return services, pending
            time.sleep(0.5)

    def screenshot(self, path, page=SERVICE_LIST, timeout=60, size=(1400, 900), expect=None):
        """A PNG of ``page`` of Icinga Web 2 at ``path``, taken by a headless Chromium (logged
        in by apache, see the module text) once the page shows every service icinga2 has (or
        the texts ``expect``); returns the page's text (its DOM after the scripts ran)."""
        names = expect if expect is not None else [
            a["display_name"] for a in self.services().values()]
        profile = tempfile.mkdtemp(prefix="osop-chromium-")
        chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", "--user-data-dir=" + profile,
                    "--window-size=%d,%d" % size, "--virtual-time-budget=8000",
                    "--user-agent=" + self.browser_agent]
        url = self.url(page)
        try:
            deadline = time.monotonic() + timeout
            while True:  # the IDO writes what icinga2 checked a moment later
                dom = subprocess.run(chromium + ["--dump-dom", url], capture_output=True,
                                     text=True, timeout=120).stdout
                if all(name in dom for name in names) or time.monotonic() > deadline:
                    break
                time.sleep(2)
            subprocess.run(chromium + ["--screenshot=" + os.path.abspath(path), url],
                           capture_output=True, timeout=120, check=True)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        return dom

    def graphite_metrics(self, query):
        """The metric paths graphite-web finds for ``query`` (a glob of the metric tree)."""
        import requests

        reply = requests.get("http://127.0.0.1:%d/metrics/expand" % self.graphite_port,
                             params={"query": query, "leavesOnly": 1}, timeout=30)
        reply.raise_for_status()
        return reply.json()["results"]

    def graphite_connected(self):
        """Whether icinga2's GraphiteWriter is connected to carbon (it sends nothing before:
        a check result in between is not written)."""
        reply = self.api("GET", "/v1/status/GraphiteWriter")
        reply.raise_for_status()
        return any(writer["connected"] for result in reply.json()["results"]
                   for writer in result["status"]["graphitewriter"].values())

    def graphite_points(self, target, since="-15min"):
        """The [value, time] points graphite-web has of ``target`` since ``since``, its
        empty 10 s slots left out."""
        import requests

        reply = requests.get("http://127.0.0.1:%d/render" % self.graphite_port, params={
            "target": target, "from": since, "format": "json"}, timeout=30)
        reply.raise_for_status()
        return [point for series in reply.json() for point in series["datapoints"]
                if point[0] is not None]

    def icinga2_log(self):
        with open(self.path("/var/log/icinga2/icinga2.log"), errors="replace") as handle:
            return handle.read()

    def stop(self):
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                try:  # the daemon's own children (apache workers, check plugins) with it
                    os.killpg(process.pid, 15)
                except ProcessLookupError:
                    pass
            end_process(process, grace=15)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
        self.processes = {}
        # what left those process groups: icinga2's reload starts a new daemon of its own
        for pid in self.processes_in_root():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        shutil.rmtree(self.base, ignore_errors=True)

    def processes_in_root(self):
        """Pids of the processes whose root directory is this stack's root."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink("/proc/%s/root" % entry) == self.root:
                        found.append(int(entry))
                except OSError:
                    continue
        return found


# -- make demo-web ------------------------------------------------------------------------------

DEMO_HOST = "this-machine"


def deploy_scenarios(director, scenarios, host=DEMO_HOST):
    """One Director service per demo scenario on ``host``, made from our templates with
    `icingacli director service create`, deployed, every check forced once; returns the
    services as icinga2's API has them."""
    import importlib

    from lab.peers.icinga2 import argv_to_vars

    director.create("host", host, {"object_type": "object", "address": "127.0.0.1",
                                   "check_command": "dummy", "display_name": host})
    for number, (check, title, argv) in enumerate(scenarios, 1):
        parser = importlib.import_module("osop_checks.checks." + check).build_parser()
        director.create("service", "%s %d" % (check, number), {
            "object_type": "object", "host": host, "display_name": title,
            "imports": ["osop-" + check.replace("_", "-")],
            "vars": argv_to_vars(check, parser, argv)})
    director.deploy()
    director.wait_for("the deployed services",
                      lambda: len(director.services()) == len(scenarios))
    if director.graphs:  # the deploy's reload connects icinga2 to carbon anew
        director.wait_for("icinga2's GraphiteWriter", director.graphite_connected, "icinga2")
    since = director.now()
    director.force_checks()
    services, pending = director.wait_for_results(since, timeout=300)
    return services


def demo_web(args):
    """`make demo-web`: the Director stack watching the `make demo` scenarios, until
    interrupted; with Graphite behind it, so each service's page shows our graphs (filled
    as icinga2 checks them every minute)."""
    import signal

    from lab.peers.icinga2 import print_table, scenario_services

    if os.geteuid() != 0:
        print("make demo-web runs the stack in a root filesystem (chroot, mounts): run it "
              "as root", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # cleaned up like Ctrl-C
    with contextlib.ExitStack() as stack:
        print("starting the demo peers, then Icinga Director and Icinga Web 2 in a bookworm "
              "root (the first run builds it: a few minutes)", flush=True)
        scenarios = scenario_services(stack)
        director = stack.enter_context(Stack(host_plugins=True, graphs=not args.no_graphs))
        director.restore_basket()
        services = deploy_scenarios(director, scenarios)
        print_table(services)
        if args.screenshot:
            director.screenshot(args.screenshot)
            print("screenshot of the service list: %s" % args.screenshot)
        print("\nIcinga Web 2:  %s   login: %s   password: %s\n"
              "(on loopback only; from another machine: ssh -L %d:127.0.0.1:%d this-host)\n"
              "The services are the Director's (Icinga Director > Services); icinga2 checks "
              "them every minute; a service's page shows its graphs (icingaweb2-module-graphite "
              "with our templates). Ctrl-C stops everything and removes it."
              % (director.url(), WEB_USER, director.web_password, director.web_port,
                 director.web_port), flush=True)
        if args.once:
            return 0
        try:
            while all(p.poll() is None for p in director.processes.values()):
                time.sleep(1)
            print("a daemon of the stack ended: stopping", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            # one more Ctrl-C must not cut the clean-up short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("\nstopping", flush=True)
            return 0


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lab.peers.director")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the cached root filesystem, print its path")
    web = sub.add_parser("demo-web", help="Icinga Web 2 with the demo scenarios, until Ctrl-C")
    web.add_argument("--screenshot", metavar="PNG", help="also take a screenshot of the "
                     "service list (headless chromium), e.g. docs/director-service-list.png")
    web.add_argument("--once", action="store_true", help="stop after the first check round")
    web.add_argument("--no-graphs", action="store_true", help="without Graphite and the "
                     "graphite module")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(director_root())
        return 0
    return demo_web(args)


if __name__ == "__main__":
    sys.exit(main())
