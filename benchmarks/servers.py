"""The servers under test: how to start each one, and how to speak to it (a small adapter each).

Every server runs as its own process pinned to core 0 (``taskset -c 0``) so that its CPU time and
memory can be read from ``/proc/<pid>`` and so that it never competes with the load generator,
which pins itself to the other core.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROOM = "#general"


@dataclass(frozen=True)
class Adapter:
    """The wire format of one server: registration, the "registered and in the room" marker,
    how a room message is sent, and whether the sender gets one line back per message (an ack)."""

    name: str
    #: Bytes a client sends on connect (``%(nick)s`` and ``%(room)s`` are filled in).
    hello: bytes
    #: A line containing this means the client is registered and in its room (None: at once).
    ready: bytes | None
    #: Template of one room message; ``%(text)s`` is filled in (bytes formatting, no encoding).
    say: bytes
    #: Lines each sender receives for each of its own messages (anychat acks them).
    acks_per_message: int = 0

    def hello_for(self, nick: str, room: str = ROOM) -> bytes:
        return self.hello % {b"nick": nick.encode(), b"room": room.encode()}

    def say_template(self, room: str = ROOM) -> bytes:
        """The say line with the room filled in and ``%s`` left for the text."""
        return self.say.replace(b"%(room)s", room.encode()).replace(b"%(text)s", b"%s")


JSONL = Adapter(
    name="jsonl",
    hello=b'{"type":"hello","nick":"%(nick)s","autojoin":false}\n'
    b'{"type":"join","room":"%(room)s","ref":"j"}\n',
    ready=b'"type":"members"',
    say=b'{"type":"say","to":"%(room)s","text":"%(text)s"}\n',
    acks_per_message=1,
)
IRC = Adapter(
    name="irc",
    hello=b"NICK %(nick)s\r\nUSER %(nick)s 0 * :bench\r\nJOIN %(room)s\r\n",
    ready=b" 366 ",
    say=b"PRIVMSG %(room)s :%(text)s\r\n",
)
RAW = Adapter(name="raw", hello=b"", ready=None, say=b"%(text)s\n")


@dataclass
class ServerSpec:
    """One server under test; ``command(port, tmpdir)`` builds its command line."""

    name: str
    adapter: Adapter
    kind: str  # "anychat", "tutorial", "ngircd"
    backend: str = "asyncio"
    uvloop: bool = False
    note: str = ""
    extra_args: list[str] = field(default_factory=list)
    database_url: str = ""

    def available(self) -> str | None:
        """None when the server can run here, else why not."""
        if self.kind == "ngircd" and _ngircd() is None:
            return "ngircd not installed (apt-get install ngircd)"
        if self.uvloop:
            try:
                import uvloop  # noqa: F401
            except ImportError:
                return "uvloop not installed (pip install 'anychat[uvloop]')"
        if self.backend == "trio":
            try:
                import trio  # noqa: F401
            except ImportError:
                return "trio not installed"
        return None

    def command(self, port: int, tmpdir: Path, max_connections: int) -> list[str]:
        if self.kind == "tutorial":
            return [sys.executable, str(HERE / "tutorial_server.py"), str(port)]
        if self.kind == "ngircd":
            conf = tmpdir / "ngircd.conf"
            conf.write_text(
                _NGIRCD_CONF.format(port=port, tmp=tmpdir, uid=os.getuid(), gid=os.getgid())
            )
            (tmpdir / "motd").write_text("bench\n")
            return [str(_ngircd()), "--nodaemon", "--config", str(conf)]
        cmd = [
            sys.executable,
            "-m",
            "anychat",
            "serve",
            "--port",
            str(port),
            "--backend",
            self.backend,
            "--log-level",
            "warning",
            # Flood control paces each client to 50 commands/s by default: the benchmark
            # measures the fan-out path, so it is switched off.
            "--flood-rate",
            "0",
            "--max-connections",
            str(max_connections),
            # The shipped default store (SQLite) in the run's temporary directory, unless the
            # benchmark was given another (``--anychat-database memory://``).
            "--database-url",
            self.database_url or f"sqlite:///{tmpdir / 'chat.db'}",
        ]
        if self.uvloop:
            cmd.append("--uvloop")
        return cmd + self.extra_args


_NGIRCD_CONF = """\
[Global]
Name = bench.example
Info = benchmark
Listen = 127.0.0.1
Ports = {port}
MotdFile = {tmp}/motd
PidFile = {tmp}/ngircd.pid
ServerUID = {uid}
ServerGID = {gid}
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
"""


def _ngircd() -> str | None:
    return shutil.which("ngircd") or (
        "/usr/sbin/ngircd" if os.path.exists("/usr/sbin/ngircd") else None
    )


def all_servers() -> list[ServerSpec]:
    return [
        ServerSpec("tutorial", RAW, "tutorial", note="asyncio streams, write+drain per recipient"),
        ServerSpec("anychat-asyncio", JSONL, "anychat"),
        ServerSpec("anychat-uvloop", JSONL, "anychat", uvloop=True),
        ServerSpec("anychat-trio", JSONL, "anychat", backend="trio"),
        ServerSpec("ngircd", IRC, "ngircd", note="C, over IRC"),
    ]


def core_busy_seconds() -> list[float]:
    """Busy (non-idle) seconds of each core since boot, from /proc/stat.

    Compared with the server's own CPU time over the same window, this shows how much of core 0
    something else took: on a shared machine, a number to read next to every result."""
    busy = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                busy.append((sum(v[:8]) - v[3] - v[4]) / CLOCK_TICKS)
    return busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RunningServer:
    """A server subprocess on core 0, with its /proc statistics."""

    def __init__(self, spec: ServerSpec, *, pin: bool, max_connections: int = 20_000) -> None:
        self.spec = spec
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bench-{spec.name}-")
        tmpdir = Path(self._tmp.name)
        cmd = spec.command(self.port, tmpdir, max_connections)
        if pin:
            cmd = ["taskset", "-c", "0", *cmd]
        self._log = open(tmpdir / "server.log", "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        self._wait_listening()

    def _wait_listening(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.spec.name} did not listen within {timeout}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far, from /proc/<pid>/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_kib(self, key: str = "VmHWM") -> int:
        """A line of /proc/<pid>/status in KiB: VmHWM is peak RSS, VmRSS the current one."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = (Path(self._tmp.name) / "server.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self._tmp.cleanup()
