"""The Icinga for Windows check protocol as Icinga 2.14's IfwApiCheckTask speaks it.

Request: ``POST /v1/checker?command=check_disk_partitions`` with a JSON object whose keys are
options and whose values are what Icinga's argument resolution made of them: ``true`` for a
switch, a string for an option with a value, an array for one with several (IfwApiCheckTask
turns ``repeat_key`` off, so ``-p / -p /data2`` arrives as ``"-p": ["/", "/data2"]``).

Answer: ``{"check_disk_partitions": {"exitcode": 0, "checkresult": "...", "perfdata":
["'/'=..."]}}``. checkresult and perfdata are exactly what Icinga makes of the forked plugin's
output (PluginUtility::ParseCheckOutput), so a service shows the same text either way.
"""
import argparse
import importlib
import json
import math
import pkgutil
import re
from urllib.parse import parse_qs, unquote, urlsplit

from osop_checks import runtime, text
from osop_checks.api import policy

SELF = "OSOP_CHECKS_API"
# A check's --timeout asked through the API is at most Icinga's default check_timeout: a
# caller cannot pin a worker for a day.
MAX_TIMEOUT = 60


class BadRequest(Exception):
    """A request that cannot run: answered with ``status`` and one UNKNOWN line."""

    def __init__(self, status, message, command=None, name=SELF):
        super().__init__(message)
        self.status = status
        self.command = command
        self.name = name


