"""Making text from peers safe for the plugin output.

A '|' starts perfdata and a newline ends the status line, so any text that comes from a peer
(a certificate subject, a unit description, an HTTP body) passes through here first. That
holds for the long output too: Icinga 2 cuts every output line at its first '|' and takes
the rest as perfdata (Nagios does so from the first '|' of the long output on).
"""


def oneline(text, limit=200):
    """One line, no '|', control characters folded to spaces, cut to ``limit`` characters.
    A long text is cut before it is cleaned (blanks folded away cannot fill more than four
    times the limit), so a peer's 300 MiB line costs no more than a short one."""
    text = str(text)
    if len(text) > 4 * limit + 16:
        text = text[:4 * limit + 16]
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


# Escapes in bash's $'...' quoting for the characters a pasteable line must not hold as such.
_ESCAPES = {"\\": "\\\\", "'": "\\'", "|": "\\x7c", "\t": "\\t", "\n": "\\n",
            "\r": "\\r"}


def shell_words(argv):
    """``argv`` as one line to paste into bash (or zsh, ksh): each word quoted as shlex.quote
    does; a word that holds '|', a control character or a run of blanks is written in $'...'
    form with escapes ('|' as \\x7c), so the line holds no '|' and passes ``oneline``
    unchanged."""
    import shlex

    words = []
    for word in (str(a) for a in argv):
        if "|" in word or "  " in word or not word.isprintable():
            words.append(_escaped(word))
        else:
            words.append(shlex.quote(word))
    return " ".join(words)


def _escaped(word):
    out = []
    for i, ch in enumerate(word):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable():
            out.append(_code(ch))
        elif ch == " " and word[i - 1:i] == " ":
            out.append("\\x20")
        else:
            out.append(ch)
    return "$'" + "".join(out) + "'"


def _code(char):
    """A character as bytes in \\xHH escapes, UTF-8 whatever the locale of the shell."""
    if 0xdc80 <= ord(char) <= 0xdcff:  # a byte that was not UTF-8 (surrogateescape)
        return "\\x%02x" % (ord(char) - 0xdc00)
    return "".join("\\x%02x" % byte for byte in char.encode("utf-8"))


def colon_hex(digits):
    """'AB:CD:...': hex digits (a certificate's fingerprint) as openssl and browsers show
    them."""
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2)).upper()
