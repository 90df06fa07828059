"""The graph templates and dashboards icinga2-conf/graphs.py writes from the checks and
tests/perfdata-labels.txt: a template of icingaweb2-module-graphite for every command, plain
and _api, in the module's format; a Grafana dashboard per check and data source."""
import configparser
import json
import os

from lab.peers import icinga2
from tests import perfdata_labels

GRAPHS = icinga2.graphs()
CHECKS = icinga2.all_check_names()


def templates():
    """{template name: {section: {option: value}}} of every generated .ini."""
    found = {}
    for path, text in GRAPHS.outputs().items():
        if not path.endswith(".ini"):
            continue
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str
        parser.read_string(text)
        for section in parser.sections():
            name, _, topic = section.rpartition(".")
            found.setdefault(name, {})[topic] = {
                key: value.strip('"') for key, value in parser[section].items()}
    return found


def test_every_command_plain_and_api_has_templates():
    commanded = {}
    for name, sections in templates().items():
        for command in sections["graph"]["check_command"].split(","):
            commanded.setdefault(command.strip(), []).append(name)
    generate = icinga2.generator()
    for check in CHECKS:
        for command in (generate.PREFIX + check, generate.PREFIX + check + generate.API_SUFFIX):
            assert commanded.get(command), "no graph template for %s" % command


def test_templates_are_in_the_modules_format():
    for name, sections in templates().items():
        assert set(sections) == {"graph", "metrics_filters", "urlparams", "functions"}, name
        assert set(sections["functions"]) <= set(sections["metrics_filters"]), name
        for path in sections["metrics_filters"].values():
            assert path.startswith("$service_name_template$.perfdata."), (name, path)
            assert path.count("$") % 2 == 0, (name, path)
        for function in sections["functions"].values():
            assert "$metric$" in function and function.startswith("alias("), (name, function)


def test_every_graphed_label_is_drawn_and_days_are_shown_in_days():
    drawn = " ".join(json.dumps(s) for s in templates().values())
    for label in perfdata_labels.load():
        if label.graph is None or label.label.endswith("…"):
            continue
        bare = GRAPHS.graphite_escape(GRAPHS.PLACEHOLDER_RE.sub("", label.label))
        assert bare in drawn, label
    tls = templates()["osop_tls_expiry-days-left"]
    # Icinga stores 'd' in seconds: the graph scales it back to days
    assert "scale($metric$, %r)" % (1 / 86400) in tls["functions"]["days_leaf.value"]
    assert tls["urlparams"]["vtitle"] == "days"


def test_a_label_with_dots_is_drawn_at_every_depth_and_disk_space_leaves_out_inodes():
    names = templates()
    assert "osop_tls_expiry-days-left-4" in names  # localhost@127.0.0.1:443 is 4 levels deep
    space = names["osop_disk_partitions-space"]["metrics_filters"]["space.value"]
    assert "*[!_]inodes" in space
    assert names["osop_disk_partitions-inodes"]["metrics_filters"]["inodes.value"].endswith(
        "$mount$_inodes.value")


def test_grafana_dashboards_for_graphite_and_influxdb():
    outputs = GRAPHS.outputs()
    for kind in ("graphite", "influxdb"):
        for name in ["osop_%s" % check for check in CHECKS] + ["osop-overview"]:
            path = os.path.join(GRAPHS.GRAFANA_DIR, kind, name + ".json")
            board = json.loads(outputs[path])
            assert board["panels"], path
            assert board["__inputs"][0]["pluginId"] == kind
            for panel in board["panels"]:
                assert panel["datasource"]["type"] == kind
                for target in panel["targets"]:
                    text = target.get("target") or target.get("query")
                    assert "osop_" in text and "_api" in text, (path, text)
    query = json.loads(outputs[os.path.join(GRAPHS.GRAFANA_DIR, "influxdb",
                                            "osop_tls_expiry.json")])["panels"][0]["targets"][0]
    assert '"metric" =~' in query["query"] and "_days_leaf$" in query["query"]
