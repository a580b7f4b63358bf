"""Run real ROS 2 nodes in tests without letting DDS traffic leave the machine.

Why a module of its own: every package's node tests need the same three things (a domain id nobody
else uses at the same time, an environment that keeps discovery on localhost, and node processes
whose output is kept for the failure message), and doing them three different ways is how tests
start to talk to each other.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import rclpy
from ament_index_python.packages import get_package_prefix
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor

_LOCK_DIR = Path(tempfile.gettempdir()) / 'emotion_dds_domains'
# Domain ids 0..101 are valid for Fast DDS on Linux; keep clear of 0 (the default) and of the ids a
# developer's own robot is likely to use.
_DOMAIN_RANGE = range(60, 101)


def loopback_only() -> bool:
    """True when this process sees no network device but `lo` (an `unshare -rn` namespace).

    Reads /proc/net/dev, which belongs to the process's network namespace (/sys/class/net shows
    the namespace of whoever mounted sysfs, so it still lists the host's devices).
    """
    try:
        lines = Path('/proc/net/dev').read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(':', 1)[0].strip() for line in lines] == ['lo']


@contextlib.contextmanager
def allocate_domain_id() -> Iterator[int]:
    """Hold a ROS_DOMAIN_ID that no other test on this machine holds, until the block ends."""
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % len(_DOMAIN_RANGE)
    ids = list(_DOMAIN_RANGE[start:]) + list(_DOMAIN_RANGE[:start])
    for domain_id in ids:
        fd = os.open(_LOCK_DIR / f'{domain_id}.lock', os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield domain_id
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    raise RuntimeError(f'no free ROS_DOMAIN_ID in {_DOMAIN_RANGE.start}..{_DOMAIN_RANGE.stop - 1}')


def ros_env(domain_id: int, base: Optional[dict] = None) -> dict:
    """The environment for a ROS process of a test: its own domain, discovery on localhost only."""
    env = dict(os.environ if base is None else base)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env.pop('ROS_STATIC_PEERS', None)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env.setdefault('ROS_LOG_DIR', str(Path(tempfile.gettempdir()) / 'emotion_ros_logs'))
    env['PYTHONUNBUFFERED'] = '1'
    return env


@contextlib.contextmanager
def isolated_domain() -> Iterator[int]:
    """Allocate a domain and set it (and LOCALHOST discovery) in this process's environment.

    rclpy reads ROS_DOMAIN_ID when a context is initialised, so in-process participants created
    inside the block join the same isolated domain as the node processes started with ros_env().
    """
    with allocate_domain_id() as domain_id:
        saved = {k: os.environ.get(k) for k in
                 ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOG_DIR')}
        os.environ.update({k: v for k, v in ros_env(domain_id).items()
                           if k in saved})
        try:
            yield domain_id
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def executable_path(package: str, executable: str) -> str:
    """Path of a colcon-installed node executable (install/<pkg>/lib/<pkg>/<exe>)."""
    path = Path(get_package_prefix(package)) / 'lib' / package / executable
    if not path.exists():
        raise FileNotFoundError(f'{package}/{executable} is not installed at {path}; '
                                'run scripts/setup.sh (colcon build) first')
    return str(path)


class NodeProcess:
    """A node started as its own process, with stdout and stderr kept for failure messages."""

    def __init__(self, package: str, executable: str, args: Optional[list] = None,
                 env: Optional[dict] = None, ros_args: Optional[list] = None,
                 params: Optional[dict] = None, cwd: Optional[str] = None) -> None:
        cmd = [executable_path(package, executable)] + list(args or [])
        extra = list(ros_args or [])
        for key, value in (params or {}).items():
            extra += ['-p', f'{key}:={_param_literal(value)}']
        if extra:
            cmd += ['--ros-args'] + extra
        self.name = f'{package}/{executable}'
        self.cmd = cmd
        self._log = tempfile.NamedTemporaryFile(prefix=f'{executable}-', suffix='.log',
                                                delete=False)
        self._final: Optional[str] = None
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log_path(self) -> str:
        """The file the process writes to (removed by ``close``)."""
        return self._log.name

    def output(self) -> str:
        """Everything the process printed so far (kept after ``close``)."""
        if self._final is not None:
            return self._final
        self._log.flush()
        return Path(self._log.name).read_text(errors='replace')

    def close(self) -> int:
        """Stop the process (returns its exit code, as ``stop``) and remove its log file from
        /tmp, keeping the text for ``output()``: every test run would otherwise leave one file
        per node behind."""
        code = self.stop()
        if self._final is None:
            self._final = self.output()
            self._log.close()
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
        return code

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (as Ctrl-C would), then SIGKILL if it does not end in time; returns the code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL at once: a crash as the rest of the graph would see it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def __enter__(self) -> 'NodeProcess':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _param_literal(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (list, tuple)):
        return '[' + ','.join(_param_literal(v) for v in value) + ']'
    return str(value)


# Lifecycle states a node rests in (the others, 'configuring' and so on, are mid-transition).
_STABLE_STATES = ('unconfigured', 'inactive', 'active', 'finalized')


class RosHarness:
    """An rclpy context and node in the test process, spun on a background thread.

    Use it to publish inputs to and collect outputs from node processes in the same domain.
    """

    def __init__(self, name: str = 'test_harness') -> None:
        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._stop = False
        self._clients: dict = {}
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop and self.context.ok():
            self._executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type: Any, topic: str, qos: Any = 10) -> list:
        """Subscribe and return the list that received messages are appended to."""
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def publisher(self, msg_type: Any, topic: str, qos: Any = 10) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for(self, predicate: Callable[[], bool], timeout: float,
                 interval: float = 0.05) -> bool:
        """Poll `predicate` until it holds or `timeout` seconds pass; returns whether it held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 15.0) -> bool:
        return self.wait_for(lambda: publisher.get_subscription_count() >= count, timeout)

    def _client(self, srv_type: Any, name: str) -> Any:
        key = (srv_type, name)
        if key not in self._clients:
            self._clients[key] = self.node.create_client(srv_type, name)
        return self._clients[key]

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 30.0,
             resend_after: Optional[float] = 5.0) -> Any:
        """Call service `name` and return its response, or None if none came within `timeout`.

        A request is sent again when no response came within `resend_after` seconds (None: never):
        a Fast DDS service drops its response when the client's response reader has not matched
        within 100 ms of the request (ros2/rmw_fastrtps#390, #467), which a loaded machine can
        miss right after discovery. Resend only requests whose repetition is harmless (queries,
        parameter sets); lifecycle transitions go through `change_state`.
        """
        client = self._client(srv_type, name)
        deadline = time.monotonic() + timeout
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        futures = []
        while time.monotonic() < deadline:
            futures.append(client.call_async(request))
            wait = deadline - time.monotonic()
            if resend_after is not None:
                wait = min(wait, resend_after)
            done = self._first_done(futures, wait)
            if done is not None:
                return done.result()
        return None

    def _first_done(self, futures: list, timeout: float) -> Any:
        """The first of ``futures`` to complete within ``timeout`` seconds, or None."""
        if self.wait_for(lambda: any(f.done() for f in futures), max(timeout, 0.0)):
            return next(f for f in futures if f.done())
        return None

    def state(self, node: str, timeout: float = 30.0) -> Optional[str]:
        """Node `node`'s lifecycle state label ('inactive', ...), or None if it did not answer."""
        answer = self.call(GetState, f'/{node.lstrip("/")}/get_state', GetState.Request(),
                           timeout)
        return None if answer is None else answer.current_state.label

    def change_state(self, node: str, transition_id: int, timeout: float = 30.0,
                     resend_after: float = 5.0) -> Optional[bool]:
        """Ask node `node` for lifecycle transition `transition_id`; whether it succeeded, or None
        if the node did not answer within `timeout`.

        A transition is not resent blindly (a second 'activate' would fail where the first
        succeeded): when no response came within `resend_after` seconds the node's state is
        asked for; the transition counts as done if the node is in the transition's goal state,
        is waited for while the node is mid-transition, and is asked for again if the node rests
        in another state.
        """
        goal = {Transition.TRANSITION_CONFIGURE: 'inactive',
                Transition.TRANSITION_CLEANUP: 'unconfigured',
                Transition.TRANSITION_ACTIVATE: 'active',
                Transition.TRANSITION_DEACTIVATE: 'inactive',
                Transition.TRANSITION_UNCONFIGURED_SHUTDOWN: 'finalized',
                Transition.TRANSITION_INACTIVE_SHUTDOWN: 'finalized',
                Transition.TRANSITION_ACTIVE_SHUTDOWN: 'finalized'}[transition_id]
        request = ChangeState.Request()
        request.transition.id = transition_id
        name = f'/{node.lstrip("/")}/change_state'
        client = self._client(ChangeState, name)
        deadline = time.monotonic() + timeout
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        futures = [client.call_async(request)]
        while time.monotonic() < deadline:
            done = self._first_done(futures, min(resend_after, deadline - time.monotonic()))
            if done is not None:
                return bool(done.result().success)
            state = self.state(node, timeout=max(deadline - time.monotonic(), 0.0))
            if state == goal:
                return True
            if state in _STABLE_STATES:      # not mid-transition: the request was lost
                futures.append(client.call_async(request))
        return None

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self._executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)

    def __enter__(self) -> 'RosHarness':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
