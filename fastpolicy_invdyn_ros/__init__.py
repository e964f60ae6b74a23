"""fastpolicy_invdyn_ros: diffusion state planner + inverse dynamics policy for robot arms.

The library modules (everything but ``node`` and ``sim.arm_node``) import no ROS module, so
training and evaluation run anywhere PyTorch and MuJoCo do.
"""
