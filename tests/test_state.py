"""osop_checks.state: the rules for state files, on real files (as root where ownership
matters)."""
import json
import os
import re
import stat

import nagiosplugin
import pytest

from osop_checks import state


def test_default_path():
    assert state.default_path("dyndns_match", "ab12", environ={"XDG_STATE_HOME": "/s"},
                              uid=7) == "/s/osop-checks/dyndns_match_ab12.json"
    assert state.default_path("dyndns_match", "ab12", environ={}, uid=7) == \
        "/var/tmp/osop-checks-7/dyndns_match_ab12.json"


def test_the_default_path_of_a_service_is_the_one_it_always_had():
    """A name with its unsafe characters as '_' (dyndns_match), or a hash of the lines that
    identify the service (three_copies): the files of existing installations are found."""
    assert state.default_path("dyndns_match", "Office.Dyn.test", environ={}, uid=7) == \
        "/var/tmp/osop-checks-7/dyndns_match__ffice._yn.test.json"
    assert state.default_path("three_copies", identity=["/d\u00e4t\u00e4", "a=/x"], environ={},
                              uid=7) == "/var/tmp/osop-checks-7/three_copies_ccc509af9416bc9b.json"
    assert state.default_path("three_copies", identity=[
        "/data1", "offsite=backup@vault:/srv/data1", "usb=/mnt/usb/data1"],
        environ={"XDG_STATE_HOME": "/s"}, uid=0) == \
        "/s/osop-checks/three_copies_210273a53e8a7976.json"


def test_round_trip_is_atomic_and_private(tmp_path):
    path = str(tmp_path / "s.json")
    assert state.load(path) is None
    state.save(path, {"a": [1, 2], "n\u00e9": "x"})
    assert state.load(path) == {"a": [1, 2], "n\u00e9": "x"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    state.save(path, {"b": 1})
    assert state.load(path) == {"b": 1}
    assert os.listdir(tmp_path) == ["s.json"]  # no temporary file left


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "s.json"
    path.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(nagiosplugin.CheckError, match="cannot write the state file %s" % path):
        state.save(str(path), {"a": 1})
    assert os.listdir(tmp_path) == ["s.json"]
    with pytest.raises(nagiosplugin.CheckError, match="cannot write the state file"):
        state.save(str(tmp_path / "no" / "s.json"), {"a": 1})


def test_a_symlink_is_refused_not_followed(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    link = tmp_path / "s.json"
    link.symlink_to(target)
    with pytest.raises(nagiosplugin.CheckError,
                       match="the state file %s is a symbolic link" % link):
        state.load(str(link))
    dangling = tmp_path / "d.json"
    dangling.symlink_to(tmp_path / "nothing")
    with pytest.raises(nagiosplugin.CheckError, match="symbolic link"):
        state.load(str(dangling))


@pytest.mark.parametrize("content, why", [
    (b"{not json", "not JSON"), (b"[1, 2]", "not a JSON object"), (b"\xff\xfe", "not JSON"),
    (b"", "not JSON"),
])
def test_a_corrupt_file_is_refused_naming_it_and_how_to_reset(tmp_path, content, why):
    path = tmp_path / "s.json"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(nagiosplugin.CheckError) as caught:
        state.load(str(path), reset="remove it, or run once with --accept-changes")
    message = str(caught.value)
    assert message.startswith("the state file %s is corrupt: %s" % (path, why)), message
    assert "remove it, or run once with --accept-changes" in message
    assert state.load(str(path), discard_corrupt=True) is None
    assert path.read_bytes() == content  # never silently replaced


def test_a_file_larger_than_the_cap_is_refused(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"x": "y" * 2000}))
    with pytest.raises(nagiosplugin.CheckError, match="larger than 1 KiB"):
        state.load(str(path), limit=1024)
    assert state.load(str(path))["x"] == "y" * 2000


def test_not_a_regular_file(tmp_path):
    fifo = tmp_path / "s.json"
    os.mkfifo(fifo)
    with pytest.raises(nagiosplugin.CheckError, match="is not a regular file"):
        state.load(str(fifo))  # and does not block on the fifo


