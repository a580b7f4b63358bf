"""The one rclpy kit every node of the robot is built on (the only rclpy module of emotion_runtime).

What each of the six nodes would otherwise do its own way lives here once:

- **Parameters** are declared from a ``ParamSpec`` list with full ParameterDescriptors (real type,
  description, range, choices text, ``read_only`` unless the spec is ``live``) and validated at
  start with one message naming every bad parameter (ParameterError -> exit code 2).  An int for
  a float parameter (``-p rate:=30``, a YAML ``30``) is taken as a float, at start and at run
  time.  Live parameters go through ONE path: set-parameters callback -> ``check_value`` against
  the spec -> the node's ``check_parameters`` (cross-parameter rules) -> the node's
  ``on_parameters(changed)``, which applies them at once; a refused value returns
  ``successful=False`` with a reason naming the parameter and the rule.  rclpy itself refuses to
  set a read-only parameter.
- **Lifecycle**: ``KitNode`` is an ``rclpy.lifecycle.LifecycleNode``.  The constructor declares
  parameters and starts diagnostics only; the node's hooks ``configure`` (load + warm up models,
  build pipelines, create lifecycle publishers), ``activate`` (open devices, create subscriptions
  and timers), ``deactivate`` (stop, release devices) and ``cleanup`` (release models) run inside
  the transitions.  Subscriptions/timers made with ``active_subscription``/``active_timer`` are
  destroyed on deactivate, publishers made with ``lifecycle_publisher`` publish only while active
  and are destroyed on cleanup.  A hook that raises fails its transition (FAILURE, the reason in
  the log and on /diagnostics); the node stays in the previous state.
- **Diagnostics**: one DiagnosticsPublisher on /diagnostics at ~1 Hz from the first second, from
  a thread of its own so it keeps publishing while a transition (model load, warm-up) runs in
  the node's single-threaded executor: WARN "warming up: <what>" while a ``warming_up`` block runs, the
  node's ``report()`` while active, the lifecycle state (and why configure failed) otherwise.
- **main()**: ``run_node(NodeClass, args)`` inits, brings the node to active itself when its
  ``autostart`` parameter is true (so scripts and tests need no lifecycle manager), spins until
  Ctrl-C / external shutdown, releases everything, and exits 2 on a bad parameter and 1 when an
  autostarted node cannot configure or activate.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator, Optional, Sequence

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from .params import ParameterError, ParamSpec, check_value, coerce, validate
from .stats import ERROR, OK, WARN, RecentCounts, StatusReport

__all__ = ['KitNode', 'ConfigureError', 'DiagnosticsPublisher', 'declare_parameters',
           'descriptor_for', 'run_node', 'bring_up', 'AUTOSTART', 'CONFIGURE_DELAY_ENV']

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE

# Test hook: seconds every configure waits first (shown as "warming up"), to check that
# /diagnostics flows while a node is still configuring.
CONFIGURE_DELAY_ENV = 'EMOTION_CONFIGURE_DELAY_S'

AUTOSTART = ParamSpec(
    'autostart', True, 'Configure and activate the node by itself at start (lifecycle '
    'unconfigured -> inactive -> active). false: stay unconfigured until a lifecycle manager '
    '(ros2 lifecycle set <node> configure / activate) drives it.')

_PARAM_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


class ConfigureError(RuntimeError):
    """A transition hook cannot complete; the message says why (no traceback is logged)."""


# ----------------------------------------------------------------------------- parameters
def descriptor_for(spec: ParamSpec) -> ParameterDescriptor:
    """The full ParameterDescriptor of a spec (what `ros2 param describe` shows)."""
    kind = spec.kind
    if kind not in _PARAM_TYPES:
        raise TypeError(f'parameter {spec.name}: unsupported type {kind.__name__}')
    d = ParameterDescriptor(name=spec.name, type=_PARAM_TYPES[kind],
                            description=spec.description, read_only=not spec.live)
    constraints = spec.constraints()
    if spec.live:
        constraints = (constraints + '; ' if constraints else '') + 'live: takes effect at once'
    else:
        constraints = (constraints + '; ' if constraints else '') + 'read only after start'
    d.additional_constraints = constraints
    if spec.range is not None:
        lo, hi = spec.range
        if kind is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi),
                                                         step=0.0)]
        elif kind is int:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
    return d


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Validate the start values (overrides or defaults; ints made floats for float parameters),
    then declare every spec with its descriptor; returns {name: value}.

    Validating first means every bad value is reported at once, by name, as a ParameterError,
    instead of rclpy's exception about the first one.
    """
    overrides = node._parameter_overrides   # rclpy has no public accessor for the overrides
    values = {s.name: (overrides[s.name].value if s.name in overrides else s.default)
              for s in specs}
    validate(specs, values)
    for s in specs:
        if s.name in overrides and overrides[s.name].type_ != Parameter.Type.from_parameter_value(
                values[s.name]):
            overrides[s.name] = Parameter(s.name, value=values[s.name])
    node.declare_parameters('', [(s.name, s.default, descriptor_for(s)) for s in specs])
    return {s.name: node.get_parameter(s.name).value for s in specs}


