"""osop-checks-api: the checks served over the Icinga for Windows check protocol.

Icinga 2.14's built-in CheckCommand ``ifw-api`` (IfwApiCheckTask) sends a check over mutual
TLS as ``POST /v1/checker?command=NAME`` with a JSON object of arguments and reads back
``{"NAME": {"exitcode": N, "checkresult": "...", "perfdata": ["..."]}}``: no process is
started on the Icinga side. This package is the resident daemon that answers it:

- protocol: the JSON arguments -> the argv the check's own parser reads, and a check's output
  -> the answer (the text and perfdata Icinga would have parsed from the forked plugin);
- pool: pre-forked workers, one check at a time each, killed and replaced on overrun;
- daemon: the TLS listener (one thread, non-blocking, selectors) and the command line.

Nothing here is imported by the checks themselves: their start-up stays as it is.
"""
