"""Goal-conditioned policies on frozen world-model embeddings: act without search.

    reverie policy train --checkpoint runs/tworoom [--method imagine|idm]
    reverie eval --checkpoint runs/tworoom --planner policy        # or policy+cem

``GoalPolicy`` maps (last k embeddings, goal embedding) to an action block; ``train_policy``
trains it by hindsight inverse dynamics or in the model's imagination; ``PolicyPlanner`` and
``PolicySeededCEM`` let the MPC loop use it like any planner.
"""

from __future__ import annotations

from reverie.policies.model import GoalPolicy, PolicyConfig
from reverie.policies.planner import (
    PolicyPlanner,
    PolicySeededCEM,
    imagined_episode,
    load_policy,
    policy_rollout,
)

__all__ = [
    "GoalPolicy",
    "PolicyConfig",
    "PolicyPlanner",
    "PolicySeededCEM",
    "imagined_episode",
    "load_policy",
    "policy_rollout",
]
