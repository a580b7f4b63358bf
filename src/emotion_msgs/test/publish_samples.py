"""Publisher process of the messaging test: publishes every sample at 10 Hz until killed."""
import sys

import rclpy
from rclpy.node import Node

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from msg_samples import samples  # noqa: E402


class SamplePublisher(Node):

    def __init__(self) -> None:
        super().__init__('sample_publisher')
        self._samples = samples()
        self._pubs = {name: self.create_publisher(type(msg), f'samples/{name}', 10)
                      for name, msg in self._samples.items()}
        self.create_timer(0.1, self._tick)

    def _tick(self) -> None:
        for name, msg in self._samples.items():
            self._pubs[name].publish(msg)


def main() -> None:
    rclpy.init()
    node = SamplePublisher()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
