"""sources/snmp: OIDs, targets, the shared options and pysnmp's errors in words (no network)."""
import os

import pytest

from osop_checks import cli, snmp_options
from osop_checks.sources import snmp


def parse(argv, env=None):
    parser = cli.Parser("X", "check_x", "test")
    snmp_options.add_arguments(parser)
    args = parser.parse_args(argv)
    old = dict(os.environ)
    os.environ.pop(snmp_options.ENV_COMMUNITY, None)
    os.environ.pop(snmp_options.ENV_AUTH_KEY, None)
    os.environ.pop(snmp_options.ENV_PRIV_KEY, None)
    os.environ.update(env or {})
    try:
        return snmp_options.target_from_args(args)
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_oids_are_numeric_only():
    assert snmp.oid(".1.3.6.1.2.1") == (1, 3, 6, 1, 2, 1)
    assert snmp.oid((1, 3, 6)) == (1, 3, 6)
    assert snmp.oid_str((1, 3, 6, 1)) == "1.3.6.1"
    with pytest.raises(ValueError, match="numeric OID"):
        snmp.oid("HOST-RESOURCES-MIB::hrStorageTable")
    assert snmp.under((1, 3, 6, 1, 5), (1, 3, 6, 1))
    assert not snmp.under((1, 3, 6, 1), (1, 3, 6, 1))
    assert not snmp.under((1, 3, 6, 2, 1), (1, 3, 6, 1))


def test_text_decodes_octet_strings():
    assert snmp.text(b"/volume1\x00") == "/volume1"
    assert snmp.text(None) == "" and snmp.text(5) == "5"


def test_v2c_community_from_file_env_or_argv(tmp_path):
    secret = tmp_path / "community"
    secret.write_text("from-file\n")
    assert parse(["-H", "nas", "--community-file", str(secret)]).community == "from-file"
    assert parse(["-H", "nas"],
                 env={snmp_options.ENV_COMMUNITY: "from-env"}).community == "from-env"
    assert parse(["-H", "nas", "--community", "argv"]).community == "argv"
    # A file wins over the environment: the explicit option is what the admin meant.
    assert parse(["-H", "nas", "--community-file", str(secret)],
                 env={snmp_options.ENV_COMMUNITY: "from-env"}).community == "from-file"


def test_v2c_without_community_or_host_is_a_usage_error(tmp_path):
    with pytest.raises(cli.UsageError, match="needs a community"):
        parse(["-H", "nas"])
    with pytest.raises(cli.UsageError, match="-H"):
        parse(["--community", "x"])
    with pytest.raises(cli.UsageError, match="cannot read the SNMP community file"):
        parse(["-H", "nas", "--community-file", str(tmp_path / "missing")])


def test_v3_options(tmp_path):
    auth = tmp_path / "auth"
    auth.write_text("authpass123\n")
    target = parse(["-H", "nas", "--snmp-version", "3", "--snmp-user", "mon",
                    "--auth-proto", "sha-256", "--auth-key-file", str(auth),
                    "--priv-proto", "aes-256"], env={snmp_options.ENV_PRIV_KEY: "privpass123"})
    assert (target.user, target.auth_proto, target.auth_key, target.priv_proto,
            target.priv_key) == ("mon", "SHA-256", "authpass123", "AES-256", "privpass123")
    assert target.security_level == "authPriv"
    with pytest.raises(cli.UsageError, match="--snmp-user"):
        parse(["-H", "nas", "--snmp-version", "3"])
    with pytest.raises(cli.UsageError, match="at least 8"):
        parse(["-H", "nas", "--snmp-version", "3", "--snmp-user", "u", "--auth-key", "short"])
    with pytest.raises(cli.UsageError, match="privacy needs an authentication key"):
        parse(["-H", "nas", "--snmp-version", "3", "--snmp-user", "u",
               "--priv-key", "privpass123"])


def test_secrets_never_show_in_repr_or_description():
    target = snmp.Target("nas", community="s3cret-community")
    v3 = snmp.Target("nas", version="3", user="mon", auth_key="auth-s3cret",
                     priv_key="priv-s3cret")
    for text in (repr(target), target.describe(), repr(v3), v3.describe()):
        assert "s3cret" not in text


