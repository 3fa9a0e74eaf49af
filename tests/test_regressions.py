"""Bugs that the property tests found, each kept as a small named case."""

import smtplib
import subprocess
import time

from conftest import checked
from needs import need_root, need_tool
from test_running_resolve import queued, started, stored_by

from mailspec.backends.postfix import tables
from mailspec.diagnostics import render_all_text
from mailspec.pipeline import check
from mailspec.semantics import may_receive, may_send, resolve


def model_of(tmp_path, text: str):
    path = tmp_path / "spec.mailspec"
    path.write_text(text)
    return checked(path).spec


MEMBERS_LIST = """server { hostname mail.example.com }
domain example.com {
  also example.net
  mailbox alice { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
  list staff { members alice; post members }
}
"""


def test_a_member_may_post_from_a_domain_alias_address(tmp_path):
    # test_submission_accepts_what_may_send_says: alice, logged in, sent as
    # alice@example.net to a members-only list; Postfix refused, as the list's sender
    # map named alice@example.com only.
    spec = model_of(tmp_path, MEMBERS_LIST)
    assert may_send(spec, "alice@example.com", "alice@example.net", "staff@example.com").accepted
    (staff,) = tables.build(spec).list_classes
    assert ("alice@example.net", "OK") in staff.senders


LIST_WITH_OUTSIDE_MEMBER = """server { hostname mail.example.com }
domain d0.example {
  mailbox alice { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
  list team { members alice, ops@partner.example }
}
"""


def test_a_carried_extension_keeps_the_case_it_was_written_in(tmp_path):
    # test_a_running_postfix_delivers_where_resolve_says: mail to Team+Tag@d0.example
    # was queued for ops+Tag@partner.example; resolve() said ops+tag@ (it lower-cased
    # the whole address, and outside local parts are case-sensitive).
    spec = model_of(tmp_path, LIST_WITH_OUTSIDE_MEMBER)
    assert resolve(spec, "Team+Tag@D0.example").recipients == {"alice+Tag@d0.example", "ops+Tag@partner.example"}


QUOTED_LOCAL_PART = """server { hostname mail.example.com }
domain d0.example {
  mailbox "o'neil" { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
}
"""


def test_dovecot_finds_a_mailbox_with_a_quote_in_its_name():
    # test_a_running_postfix_delivers_where_resolve_says: Postfix accepted mail for
    # o'neil@d0.example and Dovecot's LMTP bounced it ("User doesn't exist"): the quote
    # was not in auth_username_chars, and passwd-file looks up o\'neil, escaped.
    need_root()
    need_tool("doveadm")
    with started(QUOTED_LOCAL_PART) as (server, prefix, layout):
        found = subprocess.run(["doveadm", "-c", f"{layout.dovecot_dir}/dovecot.conf", "user", "o'neil@d0.example"],
                               capture_output=True, text=True)
        assert found.returncode == 0 and "d0.example/o'neil" in found.stdout, found.stdout


def test_spans_are_offsets_into_a_file_with_crlf_line_ends(tmp_path):
    # test_arbitrary_text_gets_diagnostics (long profile) on "\r\n0": the loader read the
    # file with universal newlines, so spans counted "\n0" and pointed one character early
    # in the file itself.
    path = tmp_path / "crlf.mailspec"
    path.write_bytes(b"\r\n0")
    result = check([str(path)])
    (diagnostic,) = result.diagnostics
    span = diagnostic.labels[0].span
    assert path.read_bytes().decode()[span.start:span.end] == "0"
    assert "crlf.mailspec:2:1" in render_all_text([diagnostic], result.sources)


HOST_TIER_SENDER = """server { hostname mail.example.com }
domain example.com {
  mailbox alice { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
}
"""


def test_a_login_owns_its_plus_tagged_sender_addresses(tmp_path):
    # test_submission_accepts_what_may_send_says (long profile): alice, logged in, sent
    # as alice+tag@example.com and Postfix accepted it (the sender login lookup drops
    # the extension); may_send said she did not own it. The same triple runs against
    # the real Postfix as an explicit example of that property.
    spec = model_of(tmp_path, HOST_TIER_SENDER)
    assert may_send(spec, "alice@example.com", "alice+tag@example.com", "alice@example.com").accepted
    assert not may_send(spec, "alice@example.com", "alicex@example.com", "alice@example.com").accepted