class Check:
    """One servable check: its command name, status-line NAME, module and parser facts."""

    def __init__(self, command, module, allowance=policy.NOTHING):
        self.command = command
        self.module = module
        self.allowance = allowance  # what this host lets a caller ask of it (api.conf)
        self.name = module.NAME
        parser = module.build_parser()
        self.actions = {}
        for action in parser._actions:
            for flag in action.option_strings:
                self.actions[flag] = action
        timeout = self.actions["--timeout"]
        self.timeout_type = timeout.type
        self.default_timeout = float(timeout.default)

    def timeout(self, argv):
        """The --timeout this argv asks for, at most MAX_TIMEOUT (the parser's default when
        absent or unreadable: the worker's parser then answers the usage error itself)."""
        asked = self._asked_timeout(argv)
        return asked if asked <= MAX_TIMEOUT else MAX_TIMEOUT  # NaN and inf too

    def _asked_timeout(self, argv):
        value = None
        for token in argv:
            for flag in ("--timeout=", "-t"):
                if token.startswith(flag) and token != "-t":
                    value = token[len(flag):]
        if value is None:
            return self.default_timeout
        try:
            return float(self.timeout_type(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            return self.default_timeout


def load_checks(rules=None):
    """{"check_<name>": Check} for every check module of osop_checks.checks, each with its
    allowance in the policy ``rules`` (default: the built-in one, plain options only)."""
    import osop_checks.checks

    found = {}
    for info in sorted(pkgutil.iter_modules(osop_checks.checks.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module("osop_checks.checks." + info.name)
        if all(hasattr(module, a) for a in ("NAME", "build_parser", "build_check")):
            found["check_" + info.name] = Check("check_" + info.name, module)
    apply_policy(found, rules or policy.Policy())
    return found


def apply_policy(checks, rules):
    """Give every Check its allowance in the policy ``rules`` (at start and on a reload)."""
    for command, check in checks.items():
        check.allowance = rules.allowance(command)


def _token(flag, value):
    """One option with its value in a single argv word, so a value that starts with '-'
    cannot be taken for an option."""
    return "%s=%s" % (flag, value) if flag.startswith("--") else flag + value


def _scalar(check, flag, value):
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise BadRequest(400, "the value of %s is not a string or number: %s" % (
            flag, text.oneline(json.dumps(value), limit=80)), check.command, check.name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def cap_timeout(check, argv):
    """``argv`` with a --timeout over MAX_TIMEOUT brought down to it, so the check's own
    budget ends when the parent's deadline (Check.timeout) does."""
    capped = []
    for token in argv:
        for flag in ("--timeout=", "-t"):
            if token.startswith(flag) and token != "-t" and \
                    not check._asked_timeout([token]) <= MAX_TIMEOUT:
                token = "--timeout=%d" % MAX_TIMEOUT
        capped.append(token)
    return capped


def _flag(check, flag):
    """The option ``flag`` stands for: a long option's unique abbreviation written out (as the
    parser would take it; so a --timeout cannot hide behind --time); several short options in
    one key are refused (a -t could hide in -vt86400)."""
    if flag in check.actions:
        return flag
    if flag.startswith("--"):
        longer = [f for f in check.actions if f.startswith(flag)]
        return longer[0] if len(longer) == 1 else flag
    if len(flag) > 2:
        raise BadRequest(400, "%r is not an option: give each short option as a key of its "
                         "own" % text.oneline(flag, limit=60), check.command, check.name)
    return flag


def to_argv(check, arguments):
    """The argv that the JSON object ``arguments`` stands for, for ``check``'s own parser.

    Keys must be options (start with '-'); an option that is not the check's is passed on, so
    the check's parser answers it with the same UNKNOWN usage line as on the command line."""
    if not isinstance(arguments, dict):
        raise BadRequest(400, "the request body is not a JSON object of options but %s" % (
            type(arguments).__name__ if arguments is not None else "null"),
            check.command, check.name)
    argv = []
    for flag, value in arguments.items():
        if not re.match(r"^--?[A-Za-z0-9][-A-Za-z0-9_]*$", flag):
            raise BadRequest(400, "%r is not an option (options start with - or --)" % (
                text.oneline(flag, limit=60),), check.command, check.name)
        flag = _flag(check, flag)
        action = check.actions.get(flag)
        switch = action is not None and action.nargs == 0
        if value is False or value is None:
            continue
        if value is True:
            argv.append(flag)
        elif switch and isinstance(value, int) and not isinstance(value, bool) \
                and isinstance(action, argparse._CountAction):
            argv += [flag] * max(0, min(value, 3))
        elif isinstance(value, list):
            if action is not None and action.nargs in ("+", "*"):
                argv += [flag] + [_scalar(check, flag, v) for v in value]
            else:
                argv += [_token(flag, _scalar(check, flag, v)) for v in value]
        else:
            argv.append(_token(flag, _scalar(check, flag, value)))
    refusal = policy.refuse(check.actions, check.allowance, check.command, arguments)
    if refusal:
        raise BadRequest(403, refusal, check.command, check.name)
    return argv


def parse_target(target, checks):
    """The Check that ``/v1/checker?command=NAME`` names."""
    try:
        parts = urlsplit(target)
    except ValueError as exc:  # '//[': an unclosed IPv6 literal in an authority
        raise BadRequest(400, "the request target is not a URL: %s" % exc) from None
    if parts.path.rstrip("/") != "/v1/checker":
        raise BadRequest(404, "no such endpoint %s: the checks are at POST /v1/checker?command="
                         "NAME" % text.oneline(parts.path, limit=80))
    commands = parse_qs(parts.query).get("command") or [""]
    command = commands[0]
    if command not in checks:
        raise BadRequest(404, "no check named %r here; known: %s" % (
            text.oneline(command, limit=60), ", ".join(sorted(checks))), command or "")
    return checks[command]


def command_asked(head):
    """The command a request head's target names, read leniently (for the answer to a request
    refused before its target is understood); None when it names none."""
    first = head.split(b"\r\n", 1)[0].decode("latin-1")
    found = re.search(r"[?&]command=([^&\s#]*)", first)
    return text.oneline(unquote(found.group(1)), limit=100) if found else None


def parse_output(output):
    """(text, perfdata) exactly as Icinga's PluginUtility::ParseCheckOutput makes them of a
    plugin's trimmed output: each line's part before a '|' followed by '=' is text, the rest
    perfdata."""
    result, perfdata = "", ""
    for line in re.split(r"[\r\n]", output.strip()):
        if result:
            result += "\n"
        delim = line.find("|")
        if delim >= 0 and "=" in line[delim:]:
            result += line[:delim]
            perfdata = perfdata + " " + line[delim + 1:] if perfdata else line[delim + 1:]
        else:
            result += line
    return result, perfdata.strip()


PERF_ITEM = re.compile(r"(?:'(?:[^']|'')*'|[^' ][^= ]*)=\S*|\S+")


def answer(command, exitcode, output):
    """The JSON answer for one check's exit code and plugin output."""
    result, perfdata = parse_output(output)
    return {command: {"exitcode": exitcode, "checkresult": result,
                      "perfdata": PERF_ITEM.findall(perfdata)}}


def error_answer(exc):
    """The answer for a BadRequest: exit 3 and one line, under the command asked for, so
    Icinga shows the reason instead of "Missing .NAME in JSON object"."""
    return {exc.command or "": {"exitcode": runtime.UNKNOWN,
                                "checkresult": runtime.unknown(exc.name, str(exc)),
                                "perfdata": []}}


REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
           413: "Payload Too Large", 431: "Request Header Fields Too Large",
           503: "Service Unavailable"}


def http_response(status, document):
    body = json.dumps(document, separators=(",", ":")).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (status, REASONS.get(status, "Error"), len(body)))
    return head.encode() + body


def parse_head(head):
    """(method, target, {lower-case header: value}) of an HTTP/1.x request head."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(400, "not an HTTP request") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(400, "not an HTTP/1 request")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(400, "malformed header line")
        name = name.strip().lower()
        if name in headers:  # two Content-Lengths: which one a proxy took is anyone's guess
            raise BadRequest(400, "the header %s is given twice" % text.oneline(name, limit=60))
        headers[name] = value.strip()
    return method, target, headers


def body_length(method, headers, limit):
    """The Content-Length to read, within ``limit``; BadRequest otherwise."""
    if method != "POST":
        raise BadRequest(405, "only POST is served (POST /v1/checker?command=NAME)")
    if "transfer-encoding" in headers:
        raise BadRequest(411, "send the body with a Content-Length, not chunked")
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        raise BadRequest(411, "a Content-Length is required") from None
    if length < 0:
        raise BadRequest(400, "negative Content-Length")
    if length > limit:
        raise BadRequest(413, "request body of %d bytes is over the limit of %d" % (
            length, limit))
    return length


def _no_constant(name):
    raise ValueError("%s is not a JSON number" % name)


def _finite(literal):
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError("%s is out of range" % text.oneline(literal, limit=40))
    return value


def decode_body(check, body):
    """The JSON document of a request body: strict JSON only (no NaN, Infinity or a number
    beyond a float's range, nesting within the parser's recursion limit)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant,
                          parse_float=_finite) if body.strip() else {}
    except RecursionError:
        raise BadRequest(400, "the request body is not JSON: nested too deep", check.command,
                         check.name) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "the request body is not JSON: %s" % exc, check.command,
                         check.name) from None
