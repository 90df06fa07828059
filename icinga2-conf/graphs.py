#!/usr/bin/env python3
"""Write the graph definitions of osop-checks from the checks and their perfdata labels.

The same metadata as commands.conf and the Director basket (generate.py: the checks of
setup.cfg, their commands "osop_<name>" and "osop_<name>_api") and the label list
tests/perfdata-labels.txt (every label a check emits, its unit, the graph it is drawn in and
its legend) give:

- graphite/osop_<name>.ini: templates of icingaweb2-module-graphite (1.2): one per graph of
  the list, for both commands of the check, so a check sent to osop-checks-api draws the same
  graphs as a forked one;
- grafana/graphite/osop_<name>.json, grafana/influxdb/osop_<name>.json: a Grafana dashboard per
  check (host and service chosen at the top) for the data Icinga 2's GraphiteWriter or
  InfluxdbWriter keep, and osop-overview.json beside them: every check's graphs of one host.

What Icinga does to perfdata before it stores it, and what the graphs undo:
- units are normalised (Icinga 2.11 and later): "d" is stored in seconds, so days left are
  scaled back to days; "B" stays bytes, "%" percent, "s" seconds;
- GraphiteWriter turns ' ', '/' and '\\' of a label into '_' and keeps '.', which starts a new
  level of the metric path: a label with dots (a TLS endpoint, a mount point with a dot) is
  several levels deep, so a label with a {placeholder} gets one template per depth, up to
  DEPTH levels. A graph of a {mount} leaves out the labels that end in "_inodes".
- InfluxdbWriter keeps the label whole in the tag "metric", the service in "service", the host
  in "hostname"; the measurement is the check command.

Run it after changing the label list: `make regen` (tests/regen.py); tests/test_regen.py fails
while a file here is out of date.
"""
import collections
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GRAPHITE_DIR = os.path.join(HERE, "graphite")
GRAFANA_DIR = os.path.join(HERE, "grafana")
# How many metric-path levels a {placeholder} may span (dots in it): TLS endpoints are host
# names, "name@address:port" or addresses; mount points and copies rarely hold a dot.
DEPTH = {"endpoint": 8}
DEFAULT_DEPTH = 3
COLOURS = ["#1a7dd7", "#44bb77", "#ffaa44", "#9966cc", "#33aaaa", "#cc6699"]
WARNING_COLOUR, CRITICAL_COLOUR = "#ff9900", "#ff3333"
SECONDS_PER_DAY, SECONDS_PER_HOUR = 86400, 3600


