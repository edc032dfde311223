"""A real Ray cluster on loopback addresses, started with ``ray start`` (test helper).

The head listens on 127.0.0.2 and each worker node gets its own loopback
address, so the cluster has distinct nodes on one machine. Every process gets
``PYTHONPATH`` pointing at this checkout's ``src`` (the nodes import headwater),
each node a ``HEADWATER_HOME`` of its own (``RayCluster.node_home``), and temp dirs
and ports of its own; ``stop`` kills only this cluster's processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SRC = str(Path(__file__).resolve().parent.parent / "src")
RAY = str(Path(sys.executable).with_name("ray"))
HEAD_IP = "127.0.0.2"
#: The worker nodes of the standard test cluster (``standard_cluster``).
NODE_A, NODE_B = "127.0.0.3", "127.0.0.4"


def free_port(host: str = HEAD_IP) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RayNode:
    ip: str
    resources: str
    node_id: str = ""


@dataclass
class RayCluster:
    """A running cluster: its address, nodes and the env that reaches it."""

    address: str
    temp_dir: Path
    env: dict[str, str]
    nodes: list[RayNode] = field(default_factory=list)

    def node_home(self, ip: str) -> Path:
        """The node's HEADWATER_HOME (its own, as on a real cluster: built environments, caches)."""
        return self.temp_dir / "homes" / ip

    def _ray(self, *args: str, timeout: float = 120, ip: str | None = None) -> str:
        env = self.env if ip is None else {**self.env, "HEADWATER_HOME": str(self.node_home(ip))}
        p = subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}")
        return p.stdout

    def add_node(self, ip: str, num_cpus: int, resources: str = "{}", memory: int | None = None) -> RayNode:
        args = ["start", f"--address={self.address}", f"--node-ip-address={ip}", f"--num-cpus={num_cpus}",
                "--num-gpus=0", f"--resources={resources}", "--disable-usage-stats"]
        if memory is not None:
            args.append(f"--memory={memory}")
        self._ray(*args, ip=ip)
        node = RayNode(ip, resources)
        node.node_id = self._wait_node(ip)
        self.nodes.append(node)
        return node

    def _wait_node(self, ip: str, timeout: float = 60) -> str:
        code = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
                "print([n['NodeID'] for n in ray.nodes() if n['Alive'] and n['NodeManagerAddress']==sys.argv[2]])")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = subprocess.run([sys.executable, "-c", code, self.address, ip], env=self.env, capture_output=True,
                               text=True, timeout=120)
            ids = eval(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 and p.stdout.strip() else []
            if ids:
                return str(ids[0])
            time.sleep(0.5)
        raise RuntimeError(f"Ray node {ip} did not join the cluster")

    def raylet_pids(self, ip: str) -> list[int]:
        """Pids of this cluster's raylet of the node on ``ip`` (from /proc)."""
        mine = str(self.temp_dir).encode()
        return [pid for pid, cmd in _cmdlines().items()
                if cmd.split(b"\0")[0].endswith(b"raylet") and f"--node_ip_address={ip}".encode() in cmd.split(b"\0")
                and mine in cmd]

    def kill_node(self, ip: str) -> None:
        """SIGKILL the raylet of node ``ip`` and every process under it (its workers die with it)."""
        for pid in self.raylet_pids(ip):
            for child in _descendants(pid):
                _kill(child)
            _kill(pid)

    def stop(self) -> None:
        """Kill this cluster's processes only (``ray stop`` would stop every cluster on the machine).

        Its processes are those whose command line names its temp dir or its GCS address,
        and everything they started (workers, agents).
        """
        marks = (str(self.temp_dir).encode(), self.address.encode())
        roots = [pid for pid, cmd in _cmdlines().items() if any(m in cmd for m in marks)]
        doomed = set(roots)
        for pid in roots:
            doomed.update(_descendants(pid))
        for pid in doomed - _ancestors():  # never this process or what runs it
            _kill(pid)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _cmdlines() -> dict[int, bytes]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    out[int(name)] = f.read()
            except OSError:
                pass
    return out


def _ancestors() -> set[int]:
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def start_cluster(temp_dir: Path, head_cpus: int = 2, env: dict[str, str] | None = None) -> RayCluster:
    """Start a head node on 127.0.0.2 (``head_cpus`` CPUs); add worker nodes with ``add_node``.

    ``env`` is added to every node's environment (e.g. the S3 endpoint and credentials
    its tasks use to reach the datastore).
    """
    temp_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    node_env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "RAY_"))}
    node_env.update({"PYTHONPATH": SRC, "RAY_USAGE_STATS_ENABLED": "0", "TMPDIR": str(temp_dir),
                     "RAY_ADDRESS": f"{HEAD_IP}:{port}", **(env or {})})
    cluster = RayCluster(f"{HEAD_IP}:{port}", temp_dir, node_env)
    cluster._ray("start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={port}", f"--num-cpus={head_cpus}",
                 "--num-gpus=0", "--disable-usage-stats", "--include-dashboard=false",
                 f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
                 f"--temp-dir={temp_dir / 'ray'}", ip=HEAD_IP)
    head = RayNode(HEAD_IP, "{}")
    head.node_id = cluster._wait_node(HEAD_IP)
    cluster.nodes.append(head)
    return cluster


def standard_cluster(temp_dir: Path, env: dict[str, str] | None = None) -> RayCluster:
    """The tests' cluster: a head without CPUs, node A (2 CPUs) and node B (3 CPUs)."""
    cluster = start_cluster(temp_dir, head_cpus=0, env=env)
    try:
        cluster.add_node(NODE_A, 2)
        cluster.add_node(NODE_B, 3)
    except BaseException:
        cluster.stop()
        raise
    return cluster
