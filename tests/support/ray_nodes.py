"""A multi-node Ray cluster on this machine, started as users start one: `ray start --head`,
then `ray start --address=HEAD` for every other node, each with its own resources.

Token authentication is set up as Ray sets it up: the head finds a token (here through
RAY_AUTH_TOKEN_PATH instead of ~/.ray/auth_token, so that tests touch no home directory) and
turns token authentication on by itself; every other node and every driver needs
RAY_AUTH_MODE=token and the same token. Each node is `ray start --block` in a session of its
own, with its own --temp-dir and free ports; stopping a node ends only the processes of that
session (never `ray stop`, which would end every Ray cluster on the machine).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from support.cli import REPO

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 300  # a loaded 2-core machine starts a node in 20-30 s; an idle one in a few
START_ATTEMPTS = 4
PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--metrics-export-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--runtime-env-agent-port")  # fmt: skip


class NodeTimedOut(RuntimeError):
    """The node did not come up within one of Ray's fixed waits (a loaded machine)."""


def free_ports(count: int) -> list[int]:
    """Ports that are free now (held together while picked, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (zombies are only waiting for a parent to reap them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(entry.name))
            except OSError:  # ended while we looked
                continue
    return pids


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def actor_class(pid: int) -> str:
    """The class of the Ray actor that process `pid` runs: Ray titles an actor's process
    `ray::Class` or `ray::Class.method` (an idle worker `ray::IDLE`); '' for any other process."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""
    if not title.startswith("ray::"):
        return ""
    return (title.removeprefix("ray::").split(".")[0].split() or [""])[0]


class RayNode:
    """One `ray start --block` process and everything it started (its session)."""

    def __init__(self, args: list[str], temp_dir: Path, env: dict[str, str]) -> None:
        self.temp_dir, self.log = temp_dir, temp_dir.with_suffix(".log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", "--temp-dir", str(temp_dir), *args],
                                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def wait_started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in self.output():
            if self.process.poll() is not None or self.raylet_gave_up() or time.monotonic() > deadline:
                problem = NodeTimedOut if "timed out during startup" in self.output() or self.raylet_gave_up() else RuntimeError
                raise problem(f"ray start {' '.join(self.process.args[2:])} did not start:\n{self.output()[-3000:]}")
            time.sleep(0.5)

    def raylet_gave_up(self) -> bool:
        """The raylet waits a fixed 15 s for its agents (Python processes) to report their ports,
        then stops; a loaded machine can miss that."""
        return any("Timed out waiting for file" in text for text in self.logs("raylet.err"))

    def logs(self, pattern: str) -> list[str]:
        """The texts of the node's Ray log files named by `pattern` (e.g. worker-*.err)."""
        return [path.read_text(errors="replace") for path in self.temp_dir.glob(f"session_latest/logs/{pattern}")]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def node_id(self) -> str:
        """Ray's id of this node, from the port files the node writes into its own temp dir."""
        (path,) = self.temp_dir.glob("session_latest/dashboard_agent_listen_port_*")
        return path.name.rsplit("_", 1)[1]

    def raylet_pid(self) -> int:
        (pid,) = [pid for pid in session_pids(self.process.pid) if process_name(pid) == "raylet"]
        return pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM to `ray start --block` (it ends its node's processes), then SIGKILL to
        whatever of its session is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for _ in range(20):
            left = session_pids(self.process.pid)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.5)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


class RayCluster:
    """A head node and worker nodes; `env` is what a driver needs to connect."""

    def __init__(self) -> None:
        # short: Ray's socket paths under the temp dir must stay within the 107-byte limit
        self.directory = Path(tempfile.mkdtemp(prefix="pb-ray-"))
        token = self.directory / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        base = {**os.environ, "PATH": path, "PYTHONPATH": python_path, "RAY_AUTH_TOKEN_PATH": str(token),
                # Ray's waits for a raylet to register and for its agents to come up, for a loaded machine
                "RAY_raylet_start_wait_time_s": str(START_TIMEOUT_S), "RAY_agent_register_timeout_ms": str(START_TIMEOUT_S * 1000)}  # fmt: skip
        base.pop("RAY_ADDRESS", None)
        self.head_env = {key: value for key, value in base.items() if key != "RAY_AUTH_MODE"}  # Ray decides: a token exists
        self.env = {**base, "RAY_AUTH_MODE": "token"}  # the other nodes and drivers
        self.nodes: list[RayNode] = []
        self.address = self.dashboard = ""

    def start_head(self, num_cpus: int) -> RayNode:
        def args() -> list[str]:
            gcs, dashboard, client, *ports = free_ports(3 + len(PORT_FLAGS))
            self.dashboard = f"http://127.0.0.1:{dashboard}"
            return ["--head", "--port", str(gcs), "--dashboard-port", str(dashboard), "--ray-client-server-port", str(client),
                    "--num-cpus", str(num_cpus), *self._port_args(ports)]  # fmt: skip

        (head,) = self._start([args], self.head_env)
        (self.address,) = set(re.findall(r"ray start --address='([^']+)'", head.output()))
        return head

    def add_nodes(self, *num_cpus: int) -> list[RayNode]:
        """Worker nodes joining the head."""
        return self._start([lambda cpus=cpus: ["--address", self.address, "--num-cpus", str(cpus),
                                               *self._port_args(free_ports(len(PORT_FLAGS)))] for cpus in num_cpus], self.env)  # fmt: skip

    def _start(self, arg_makers: list[Callable[[], list[str]]], env: dict[str, str]) -> list[RayNode]:
        """Start the nodes one after another; a node that misses one of Ray's fixed waits (a
        loaded machine) is started again."""
        nodes = []
        for make_args in arg_makers:
            for attempt in range(1, START_ATTEMPTS + 1):
                node = self._launch(make_args, env)
                try:
                    node.wait_started()
                    break
                except NodeTimedOut:
                    node.stop()
                    self.nodes.remove(node)
                    if attempt == START_ATTEMPTS:
                        raise
            nodes.append(node)
        return nodes

    def _launch(self, make_args: Callable[[], list[str]], env: dict[str, str]) -> RayNode:
        node = RayNode(make_args(), self.directory / f"node{len(list(self.directory.glob('node*.log')))}", env)
        self.nodes.append(node)
        return node

    @staticmethod
    def _port_args(ports: list[int]) -> list[str]:
        return [part for flag, port in zip(PORT_FLAGS, ports) for part in (flag, str(port))]

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