def test_a_file_others_may_write_is_not_trusted(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chmod(path, 0o666)
    with pytest.raises(nagiosplugin.CheckError, match="writable by group or others"):
        state.load(str(path))


def test_a_file_of_another_user_is_not_trusted(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chown(path, 65534, 65534)
    with pytest.raises(nagiosplugin.CheckError,
                       match="the state file %s belongs to uid 65534, not to this user" % path):
        state.load(str(path))


def test_the_default_directory_is_created_private_and_must_be_ours(tmp_path):
    path = str(tmp_path / "osop-checks" / "s.json")
    state.ensure_dir(path, create=True)
    assert stat.S_IMODE(os.stat(tmp_path / "osop-checks").st_mode) == 0o700
    os.chmod(tmp_path / "osop-checks", 0o777)
    with pytest.raises(nagiosplugin.CheckError, match="not a private directory of this user"):
        state.ensure_dir(path, create=True)
    with pytest.raises(nagiosplugin.CheckError, match="does not exist"):
        state.ensure_dir(str(tmp_path / "missing" / "s.json"))


def test_a_cache_is_a_state_file_under_a_key(tmp_path):
    """state.Cache: one file per check and question, a hit only under the same key, kept by
    the rules of every state file (a symlink is not followed, the answer is asked again)."""
    cache = state.Cache(str(tmp_path), "os_upgrades", {"argv": ["apt-get"]}, "apt")
    assert os.path.basename(cache.path).startswith("os_upgrades-")
    assert cache.load([1], dict) is None
    cache.store([1], {"answer": 42})
    assert cache.load([1], lambda data: data["answer"]) == 42
    assert cache.load([2], lambda data: data["answer"]) is None  # another key: a miss
    assert cache.load([1], lambda data: data["missing"]) is None  # malformed: a miss
    other = state.Cache(str(tmp_path), "os_upgrades", {"argv": ["dnf"]}, "dnf")
    assert other.path != cache.path and other.load([1], dict) is None
    os.unlink(cache.path)
    os.symlink(str(tmp_path / "elsewhere.json"), cache.path)
    state.save(str(tmp_path / "elsewhere.json"), {"key": [1], "answer": 7})
    assert cache.load([1], lambda data: data["answer"]) is None
    assert state.Cache(None, "os_upgrades", {}, "apt").load([1], dict) is None


def test_every_refusal_names_the_kind_of_file(tmp_path, caplog):
    """The same rules say "state file" or "cache file" (``what``), whatever the path holds:
    a path with "state" in it stays as it is."""
    where = tmp_path / "statedir"
    where.mkdir()
    link = where / "answer.json"
    os.symlink(str(where / "elsewhere.json"), str(link))
    with pytest.raises(nagiosplugin.CheckError, match="^the cache file %s is a symbolic link"
                                                      % re.escape(str(link))):
        state.load(str(link), what="cache")
    with pytest.raises(nagiosplugin.CheckError, match="^the state file %s is a symbolic link"
                                                      % re.escape(str(link))):
        state.load(str(link))
    missing = where / "missing" / "s.json"
    with pytest.raises(nagiosplugin.CheckError, match="^the directory of the cache file %s "
                                                      % re.escape(str(missing))):
        state.ensure_dir(str(missing), what="cache")
    with pytest.raises(nagiosplugin.CheckError, match="^cannot write the cache file "):
        state.save(str(missing), {}, what="cache")
    cache = state.Cache(str(where), "os_upgrades", {}, "apt")
    os.symlink(str(where / "elsewhere.json"), cache.path)
    with caplog.at_level("WARNING", logger="nagiosplugin"):
        assert cache.load([1], dict) is None
    assert "the cache file %s is a symbolic link" % cache.path in caplog.text


def test_stat_key_changes_with_a_file_or_a_directory_entry(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "status").write_text("a")
    paths = [str(tmp_path / "status"), str(tmp_path / "lists"), str(tmp_path / "absent")]
    before = state.stat_key(paths)
    assert before[-1] == [str(tmp_path / "absent"), None]
    (tmp_path / "lists" / "x_Packages").write_text("b")
    assert state.stat_key(paths) != before


def test_a_cache_that_cannot_be_written_anywhere_is_said_once_at_v(tmp_path, monkeypatch,
                                                                     caplog):
    # the Icinga user before the package made /var/cache/osop-checks, its home not writable
    monkeypatch.setattr(state, "_writable_dir", lambda path: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nowhere"))
    with caplog.at_level("WARNING", logger="nagiosplugin"):
        assert state.default_cache_directory("the package manager") is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "/var/cache/osop-checks nor %s" % (tmp_path / "nowhere" / "osop-checks") in lines[0]
    assert "asking the package manager on every run" in lines[0] and "--cache-dir" in lines[0]


def test_the_running_user_is_named_by_one_function_its_number_without_a_name(monkeypatch,
                                                                             caplog):
    """state.running_as names the user for the cache's warning and osop-checks-api's start-up
    errors alike; a uid without a passwd entry (a container's) is said as its number."""
    import pwd

    from osop_checks.api import daemon

    assert daemon.running_as is state.running_as
    assert state.running_as() == pwd.getpwuid(os.geteuid()).pw_name
    unnamed = next(uid for uid in range(61000, 65000) if not _has_name(uid))
    monkeypatch.setattr(os, "geteuid", lambda: unnamed)
    monkeypatch.setattr(state, "_writable_dir", lambda path: False)
    with caplog.at_level("WARNING", logger="nagiosplugin"):
        assert state.default_cache_directory() is None
    assert "this user (%d) can write neither" % unnamed in caplog.records[0].getMessage()


def _has_name(uid):
    import pwd

    try:
        return bool(pwd.getpwuid(uid))
    except KeyError:
        return False
