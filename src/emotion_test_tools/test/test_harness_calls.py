"""RosHarness.call / change_state against a fake lifecycle server over real DDS.

The fake answers late or not at all on purpose, as a Fast DDS service does when it drops a
response: a lost request is sent again, a transition still running is waited for and not sent
twice, and a transition whose answer is lost counts as done once the node is in its goal state.
"""
from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip('rclpy')

from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.callback_groups import ReentrantCallbackGroup  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402

from emotion_test_tools.dds import RosHarness, isolated_domain  # noqa: E402


class FakeLifecycleServer:
    """`/fake/get_state` and `/fake/change_state` served on threads of their own.

    `behaviour(n, server)` runs for the n-th ChangeState request (1-based) and returns its
    `success`; it may block on `server.release`, which the test sets when it ends.
    """

    def __init__(self, behaviour, lose_first_get=False):
        self.behaviour = behaviour
        self.lose_first_get = lose_first_get
        self.state = 'unconfigured'
        self.requests = 0
        self.get_requests = 0
        self.release = threading.Event()
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('fake', context=self.context)
        group = ReentrantCallbackGroup()
        self.node.create_service(GetState, '/fake/get_state', self._get, callback_group=group)
        self.node.create_service(ChangeState, '/fake/change_state', self._change,
                                 callback_group=group)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _get(self, request, response):
        self.get_requests += 1
        if self.lose_first_get and self.get_requests == 1:
            self.release.wait(30)
        response.current_state.label = self.state
        return response

    def _change(self, request, response):
        self.requests += 1
        response.success = self.behaviour(self.requests, self)
        return response

    def close(self):
        self.release.set()
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _run(behaviour):
    with isolated_domain():
        server = FakeLifecycleServer(behaviour)
        try:
            with RosHarness('harness_call_test') as ros:
                done = ros.change_state('fake', Transition.TRANSITION_CONFIGURE, timeout=20,
                                        resend_after=1.0)
                return done, server.requests, server.state
        finally:
            server.close()


def test_a_lost_request_is_sent_again():
    def behaviour(n, server):
        if n == 1:                    # never answered while the test runs, state unchanged
            server.release.wait(30)
            return False
        server.state = 'inactive'
        return True
    assert _run(behaviour) == (True, 2, 'inactive')


def test_a_running_transition_is_waited_for_not_sent_twice():
    def behaviour(n, server):
        server.state = 'configuring'
        server.release.wait(3.0)      # longer than resend_after
        server.state = 'inactive'
        return True
    assert _run(behaviour) == (True, 1, 'inactive')


def test_a_lost_answer_counts_once_the_goal_state_is_reached():
    def behaviour(n, server):
        server.state = 'inactive'     # done, but the answer never comes
        server.release.wait(30)
        return True
    assert _run(behaviour) == (True, 1, 'inactive')


def test_a_failed_transition_is_reported_as_failed():
    def behaviour(n, server):
        return False                  # configure failed: the node stays unconfigured
    assert _run(behaviour) == (False, 1, 'unconfigured')


def test_a_plain_call_is_resent_until_answered():
    with isolated_domain():
        server = FakeLifecycleServer(lambda n, server: True, lose_first_get=True)
        try:
            with RosHarness('harness_plain_call_test') as ros:
                answer = ros.call(GetState, '/fake/get_state', GetState.Request(), timeout=20,
                                  resend_after=1.0)
                assert answer is not None and answer.current_state.label == 'unconfigured'
                assert server.get_requests == 2
                assert ros.call(GetState, '/fake/none', GetState.Request(), timeout=1) is None
        finally:
            server.close()
