"""The SNMP defaults and protocol names that the command line shows before any request.

``osop_checks.sources.snmp`` (the requests) and ``osop_checks.snmp_options`` (the options,
their defaults and choices in --help) both take them from here: a check with a local mode
builds its parser without importing the SNMP source (dataclasses, the address parser, socket).
Nothing is imported here.
"""

DEFAULT_PORT = 161
MAX_SECRET = 65535    # bytes of a community (an OCTET STRING of SNMP)
DEFAULT_TIMEOUT = 2.0   # seconds per attempt; the whole check is bounded by --timeout anyway
DEFAULT_RETRIES = 2
MAX_ROWS = 10000        # rows (values) a walk takes before it calls the table endless

# CLI names -> pysnmp.hlapi.v3arch.asyncio attribute names. Net-SNMP's names: "AES-256" is
# Blumenthal's key extension (Net-SNMP's default), "AES-256C" the Cisco/Reeder one.
AUTH_PROTOCOLS = {
    "MD5": "USM_AUTH_HMAC96_MD5",
    "SHA": "USM_AUTH_HMAC96_SHA",
    "SHA-224": "USM_AUTH_HMAC128_SHA224",
    "SHA-256": "USM_AUTH_HMAC192_SHA256",
    "SHA-384": "USM_AUTH_HMAC256_SHA384",
    "SHA-512": "USM_AUTH_HMAC384_SHA512",
}
PRIV_PROTOCOLS = {
    "DES": "USM_PRIV_CBC56_DES",
    "AES": "USM_PRIV_CFB128_AES",
    "AES-192": "USM_PRIV_CFB192_AES_BLUMENTHAL",
    "AES-256": "USM_PRIV_CFB256_AES_BLUMENTHAL",
    "AES-192C": "USM_PRIV_CFB192_AES",
    "AES-256C": "USM_PRIV_CFB256_AES",
}
