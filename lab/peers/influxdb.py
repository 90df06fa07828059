"""InfluxDB 1.6 as Debian 12 ships it (package influxdb), on loopback, for Icinga 2's
InfluxdbWriter: ``Influxdb()`` runs ``influxd`` with a config of its own in a temporary
directory (data, WAL and meta there; HTTP on 127.0.0.1:<ephemeral>, its RPC bind address on
another loopback port, no usage reporting), creates the database ``icinga2`` and answers
InfluxQL through ``query()``.

    with Influxdb() as influx:
        text = influx.writer_object()          # the InfluxdbWriter for icinga2's config
        influx.query('SHOW MEASUREMENTS')      # the JSON "results" of /query
"""
import os
import shutil
import subprocess
import tempfile
import time

from lab.peers import Started, end_process
from lab.peers.icinga2 import free_port

DATABASE = "icinga2"
CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
"""


class Influxdb(Started):
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="osop-influxdb-")
        self.port, self.rpc = free_port(), free_port()
        self.process = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        config = os.path.join(self.dir, "influxdb.conf")
        with open(config, "w") as handle:
            handle.write(CONFIG.format(dir=self.dir, port=self.port, rpc=self.rpc))
        self.log = open(os.path.join(self.dir, "influxd.log"), "w")
        self.process = subprocess.Popen([binary, "-config", config], stdout=self.log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self._pings():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("influxd did not start: %s" % self.log_tail())
            time.sleep(0.2)
        self.query("CREATE DATABASE %s" % DATABASE, method="POST")
        return self

    def _pings(self):
        import requests

        try:
            return requests.get(self.url + "/ping", timeout=2).status_code == 204
        except requests.RequestException:
            return False

    def query(self, text, method="GET"):
        """The "results" of InfluxQL ``text`` on the database."""
        import requests

        reply = requests.request(method, self.url + "/query",
                                 params={"q": text, "db": DATABASE}, timeout=10)
        reply.raise_for_status()
        return reply.json()["results"]

    def writer_object(self):
        """Icinga 2's InfluxdbWriter, its templates as Icinga's documentation has them: the
        measurement is the check command; tags host name, service and (per value) metric."""
        return """
object InfluxdbWriter "influxdb" {
	host = "127.0.0.1"
	port = %d
	database = "%s"
	flush_threshold = 1
	flush_interval = 1s
	enable_send_thresholds = true
	host_template = {
		measurement = "$host.check_command$"
		tags = { hostname = "$host.name$" }
	}
	service_template = {
		measurement = "$service.check_command$"
		tags = { hostname = "$host.name$"; service = "$service.name$" }
	}
}
""" % (self.port, DATABASE)

    def log_tail(self, size=3000):
        try:
            with open(os.path.join(self.dir, "influxd.log"), errors="replace") as handle:
                return handle.read()[-size:]
        except OSError:
            return ""

    def stop(self):
        end_process(self.process)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
