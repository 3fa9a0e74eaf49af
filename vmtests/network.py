"""The virtual LAN between machines, its DNS, and the outside MTA.

Every machine has a second NIC on a point-to-point QEMU datagram link (two UDP sockets on
the host's loopback). On that LAN the mailspec server and a plain Postfix "outside" MTA
find each other through MX records. The outside machine is the internet's DNS: nsd
serves exactly the zones `mailspec dns` prints for the site (whose public address is its
LAN address in the VMs) and the LAN's reverse zone, and dnsmasq answers for the outside
world (MX of every external domain the spec names -> the outside MTA) and forwards the
rest to nsd.
"""

from __future__ import annotations

import ipaddress

from mailspec import model
from mailspec.dns.records import fragments
from mailspec.dns.zone import split_zones, standalone, zone_text
from mailspec.vmtests import log
from mailspec.vmtests.image import UPSTREAM_DNS
from mailspec.vmtests.machine import GUEST_UDP_PORTS, Machine

SERVER_ADDRESS = "192.168.50.10"
OUTSIDE_ADDRESS = "192.168.50.20"
OUTSIDE_DOMAIN = "outside.test"
OUTSIDE_HOSTNAME = "mx.outside.test"
OUTSIDE_MAIL_ROOT = "/var/mail/outside"
# The internet's test blocklist, answered by dnsmasq: the outside machine's second
# address is listed in it, its third is not (postscreen's scenario, and the site's).
DNSBL_ZONE = "dnsbl.test"
LISTED_ADDRESS = "192.168.50.21"
UNLISTED_ADDRESS = "192.168.50.22"
NSD_PORT = GUEST_UDP_PORTS["dns"]  # on loopback for dnsmasq, and on the uplink for the host
NSD_DIR = "/etc/mailspec-nsd"


def served_domains(spec: model.Spec) -> list[str]:
    return sorted({d.name for d in spec.domains} | {a.name for d in spec.domains for a in d.also})


def external_domains(spec: model.Spec) -> list[str]:
    """The domains outside the spec that it sends to, plus the outside MTA's own."""
    served = set(served_domains(spec))
    refs = [ref for domain in spec.domains for ref in (
        *[r for m in domain.mailboxes for r in (*m.forwards, *m.send_as)],
        *[r for a in domain.aliases for r in a.targets],
        *[r for lst in domain.lists for r in lst.members])]
    return sorted({ref.address.domain for ref in refs if ref.address.domain not in served} | {OUTSIDE_DOMAIN})


def lan_zones(spec: model.Spec, keys: str) -> dict[str, str]:
    """{origin: zone file} for nsd: each zone as `mailspec dns` prints it, and the reverse
    zone with the server's PTR."""
    printed = zone_text(fragments(spec, keys), spec.name)
    zones = {origin: standalone(origin, body, OUTSIDE_ADDRESS) for origin, body in split_zones(printed).items()}
    pointer = ipaddress.ip_address(SERVER_ADDRESS).reverse_pointer
    reverse = pointer.split(".", 1)[1] + "."
    zones[reverse] = standalone(reverse, f"{pointer}. IN PTR {spec.server.hostname}.\n", OUTSIDE_ADDRESS)
    return zones


def nsd_config(zones: dict[str, str]) -> str:
    listeners = "".join(f"  ip-address: {address}@{NSD_PORT}\n" for address in ("127.0.0.1", "10.0.2.15"))
    files = "".join(f"  {key}: \"{NSD_DIR}/{name}\"\n" for key, name in (
        ("pidfile", "nsd.pid"), ("xfrdfile", "xfrd.state"), ("zonelistfile", "zone.list"), ("logfile", "nsd.log")))
    return (f"server:\n{listeners}  zonesdir: \"{NSD_DIR}\"\n  database: \"\"\n  username: \"\"\n"
            f"  chroot: \"\"\n  xfrdir: \"{NSD_DIR}\"\n{files}  verbosity: 1\n"
            "remote-control:\n  control-enable: no\n"
            + "".join(f"zone:\n  name: \"{origin}\"\n  zonefile: \"{origin}zone\"\n" for origin in zones))


def dns_forwarder(spec: model.Spec, zones: dict[str, str], extra: tuple[str, ...] = ()) -> str:
    """dnsmasq configuration: the outside world's names, nsd's zones forwarded to it,
    and nothing else (NXDOMAIN at once)."""
    lines = [f"listen-address={OUTSIDE_ADDRESS}", "bind-interfaces", "no-resolv", "no-hosts",
             "local=/#/", "user=nobody", "group=nogroup",
             f"host-record={OUTSIDE_HOSTNAME},{OUTSIDE_ADDRESS}",
             f'txt-record={OUTSIDE_DOMAIN},"v=spf1 ip4:{OUTSIDE_ADDRESS} -all"',
             f"address=/{listed_name(LISTED_ADDRESS)}/127.0.0.2"]
    lines += [f"mx-host={name},{OUTSIDE_HOSTNAME},10" for name in external_domains(spec)]
    lines += [f"server=/{origin.rstrip('.')}/127.0.0.1#{NSD_PORT}" for origin in zones]
    return "\n".join([*lines, *extra]) + "\n"


