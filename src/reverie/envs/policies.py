"""Data-collection policies: random, scripted expert, a mix of both, and passive (no agent).

A policy is called once per control step with the env and a numpy Generator and returns an action.
The expert keeps moving after reaching a goal (a new goal is drawn), so expert episodes stay
informative for the whole collection length. The passive policy (Tabletop only) never acts: it
parks the pusher and moves the objects by scripted events instead, so a world model sees slides,
collisions, falls, bounces and occlusion (``reverie collect --env tabletop --policy passive``).

    policy = make_policy("mixed"); policy.reset(env, rng); action = policy(env, rng)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from reverie.envs.base import ReverieEnv

POLICIES = ("expert", "random", "mixed", "passive")


class Policy(Protocol):
    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None: ...

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray: ...


class RandomPolicy:
    """Uniform random actions held for a random 1–6 steps (covers space better than white noise)."""

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        self._hold, self._action = 0, env.random_action(rng)

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        if self._hold <= 0:
            self._action, self._hold = env.random_action(rng), int(rng.integers(1, 7))
        self._hold -= 1
        return self._action


class ExpertPolicy:
    """The env's scripted expert toward ``env.goal``; draws a fresh goal once it succeeds."""

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        pass

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        assert env.goal is not None
        if env.is_success(env.get_state(), env.goal):
            env.set_goal(env.sample_goal(rng))
        return np.asarray(env.expert_action(rng), np.float32)


class MixedPolicy:
    """Alternates expert and random segments of 5–20 steps (30% of segments random)."""

    def __init__(self, p_random: float = 0.3) -> None:
        self.p_random = p_random
        self.expert, self.random = ExpertPolicy(), RandomPolicy()

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        self.expert.reset(env, rng)
        self.random.reset(env, rng)
        self._left, self._use_random = 0, False

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        if self._left <= 0:
            self._use_random = bool(rng.random() < self.p_random)
            self._left = int(rng.integers(5, 21))
        self._left -= 1
        return (self.random if self._use_random else self.expert)(env, rng)


# ------------------------------------------------------------------------------------- passive
#: Where the passive policy parks the pusher: past the table's back-right corner (x, y in m).
PARK_XY = np.array([0.46, 0.46])
#: Screen track: it slides along x at a fixed y, turning round at +-SCREEN_TURN (m).
SCREEN_TURN = 0.45


def park_pusher(env: Any) -> None:
    """Put the pusher at rest at ``PARK_XY`` (the state's first two entries are its position)."""
    state = env.get_state()
    state[:2] = PARK_XY
    state[env.model.nq : env.model.nq + 2] = 0.0  # its velocity
    env.set_state(state)


def screen_x(x0: float, speed: float, t: int) -> float:
    """x of a screen that starts at ``x0`` and slides ``speed`` m per step (signed), turning round
    at +-SCREEN_TURN: a triangle wave, so its motion stays predictable from a few frames."""
    span = 2 * SCREEN_TURN
    u = (x0 + SCREEN_TURN + speed * t) % (2 * span)  # position along the unfolded track
    return float((u if u <= span else 2 * span - u) - SCREEN_TURN)


def rest_height(env: Any, i: int) -> float:
    """z of object ``i``'s centre when it rests on the table (its current size)."""
    from reverie.envs.tabletop import TABLE_TOP

    return TABLE_TOP + float(env.model.geom_size[env._geoms[i], 0])


def on_table(env: Any, i: int, state: np.ndarray | None = None) -> bool:
    """Is object ``i`` over the table top and not below it (resting, sliding or in the air)?"""
    from reverie.envs.tabletop import TABLE_HALF, TABLE_TOP

    pos = env.object_positions(state)[i]
    return bool(np.all(np.abs(pos[:2]) < TABLE_HALF) and pos[2] > TABLE_TOP)