def _sibling(name):
    import importlib.util

    module_name = "osop_icinga2_" + name
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, os.path.join(HERE, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def labels():
    """tests/perfdata-labels.txt's reader (tests/perfdata_labels.py)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tests import perfdata_labels

    return perfdata_labels


Graph = collections.namedtuple("Graph", "check name labels")


def graphs(check, listed=None):
    """[Graph] of ``check``: its labels grouped by graph name, in the order of the list."""
    grouped = collections.OrderedDict()
    for label in labels().by_check(listed).get(check, []):
        if label.graph is not None and not label.label.endswith("…"):
            grouped.setdefault(label.graph, []).append(label)
    return [Graph(check, name, items) for name, items in grouped.items()]


def commands(check):
    generate = _sibling("generate")
    return [generate.PREFIX + check, generate.PREFIX + check + generate.API_SUFFIX]


class Display(collections.namedtuple("Display", "factor unit grafana y_system")):
    """How a stored value is shown: ``factor`` times it, in ``unit`` (Grafana's ``grafana``)."""


def display(graph):
    """The Display of a graph, from the unit of its first label as Icinga stores it."""
    unit = graph.labels[0].units[0]
    if unit == "B":
        return Display(1, "bytes", "bytes", "binary")
    if unit == "d":  # Icinga stored it in seconds
        return Display(1.0 / SECONDS_PER_DAY, "days", "d", "none")
    if unit == "s" and "age" in graph.name:
        return Display(1.0 / SECONDS_PER_HOUR, "hours", "h", "none")
    if unit == "s":
        return Display(1, "seconds", "s", "none")
    if unit == "%":
        return Display(1, "%", "percent", "none")
    return Display(1, "", "short", "none")


def title(graph):
    # no ':' (the module would read "a: b $x$" as a macro with a wildcard)
    return "check_%s - %s" % (graph.check, graph.name.replace("_", " "))


def graphite_escape(text):
    """A label as GraphiteWriter writes it into the metric path (dots kept)."""
    for char in (" ", "/", "\\"):
        text = text.replace(char, "_")
    return text


def placeholder_of(graph):
    """The one {placeholder} of the graph's labels, or None."""
    found = {p for label in graph.labels for p in label.placeholders}
    if len(found) > 1:
        raise ValueError("graph %s of %s mixes placeholders %s" % (graph.name, graph.check, found))
    return found.pop() if found else None


# Graphite globs (fnmatch, with {a,b}): one level that does not end in "_inodes".
NOT_INODES = "{*[!s],*[!e]s,*[!d]es,*[!o]des,*[!n]odes,*[!i]nodes,*[!_]inodes}"


def graphite_paths(label, placeholder, depth, exclusive):
    """The label as a metric path below perfdata with the placeholder spread over ``depth``
    macro levels $<placeholder>1$.$<placeholder>2$...; ``exclusive``: the last level leaves
    out labels of the same placeholder that other lines of the graph's check list with a
    suffix (a {mount} graph leaves out "{mount} inodes")."""
    if placeholder is None:
        return graphite_escape(label.label)
    macros = []
    for level in range(1, depth + 1):
        name = "%s%d" % (placeholder, level) if depth > 1 else placeholder
        pattern = NOT_INODES if exclusive and level == depth else None
        macros.append("$%s:%s$" % (name, pattern) if pattern else "$%s$" % name)
    head, _, tail = label.label.partition("{%s}" % placeholder)
    return graphite_escape(head) + ".".join(macros) + graphite_escape(tail)


def shown_name(placeholder, depth):
    if placeholder is None:
        return ""
    if depth == 1:
        return "$%s$" % placeholder
    return ".".join("$%s%d$" % (placeholder, level) for level in range(1, depth + 1))


def curve(label):
    """A curve's name in a template: the label without its placeholder, else its graph's."""
    return re.sub(r"[^a-z0-9_]+", "_", PLACEHOLDER_RE.sub("", label.label).lower()).strip("_") \
        or label.graph


PLACEHOLDER_RE = re.compile(r"\{[a-z_]+\}")


def _exclusive(graph, placeholder):
    """Whether the check lists '{placeholder} <suffix>' labels beside a bare '{placeholder}'."""
    bare = "{%s}" % placeholder
    return any(x.label == bare for x in graph.labels) and any(
        x.label.startswith(bare + " ") for x in labels().by_check().get(graph.check, []))


def module_templates(graph):
    """The ini sections of one graph: (template name, {section: {option: value}}) per depth."""
    placeholder = placeholder_of(graph)
    depths = range(1, DEPTH.get(placeholder, DEFAULT_DEPTH) + 1) if placeholder else [None]
    show = display(graph)
    out = []
    for depth in depths:
        name = "%s-%s%s" % (commands(graph.check)[0], graph.name.replace("_", "-"),
                            "-%d" % depth if depth and depth > 1 else "")
        exclusive = placeholder is not None and _exclusive(graph, placeholder)
        filters, functions = collections.OrderedDict(), collections.OrderedDict()
        for number, label in enumerate(graph.labels):
            path = "$service_name_template$.perfdata.%s" % graphite_paths(
                label, placeholder, depth or 1, exclusive)
            key = curve(label)
            filters[key + ".value"] = path + ".value"
            legend = PLACEHOLDER_RE.sub(shown_name(placeholder, depth or 1), label.meaning)
            functions[key + ".value"] = _function(show, COLOURS[number % len(COLOURS)],
                                                  "%s (%s)" % (legend, show.unit)
                                                  if show.unit else legend)
            if len(graph.labels) == 1:
                for extra, colour, words in (("warn", WARNING_COLOUR, "warning"),
                                             ("crit", CRITICAL_COLOUR, "critical")):
                    filters[key + "." + extra] = path + "." + extra
                    functions[key + "." + extra] = _function(show, colour, words, dashed=True)
                if show.unit == "bytes":
                    filters[key + ".max"] = path + ".max"
                    functions[key + ".max"] = _function(show, "#888888", "size")
        params = collections.OrderedDict([
            ("areaAlpha", "0.3"), ("areaMode", "first" if len(graph.labels) == 1 else "none"),
            ("lineWidth", "2"), ("min", "0"),
            ("title", "%s%s" % (title(graph), (" " + shown_name(placeholder, depth))
                                if placeholder else "")),
            ("vtitle", show.unit or "count"), ("yUnitSystem", show.y_system)])
        out.append((name, collections.OrderedDict([
            ("graph", {"check_command": ", ".join(commands(graph.check))}),
            ("metrics_filters", filters), ("urlparams", params), ("functions", functions)])))
    return out


def _function(show, colour, legend, dashed=False):
    metric = "$metric$"
    if show.factor != 1:
        metric = "scale(%s, %s)" % (metric, repr(show.factor))
    metric = "color(%s, '%s')" % (metric, colour)
    if dashed:
        metric = "dashed(%s)" % metric
    return "alias(%s, '%s')" % (metric, legend.replace("'", ""))


def ini_value(value):
    return '"%s"' % str(value).replace('"', "'")


def render_ini(check):
    out = ["; Graphs of check_%s for icingaweb2-module-graphite (templates of its 1.2 format):"
           % check,
           "; %s. Generated by icinga2-conf/graphs.py from tests/perfdata-labels.txt;"
           % " and ".join(commands(check)),
           "; do not edit by hand (copy it under another name to change it).", ""]
    for graph in graphs(check):
        for name, sections in module_templates(graph):
            for section, options in sections.items():
                out.append("[%s.%s]" % (name, section))
                out += ["%s = %s" % (key, ini_value(value)) for key, value in options.items()]
                out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# -- Grafana ----------------------------------------------------------------------------------

DATASOURCES = {
    "graphite": {"name": "DS_GRAPHITE", "label": "Graphite", "pluginId": "graphite",
                 "pluginName": "Graphite"},
    "influxdb": {"name": "DS_INFLUXDB", "label": "InfluxDB", "pluginId": "influxdb",
                 "pluginName": "InfluxDB"},
}


def graphite_targets(graph, service="$service"):
    """Graphite queries of a graph: per label (and depth of its placeholder) one target."""
    placeholder = placeholder_of(graph)
    show = display(graph)
    command_glob = "{%s}" % ",".join(commands(graph.check))
    targets = []
    for label in graph.labels:
        depths = range(1, DEPTH.get(placeholder, DEFAULT_DEPTH) + 1) if placeholder else [1]
        for depth in depths:
            levels = ".".join(["*"] * depth)
            if placeholder and _exclusive(graph, placeholder):
                levels = ".".join(["*"] * (depth - 1) + [NOT_INODES])
            head, _, tail = label.label.partition("{%s}" % placeholder) if placeholder else (
                label.label, "", "")
            path = graphite_escape(head) + (levels if placeholder else "") + graphite_escape(tail)
            series = "icinga2.$host.services.%s.%s.perfdata.%s.value" % (
                service, command_glob, path)
            if show.factor != 1:
                series = "scale(%s, %s)" % (series, repr(show.factor))
            naming = r"\1: \2" if service != "$service" else r"\2"
            targets.append("aliasSub(%s, '^icinga2\\.[^.]+\\.services\\.([^.]+)\\.[^.]+\\."
                           "perfdata\\.(.*)\\.value.*$', '%s')" % (series, naming))
    return [{"refId": _ref(n), "target": t} for n, t in enumerate(targets)]


def _ref(number):
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return letters[number % 26] + ("" if number < 26 else str(number // 26))


def influx_regex(label):
    parts = PLACEHOLDER_RE.split(label.label)
    return "^" + ".+".join(re.escape(p).replace("/", "\\/") for p in parts) + "$"


def influx_targets(graph, service="$service"):
    show = display(graph)
    measurement = "/^%s(%s)?$/" % (commands(graph.check)[0],
                                   commands(graph.check)[1][len(commands(graph.check)[0]):])
    metrics = "|".join("(%s)" % influx_regex(label) for label in graph.labels)
    where = '"hostname" =~ /^$host$/ AND "metric" =~ /%s/' % metrics
    group = 'GROUP BY time($__interval), "metric" fill(none)'
    if service == "$service":
        where += ' AND "service" =~ /^$service$/'
    else:
        group = 'GROUP BY time($__interval), "service", "metric" fill(none)'
    value = 'mean("value")' + (" * %s" % repr(show.factor) if show.factor != 1 else "")
    return [{"refId": "A", "rawQuery": True, "resultFormat": "time_series",
             "alias": "$tag_metric" if service == "$service" else "$tag_service: $tag_metric",
             "query": "SELECT %s FROM %s WHERE %s AND $timeFilter %s" % (
                 value, measurement, where, group)}]


def panel(graph, kind, number, service="$service"):
    show = display(graph)
    targets = (graphite_targets if kind == "graphite" else influx_targets)(graph, service)
    return {
        "id": number + 1,
        "type": "timeseries",
        "title": title(graph),
        "description": "; ".join("%s: %s" % (x.label, x.meaning) for x in graph.labels),
        "datasource": {"type": kind, "uid": "${%s}" % DATASOURCES[kind]["name"]},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (number % 2), "y": 8 * (number // 2)},
        "fieldConfig": {"defaults": {"unit": show.grafana, "min": 0,
                                     "custom": {"fillOpacity": 10, "lineWidth": 2}},
                        "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom",
                               "calcs": ["lastNotNull", "min", "max"]}},
        "targets": targets,
    }


def variables(kind, checks, with_service=True):
    source = {"type": kind, "uid": "${%s}" % DATASOURCES[kind]["name"]}
    commands_glob = ",".join(c for check in checks for c in commands(check))
    if kind == "graphite":
        host_query = "icinga2.*"
        service_query = "icinga2.$host.services.*"
    else:
        names = "|".join(commands(check)[0] for check in checks)
        host_query = 'SHOW TAG VALUES FROM /^(%s)(_api)?$/ WITH KEY = "hostname"' % names
        service_query = ('SHOW TAG VALUES FROM /^(%s)(_api)?$/ WITH KEY = "service" '
                         'WHERE "hostname" =~ /^$host$/' % names)
    out = [{"name": "host", "label": "Host", "type": "query", "datasource": source,
            "query": host_query, "refresh": 1, "sort": 1}]
    if with_service:
        query = service_query
        if kind == "graphite":
            # only the services checked by this dashboard's commands
            query = "icinga2.$host.services.*.{%s}" % commands_glob
        out.append({"name": "service", "label": "Service", "type": "query",
                    "datasource": source, "query": query, "refresh": 1, "sort": 1,
                    "regex": r"/^icinga2\.[^.]+\.services\.([^.]+)/" if kind == "graphite"
                    else ""})
    return out


def dashboard(kind, title_text, uid, panels, checks, with_service=True):
    source = dict(DATASOURCES[kind], type="datasource")
    return {
        "__inputs": [source],
        "__requires": [{"type": "datasource", "id": kind, "name": source["pluginName"]}],
        "uid": uid,
        "title": title_text,
        "tags": ["osop-checks", "icinga2", kind],
        "timezone": "browser",
        "schemaVersion": 39,
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": variables(kind, checks, with_service)},
        "panels": panels,
    }


def check_dashboard(kind, check):
    panels = [panel(graph, kind, n) for n, graph in enumerate(graphs(check))]
    return dashboard(kind, "osop-checks: check_%s (%s)" % (check, DATASOURCES[kind]["label"]),
                     "osop-%s-%s" % (check.replace("_", "-"), kind)[:40], panels, [check])


def overview(kind, checks):
    """One host: the first graph of every check, every service of it."""
    panels = []
    for check in checks:
        found = graphs(check)
        if found:
            panels.append(panel(found[0], kind, len(panels), service="*" if kind == "graphite"
                                else "all"))
    return dashboard(kind, "osop-checks: a host (%s)" % DATASOURCES[kind]["label"],
                     "osop-overview-%s" % kind, panels, checks, with_service=False)


def render_json(data):
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def outputs():
    """{path: text} of every file this script writes."""
    checks = _sibling("generate").check_modules(ROOT)
    result = {}
    for check in checks:
        result[os.path.join(GRAPHITE_DIR, "osop_%s.ini" % check)] = render_ini(check)
        for kind in DATASOURCES:
            result[os.path.join(GRAFANA_DIR, kind, "osop_%s.json" % check)] = render_json(
                check_dashboard(kind, check))
    for kind in DATASOURCES:
        result[os.path.join(GRAFANA_DIR, kind, "osop-overview.json")] = render_json(
            overview(kind, checks))
    return result


def main():
    for path, text in outputs().items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        print("wrote %s" % os.path.relpath(path, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
