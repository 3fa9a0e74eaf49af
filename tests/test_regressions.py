"""Bugs that the property tests found, each kept as a small named case."""

from conftest import checked

from mailspec.backends.postfix import tables
from mailspec.semantics import may_send

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
