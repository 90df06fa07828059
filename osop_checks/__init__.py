"""osop-checks: Icinga2/Nagios plugins for small organisations' infrastructure.

This file stays free of imports: every plugin start pays for what is imported here.
"""
__version__ = "0.1.0"
