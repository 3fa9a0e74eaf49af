"""A private MariaDB server for the tests: own datadir, socket and loopback port,
started by the test session and stopped with it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

from mailspec.hostrun import free_ports

# One account for every test: tests of several modules share a server (per xdist worker).
DB_USER, DB_PASSWORD = "mailspec", "test-only-Secret-42"


def throwaway_dir(prefix: str) -> Path:
    """A directory for a test server's data: in memory when possible, because InnoDB's
    fsyncs on a slow disk make each CREATE TABLE cost seconds; the data is thrown away."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm" if os.path.isdir("/dev/shm") else None))


class MariaDB:
    def __init__(self, base: Path):
        self.base = base
        self.datadir = base / "data"
        self.socket = str(base / "mysqld.sock")
        self.port = free_ports(1)[0]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)  # Postfix and Dovecot, as their own users, reach the socket
        subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True)
        self.process = subprocess.Popen(
            ["mariadbd", "--no-defaults", "--user=root", f"--datadir={self.datadir}",
             f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--pid-file={self.base / 'mysqld.pid'}", f"--log-error={self.base / 'error.log'}",
             "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("MariaDB did not start:\n" + self.log_tail()) from None
                time.sleep(0.05)

    def log_tail(self) -> str:
        log = self.base / "error.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else ""

    def connect(self, database: str | None = None, **options) -> pymysql.Connection:
        return pymysql.connect(unix_socket=self.socket, user="root", password="", database=database,
                               charset="utf8mb4", autocommit=True, **options)

    def create_database(self, name: str, user: str, password: str) -> None:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            for host in ("localhost", "127.0.0.1"):
                cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY %s", (password,))
                cursor.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'{host}'")

    def source(self, database: str, sql_file: Path) -> None:
        """Run a .sql file with the real client, as an administrator would."""
        with open(sql_file, "rb") as handle:
            subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root",
                            database], stdin=handle, check=True, capture_output=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def option_file(path: Path, user: str, password: str) -> Path:
    path.write_text(f"[mailspec]\nuser = {user}\npassword = {password}\n")
    os.chmod(path, 0o640)
    return path
