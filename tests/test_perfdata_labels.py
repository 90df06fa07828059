"""The perfdata labels are a contract: tests/perfdata-labels.txt lists every label (and unit)
each check can emit, a check that emits another fails the test that saw it (tests/conftest.py
holds every Verdict a check builds to the list), and the list changes only with a line in
CHANGELOG.md that names its new digest."""
import nagiosplugin
import pytest

from lab.peers import icinga2
from tests import conftest, perfdata_labels


def test_the_list_reads_and_names_only_real_checks():
    labels = perfdata_labels.load()
    assert {x.check for x in labels} <= set(icinga2.all_check_names())
    seen = set()
    for x in labels:
        assert (x.check, x.label) not in seen, "listed twice: %s %s" % (x.check, x.label)
        seen.add((x.check, x.label))
        assert set(x.units) <= {"", "B", "s", "d", "%"}, x  # the units Icinga normalises


def test_every_check_has_labels_listed():
    assert sorted(perfdata_labels.by_check()) == icinga2.all_check_names()


def test_a_placeholder_matches_the_admins_name_and_the_unit_must_match():
    assert perfdata_labels.unlisted("disk_partitions", [
        nagiosplugin.Performance("/srv/data 2", 1, "B"),
        nagiosplugin.Performance("/srv/data 2 inodes", 1, ""),
        nagiosplugin.Performance("C:\\ Label:OS", 1, "B"),
        nagiosplugin.Performance("/ inodes", 5, "%")]) == []
    assert perfdata_labels.unlisted("tls_expiry", [
        nagiosplugin.Performance("mail.example.org:25_days_leaf", 30, "d"),
        nagiosplugin.Performance("mail.example.org:25_days_leaf", 30, "s"),
        nagiosplugin.Performance("mail.example.org:25_days_left", 30, "d")]) == [
            "mail.example.org:25_days_leaf (s)", "mail.example.org:25_days_left (d)"]


def test_a_check_emitting_an_unlisted_label_fails_the_test_that_saw_it():
    """What the conftest hook does for every test: a Verdict built in a check's module with a
    label the list lacks is recorded, and the test fails at teardown."""
    from osop_checks import plugin

    code = ("verdict = Verdict(perfdata=[Performance('age_days', 3, 'd'),"
            " Performance('age', 1, 's')])")
    space = {"__name__": "osop_checks.checks.backup_age", "Verdict": plugin.Verdict,
             "Performance": nagiosplugin.Performance}
    exec(code, space)  # as if backup_age's judge built it
    try:
        assert conftest.UNLISTED_LABELS == ["check_backup_age: age_days (d)"]
    finally:
        del conftest.UNLISTED_LABELS[:]  # this test itself passes


def test_the_changelog_names_the_lists_digest():
    if not perfdata_labels.changelog_names_digest():
        pytest.fail("tests/perfdata-labels.txt changed: add a line to CHANGELOG.md that says "
                    "which labels changed and names the list's digest: 'perfdata labels %s'"
                    % perfdata_labels.digest())


def test_the_digest_covers_labels_and_units_not_the_legend():
    labels = perfdata_labels.load()
    first = labels[0]
    renamed = [first._replace(label=first.label + "_used")] + labels[1:]
    reunited = [first._replace(units=("%",))] + labels[1:]
    relegended = [first._replace(meaning="something else", graph="other")] + labels[1:]
    assert perfdata_labels.digest(renamed) != perfdata_labels.digest(labels)
    assert perfdata_labels.digest(reunited) != perfdata_labels.digest(labels)
    assert perfdata_labels.digest(relegended) == perfdata_labels.digest(labels)