def listed_name(address: str) -> str:
    """The name a DNSBL query for `address` asks: its octets reversed, in the zone."""
    return ".".join(reversed(address.split("."))) + f".{DNSBL_ZONE}"


def outside_main_cf(spec: model.Spec) -> str:
    """A plain Postfix that accepts mail for every external domain into one Maildir,
    /var/mail/outside/all/ (virtual(8) adds Delivered-To), and sends the rest by MX."""
    return "\n".join([
        f"myhostname = {OUTSIDE_HOSTNAME}", "mydestination = localhost", "inet_interfaces = all",
        "inet_protocols = ipv4", "mynetworks = 127.0.0.0/8", "compatibility_level = 3.6",
        "maillog_file = /var/log/postfix.log", "alias_maps =", "alias_database =",
        f"virtual_mailbox_domains = {' '.join(external_domains(spec))}",
        f"virtual_mailbox_base = {OUTSIDE_MAIL_ROOT}",
        "virtual_mailbox_maps = regexp:/etc/postfix/outside_mailboxes",
        "virtual_uid_maps = static:8", "virtual_gid_maps = static:8",  # the `mail` account
        "virtual_minimum_uid = 8",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "smtp_tls_security_level = may", "smtpd_tls_security_level = may",
        "smtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem",
        "smtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key", ""])


def use_lan_dns(machine: Machine) -> None:
    """Forward the machine's own resolver to the LAN's DNS; resolv.conf stays 127.0.0.1, so
    daemons that read it once at start (rspamd) follow without a restart."""
    machine.succeed(f"echo 'nameserver {OUTSIDE_ADDRESS}' > /{UPSTREAM_DNS}")


def publish(outside: Machine, spec: model.Spec, keys: str) -> dict[str, str]:
    """Serve the zones `mailspec dns` prints for `spec` (and the reverse zone): nsd
    (re)started with them. The zones, by origin."""
    zones = lan_zones(spec, keys)
    for origin, text in zones.items():
        outside.write_file(f"{NSD_DIR}/{origin}zone", text)
    outside.write_file(f"{NSD_DIR}/nsd.conf", nsd_config(zones))
    restart_nsd(outside)
    return zones


def restart_nsd(outside: Machine) -> None:
    """Its processes are named `nsd: main`, `nsd: xfrd`…; the pid file has the first."""
    outside.succeed(f"[ -f {NSD_DIR}/nsd.pid ] && kill $(cat {NSD_DIR}/nsd.pid) 2> /dev/null; "
                    f"while pgrep '^nsd:' > /dev/null; do sleep 0.1; done; nsd -c {NSD_DIR}/nsd.conf")


def setup_outside(outside: Machine, spec: model.Spec, keys: str, checking: bool = False) -> None:
    """DNS and the outside MTA; `checking`: with rspamd, which checks what it receives
    and signs what it sends (vmtests.verifier)."""
    from mailspec.vmtests import verifier

    with log.step(f"{outside.name}: the LAN's DNS (nsd with the printed zones) and a plain outside MTA"):
        published = verifier.prepare(outside, OUTSIDE_DOMAIN) if checking else ()
        zones = publish(outside, spec, keys)
        outside.write_file("/etc/mailspec-dns.conf", dns_forwarder(spec, zones, published))
        outside.write_file("/etc/postfix/main.cf", outside_main_cf(spec))
        outside.write_file("/etc/postfix/outside_mailboxes", "/^/ all/\n")  # no $n here: virtual(8) forbids it
        outside.succeed("; ".join([
            "set -e", "dnsmasq --conf-file=/etc/mailspec-dns.conf",
            f"echo 'nameserver {OUTSIDE_ADDRESS}' > /{UPSTREAM_DNS}",
            f"mkdir -p {OUTSIDE_MAIL_ROOT}", f"chown 8:8 {OUTSIDE_MAIL_ROOT}",
            "postconf -F '*/*/chroot = n'", "rm -rf /var/spool/postfix/etc", ": > /var/log/postfix.log",
            "systemctl restart postfix"]))
        outside.wait_until_succeeds(f"getent hosts {spec.server.hostname}", 30)
        outside.wait_for_open_port(25, b"220 ")
    if checking:
        verifier.start(outside)


def outside_messages(outside: Machine, address: str) -> list[str]:
    """The raw messages the outside MTA stored for `address`."""
    directory = f"{OUTSIDE_MAIL_ROOT}/all/new"
    command = f"for f in {directory}/*; do [ -f \"$f\" ] && cat \"$f\" && printf '\\0'; done; true"
    stored = [part for part in outside.succeed(command).split("\x00") if part]
    return [m for m in stored if f"\nDelivered-To: {address}\n" in "\n" + m.replace("\r\n", "\n")]