def test_target_validation():
    with pytest.raises(ValueError):
        snmp.Target("nas", version="1", community="x")
    with pytest.raises(ValueError):
        snmp.Target("nas", version="3")
    with pytest.raises(ValueError, match="privacy protocol"):
        snmp.Target("nas", version="3", user="u", auth_key="k" * 8, priv_key="p" * 8,
                    priv_proto="ROT13")
    assert snmp.Target("::1", community="x").address == "[::1]:161"


@pytest.mark.parametrize("name,words", [
    ("requestTimedOut", "no SNMP response from nas:161 within 2.0 s (3 tries)"),
    ("wrongDigest", "wrong authentication key"),
    ("decryptionError", "wrong privacy key"),
    ("unknownUserName", "does not know the SNMP v3 user mon"),
    ("unsupportedSecurityLevel", "security level"),
    ("notInTimeWindow", "time window"),
    ("encryptionError", "install the Python module cryptography"),
])
def test_pysnmp_error_indications_in_words(name, words):
    snmp._import_api()  # pysnmp as the source imports it (cipher alias first)
    from pysnmp.proto import errind

    indication = getattr(errind, name)
    target = snmp.Target("nas", version="3", user="mon", auth_key="authpass123")
    assert words in snmp._explain(indication, target, 2.0)


def test_a_timeout_on_v2c_names_the_community_as_a_cause():
    snmp._import_api()
    from pysnmp.proto import errind

    message = snmp._explain(errind.requestTimedOut, snmp.Target("nas", community="x"), 1.0)
    assert "wrong community" in message


def test_protocol_names_map_to_pysnmp():
    api = snmp._import_api()

    for name in list(snmp.AUTH_PROTOCOLS.values()) + list(snmp.PRIV_PROTOCOLS.values()):
        assert getattr(api, name) is not None, name


def test_unresolvable_host_is_a_clean_error():
    target = snmp.Target("no-such-host.invalid", community="x", timeout=0.2, retries=0)
    with pytest.raises(snmp.SnmpError, match="cannot resolve the SNMP host no-such-host"):
        snmp.get(target, ["1.3.6.1.2.1.1.5.0"])


def test_aes_and_des_work_with_debians_cryptography():
    """pysnmp 7 wants cryptography.hazmat.decrepit (cryptography >= 43); Debian 12 has 38.
    Through the source's import the ciphers are there either way."""
    snmp._import_api()
    from pysnmp.proto.secmod.rfc3414.priv import des
    from pysnmp.proto.secmod.rfc3826.priv import aes

    assert aes.PysnmpCryptoError is False and des.PysnmpCryptoError is False


def test_readme_snmp_section_shows_the_real_options():
    """The option excerpt in docs/snmp.md is the real --help text, kept in step."""
    from tests import readme

    help_text = readme.help_text("check_disk_partitions")
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  -H HOST, --host"))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    excerpt = "\n".join(lines[start:end])
    section = readme.section("snmp")
    assert excerpt in section, "docs/snmp.md options are stale; paste:\n" + excerpt


def test_inet_address_indexes_of_ip_mib():
    assert snmp.inet_address((1, 4, 192, 0, 2, 2)) == ("ipv4", "192.0.2.2", ())
    assert snmp.inet_address((2, 16, 254, 128) + (0,) * 13 + (1,)) == ("ipv6", "fe80::1", ())
    with pytest.raises(ValueError):
        snmp.inet_address((1, 4, 192, 0))


def test_pysnmp_mib_modules_run_from_the_bytecode_cache():
    api = snmp._import_api()
    from pysnmp.smi import builder

    assert builder.DirMibSource._osop_cached and builder.runpy is snmp._CachedMibRunner
    engine = api.SnmpEngine()  # loads SNMPv2-SMI, SNMP-FRAMEWORK-MIB ... through the cache
    assert any(path.endswith("SNMPv2-SMI.py") for path in snmp._MIB_CODE)
    assert engine.get_mib_builder().import_symbols("SNMPv2-MIB", "sysName")[0] is not None
