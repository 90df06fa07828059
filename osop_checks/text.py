"""Making text from peers safe for the plugin output.

A '|' starts perfdata and a newline ends the status line, so any text that comes from a peer
(a certificate subject, a unit description, an HTTP body) passes through here first.
"""


def oneline(text, limit=200):
    """One line, no '|', control characters folded to spaces, cut to ``limit`` characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    text = " ".join(text.replace("|", "/").split())
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def label(text):
    """A perfdata label: nagiosplugin quotes it, but it must not hold quotes, '=' or '|'."""
    cleaned = oneline(text, limit=100)
    for bad in ("'", "=", '"'):
        cleaned = cleaned.replace(bad, "_")
    return cleaned or "_"
