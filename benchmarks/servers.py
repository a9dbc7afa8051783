"""The servers under test: how to start each one, and how to speak to it (a small adapter each).

Every server runs as its own process pinned to core 0 (``taskset -c 0``) so that its CPU time and
memory can be read from ``/proc/<pid>`` and so that it never competes with the load generator,
which pins itself to the other core. The C servers get a minimal configuration generated into the
run's temporary directory: a free port on 127.0.0.1, no daemonizing, no DNS or ident lookups, and
flood limits out of the way (the benchmark measures fan-out, not flood control).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROOM = "#general"


@dataclass(frozen=True)
class Adapter:
    """The wire format of one protocol: registration, joining, the "in the room" marker, how a
    room message is sent, and whether the sender gets one line back per message (an ack)."""

    name: str
    #: Bytes a client sends on connect (``%(nick)s`` and ``%(room)s`` are filled in).
    hello: bytes
    #: A line containing this means registration is complete and ``join`` may be sent
    #: (None: ``join`` goes out with ``hello``). InspIRCd refuses a JOIN sent before its 001.
    welcome: bytes | None
    #: Bytes that join the room, sent after ``welcome``.
    join: bytes
    #: A line containing this means the client is in its room (None: at once).
    ready: bytes | None
    #: Template of one room message; ``%(text)s`` is filled in (bytes formatting, no encoding).
    say: bytes
    #: Lines each sender receives for each of its own messages (anychat's JSON acks).
    acks_per_message: int = 0
    #: The lines travel as WebSocket text frames, one per line (after an upgrade on ``/ws``).
    websocket: bool = False
    #: The connection is TLS from the first byte (the server needs a certificate).
    tls: bool = False

    def hello_for(self, nick: str, room: str = ROOM) -> bytes:
        return self.hello % {b"nick": nick.encode(), b"room": room.encode()}

    def join_for(self, nick: str, room: str = ROOM) -> bytes:
        return self.join % {b"nick": nick.encode(), b"room": room.encode()}

    def say_template(self, room: str = ROOM) -> bytes:
        """The say line with the room filled in and ``%s`` left for the text."""
        return self.say.replace(b"%(room)s", room.encode()).replace(b"%(text)s", b"%s")


JSONL = Adapter(
    name="jsonl",
    hello=b'{"type":"hello","nick":"%(nick)s","autojoin":false}\n',
    welcome=None,
    join=b'{"type":"join","room":"%(room)s","ref":"j"}\n',
    ready=b'"type":"members"',
    say=b'{"type":"say","to":"%(room)s","text":"%(text)s"}\n',
    acks_per_message=1,
)
IRC = Adapter(
    name="irc",
    hello=b"NICK %(nick)s\r\nUSER %(nick)s 0 * :bench\r\n",
    welcome=b" 001 ",
    join=b"JOIN %(room)s\r\n",
    ready=b" 366 ",
    say=b"PRIVMSG %(room)s :%(text)s\r\n",
)
RAW = Adapter(name="raw", hello=b"", welcome=None, join=b"", ready=None, say=b"%(text)s\n")

#: The JSON-lines protocol in WebSocket text frames (the web page's protocol).
WEBSOCKET = replace(JSONL, name="websocket", websocket=True)

#: The protocol axis: every protocol a room can have, each measured against anychat as one entry.
#: TLS rows are the IRC and JSON adapters over an ``ssl``-wrapped socket, on the same sniffing
#: main port (the server is given a certificate); WebSocket is JSON lines in frames.
PROTOCOLS: dict[str, Adapter] = {
    "irc": IRC,
    "jsonl": JSONL,
    "websocket": WEBSOCKET,
    "irc-tls": replace(IRC, name="irc-tls", tls=True),
    "jsonl-tls": replace(JSONL, name="jsonl-tls", tls=True),
}

#: anychat's stores: the shipped default (a SQLite file, every message committed before its
#: ack) and the memory store.
STORES = ("sqlite", "memory")

#: anychat's event loops: (name, backend, uvloop).
BACKENDS = (("asyncio", "asyncio", False), ("uvloop", "asyncio", True), ("trio", "trio", False))


@dataclass
class ServerSpec:
    """One server under test; ``command(port, tmpdir)`` builds its command line."""

    name: str
    adapter: Adapter
    kind: str  # "anychat", "tutorial", "ngircd", "inspircd"
    backend: str = ""
    uvloop: bool = False
    store: str = ""
    note: str = ""
    #: Most idle connections the idle row opens (None: as many as asked).
    max_idle: int | None = None
    #: More ``anychat serve`` options (a benchmark's own settings).
    extra_args: tuple[str, ...] = ()

    @property
    def protocol(self) -> str:
        return self.adapter.name

    def available(self) -> str | None:
        """None when the server can run here, else why not."""
        if self.kind == "ngircd" and _binary("ngircd") is None:
            return "ngircd is not installed (apt-get install ngircd)"
        if self.kind == "inspircd" and _binary("inspircd") is None:
            return "InspIRCd is not installed (apt-get install inspircd)"
        if self.uvloop:
            try:
                import uvloop  # noqa: F401
            except ImportError:
                return "uvloop is not installed (pip install 'anychat[uvloop]')"
        if self.backend == "trio":
            try:
                import trio  # noqa: F401
            except ImportError:
                return "trio is not installed"
        if self.adapter.tls:
            try:
                import trustme  # noqa: F401
            except ImportError:
                return "trustme is not installed (it makes the test certificate)"
        return None

    def command(
        self, port: int, tmpdir: Path, max_connections: int, park_after: float | None = None
    ) -> list[str]:
        if self.kind == "tutorial":
            return [sys.executable, str(HERE / "tutorial_server.py"), str(port)]
        if self.kind == "ngircd":
            conf = tmpdir / "ngircd.conf"
            conf.write_text(
                _NGIRCD_CONF.format(port=port, tmp=tmpdir, uid=os.getuid(), gid=os.getgid())
            )
            (tmpdir / "motd").write_text("bench\n")
            return [str(_binary("ngircd")), "--nodaemon", "--config", str(conf)]
        if self.kind == "inspircd":
            conf = tmpdir / "inspircd.conf"
            conf.write_text(_INSPIRCD_CONF.format(port=port, tmp=tmpdir, max=max_connections + 100))
            cmd = [str(_binary("inspircd")), "--config", str(conf), "--nofork", "--nopid"]
            return cmd + (["--runasroot"] if os.getuid() == 0 else [])
        database = "memory://" if self.store == "memory" else f"sqlite:///{tmpdir / 'chat.db'}"
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
            "--database-url",
            database,
        ]
        if park_after is not None:
            cmd += ["--park-after", str(park_after)]
        if self.uvloop:
            cmd.append("--uvloop")
        cmd += self.extra_args
        if self.adapter.tls:
            cert, key, _ = make_certificate(tmpdir)
            cmd += ["--tls-cert", str(cert), "--tls-key", str(key)]
        return cmd


def make_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for localhost / 127.0.0.1 (ECDSA, trustme's default) in
    ``folder``: (certificate, key, CA certificate)."""
    import trustme

    cert, key, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    if not ca_file.exists():
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        ca.cert_pem.write_to_path(str(ca_file))
    return cert, key, ca_file


