"""Start, stop and inspect the local single-node KRaft broker.

The broker runs from the official Apache Kafka jars, which Maven fetches from Maven
Central into ``<data folder>/kafka/jars``. Its log, pid file and data live under
``<data folder>/kafka`` too, so deleting the data folder resets everything.

In secured mode the broker takes SASL/PLAIN logins on both listeners and denies what no
ACL allows (broker-sasl.properties, infra.kafka.sasl and infra.kafka.acls).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.kafka import sasl

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
PROPERTIES_TEMPLATE = HERE / "broker.properties"
SECURED_PROPERTIES_TEMPLATE = HERE / "broker-sasl.properties"
LOG4J_CONFIG = HERE / "log4j2.yaml"

# A cold JVM formats storage and elects itself controller in 5-15 s on 2 cores;
# 90 s leaves room for a loaded CI machine before start() gives up.
START_TIMEOUT_S = 90.0
# Kafka flushes logs and closes its controller on SIGTERM within a few seconds.
STOP_TIMEOUT_S = 30.0


class BrokerError(RuntimeError):
    """The local broker could not be installed, started or stopped."""


@dataclass(frozen=True)
class LocalBroker:
    """A local broker's files and ports.

    ``root`` contains ``jars/`` (the Maven cache), ``data/`` (KRaft log folders),
    ``server.properties``, ``broker.log`` and ``broker.pid``. A secured broker also
    keeps its SASL passwords there, in ``sasl-passwords.json``.
    """

    root: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    jars: Path | None = None  # a shared jar cache; default root/jars
    secured: bool = False  # SASL/PLAIN logins and ACLs instead of open plaintext listeners

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def jars_dir(self) -> Path:
        return self.jars or self.root / "jars"

    @property
    def log_dir(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "broker.log"

    @property
    def properties_file(self) -> Path:
        return self.root / "server.properties"

    @property
    def password_file(self) -> Path:
        return self.root / sasl.PASSWORD_FILE_NAME

    def client_config(self, user: str = sasl.ADMIN_USER) -> dict[str, str]:
        """Return the librdkafka security settings of ``user``: empty for a plaintext broker.

        Raises sasl.CredentialsError when the password file has no password for ``user``.
        """
        if not self.secured:
            return {}
        passwords = sasl.read_passwords(self.password_file)
        if user not in passwords:
            raise sasl.CredentialsError(f"{self.password_file} contains no password for the SASL user {user!r}")
        return sasl.client_config(user, passwords[user])

    def started_secured(self) -> bool:
        """Return True when the last start of this broker folder was in secured mode."""
        try:
            return "sasl.enabled.mechanisms=" in self.properties_file.read_text()
        except FileNotFoundError:
            return False

    def install(self) -> None:
        """Fetch the broker jars with Maven unless they are already cached."""
        if any(self.jars_dir.glob("kafka_2.13-*.jar")):
            return
        if shutil.which("mvn") is None:
            raise BrokerError("Maven (mvn) was not found on PATH; install Maven 3.8+ to fetch the Kafka jars")
        log.info("fetching the Kafka broker jars with Maven into %s", self.jars_dir)
        self.jars_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = self.jars_dir.with_name("jars.partial")
        shutil.rmtree(staging, ignore_errors=True)
        build_dir = self.jars_dir.with_name("maven-build")
        command = [
            "mvn", "-q", "-B", "-f", str(POM), "package",
            f"-Djars.dir={staging}", f"-Dbuild.dir={build_dir}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"Maven failed to fetch the Kafka jars (exit {result.returncode}):\n{result.stdout[-2000:]}")
        staging.rename(self.jars_dir)

    def pid(self) -> int | None:
        """Return the pid of the running broker, or None when it is not running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def is_answering(self, client_config: Mapping[str, str] | None = None) -> bool:
        """Return True when the broker returns Kafka metadata.

        ``client_config`` adds security settings to the connection. Unset: none for a
        plaintext broker, and the admin's for a secured one.
        """
        # Imported here so that `clinops broker` works before the Python dependencies
        # are complete enough to import the client (for example during make install).
        from confluent_kafka.admin import AdminClient

        if client_config is None:
            try:
                client_config = self.client_config()
            except sasl.CredentialsError:
                return False
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0, **client_config})
        try:
            metadata = admin.list_topics(timeout=2)
        except Exception:  # noqa: BLE001 - any failure here means "not answering yet"
            return False
        return bool(metadata.brokers)

    def start(self) -> None:
        """Start the broker in the background and wait until it responds.

        1. Fetch the jars if they are missing.
        2. Write ``server.properties`` from the template. A secured broker first
           generates its missing passwords, and both files are readable by the owner only.
        3. Format KRaft storage on the first start.
        4. Launch the JVM detached, then poll until a metadata request succeeds.
        """
        if self.pid() is not None:
            if self.wait_until_answering(START_TIMEOUT_S):
                return
            raise BrokerError(f"broker process {self.pid()} is running but not responding; see {self.log_file}")
        self._check_ports_free()

        self.root.mkdir(parents=True, exist_ok=True)
        self.install()

        if self.secured:
            sasl.write_private(self.properties_file, self._render_secured_properties())
        else:
            self.properties_file.write_text(self._render_properties())

        if not (self.log_dir / "meta.properties").exists():
            self._format_storage()

        log.info("starting the Kafka broker on %s", self.bootstrap_servers)
        pid = self._spawn_detached(self._java_command("kafka.Kafka", str(self.properties_file)))
        self.pid_file.write_text(str(pid))
        if not self.wait_until_answering(START_TIMEOUT_S, pid):
            self.stop()
            raise BrokerError(f"the Kafka broker did not respond within {START_TIMEOUT_S:.0f} s; see {self.log_file}")
        log.info("Kafka broker ready on %s (pid %d)", self.bootstrap_servers, pid)

    def _spawn_detached(self, command: list[str]) -> int:
        """Start ``command`` in its own session with output to the broker log; return its pid.

        posix_spawn leaves no Popen object behind, so the broker outlives this process
        without a "still running" warning, and stop() reaps it by pid.
        """
        descriptor = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            return os.posix_spawn(
                command[0], command, dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, descriptor, 1),
                    (os.POSIX_SPAWN_DUP2, descriptor, 2),
                ],
                setsid=True,
            )
        finally:
            os.close(descriptor)

    def wait_until_answering(self, timeout_s: float, pid: int | None = None) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if pid is not None and not _is_alive(pid):
                return False
            if self.is_answering():
                return True
            time.sleep(0.5)
        return False

    def stop(self) -> bool:
        """Stop the broker with SIGTERM, then SIGKILL after a timeout. Return False if none ran."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        log.info("stopping the Kafka broker (pid %d)", pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _is_alive(pid):
            time.sleep(0.2)
        if _is_alive(pid):
            log.warning("the Kafka broker did not stop within %.0f s; killing pid %d", STOP_TIMEOUT_S, pid)
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _render_properties(self) -> str:
        template = string.Template(PROPERTIES_TEMPLATE.read_text())
        return template.substitute(
            port=self.port, controller_port=self.controller_port, log_dir=self.log_dir
        )

    def _render_secured_properties(self) -> str:
        """Render broker.properties with the keys of broker-sasl.properties replaced."""
        # Imported here because the role table imports the topic catalogue and its client.
        from infra.kafka.acls import ROLES

        role_users = tuple(role.user for role in ROLES)
        passwords = sasl.load_or_create_passwords(self.password_file, (sasl.ADMIN_USER, *role_users))
        overlay = string.Template(SECURED_PROPERTIES_TEMPLATE.read_text()).substitute(
            port=self.port, controller_port=self.controller_port, admin_user=sasl.ADMIN_USER,
            client_listener_jaas=sasl.broker_jaas_config(passwords, (sasl.ADMIN_USER, *role_users)),
            controller_listener_jaas=sasl.broker_jaas_config(passwords, (sasl.ADMIN_USER,)),
        )
        return replace_properties(self._render_properties(), overlay)

    def _format_storage(self) -> None:
        cluster_id = self._run_tool("kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1]
        self._run_tool(
            "kafka.tools.StorageTool", "format", "--standalone",
            "-t", cluster_id, "-c", str(self.properties_file),
        )

    def _run_tool(self, main_class: str, *args: str) -> str:
        result = subprocess.run(self._java_command(main_class, *args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"{main_class} {args[0]} failed (exit {result.returncode}): {result.stderr[-2000:]}")
        return result.stdout

    def _java_command(self, main_class: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java was not found on PATH; the Kafka broker needs Java 17 or newer")
        return [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp", str(self.jars_dir / "*"),
            main_class, *args,
        ]

    def _check_ports_free(self) -> None:
        for port in (self.port, self.controller_port):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    raise BrokerError(
                        f"port {port} on 127.0.0.1 is already in use; stop what listens there, "
                        "or choose other ports with CLINOPS_BROKER_PORT"
                    )


def replace_properties(base: str, overlay: str) -> str:
    r"""Drop from ``base`` every key that ``overlay`` sets, then append ``overlay``.

    >>> replace_properties("a=1\nb=2\n", "# new\nb=3\n")
    'a=1\n\n# new\nb=3\n'
    """
    overridden = {_property_key(line) for line in overlay.splitlines()} - {None}
    kept = [line for line in base.splitlines() if _property_key(line) not in overridden]
    return "\n".join(kept) + "\n\n" + overlay


def _property_key(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith(("#", "!")) or "=" not in stripped:
        return None
    return stripped.split("=", 1)[0].strip()


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of this process lingers as a zombie until reaped.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return waited == 0
