"""Private ROS domains: a domain one run holds is never handed to another run on the machine."""
from __future__ import annotations

import subprocess
import sys

from fastpolicy_invdyn_ros.ros.processes import DOMAIN_IDS, DOMAINS_HELD, private_domain_id

CLAIM_FIRST = """
import random, sys
from fastpolicy_invdyn_ros.ros import processes
wanted = int(sys.argv[1])
random.sample = lambda population, k: [wanted] + [d for d in population if d != wanted]
print(processes.private_domain_id())
"""


def test_a_domain_held_here_is_not_given_to_another_process_and_is_given_once_released() -> None:
    held = private_domain_id()
    other = subprocess.run([sys.executable, "-c", CLAIM_FIRST, str(held)], capture_output=True, text=True, check=True)
    assert int(other.stdout) != held and int(other.stdout) in DOMAIN_IDS, "the other run would share the domain"
    newer = [private_domain_id() for _ in range(DOMAINS_HELD)]
    assert len({held, *newer}) == DOMAINS_HELD + 1, "a process never gets a domain it still holds"
    again = subprocess.run([sys.executable, "-c", CLAIM_FIRST, str(held)], capture_output=True, text=True, check=True)
    assert int(again.stdout) == held, "the oldest claim is released after DOMAINS_HELD newer ones"