# ngircd 26: penalties off (MaxPenaltyTime 0), no connection limits, no lookups.
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

# InspIRCd 3: one connect class for everyone, lookups off, flood penalty and queues far above
# what the closed loop can put in flight (threshold x 1000 must fit in 32 bits).
_INSPIRCD_CONF = """\
<server name="bench.example" description="benchmark" network="bench">
<admin name="bench" nick="bench" email="bench@example.invalid">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="main" allow="*" resolvehostnames="no" useident="no" timeout="120"
         pingfreq="3600" hardsendq="67108864" softsendq="67108864" recvq="67108864"
         threshold="100000" commandrate="100000000" fakelag="no"
         localmax="{max}" globalmax="{max}" limit="{max}" maxchans="200">
<performance softlimit="{max}" somaxconn="1024" clonesonconnect="no">
<pid file="{tmp}/inspircd.pid">
<dns timeout="1">
<options syntaxhints="no">
<channels users="200" opers="200">
<whowas groupsize="0" maxgroups="0">
"""


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    path = f"/usr/sbin/{name}"
    return path if os.path.exists(path) else None


def all_servers() -> list[ServerSpec]:
    """Every server the benchmark knows, in table order: the reference first."""
    specs = [
        ServerSpec("tutorial", RAW, "tutorial", note="asyncio streams, write+drain per recipient")
    ]
    for protocol, adapter in PROTOCOLS.items():
        for store in STORES:
            for label, backend, uvloop in BACKENDS:
                specs.append(
                    ServerSpec(
                        f"anychat-{label}-{protocol}-{store}",
                        adapter,
                        "anychat",
                        backend=backend,
                        uvloop=uvloop,
                        store=store,
                    )
                )
    # ngircd accepts and registers new connections from one address slowly (about 17 a second
    # on the shared 2-core machine), so its idle row holds fewer; per connection is comparable.
    specs.append(ServerSpec("ngircd", IRC, "ngircd", note="C, IRC", max_idle=2000))
    specs.append(ServerSpec("inspircd", IRC, "inspircd", note="C++, IRC"))
    return specs


def select_servers(patterns: str) -> list[ServerSpec]:
    """The servers whose names match any of the comma-separated shell patterns."""
    wanted = [p.strip() for p in patterns.split(",") if p.strip()]
    return [s for s in all_servers() if any(fnmatch.fnmatchcase(s.name, p) for p in wanted)]


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


def metric(port: int, name: str) -> float | None:
    """One unlabelled value from the ``/metrics`` of the anychat on ``port`` (``None`` if it
    has none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        body = b""
        while chunk := sock.recv(65536):
            body += chunk
    for line in body.decode(errors="replace").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RunningServer:
    """A server subprocess on core 0, with its /proc statistics."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        pin: bool,
        max_connections: int = 20_000,
        park_after: float | None = None,
    ) -> None:
        self.spec = spec
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bench-{spec.name}-")
        tmpdir = Path(self._tmp.name)
        cmd = spec.command(self.port, tmpdir, max_connections, park_after)
        if pin:
            cmd = ["taskset", "-c", "0", *cmd]  # taskset execs: the pid is the server's
        self._log = open(tmpdir / "server.log", "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.pid = self.proc.pid
        self._wait_listening()

    def _wait_listening(self, timeout: float = 30.0) -> None:
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

    def client_tls(self) -> ssl.SSLContext | None:
        """A client context trusting this server's test CA (None: the server has no TLS)."""
        if not self.spec.adapter.tls:
            return None
        ca_file = Path(self._tmp.name) / "ca.pem"
        return ssl.create_default_context(cafile=str(ca_file))

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (all threads), from /proc/<pid>/stat."""
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

    def metric(self, name: str) -> float | None:
        """One unlabelled value from anychat's ``/metrics`` (``None`` if it has none)."""
        return metric(self.port, name)

    def wait_parked(self, count: int, timeout: float) -> int:
        """Wait until ``count`` connections are parked (or ``timeout``); how many are."""
        deadline = time.monotonic() + timeout
        parked = 0
        while time.monotonic() < deadline:
            parked = int(self.metric("anychat_parked_connections") or 0)
            if parked >= count:
                break
            time.sleep(0.25)
        return parked

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