class PassivePolicy:
    """No agent: the pusher is parked past a back corner and the action is always zero; scripted
    events move the world instead (Tabletop only).

    At reset, objects may be recoloured (p=0.5 each) or resized (p=0.25 each), one may start in
    the air (p=0.5), and a screen may slide back and forth across the table (p=0.5), usually just
    in front of an object so that it hides it for a moment. Each step, with probability
    ``p_event``, an object at rest gets a kick: on the table it is launched at the other object
    (collision), over the nearest edge (fall), in a random direction, or tossed up (bounce); on
    the floor it is tossed back onto the table (a long ballistic flight). All randomness comes
    from the given Generator, so an episode is a function of its seed."""

    def __init__(self, p_event: float = 0.2) -> None:
        self.p_event = p_event

    def reset(self, env: ReverieEnv, rng: np.random.Generator) -> None:
        if not all(hasattr(env, m) for m in ("launch", "set_occluder", "set_object_rgba")):
            raise ValueError(
                f"policy 'passive' needs an env with scripted events (tabletop), got "
                f"{env.short_name!r}"
            )
        from reverie.envs.mujoco_base import hsv_rgba

        e: Any = env
        park_pusher(e)
        n = e.n_objects
        for i in range(n):
            if rng.random() < 0.5:
                e.set_object_rgba(i, hsv_rgba(rng.random()))
            if rng.random() < 0.25:
                e.set_object_size(i, float(rng.uniform(0.7, 1.3)))
                pos = e.object_positions()[i]
                e.set_object_pose(i, [pos[0], pos[1], rest_height(e, i)])
        if rng.random() < 0.5:
            i = int(rng.integers(n))
            pos = e.object_positions()[i]
            e.set_object_pose(i, [pos[0], pos[1], pos[2] + rng.uniform(0.1, 0.4)])
        self._screen: tuple[float, float, float] | None = None
        if rng.random() < 0.5:
            speed = float(rng.uniform(0.03, 0.09) * rng.choice([-1.0, 1.0]))
            if rng.random() < 0.7:  # just in front of an object: it will be hidden for a while
                y = e.object_positions()[int(rng.integers(n)), 1] - rng.uniform(0.05, 0.1)
            else:
                y = rng.uniform(-0.4, 0.25)
            self._screen = (float(np.clip(y, -0.4, 0.3)), float(rng.uniform(-0.4, 0.4)), speed)
        self._t = 0
        self._move_screen(e)

    def _move_screen(self, env: Any) -> None:
        if self._screen is not None:
            y, x0, speed = self._screen
            env.set_occluder([screen_x(x0, speed, self._t), y])

    def __call__(self, env: ReverieEnv, rng: np.random.Generator) -> np.ndarray:
        e: Any = env
        self._t += 1
        self._move_screen(e)  # where it will be in the frame this step produces
        if rng.random() < self.p_event:
            state = e.get_state()
            nq = e.model.nq
            resting = [
                i
                for i in range(e.n_objects)
                if np.linalg.norm(state[nq + e._vadr[i] : nq + e._vadr[i] + 3]) < 0.2
            ]
            if resting:
                i = int(rng.choice(resting))
                if on_table(e, i, state):
                    self._launch(e, i, rng)
                elif e.object_positions(state)[i, 2] < 0.2:  # on the floor
                    self._toss_back(e, i, rng)
        return np.zeros(env.action_space.shape, np.float32)

    def _launch(self, env: Any, i: int, rng: np.random.Generator) -> None:
        pos = env.object_positions()
        kind = rng.choice(["at_other", "off_edge", "random", "toss"], p=[0.25, 0.25, 0.3, 0.2])
        others = [j for j in range(env.n_objects) if j != i and on_table(env, j)]
        if kind == "at_other" and others:
            d = pos[int(rng.choice(others)), :2] - pos[i, :2]
            speed = rng.uniform(0.8, 2.0)
        elif kind == "off_edge":
            axis = int(np.argmax(np.abs(pos[i, :2])))
            d = np.zeros(2)
            d[axis] = np.sign(pos[i, axis]) or 1.0
            d += rng.normal(0, 0.2, 2)
            speed = rng.uniform(1.2, 2.5)
        else:
            angle = rng.uniform(-np.pi, np.pi)
            d = np.array([np.cos(angle), np.sin(angle)])
            speed = rng.uniform(0.3, 2.0) if kind == "random" else rng.uniform(0.0, 0.8)
        v = np.zeros(3)
        v[:2] = d / max(float(np.linalg.norm(d)), 1e-9) * speed
        if kind == "toss":
            v[2] = rng.uniform(1.2, 2.8)
        env.launch(i, v)

    def _toss_back(self, env: Any, i: int, rng: np.random.Generator) -> None:
        """A ballistic throw from the floor that lands at a random spot on the table."""
        from reverie.envs.tabletop import TABLE_TOP

        pos = env.object_positions()[i]
        target = rng.uniform(-0.25, 0.25, 2)
        vz = rng.uniform(3.3, 3.8)
        g = -float(env.model.opt.gravity[2])
        if g <= 0:
            return
        rise = rest_height(env, i) - pos[2]  # from its height now up to resting on the table
        disc = vz * vz - 2 * g * rise
        if disc <= 0:
            return
        flight = (vz + np.sqrt(disc)) / g  # the descending crossing of the table height
        v = np.zeros(3)
        v[:2] = (target - pos[:2]) / flight
        v[2] = vz
        if TABLE_TOP > 0 and np.linalg.norm(v[:2]) < 3.0:  # far-off objects stay where they are
            env.launch(i, v)


def make_policy(name: str) -> Policy:
    if name == "expert":
        return ExpertPolicy()
    if name == "random":
        return RandomPolicy()
    if name == "mixed":
        return MixedPolicy()
    if name == "passive":
        return PassivePolicy()
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
