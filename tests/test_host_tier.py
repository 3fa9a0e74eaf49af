"""Real mail through the real daemons, for both backends: SMTP and submission in,
LMTP to Dovecot, Maildir on disk, IMAP out; and the policies the spec declares."""

from __future__ import annotations

import hashlib
import imaplib
import json
import re
import smtplib
import time
from xml.etree import ElementTree

import pytest
from conftest import examples
from hosttier import HOSTNAME, PASSWORDS, message
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailspec.hostrun import unverified
from mailspec.semantics import may_send


def test_smtp_to_a_mailbox_then_imap(running):
    with running.smtp() as client:
        client.sendmail("someone@outside.example", ["bob@example.com"],
                        message("plain delivery", "someone@outside.example", "bob@example.com"))
    running.wait_for("bob", "plain delivery")
    imap = running.imap("bob")
    imap.select("INBOX")
    status, found = imap.search(None, "SUBJECT", '"plain delivery"')
    assert status == "OK" and found[0].split()
    imap.logout()


@pytest.mark.parametrize(("address", "receivers"), [
    ("sales@example.com", ["alice", "bob"]),         # an alias with two targets
    ("postmaster@example.com", ["alice"]),           # a mailbox alias
    ("nobody-here@example.com", ["alice"]),          # the catch-all
    ("bob@example.net", ["bob"]),                    # a domain alias
    ("bob+lists@example.com", ["bob"]),              # plus addressing
    ("staff@example.com", ["alice", "bob"]),         # a list, posted by a member
])
def test_routing(running, address, receivers):
    subject = f"routing to {address}"
    sender = "alice@example.com" if address.startswith("staff") else "someone@outside.example"
    with running.smtp() as client:
        client.sendmail(sender, [address], message(subject, sender, address))
    for user in receivers:
        running.wait_for(user, subject)


def test_submission_starttls_auth_and_implicit_tls(running):
    with running.submission("alice") as client:
        client.sendmail("alice@example.com", ["bob@example.com"],
                        message("via 587", "alice@example.com", "bob@example.com"))
    with running.smtp(running.ports.submissions, implicit_tls=True) as client:
        client.login("alice@example.com", "alice-Secret-1")
        client.sendmail("alice@example.com", ["bob@example.com"],
                        message("via 465", "alice@example.com", "bob@example.com"))
    running.wait_for("bob", "via 587")
    running.wait_for("bob", "via 465")


def test_auth_without_tls_is_refused(running):
    with running.smtp(running.ports.submission) as client:
        client.ehlo()
        assert not client.has_extn("auth")  # AUTH is only offered after STARTTLS
        code, _ = client.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGFsaWNlLVNlY3JldC0x")
        assert code >= 500
    with running.smtp() as client:  # port 25 offers no AUTH at all
        client.ehlo()
        assert not client.has_extn("auth")


def test_sieve_fileinto_a_folder(running):
    with running.smtp() as client:
        client.sendmail("someone@outside.example", ["alice@example.com"],
                        message("[report] weekly", "someone@outside.example", "alice@example.com"))
    running.wait_for("alice", "[report] weekly", folder="Reports")
    assert not any("[report] weekly" in m for m in running.messages("alice"))


def queued_for(running, recipient: str, timeout: float = 15) -> dict:
    """The queue entry (postqueue -j) of the message deferred for `recipient`: the relay
    host is down."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [json.loads(line) for line in running.queue().splitlines() if line.strip()]
        found = [e for e in entries if e["queue_name"] == "deferred" and
                 recipient in {r["address"] for r in e["recipients"]}]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, entries
        time.sleep(0.1)


SRS_SENDER = re.compile(r"SRS0=[A-Za-z0-9+/]{4}=[A-Z0-9]{2}=outside\.example=someone@example\.com")


def test_forward_keeps_a_copy_and_forwards_with_an_srs_sender(running):
    """The forwarded copy leaves with an SRS sender in our domain (its SPF names us); the
    copy kept here keeps the sender it came with."""
    with running.smtp() as client:
        client.sendmail("someone@outside.example", ["carol@example.com"],
                        message("forward me", "someone@outside.example", "carol@example.com"))
    kept = running.wait_for("carol", "forward me")
    assert kept.startswith("Return-Path: <someone@outside.example>"), kept[:200]
    forwarded = queued_for(running, "carol@elsewhere.example")
    assert SRS_SENDER.fullmatch(forwarded["sender"]), forwarded
    # Through the relay host, as any outgoing mail (not to the recipient's MX).
    reason = forwarded["recipients"][0].get("delay_reason", "")
    assert "127.0.0.1" in reason and "elsewhere.example" not in reason.split("]")[0], forwarded


def test_mail_that_is_not_forwarded_keeps_its_sender(running):
    """Our users' own mail to outside keeps its sender."""
    with running.submission("alice") as client:
        client.sendmail("alice@example.com", ["friend@outside.example"],
                        message("own mail out", "alice@example.com", "friend@outside.example"))
    assert queued_for(running, "friend@outside.example")["sender"] == "alice@example.com"


