"""check_dyndns_match beside Monitoring Plugins' check_dig, against the same dnsmasq.

Both ask the same loopback dnsmasq for the same A record and compare it with an expected
address; check_dig runs dig(1) for it. Further rows show what the other modes cost: the
authoritative walk (SOA, NS, the NS address, then the record, through a forwarding resolver)
and an HTTP echo service as the public-address source (requests is imported for it).
"""
import os
import shutil
import tempfile

from bench.common import FLOOR, PLUGINS, check, hyperfine, table
from lab.peers.dns import DnsSite
from lab.peers.http_echo import EchoServer

NAME = "office.dyn.test"
ADDRESS = "198.51.100.23"


def main():
    print("## check_dyndns_match beside check_dig\n")
    if not shutil.which("dnsmasq", path=os.environ.get("PATH", "") + ":/usr/sbin"):
        print("dnsmasq is not installed here: nothing measured.")
        return
    state = tempfile.mkdtemp(prefix="osop-bench-dyndns-")
    try:
        with DnsSite({NAME: [ADDRESS]}) as site, EchoServer(ADDRESS + "\n") as echo:
            ours = "%s -H %s --state-file %s/s.json" % (check("check_dyndns_match"), NAME, state)
            commands = {
                "python -c pass (floor)": FLOOR,
                "check_dyndns_match --server (A, --expect)":
                    "%s --server %s --expect %s" % (ours, site.auth.server, ADDRESS),
                "check_dyndns_match --authoritative (via the resolver)":
                    "%s --server %s --authoritative --auth-port %d --expect %s" % (
                        ours, site.resolver.server, site.port, ADDRESS),
                "check_dyndns_match --server --ip-url (local echo)":
                    "%s --server %s --ip-url %s" % (ours, site.auth.server, echo.url),
            }
            dig = os.path.join(PLUGINS, "check_dig")
            reference = None
            if os.path.exists(dig) and shutil.which("dig"):
                reference = "check_dig -a (dig)"
                commands[reference] = "%s -H 127.0.0.1 -p %d -l %s -T A -a %s" % (
                    dig, site.port, NAME, ADDRESS)
            results = hyperfine(commands, runs=30)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    bad = [name for name, r in results.items() if r["exit_codes"] not in ([], [0])]
    print(table(results, floor="python -c pass (floor)", reference=reference))
    if reference:
        ratio = results["check_dyndns_match --server (A, --expect)"]["median"] / \
            results[reference]["median"]
        print("\nOne A lookup compared with an expected address: check_dyndns_match takes "
              "%.2fx the time of check_dig (which forks dig), measured in the same run." % ratio)
    else:
        print("\ncheck_dig or dig(1) (bind9-dnsutils) is not installed: no reference row.")
    if bad:
        print("\nNot every run was OK: %s." % ", ".join(bad))
    print()


if __name__ == "__main__":
    main()
