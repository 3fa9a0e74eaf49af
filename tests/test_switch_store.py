"""The parts of `mailspec switch` that need no daemon: what a change needs, which mailbox
the health check probes, the generations store, and what gc keeps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailspec.layout import Layout
from mailspec.switch import build
from mailspec.switch.activate import gc, plan, probe_address
from mailspec.switch.daemons import changes
from mailspec.switch.request import Request
from mailspec.switch.store import Store, SwitchError

BASE = {"postfix/main.cf": "1", "postfix/master.cf": "2", "postfix/virtual_mailboxes": "3",
        "dovecot/dovecot.conf": "4", "dovecot/users": "5", "sieve/mailbox/a.sieve": "6"}


@pytest.mark.parametrize(("changed", "needs"), [
    ("postfix/master.cf", {"postfix": "restart"}),
    ("postfix/main.cf", {"postfix": "reload"}),
    ("postfix/virtual_mailboxes", {"postfix": "reload"}),  # the old generation's table stays as it was
    ("dovecot/dovecot.conf", {"dovecot": "reload"}),
    ("dovecot/users", {}),  # Dovecot rereads a changed passwd-file; a reload could end an LMTP save
    ("sieve/mailbox/a.sieve", {}),  # read at delivery
    ("rspamd/local.d/dkim_signing.conf", {"rspamd": "reload"}),
    ("postsrsd/postsrsd.env", {"postsrsd": "restart"}),  # it has no reload
])
def test_only_what_changed_is_reloaded_or_restarted(changed, needs):
    assert changes(BASE, dict(BASE, **{changed: "new"})) == needs
    assert changes(BASE, BASE) == {}


def test_the_probe_is_a_mailbox_the_spec_lets_receive(tmp_path):
    postfix = tmp_path / "postfix"
    postfix.mkdir()
    (postfix / "virtual_mailboxes").write_text(
        "# header\na@blocked.example x/\nb@sub.refused.example x/\nc@ok.example x/\nd@ok.example x/\n")
    (postfix / "recipient_access").write_text("blocked.example REJECT\nrefused.example REJECT\nc@ REJECT\n")
    assert probe_address(str(tmp_path)) == "d@ok.example"
    (postfix / "recipient_access").write_text("ok.example REJECT\nblocked.example REJECT\nrefused.example REJECT\n")
    assert probe_address(str(tmp_path)) is None


def generations(tmp_path: Path, numbers: list[int], current: int) -> Store:
    store = Store(Layout(str(tmp_path)))
    for number in numbers:
        os.makedirs(store.path(number))
        store.complete(number, "site.mailspec", f"{number:064x}", [], "2026-12-01T00:00:00+00:00")
    store.flip(current)
    return store


def test_gc_never_removes_generation_0_the_current_one_or_its_predecessor(tmp_path):
    store = generations(tmp_path, [0, 1, 2, 3, 4, 5], current=3)  # after a rollback to 3
    assert gc(store, 1, print) == [1, 4]  # 5 is the newest
    assert [g.number for g in store.generations()] == [0, 2, 3, 5]
    assert store.current() == 3


def test_an_unfinished_generation_is_not_listed_and_is_removed(tmp_path):
    store = generations(tmp_path, [0, 1], current=1)
    os.makedirs(store.path(2) + "/etc/postfix")  # killed before its meta.json
    assert [g.number for g in store.generations()] == [0, 1]
    number, directory = store.new_directory()
    assert number == 2 and os.listdir(directory) == []


def test_a_second_holder_of_the_lock_is_refused(tmp_path):
    store = generations(tmp_path, [0], current=0)
    with store.lock(), pytest.raises(SwitchError, match="another switch"), Store(store.layout).lock():
        pass


def test_the_plan_names_what_changes_and_the_mailboxes_that_go(tmp_path):
    store = generations(tmp_path, [0, 1], current=1)
    old = Path(store.path(1)) / "deploy"
    new = tmp_path / "new"
    for deploy, boxes in ((old, "a@x.example x/\nb@x.example x/\n"), (new, "a@x.example x/\n")):
        (deploy / "postfix").mkdir(parents=True)
        (deploy / "postfix" / "virtual_mailboxes").write_text(boxes)
        (deploy / "MANIFEST").write_text(f"# mailspec\n{hash(boxes) & 0xffff:064x}  0644  postfix/virtual_mailboxes\n")
    found = plan(store, Request("site", "vmail", 5000, 5000, "/m", "/c", "/k", None, ()), str(new))
    assert found.files == {"postfix": ([], ["postfix/virtual_mailboxes"], [])}
    assert found.needs == {"postfix": "reload"} and found.mailboxes_gone == ["b@x.example"]
    assert "  b@x.example: no longer in the spec; its Maildir stays on disk" in found.lines()


def test_a_link_out_of_the_postfix_directory_is_carried_over_as_the_file_it_names(tmp_path):
    # Debian's /etc/postfix/makedefs.out; `postfix check` warns about it anywhere else.
    source, target = tmp_path / "old", tmp_path / "new"
    (source / "postfix").mkdir(parents=True)
    (tmp_path / "makedefs.out").write_text("# build options\n")
    (source / "postfix" / "makedefs.out").symlink_to(tmp_path / "makedefs.out")
    (source / "postfix" / "dynamicmaps.cf").write_text("lmdb\n")
    (source / "postfix" / "maps.cf").symlink_to("dynamicmaps.cf")  # stays in the directory: kept a link
    (target / "postfix").mkdir(parents=True)
    build._carry_over(str(source), str(target), set())
    copied = target / "postfix" / "makedefs.out"
    assert not copied.is_symlink() and copied.read_text() == "# build options\n"
    assert os.readlink(target / "postfix" / "maps.cf") == "dynamicmaps.cf"


def relay_request(tmp_path, password_file) -> Request:
    return Request("site", "vmail", 5000, 5000, "/m", "/c", "/k", None, (), layout=Layout(str(tmp_path / "p")),
                   relay_host="[smtp.provider.example]:587", relay_login="mailer@provider.example",
                   relay_password_file=str(password_file))


@pytest.mark.parametrize(("content", "mode", "refused"), [
    (b"s3cret pass\n", 0o600, None),
    (b"s3cret\r\n", 0o600, None),
    (b"s3cret\n", 0o644, "can be read by others"),
    (b"one\ntwo\n", 0o600, "one password on one line"),
    (b"\n", 0o600, "one password on one line"),
    (None, 0o600, "does not exist"),
])
def test_the_relay_password_table_is_written_from_the_password_file(tmp_path, content, mode, refused):
    from mailspec.switch.activate import _relay_passwords

    password_file = tmp_path / "relay.password"
    if content is not None:
        password_file.write_bytes(content)
        password_file.chmod(mode)
    request = relay_request(tmp_path, password_file)
    table = Path(request.layout.relay_passwords)
    if refused:
        with pytest.raises(SwitchError, match=refused):
            _relay_passwords(request)
        assert not table.exists()
        return
    _relay_passwords(request)
    password = content.rstrip(b"\r\n")
    assert table.read_bytes() == b"[smtp.provider.example]:587 mailer@provider.example:" + password + b"\n"
    assert table.stat().st_mode & 0o777 == 0o600
    # A spec without the login removes the table: no password stays behind.
    _relay_passwords(Request("site", "vmail", 5000, 5000, "/m", "/c", "/k", None, (), layout=request.layout))
    assert not table.exists()
