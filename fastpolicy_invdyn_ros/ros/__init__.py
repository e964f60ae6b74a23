"""The ROS 2 layer: the ``invdyn_policy`` lifecycle node, the simulator and expert nodes, and their helpers.

Nodes are thin wiring over ``core`` (and ``sim`` for the simulator's nodes; the policy node never
imports ``sim``): parameters from the config dataclasses (``parameters``), checked inputs
(``inputs``), tick timing (``tick_phase``, ``tick_stats``), low-rate work a slice per tick
(``sliced_job``), real-time threads and loops (``realtime``, ``periodic``), running a node as a
process (``common.run_node``), and the processes and monitor of a closed loop (``processes``,
``monitor``, ``closed_loop``) that the demo, the benchmark and the tests use.
"""
