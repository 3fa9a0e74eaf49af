"""Bugs that the property tests found, each kept as a small named case."""

from conftest import checked

from mailspec.backends.postfix import tables
from mailspec.semantics import may_send, resolve

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
    path = tmp_path / "spec.mailspec"
    path.write_text(MEMBERS_LIST)
    spec = checked(path).spec
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
    path = tmp_path / "spec.mailspec"
    path.write_text(LIST_WITH_OUTSIDE_MEMBER)
    spec = checked(path).spec
    assert resolve(spec, "Team+Tag@D0.example").recipients == {"alice+Tag@d0.example", "ops+Tag@partner.example"}