def test_a_bounce_to_an_srs_address_reaches_the_original_sender(running):
    with running.smtp() as client:
        client.sendmail("someone@outside.example", ["carol@example.com"],
                        message("forward and bounce", "someone@outside.example", "carol@example.com"))
    running.wait_for("carol", "forward and bounce")
    srs_address = queued_for(running, "carol@elsewhere.example")["sender"]
    with running.smtp() as client:
        client.sendmail("<>", [srs_address], message("a bounce", "MAILER-DAEMON@elsewhere.example", srs_address))
    bounce = queued_for(running, "someone@outside.example")
    # A bounce stays one: the null sender (which postqueue shows so) is never rewritten.
    assert bounce["sender"] == "MAILER-DAEMON", bounce
    # An SRS address whose hash does not match is not undone: postsrsd refuses it, and
    # it is an unknown address of example.com, which goes to the catch-all.
    _, digest, rest = srs_address.split("=", 2)
    forged = f"SRS0={'BBBB' if digest == 'AAAA' else 'AAAA'}={rest.replace('someone', 'victim')}"
    with running.smtp() as client:
        client.sendmail("<>", [forged], message("a forged bounce", "MAILER-DAEMON@elsewhere.example", forged))
    running.wait_for("alice", "a forged bounce")
    assert "victim@outside.example" not in running.queue()


def test_send_only_mailbox_refuses_inbound(running):
    with running.smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("someone@outside.example", ["noreply@example.com"],
                        message("to send-only", "someone@outside.example", "noreply@example.com"))
    code, text = refused.value.recipients["noreply@example.com"]
    assert code in (550, 554) and b"send-only" in text


