"""Targets: this host, or a server reached over SSH (paramiko).

Either way the switch machinery runs on the server itself (agent.py): over SSH, the
bundle and the agent are uploaded to a private directory there, the agent is run, its
lines are shown as they come, and the directory is removed. A `mailspec` killed
meanwhile leaves the agent to finish on the server: a switch never stops half-way.
The server's host key must be in known_hosts; a new one is accepted only when asked.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
import tarfile
import urllib.parse

import attrs

from mailspec.switch import agent
from mailspec.switch.store import SwitchError

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


@attrs.frozen
class SshTarget:
    user: str
    host: str
    port: int = 22

    def __str__(self) -> str:
        return f"ssh://{self.user}@{self.host}" + (f":{self.port}" if self.port != 22 else "")


def parse(text: str) -> SshTarget | None:
    """`local` (None) or ssh://[user@]host[:port]; ValueError for anything else."""
    if text == "local":
        return None
    parts = urllib.parse.urlsplit(text)
    try:
        port = parts.port or 22
    except ValueError:
        raise ValueError(f"`{text}` has a port that is not a number from 1 to 65535") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"`{text}` is neither `local` nor ssh://[user@]host[:port]")
    return SshTarget(parts.username or "root", parts.hostname, port)


class Local:
    """This host: the agent runs in this process."""

    name = "this host"

    def agent(self, arguments: list[str], echo, complain=None) -> int:
        return agent.main(arguments, echo)

    def upload(self, bundle: str) -> str:
        return bundle

    def close(self) -> None:
        pass


class Ssh:
    """A server over an SSH connection (`open_ssh` makes one)."""

    def __init__(self, client, name: str):
        self.client, self.name = client, name
        self.directory: str | None = None

    def run(self, command: str, data: bytes | None = None, echo=None) -> tuple[int, str]:
        """Run a shell command; (exit status, its stderr). Its stdout goes to `echo` line by line."""
        import paramiko

        try:
            stdin, stdout, stderr = self.client.exec_command(command)
            if data is not None:
                stdin.channel.sendall(data)
            stdin.channel.shutdown_write()
            for line in stdout:
                if echo is not None:
                    echo(line.rstrip("\n"))
            errors = stderr.read().decode(errors="replace")
            return stdout.channel.recv_exit_status(), errors
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise SwitchError(f"lost the connection to {self.name}: {error or type(error).__name__}",
                              "run `mailspec generations` to see which generation is current") from None

    def upload(self, bundle: str) -> str:
        """The bundle, beside the agent: where the agent is to find it."""
        directory = self._directory()
        code, errors = self.run(f"mkdir {directory}/bundle && tar -x -C {directory}/bundle", _tar(bundle))
        if code != 0:
            raise SwitchError(f"could not upload the deploy to {self.name}{_said(errors)}",
                              "free space in /tmp there")
        return f"{directory}/bundle"

    def agent(self, arguments: list[str], echo, complain=sys.stderr.write) -> int:
        """Run the agent; its exit status. Its errors go to `complain`."""
        command = " ".join(shlex.quote(a) for a in ["python3", f"{self._directory()}/agent.pyz", *arguments])
        code, errors = self.run(command, echo=echo)
        if errors:
            complain(errors)
        return code

    def _directory(self) -> str:
        """A fresh directory on the server, only root's, with the agent in it."""
        if self.directory is None:
            lines: list[str] = []
            code, errors = self.run("python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' && "
                                    "mktemp -d /tmp/mailspec-agent-XXXXXXXX", echo=lines.append)
            if code != 0 or not lines:
                raise SwitchError(f"{self.name} has no python3 of version 3.11 or later{_said(errors)}",
                                  "install it there (apt-get install python3)")
            self.directory = lines[-1].strip()
            self.run(f"cat > {self.directory}/agent.pyz", agent.archive())
        return self.directory

    def close(self, disconnect: bool = True) -> None:
        """Remove the agent's directory, and (unless it is someone else's) the connection."""
        if self.directory is not None:
            try:
                self.run(f"rm -rf {shlex.quote(self.directory)}")
            except SwitchError:
                pass
            self.directory = None
        if disconnect:
            self.client.close()


def connect(target: SshTarget | None, **options):
    return Local() if target is None else open_ssh(target, **options)


def open_ssh(target: SshTarget, known_hosts: str = DEFAULT_KNOWN_HOSTS, accept_new: bool = False,
             identity: str | None = None, timeout: float = 15) -> Ssh:
    """Log in to `target`; every failure to get there is a SwitchError saying which."""
    import paramiko

    known_hosts = os.path.expanduser(known_hosts)
    client = paramiko.SSHClient()
    if os.path.exists(known_hosts):
        client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(_NewKey(known_hosts, accept_new))
    try:
        client.connect(target.host, target.port, target.user, key_filename=identity, timeout=timeout,
                       banner_timeout=timeout, auth_timeout=timeout)
    except paramiko.BadHostKeyException as error:
        raise SwitchError(
            f"the host key of {target} is not the one known_hosts has for it "
            f"({_fingerprint(error.key)} instead of {_fingerprint(error.expected_key)})",
            f"if the server was reinstalled, remove its old key (ssh-keygen -f {known_hosts} -R "
            f"{_known_hosts_name(target)}); otherwise someone may be between you and it") from None
    except _UnknownKey as error:
        raise SwitchError(str(error), "compare the fingerprint with the server's own "
                          "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), then run again "
                          "with --accept-new-host-key") from None
    except paramiko.AuthenticationException:
        raise SwitchError(f"{target} refused to let {target.user} log in",
                          "name the key with --identity, or load it into ssh-agent") from None
    except (OSError, paramiko.SSHException, EOFError) as error:
        raise SwitchError(f"cannot reach {target}: {error or type(error).__name__}",
                          "check the host name, the port and that sshd runs there") from None
    return Ssh(client, str(target))


class _UnknownKey(Exception):
    pass


class _NewKey:
    """paramiko's policy for a host key known_hosts does not have: refuse it, naming
    its fingerprint, or (asked to) add it to known_hosts and go on."""

    def __init__(self, known_hosts: str, accept: bool):
        self.known_hosts, self.accept = known_hosts, accept

    def missing_host_key(self, client, hostname: str, key) -> None:
        if not self.accept:
            raise _UnknownKey(f"{hostname}'s host key ({key.get_name()} {_fingerprint(key)}) is not in "
                              f"{self.known_hosts}")
        client.get_host_keys().add(hostname, key.get_name(), key)
        os.makedirs(os.path.dirname(self.known_hosts), mode=0o700, exist_ok=True)
        with open(self.known_hosts, "a", encoding="utf-8") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def _fingerprint(key) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _known_hosts_name(target: SshTarget) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def _said(errors: str) -> str:
    return f": {errors.strip()}" if errors.strip() else ""


def _tar(directory: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in sorted(os.listdir(directory)):
            archive.add(os.path.join(directory, name), name)
    return buffer.getvalue()