FILTERS = """server {
  hostname mail.example.com
  filters { reject_sender bad.example; reject_recipient old@d0.example }
}
domain d0.example {
  catch_all alice
  mailbox alice { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
}
"""


def test_filters_match_tagged_addresses_and_sub_domains(tmp_path):
    # Found while widening test_submission_accepts_what_may_send_says to filtered
    # addresses: Postfix's access lookup refuses old+x@ for `reject_recipient old@` and
    # x@mx.bad.example for `reject_sender bad.example`; the model matched exactly only.
    need_root()
    spec = model_of(tmp_path, FILTERS)
    assert resolve(spec, "Old+x@d0.example").rejected
    assert not may_receive(spec, "x@mx.bad.example", "alice@d0.example").accepted
    assert may_receive(spec, "x@notbad.example", "alice@d0.example").accepted
    with started(FILTERS) as (server, prefix, layout):
        with smtplib.SMTP("127.0.0.1", layout.ports.smtp, local_hostname="client.test", timeout=30) as client:
            client.ehlo()
            assert client.mail("x@notbad.example")[0] == 250
            assert client.rcpt("Old+x@d0.example")[0] >= 500
            client.rset()
            client.mail("x@mx.bad.example")
            assert client.rcpt("alice@d0.example")[0] >= 500


def test_a_member_may_post_from_a_tagged_address(tmp_path):
    # Found by reading the list restriction (check_sender_access drops the extension)
    # after the bug above, and confirmed by an explicit example of
    # test_submission_accepts_what_may_send_says: Postfix accepts alice+tag@ on a
    # members-only list, and may_send refused it.
    spec = model_of(tmp_path, MEMBERS_LIST)
    assert may_send(spec, "alice@example.com", "Alice+tag@example.net", "staff+x@example.com").accepted
    assert not may_send(spec, "alice@example.com", "alicex@example.net", "staff@example.com").accepted


BARE_DELIMITERS = """server {
  hostname mail.example.com
  relay_host [127.0.0.1]:9
}
domain d0.example {
  catch_all bob
  mailbox alice { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
  mailbox bob { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
  alias fw -> friend@outside.example
}
domain d1.example {
  plus_addressing no
  mailbox carol { password "{SHA512-CRYPT}$6$szTMm/Vojpts5DCP$KnU.wuDlHRdy5W6VrO4WRWcNIPV/fuJ3oA9.lTf77SZgRtlc6ZDvuFWpUZ8hJTQ.ivwSwz4/Ebzn.eKM.Tddy1" }
}
"""


def test_an_empty_extension_is_carried_and_a_leading_delimiter_does_not_split(tmp_path):
    # Found by probing the running Postfix after the tagged-sender bugs: fw+@ is queued
    # for friend+@ (an empty extension is carried on; resolve dropped it), carol+@ is
    # refused where plus addressing is off (resolve accepted it), and +alice@ is not
    # split, so it goes to the catch-all.
    need_root()
    spec = model_of(tmp_path, BARE_DELIMITERS)
    assert resolve(spec, "fw+@d0.example").recipients == {"friend+@outside.example"}
    assert resolve(spec, "carol+@d1.example").rejected
    assert resolve(spec, "+alice@d0.example").recipients == {"bob@d0.example"}
    with started(BARE_DELIMITERS) as (server, prefix, layout):
        with smtplib.SMTP("127.0.0.1", layout.ports.smtp, local_hostname="client.test", timeout=30) as client:
            client.sendmail("probe@sender.example", ["fw+@d0.example"], "Subject: fw\r\n\r\nx\r\n")
            refused = client.sendmail("probe@sender.example", ["carol+@d1.example", "+alice@d0.example"],
                                      "Subject: bare\r\n\r\nbare-marker\r\n")
        assert set(refused) == {"carol+@d1.example"}
        assert wait_until(lambda: queued(layout).get("probe@sender.example") == {"friend+@outside.example"})
        assert wait_until(lambda: stored_by(prefix, "bare-marker") == {"bob@d0.example"})


def wait_until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