def test_send_as_rights(running):
    with running.submission("dave") as client:
        client.sendmail("noreply@example.com", ["bob@example.com"],
                        message("dave as noreply", "noreply@example.com", "bob@example.com"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("alice@example.com", ["bob@example.com"],
                            message("dave as alice", "alice@example.com", "bob@example.com"))
    running.wait_for("bob", "dave as noreply")


def test_submission_refuses_a_from_header_that_is_not_the_logins(running):
    """The envelope sender is the login's, so Postfix accepts it; the From header the
    reader sees is another user's, and rspamd refuses it at DATA."""
    with running.submission("alice") as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("alice@example.com", ["bob@example.com"],
                            message("alice as bob", "Bob <bob@example.com>", "bob@example.com"))
        assert refused.value.smtp_code == 554 and b"5.7.1" in refused.value.smtp_error, refused.value
        client.sendmail("alice@example.com", ["bob@example.com"],  # her own, in the alias domain
                        message("alice as herself", "Alice <alice@example.net>", "bob@example.com"))
    with running.submission("dave") as client:  # a send-as address
        client.sendmail("noreply@example.com", ["bob@example.com"],
                        message("dave from noreply", "noreply@example.com", "bob@example.com"))
    running.wait_for("bob", "alice as herself")
    running.wait_for("bob", "dave from noreply")
    assert not any("Subject: alice as bob" in m for m in running.messages("bob"))


def smtp_reply(replies) -> list[bytes]:
    """The lines of one SMTP reply (`250-…` continues, `250 …` ends)."""
    lines = [replies.readline()]
    while lines[-1][3:4] == b"-":
        lines.append(replies.readline())
    return lines


def test_postscreen_refuses_a_client_that_talks_before_the_greeting(running):
    """Port 25 goes through postscreen; 127.0.0.2 and .3 are not trusted (127.0.0.1 is)."""
    import socket

    with socket.create_connection(("127.0.0.1", running.ports.smtp), timeout=30,
                                  source_address=("127.0.0.3", 0)) as early:
        early.sendall(b"EHLO early.test\r\n")  # before the banner has ended: a spambot's shortcut
        replies = early.makefile("rb")
        greeting = smtp_reply(replies)  # postscreen's banner, then its answer to the EHLO
        early.sendall(b"MAIL FROM:<x@outside.example>\r\n")
        smtp_reply(replies)
        early.sendall(b"RCPT TO:<bob@example.com>\r\n")
        refused = smtp_reply(replies)
    assert refused[0].startswith(b"550 5.5.1"), (greeting, refused)
    with running.smtp(source="127.0.0.2", timeout=60) as client:  # waits its turn: through to smtpd
        client.sendmail("someone@outside.example", ["bob@example.com"],
                        message("after the greeting", "someone@outside.example", "bob@example.com"))
    running.wait_for("bob", "after the greeting")
    log = running.layout.postfix_log
    assert "PREGREET" in open(log).read()


def test_list_posting_policies(running):
    with running.smtp() as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):  # members only
            client.sendmail("someone@outside.example", ["staff@example.com"],
                            message("outsider to staff", "someone@outside.example", "staff@example.com"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):  # announcer only
            client.sendmail("alice@example.com", ["news@example.com"],
                            message("alice to news", "alice@example.com", "news@example.com"))
        client.sendmail("carol@example.com", ["news@example.com"],
                        message("carol announces", "carol@example.com", "news@example.com"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):  # anyone, but logged in
            client.sendmail("someone@outside.example", ["open@example.com"],
                            message("anon to open", "someone@outside.example", "open@example.com"))
    with running.submission("bob") as client:
        client.sendmail("bob@example.com", ["open@example.com"],
                        message("bob to open", "bob@example.com", "open@example.com"))
    running.wait_for("alice", "carol announces")
    running.wait_for("alice", "bob to open")


def test_quota_exceeded_bounces_and_keeps_what_was_stored(running):
    with running.smtp() as client:
        client.sendmail("someone@outside.example", ["tiny@example.com"],
                        message("small one", "someone@outside.example", "tiny@example.com"))
    running.wait_for("tiny", "small one")
    big = "x" * 200 + "\r\n"
    with running.smtp() as client:
        client.sendmail("bob@example.com", ["tiny@example.com"],
                        message("too big", "bob@example.com", "tiny@example.com", big * 300))
    bounce = running.wait_for("bob", "too big")  # the bounce quotes the message
    assert "quota" in bounce.lower()
    assert any("small one" in m for m in running.messages("tiny"))
    assert not any("Subject: too big" in m for m in running.messages("tiny"))


def test_auto_reply_once_per_sender(running):
    for n in range(2):
        with running.smtp() as client:
            client.sendmail("bob@example.com", ["dave@example.com"],
                            message(f"hello dave {n}", "bob@example.com", "dave@example.com"))
        running.wait_for("dave", f"hello dave {n}")
    running.wait_for("bob", "Back on Monday.")
    time.sleep(1)  # a second reply would have been sent by now
    replies = [m for m in running.messages("bob") if "Back on Monday." in m]
    assert len(replies) == 1


def test_relay_without_auth_is_refused_on_every_listener(running, outside):
    ports = running.ports
    # The client is outside mynetworks, and local mail is accepted from it ...
    assert outside(ports.smtp, "plain", "someone@outside.example", "bob@example.com") == 250
    # ... but no listener relays for it to another domain without a login.
    for port, tls in ((ports.smtp, "plain"), (ports.smtp, "starttls"),
                      (ports.submission, "starttls"), (ports.submissions, "implicit")):
        code = outside(port, tls, "someone@outside.example", "victim@elsewhere.example")
        assert code >= 500, (port, tls, code)


def test_list_policies_with_and_without_required_auth(running):
    with running.smtp() as client:
        client.sendmail("someone@outside.example", ["everyone@example.com"],  # anyone, no auth
                        message("anon to everyone", "someone@outside.example", "everyone@example.com"))
        for address, sender in (("board@example.com", "alice@example.com"),   # member, no login
                                ("memo@example.com", "carol@example.com")):   # announcer, no login
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(sender, [address], message(f"unauthenticated to {address}", sender, address))
    with running.submission("alice") as client:
        client.sendmail("alice@example.com", ["board@example.com"],
                        message("alice to board", "alice@example.com", "board@example.com"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):  # logged in, but not the announcer
            client.sendmail("alice@example.com", ["memo@example.com"],
                            message("alice to memo", "alice@example.com", "memo@example.com"))
    with running.submission("carol") as client:
        client.sendmail("carol@example.com", ["memo@example.com"],
                        message("carol to memo", "carol@example.com", "memo@example.com"))
    for subject in ("anon to everyone", "alice to board", "carol to memo"):
        running.wait_for("bob", subject)


NAMES = ["alice", "bob", "carol", "dave", "noreply", "tiny", "postmaster", "sales", "staff",
         "news", "open", "everyone", "board", "memo", "nobody-here", "friend", "x", "spam", "old"]
LOCALS = st.sampled_from(NAMES) | st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,6})?", fullmatch=True)
DOMAINS = st.sampled_from(["example.com", "example.net", "outside.example", "elsewhere.example",
                           "bad.example", "sub.bad.example", "blocked.example", "sub.blocked.example"])
EXTENSIONS = st.sampled_from(["", "", "", "+tag", "+Lists", "+"])
CASES = st.sampled_from([str.lower, str.lower, str.upper, str.capitalize])


@st.composite
def mail_addresses(draw) -> str:
    """Served and outside addresses, mostly the declared names, with plus parts and mixed case."""
    local = draw(CASES)(draw(LOCALS)) + draw(EXTENSIONS)
    return f"{local}@{draw(CASES)(draw(DOMAINS))}"


@st.composite
def submissions(draw) -> tuple[str, str, str]:
    """(login, sender, recipient); a third of the senders are the login's own address."""
    login = draw(st.sampled_from(sorted(PASSWORDS)))
    sender = draw(mail_addresses() | st.just(f"{login}@example.com"))
    return login, sender, draw(mail_addresses())


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(submissions())
@example(("alice", "alice+tag@example.com", "alice@example.com"))  # see test_regressions
@example(("alice", "Alice+tag@example.net", "staff+x@example.com"))  # a member, tagged
def test_submission_accepts_what_may_send_says(running, triple):
    login, sender, recipient = triple
    expected = may_send(running.server.spec, f"{login}@example.com", sender, recipient)
    with running.submission(login) as client:
        code, reply = client.mail(sender)
        if code == 250:
            code, reply = client.rcpt(recipient)
        client.rset()
    assert (code == 250) == expected.accepted, (expected, code, reply)


def signed_by(text: str, running) -> tuple[str, str] | None:
    """(d=, s=) of the message's DKIM signature if it verifies against the records that
    `mailspec dns` makes from the installed keys; None when it has none."""
    import dkim

    from mailspec.dns import records
    from mailspec.model import DEFAULT_KEYS

    data = text.encode().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    found = dkim.DKIM(data)
    if not any(name.lower() == b"dkim-signature" for name, _ in found.headers):
        return None
    published = {r.name: r.value for f in records.fragments(running.server.spec, running.layout.path(DEFAULT_KEYS))
                 for r in f.records if r.type == "TXT"}
    assert found.verify(dnsfunc=lambda name, timeout=5: published.get(name.decode()).encode()), text[:2000]
    signature = next(value for name, value in found.headers if name.lower() == b"dkim-signature").decode()
    tags = dict(t.strip().split("=", 1) for t in signature.replace("\r\n", "").split(";") if "=" in t)
    return tags["d"], tags["s"]


def test_what_we_send_is_dkim_signed(running):
    """Through Postfix's milter to the real rspamd: a logged-in user's mail, in its own
    domain and in an alias domain, and an auto-reply the server makes itself."""
    with running.submission("alice") as client:
        client.sendmail("alice@example.com", ["bob@example.com"], message("signed-own", "alice@example.com",
                                                                          "bob@example.com"))
        client.sendmail("alice@example.net", ["bob@example.com"], message("signed-alias", "alice@example.net",
                                                                          "bob@example.com"))
    assert signed_by(running.wait_for("bob", "signed-own"), running) == ("example.com", "mail")
    assert signed_by(running.wait_for("bob", "signed-alias"), running) == ("example.net", "mail")
    with running.smtp() as client:
        client.sendmail("friend@outside.example", ["dave@example.com"],
                        message("hello from outside", "friend@outside.example", "dave@example.com"))
    # Another domain's mail is not ours to sign. (Here it comes from loopback, which is
    # "local": its Authentication-Results are held to an outside address in test_rspamd.)
    assert signed_by(running.wait_for("dave", "hello from outside"), running) is None
    with running.smtp() as client:  # dave's auto-reply goes back to alice: made by the server, signed
        client.sendmail("alice@example.com", ["dave@example.com"],
                        message("are you there", "alice@example.com", "dave@example.com"))
    assert signed_by(running.wait_for("alice", "Back on Monday."), running) == ("example.com", "mail")


def fetch(running, name: str, path: str, method: str = "GET", body: str | None = None, tls: bool = True):
    """An HTTP(S) request to the server for the site `name` (its SNI and Host, verified
    against the test CA), over loopback: (status, headers, body)."""
    import http.client
    import socket

    port = running.ports.https if tls else running.ports.http
    if tls:
        connection = http.client.HTTPSConnection(name, port, timeout=15, context=running.tls())
    else:
        connection = http.client.HTTPConnection(name, port, timeout=15)
    connection._create_connection = lambda address, *rest, **options: socket.create_connection(
        ("127.0.0.1", port), *rest, **options)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "text/xml"} if body else {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def test_the_mta_sts_policy_is_served_over_https_as_dns_announces_it(running):
    """RFC 8461: senders fetch https://mta-sts.<domain>/.well-known/mta-sts.txt with a
    certificate valid for that name; the id in DNS is the hash of what is served."""
    from mailspec.dns.records import fragments

    for name in ("example.com", "example.net"):
        status, headers, text = fetch(running, f"mta-sts.{name}", "/.well-known/mta-sts.txt")
        assert status == 200 and headers["Content-Type"].startswith("text/plain"), (status, headers)
        fields = dict(line.split(": ", 1) for line in text.splitlines())
        assert fields == {"version": "STSv1", "mode": "testing", "mx": HOSTNAME, "max_age": "86400"}, text
    spec = running.server.spec
    announced = {r.value for f in fragments(spec, running.layout.path(spec.server.keys))
                 for r in f.records if r.name.startswith("_mta-sts.")}
    assert announced == {f"v=STSv1; id={hashlib.sha256(text.encode()).hexdigest()[:20]}"}


def test_autoconfig_and_autodiscover_lead_a_client_to_a_working_login(running):
    """Thunderbird's GET and Outlook's POST get the server's name and ports, and those
    are where alice logs in."""
    status, _, text = fetch(running, "autoconfig.example.net", "/mail/config-v1.1.xml?emailaddress=alice@example.net")
    assert status == 200, text
    provider = ElementTree.fromstring(text).find("emailProvider")
    assert {d.text for d in provider.findall("domain")} == {"example.com", "example.net"}
    imap, smtp = provider.find("incomingServer"), provider.find("outgoingServer")
    assert (imap.get("type"), imap.findtext("socketType"), smtp.findtext("socketType")) == ("imap", "SSL", "SSL")
    request = ('<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
               "<Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>"
               "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
               "</AcceptableResponseSchema></Request></Autodiscover>")
    status, _, answer = fetch(running, "autodiscover.example.com", "/Autodiscover/Autodiscover.xml", "POST", request)
    assert status == 200, answer
    space = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    protocols = {p.findtext(f"{space}Type"): p for p in ElementTree.fromstring(answer).iter(f"{space}Protocol")}
    assert protocols["IMAP"].findtext(f"{space}Port") == imap.findtext("port")
    assert protocols["SMTP"].findtext(f"{space}Port") == smtp.findtext("port")
    assert imap.findtext("hostname") == protocols["IMAP"].findtext(f"{space}Server") == HOSTNAME
    # The advertised ports are the real listeners: log in there with TLS from the first byte
    # (the certificate's names were verified in `fetch`; here only the ports are in question).
    with imaplib.IMAP4_SSL("127.0.0.1", int(imap.findtext("port")), ssl_context=unverified()) as client:
        client.login("alice@example.com", PASSWORDS["alice"])
    with smtplib.SMTP_SSL("127.0.0.1", int(smtp.findtext("port")), context=unverified(), timeout=15) as client:
        client.login("alice@example.com", PASSWORDS["alice"])


def test_plain_http_only_redirects_to_https(running):
    status, headers, _ = fetch(running, "mta-sts.example.com", "/.well-known/mta-sts.txt", tls=False)
    assert status == 301 and headers["Location"] == "https://mta-sts.example.com/.well-known/mta-sts.txt"
    status, _, _ = fetch(running, "autoconfig.example.com", "/etc/passwd")
    assert status == 404
