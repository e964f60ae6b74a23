"""The console scripts (``ros2 run fastpolicy_invdyn_ros <name>``): thin command lines over ``core``,
``sim`` and ``ros``. Each takes its options from a config dataclass (``cli``)."""
