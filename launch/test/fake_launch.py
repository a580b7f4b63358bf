"""A minimal stand-in for ROS `launch` / `launch_ros`, for machines where they are not installed.

Why: the launch files must still be executed by the tests here (an import error or a wrong keyword
would otherwise only show on a robot). The fakes record what the launch file builds: declared
arguments, Node keyword arguments and processes, and run OpaqueFunctions against a context whose
launch configurations are the declared defaults plus the test's overrides.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class _Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class FakeContext:
    def __init__(self, configs: dict) -> None:
        self.launch_configurations = dict(configs)


class LaunchConfiguration:
    def __init__(self, name: str, default: Any = None) -> None:
        self.name, self.default = name, default

    def perform(self, context: FakeContext) -> str:
        if self.name in context.launch_configurations:
            return context.launch_configurations[self.name]
        if self.default is None:
            raise KeyError(f'launch configuration {self.name!r} is not declared')
        return self.default


class DeclareLaunchArgument(_Recorded):
    def __init__(self, name: str, default_value: Any = None, description: str = '',
                 **kwargs: Any) -> None:
        super().__init__(name, default_value=default_value, description=description, **kwargs)
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction(_Recorded):
    def __init__(self, function: Any, args: Any = None, kwargs: Any = None) -> None:
        super().__init__(function=function)
        self.function = function


class LaunchDescription:
    def __init__(self, entities: list) -> None:
        self.entities = list(entities)

    def expand(self, overrides: dict | None = None) -> list:
        """Run the description the way `ros2 launch` would: arguments, then opaque functions."""
        configs = {e.name: e.default_value for e in self.entities
                   if isinstance(e, DeclareLaunchArgument)}
        configs.update(overrides or {})
        context = FakeContext(configs)
        out = []
        for entity in self.entities:
            if isinstance(entity, OpaqueFunction):
                out += list(entity.function(context) or [])
            elif not isinstance(entity, DeclareLaunchArgument):
                out.append(entity)
        return out


class Node(_Recorded):
    pass


def is_state_publisher(action: Any) -> bool:
    """A launch_ros Node of robot_state_publisher (robot.launch.py starts one for the head's TF;
    it is not part of the node graph of emotion_bringup.graph)."""
    return isinstance(action, Node) and action.kwargs.get('package') == 'robot_state_publisher'


class LifecycleNode(Node):
    """launch_ros.actions.LifecycleNode: name and namespace are required keywords."""

    def __init__(self, *, name: Any, namespace: Any, **kwargs: Any) -> None:
        super().__init__(name=name, namespace=namespace, **kwargs)


class ExecuteProcess(_Recorded):
    pass


class RegisterEventHandler(_Recorded):
    pass


class OnProcessExit(_Recorded):
    pass


class EmitEvent(_Recorded):
    pass


class Shutdown(_Recorded):
    pass


class LogInfo(_Recorded):
    pass


class SetEnvironmentVariable(_Recorded):
    pass


@contextmanager
def fake_launch_modules() -> Iterator[None]:
    """Install the fakes as `launch`, `launch.actions`, ... for the duration of the block."""
    names = {
        'launch': {'LaunchDescription': LaunchDescription},
        'launch.actions': {'DeclareLaunchArgument': DeclareLaunchArgument,
                           'OpaqueFunction': OpaqueFunction, 'ExecuteProcess': ExecuteProcess,
                           'RegisterEventHandler': RegisterEventHandler, 'EmitEvent': EmitEvent,
                           'LogInfo': LogInfo, 'SetEnvironmentVariable': SetEnvironmentVariable},
        'launch.substitutions': {'LaunchConfiguration': LaunchConfiguration},
        'launch.event_handlers': {'OnProcessExit': OnProcessExit},
        'launch.events': {'Shutdown': Shutdown},
        'launch_ros': {},
        'launch_ros.actions': {'Node': Node, 'LifecycleNode': LifecycleNode},
    }
    saved = {n: sys.modules.get(n) for n in names}
    for name, attrs in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def load_launch_file(path: Path) -> Any:
    """Import a *.launch.py file as a module (it must be imported inside fake_launch_modules)."""
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