# ----------------------------------------------------------------------------- diagnostics
class DiagnosticsPublisher:
    """Publishes one DiagnosticStatus on /diagnostics every ``period`` seconds (and at once).

    It publishes from a thread of its own, not from an executor callback: the node spins a
    single-threaded executor (so a callback may create and destroy publishers, e.g. the per-face
    ones, without another executor thread building a wait set over them), and /diagnostics still
    goes out while a long transition (model load, warm-up) runs in that executor.
    """

    def __init__(self, node: Node, hardware_id: str, report: Callable[[], StatusReport],
                 period: float = 1.0) -> None:
        self._node, self.hardware_id, self._report = node, hardware_id, report
        self._period = float(period)
        self._pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='diagnostics', daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            if not self._node.context.ok():
                return
            self.publish()

    def publish(self) -> None:
        try:
            r = self._report()
        except Exception as exc:  # noqa: BLE001 - diagnostics must never take the node down
            r = StatusReport()
            r.raise_level(ERROR, f'diagnostics failed: {type(exc).__name__}: {exc}')
        st = DiagnosticStatus(level=bytes([r.level]),
                              name=f'{self._node.get_name()}: {self.hardware_id}',
                              message=r.message, hardware_id=self.hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in r.values.items()])
        msg = DiagnosticArray(status=[st])
        with contextlib.suppress(Exception):   # context already shut down at exit
            msg.header.stamp = self._node.get_clock().now().to_msg()
            self._pub.publish(msg)

    def destroy(self) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0 * self._period + 1.0)


# ----------------------------------------------------------------------------- the node
class KitNode(LifecycleNode):
    """Base of every node: parameters, lifecycle plumbing, diagnostics (see the module doc).

    Subclasses call ``super().__init__(name, specs, hardware_id, **node_kwargs)`` and override
    the hooks they need: ``check_parameters``, ``configure``, ``activate``, ``deactivate``,
    ``cleanup``, ``on_parameters``, ``report``.  ``self.p`` holds the validated values.
    """

    def __init__(self, node_name: str, specs: Sequence[ParamSpec],
                 hardware_id: Any = '', **node_kwargs: Any) -> None:
        """``hardware_id``: the DiagnosticStatus hardware_id, or a function of the parameter
        values that gives it."""
        super().__init__(node_name, **node_kwargs)
        self.specs = list(specs) + ([AUTOSTART] if all(s.name != 'autostart' for s in specs)
                                    else [])
        self._spec_by_name = {s.name: s for s in self.specs}
        self._activity: Optional[str] = None
        self.failure: Optional[str] = None
        self.exit_code: Optional[int] = None
        self.configured = self.active = False
        self._active_entities: list = []
        self._configured_publishers: list = []
        self._autostart_timer = None
        # report() hooks: `self.recent('rejected', self.rejected)` = growth of a total in the last
        # RECENT_WINDOW_S seconds, so a WARN raised by an event clears once the events stop.
        self.recent = RecentCounts()
        self.p = declare_parameters(self, self.specs)
        self.check_parameters(self.p)          # cross-parameter rules: ParameterError at start
        self.diagnostics = DiagnosticsPublisher(
            self, (hardware_id(self.p) if callable(hardware_id) else hardware_id) or node_name,
            self._diagnostic_report,
            float(self.p.get('diagnostics_period', 1.0)))
        self.add_pre_set_parameters_callback(self._coerce_parameters)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.diagnostics.publish()

    # ------------------------------------------------------------------ hooks (override)
    def check_parameters(self, values: dict) -> None:
        """Rules across parameters; raise ParameterError naming them (start and live sets)."""

    def configure(self) -> None:
        """Load and warm up models, build pipelines, create lifecycle publishers."""

    def activate(self) -> None:
        """Open devices, create subscriptions and timers (``active_subscription``/``_timer``)."""

    def deactivate(self) -> None:
        """Stop work threads and release devices (subscriptions/timers are destroyed after)."""

    def cleanup(self) -> None:
        """Release models and pipelines (lifecycle publishers are destroyed after)."""

    def on_parameters(self, changed: dict) -> None:
        """Apply live parameters at once (``self.p`` is updated after this returns); raise
        ParameterError or ValueError to refuse them."""

    def report(self) -> StatusReport:
        """The node's own diagnostics while configured."""
        return StatusReport()

    # ------------------------------------------------------------------ helpers for hooks
    @contextlib.contextmanager
    def warming_up(self, what: str) -> Iterator[None]:
        """Mark a slow step (model load, warm-up): /diagnostics says "warming up: <what>" while
        it runs, and the log says how long it took."""
        self._activity = what
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._activity = None
        self.get_logger().info(f'{what}: done in {time.perf_counter() - t0:.2f} s')

    def lifecycle_publisher(self, msg_type: Any, topic: str, qos: Any, **kwargs: Any) -> Any:
        """A publisher that publishes only while active; destroyed on cleanup."""
        pub = self.create_lifecycle_publisher(msg_type, topic, qos, **kwargs)
        self._configured_publishers.append(pub)
        return pub

    def active_subscription(self, *args: Any, **kwargs: Any) -> Any:
        sub = self.create_subscription(*args, **kwargs)
        self._active_entities.append(sub)
        return sub

    def active_timer(self, *args: Any, **kwargs: Any) -> Any:
        timer = self.create_timer(*args, **kwargs)
        self._active_entities.append(timer)
        return timer

    @property
    def state_label(self) -> str:
        try:
            return self._state_machine.current_state[1]
        except Exception:  # noqa: BLE001 - destroyed node
            return 'unknown'

    # ------------------------------------------------------------------ transitions
    def _run_hook(self, what: str, hook: Callable[[], None]) -> bool:
        try:
            hook()
            return True
        except Exception as exc:  # noqa: BLE001 - a transition fails, the node stays up
            reason = str(exc) if isinstance(exc, (ConfigureError, ParameterError)) \
                else f'{type(exc).__name__}: {exc}'
            self.failure = f'{what} failed: {reason}'
            self.get_logger().error(self.failure)
            return False

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.failure = None
        delay = float(os.environ.get(CONFIGURE_DELAY_ENV, '0') or 0)
        if delay > 0:
            with self.warming_up(f'configure held for {delay:g} s ({CONFIGURE_DELAY_ENV})'):
                time.sleep(delay)
        if not self._run_hook('configure', self.configure):
            self._run_hook('cleanup after the failed configure', self.cleanup)
            self._destroy_publishers()
            return FAILURE
        self.configured = True
        self.get_logger().info('configured')
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        super().on_activate(state)             # enables the lifecycle publishers
        if not self._run_hook('activate', self.activate):
            super().on_deactivate(state)
            self._run_hook('deactivate after the failed activate', self.deactivate)
            self._destroy_active()
            return FAILURE
        self.active = True
        self.failure = None
        self.get_logger().info('active')
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_active()
        self.get_logger().info('inactive')
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_configured()
        self.get_logger().info('cleaned up (unconfigured)')
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        return SUCCESS

    def _stop_active(self) -> None:
        if not self.active:
            return
        self.active = False
        with contextlib.suppress(Exception):
            LifecycleNode.on_deactivate(self, None)      # disables the lifecycle publishers
        self._run_hook('deactivate', self.deactivate)
        self._destroy_active()

    def _stop_configured(self) -> None:
        if not self.configured:
            return
        self.configured = False
        self._run_hook('cleanup', self.cleanup)
        self._destroy_publishers()

    def release(self) -> None:
        """Deactivate and clean up whatever is active/configured (shutdown, exit; idempotent)."""
        self._stop_active()
        self._stop_configured()

    def destroy_node(self) -> None:
        self.diagnostics.destroy()
        super().destroy_node()

    def _destroy_active(self) -> None:
        entities, self._active_entities = self._active_entities, []
        for e in entities:
            with contextlib.suppress(Exception):
                if hasattr(e, 'timer_period_ns'):
                    self.destroy_timer(e)
                else:
                    self.destroy_subscription(e)

    def _destroy_publishers(self) -> None:
        pubs, self._configured_publishers = self._configured_publishers, []
        for pub in pubs:
            with contextlib.suppress(Exception):
                self.destroy_lifecycle_publisher(pub)

    # ------------------------------------------------------------------ parameters at run time
    def _coerce_parameters(self, params: list) -> list:
        out = []
        for p in params:
            spec = self._spec_by_name.get(p.name)
            if spec is not None and spec.kind is float and p.type_ == Parameter.Type.INTEGER:
                p = Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
            out.append(p)
        return out

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        changed = {}
        for p in params:
            spec = self._spec_by_name.get(p.name)
            if spec is None:
                continue                        # rclpy's own (use_sim_time, ...)
            if not spec.live:
                return SetParametersResult(successful=False,
                                           reason=f'{p.name} is read only after start')
            value = coerce(spec, p.value)
            msg = check_value(spec, value)
            if msg:
                return SetParametersResult(successful=False, reason=f'{p.name}={value!r}: {msg}')
            changed[p.name] = value
        if not changed:
            return SetParametersResult(successful=True)
        try:
            self.check_parameters({**self.p, **changed})
            self.on_parameters(dict(changed))
        except (ParameterError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.p.update(changed)
        self.get_logger().info('parameters changed: '
                               + ', '.join(f'{k}={v!r}' for k, v in changed.items()))
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ diagnostics
    def _diagnostic_report(self) -> StatusReport:
        label = self.state_label
        activity = self._activity
        if activity:
            r = StatusReport()
            r.raise_level(WARN, f'warming up: {activity}')
        elif self.active and label == 'active':
            r = self.report()
        elif self.failure:
            r = StatusReport()
            r.raise_level(ERROR, self.failure)
        else:
            r = StatusReport()
            r.raise_level(OK, {'unconfigured': 'unconfigured (waiting for configure)',
                               'inactive': 'inactive (configured, not publishing)'}
                          .get(label, label))
        r.add('lifecycle_state', label)
        return r

    # ------------------------------------------------------------------ autostart
    def start_autostart(self) -> None:
        """Configure and activate from the executor (diagnostics keep flowing meanwhile)."""
        self._autostart_timer = self.create_timer(0.01, self._autostart)

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        for name, trigger in (('configure', self.trigger_configure),
                              ('activate', self.trigger_activate)):
            if trigger() != SUCCESS:
                self.get_logger().fatal(f'autostart: {name} failed, exiting: '
                                        f'{self.failure or "see the log above"}')
                self.diagnostics.publish()
                self.exit_code = 1
                return


def bring_up(node: KitNode) -> KitNode:
    """Configure and activate ``node`` in the calling thread (in-process tests, benches);
    raises RuntimeError with the reason when a transition fails."""
    for name, trigger in (('configure', node.trigger_configure),
                          ('activate', node.trigger_activate)):
        if trigger() != SUCCESS:
            raise RuntimeError(f'{node.get_name()}: {name} failed: {node.failure}')
    return node


def run_node(factory: Callable[[], KitNode], args: Optional[list] = None,
             linger_s: float = 1.0) -> int:
    """The main() of every node: init, build, autostart, spin until Ctrl-C or shutdown, release.

    Exit codes: 0 normal end; 2 a bad parameter (the message names it); 1 an autostarted node
    that could not configure or activate (e.g. no valid model bundle), after ``linger_s``
    seconds in which its ERROR keeps going out on /diagnostics.
    """
    rclpy.init(args=args)
    node: Optional[KitNode] = None
    executor = SingleThreadedExecutor()
    code = 0
    try:
        node = factory()
        executor.add_node(node)
        if node.p.get('autostart', True):
            node.start_autostart()
        else:
            node.get_logger().info('autostart is false: waiting for lifecycle transitions')
        while rclpy.ok() and node.exit_code is None:
            executor.spin_once(timeout_sec=0.1)
        if node.exit_code:
            end = time.monotonic() + linger_s
            while rclpy.ok() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.1)
            code = node.exit_code
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ParameterError as exc:
        print(f'[FATAL] {exc}', file=sys.stderr, flush=True)
        code = 2
    finally:
        if node is not None:
            with contextlib.suppress(Exception):
                node.release()
            node.diagnostics.destroy()
            with contextlib.suppress(Exception):
                executor.remove_node(node)
            with contextlib.suppress(Exception):
                node.destroy_node()
        with contextlib.suppress(Exception):
            executor.shutdown(timeout_sec=5.0)
        rclpy.try_shutdown()
    return code
