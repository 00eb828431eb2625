"""Image → ``SceneSpec`` by analysis by synthesis: propose objects from the frame, then fit each
by rendering candidates and comparing pixels (CEM over kind, position, size and yaw).

    from reverie.scenes.fit import fit_image
    result = fit_image(frame)           # frame uint8 (Hi, Wi, 3) from the tabletop camera
    result.spec                         # objects: kind, colour, size, pose (x, y), yaw
    result.loss                         # final mean squared pixel error (0-1 scale)

Assumes the family's standard camera (a frame rendered by ``make("tabletop", scene=...)`` with
the default ``Camera``). Steps:

0. *Light.* The empty table is rendered under a grid of (diffuse, ambient) levels over the
   family's ranges, then a finer grid around the best; the level whose render is nearest the
   frame (median absolute pixel error: objects are outliers) lights every later render. On the
   horizontal table only one combination of the two is visible, so the recovered pair can differ
   from the true one while rendering the scene the same.
1. *Propose.* Every pixel is given the nearest of the named colours' rendered appearances (or
   none, when it is nearer the empty table, floor or pusher); each 4-connected patch of one colour
   of at least ``MIN_PIXELS`` pixels is an object. Its centre ray meets the plane of a
   resting default-sized object: the first guess of its position.
2. *Fit.* One fitting model holds every kind for each object slot (unused ones parked out of
   view); for each object and each kind, CEM searches (x, y, size, yaw) minimising the squared
   pixel error in a window around the patch, the other objects drawn at their current fits.
   A second sweep refits each object's two best kinds with the neighbours' fits; the kind with
   the lowest error wins.

Mass, friction and bounciness are not visible in one frame: they keep their defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from reverie.envs import mujoco_base  # noqa: F401  (chooses the GL backend before mujoco loads)
from reverie.io import ReverieError
from reverie.scenes.spec import (
    COLOURS,
    DEFAULTS,
    KINDS,
    MAX_OBJECTS,
    RANGES,
    Light,
    ObjectSpec,
    SceneSpec,
)

import mujoco  # noqa: E402  isort: skip

MIN_PIXELS = 2  # least patch size taken as an object (64×64: a 2.7 cm ball can show 3 pixels)
POPULATION = 32  # CEM candidates per iteration
ITERATIONS = 6
ELITES = 6
WINDOW = 6  # pixels of margin around a patch in which candidates are scored
PARKED = (10.0, 10.0, 0.1)  # where unused slots wait (off camera)


@dataclass(frozen=True)
class FitResult:
    """The fitted scene and how well its render matches the frame."""

    spec: SceneSpec
    loss: float
    """Mean squared pixel error of the fitted scene's render (pixels in [0, 1])."""
    renders: int
    """Frames rendered during the fit (its cost)."""


class _Fitter:
    """A render-only MuJoCo model: table, pusher, and ``MAX_OBJECTS`` slots of each kind."""

    def __init__(self, size: int) -> None:
        from reverie.envs.tabletop_scene import tabletop_xml
        from reverie.scenes.mjcf import _object_xml

        bodies = []
        for s in range(MAX_OBJECTS):
            for kind in KINDS:
                o = ObjectSpec(kind, "white", pose=PARKED[:2])
                bodies.append(_object_xml(f"s{s}_{kind}", o, PARKED[2]))
        self.size = size
        self.model = mujoco.MjModel.from_xml_string(tabletop_xml(size, "".join(bodies)))
        self.data = mujoco.MjData(self.model)
        self.renderer = mujoco.Renderer(self.model, size, size)
        m = self.model
        self.geom = {
            (s, k): mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"s{s}_{k}")
            for s in range(MAX_OBJECTS)
            for k in KINDS
        }
        joint = mujoco.mjtObj.mjOBJ_JOINT
        self.qadr = {
            (s, k): int(m.jnt_qposadr[mujoco.mj_name2id(m, joint, f"s{s}_{k}")])
            for s, k in self.geom
        }
        self.size0 = {key: m.geom_size[g].copy() for key, g in self.geom.items()}
        self.renders = 0
        # The table top as the env draws it (its brightness factor at the default).
        from reverie.envs.tabletop_scene import TABLE_BRIGHTNESS, TABLE_RGB

        table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table_top")
        m.geom_rgba[table, :3] = np.array(TABLE_RGB) * TABLE_BRIGHTNESS
        occluder = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "occluder")
        self.data.mocap_pos[m.body_mocapid[occluder]] = [-10.0, 10.0, -1.0]
        self.clear()

    def clear(self) -> None:
        for key in self.geom:
            self.place(key, None)

    def place(self, key: tuple[int, str], obj: ObjectSpec | None) -> None:
        """Show slot ``key`` as ``obj`` (None: park it)."""
        from reverie.envs.tabletop_scene import TABLE_TOP

        a, g = self.qadr[key], self.geom[key]
        if obj is None or obj.pose is None:
            self.data.qpos[a : a + 3] = PARKED
            self.data.qpos[a + 3 : a + 7] = [1, 0, 0, 0]
            return
        self.data.qpos[a : a + 3] = [*obj.pose, TABLE_TOP + obj.size]
        self.data.qpos[a + 3 : a + 7] = [math.cos(obj.yaw / 2), 0, 0, math.sin(obj.yaw / 2)]
        self.model.geom_size[g] = self.size0[key] / DEFAULTS["size"] * obj.size
        self.model.geom_rbound[g] = obj.size * 2.0
        self.model.geom_rgba[g] = [*(obj.rgb or (1, 1, 1)), 1.0]

    def set_light(self, diffuse: float, ambient: float) -> None:
        self.model.light_diffuse[:] = diffuse
        self.model.vis.headlight.ambient[:] = ambient

    def set_pusher(self, xy: np.ndarray) -> None:
        self.data.qpos[:2] = xy

    def render(self) -> np.ndarray:
        """float32 (Hi, Wi, 3) in [0, 1]."""
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        self.renderer.update_scene(self.data, camera="main")
        self.renders += 1
        return self.renderer.render().astype(np.float32) / 255.0

    def ray_to_plane(self, u: float, v: float, z: float) -> np.ndarray:
        """(x, y) where the ray through pixel (u, v) (column, row) meets the plane at height z."""
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)
        cam = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, "main")
        pos, rot = self.data.cam_xpos[cam], self.data.cam_xmat[cam].reshape(3, 3)
        f = 0.5 * self.size / math.tan(math.radians(self.model.cam_fovy[cam]) / 2)
        d = rot @ np.array([(u + 0.5 - self.size / 2) / f, -(v + 0.5 - self.size / 2) / f, -1.0])
        t = (z - pos[2]) / d[2]
        return (pos + t * d)[:2]

    def close(self) -> None:
        self.renderer.close()


def _fit_light(fitter: _Fitter, img: np.ndarray) -> Light:
    """The (diffuse, ambient) whose empty-table render is nearest ``img`` (coarse, then fine)."""
    fitter.clear()
    fitter.set_pusher(np.array([0.48, 0.48]))
    (d0, d1), (a0, a1) = RANGES["light"], RANGES["ambient"]
    grid = [(d, a) for d in np.linspace(d0, d1, 7) for a in np.linspace(a0, a1, 6)]
    best = (math.inf, Light())
    for step in ((d1 - d0) / 6, (a1 - a0) / 5), None:
        for d, a in grid:
            fitter.set_light(d, a)
            err = float(np.median(np.abs(fitter.render() - img).sum(-1)))
            if err < best[0]:
                best = (err, Light(round(float(d), 4), round(float(a), 4)))
        if step is None:
            break
        bd, ba = best[1].diffuse, best[1].ambient
        grid = [
            (
                float(np.clip(bd + i * step[0] / 4, d0, d1)),
                float(np.clip(ba + j * step[1] / 4, a0, a1)),
            )
            for i in range(-2, 3)
            for j in range(-2, 3)
        ]
    light = best[1]
    fitter.set_light(light.diffuse, light.ambient)
    return light


def _appearances(fitter: _Fitter) -> tuple[np.ndarray, np.ndarray]:
    """Rendered colour of each named colour (a lit cube's median pixel) and the background."""
    fitter.clear()
    fitter.set_pusher(np.array([0.48, 0.48]))
    background = fitter.render()
    looks = []
    for name in COLOURS:
        fitter.place((0, "cube"), ObjectSpec("cube", name, pose=(0.0, 0.0)))
        img = fitter.render()
        changed = np.abs(img - background).sum(-1) > 0.05
        looks.append(np.median(img[changed], axis=0))
    fitter.clear()
    return np.array(looks), background


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean mask, as (n, 2) arrays of (row, col)."""
    seen = np.zeros_like(mask)
    out = []
    H, W = mask.shape
    for r0, c0 in zip(*np.nonzero(mask)):
        if seen[r0, c0]:
            continue
        stack, pix = [(r0, c0)], []
        seen[r0, c0] = True
        while stack:
            r, c = stack.pop()
            pix.append((r, c))
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < H and 0 <= cc < W and mask[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    stack.append((rr, cc))
        out.append(np.array(pix))
    return out


def _propose(
    img: np.ndarray, looks: np.ndarray, background: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """(colour, pixels) per object patch, largest first (at most ``MAX_OBJECTS``)."""
    # A pixel belongs to a colour when it is nearer that colour's look than the background here
    # and than the pusher's near-black.
    d_colour = np.linalg.norm(img[:, :, None, :] - looks[None, None], axis=-1)  # [Hi, Wi, C]
    best = d_colour.argmin(-1)
    d_best = d_colour.min(-1)
    d_bg = np.linalg.norm(img - background, axis=-1)
    dark = img.max(-1) < 0.3
    fg = (d_best < d_bg) & (d_best < 0.25) & ~dark
    patches = []
    for c, name in enumerate(COLOURS):
        for pix in _components(fg & (best == c)):
            if len(pix) >= MIN_PIXELS:
                patches.append((name, pix))
    patches.sort(key=lambda p: -len(p[1]))
    return patches[:MAX_OBJECTS]


def _window(pix: np.ndarray, size: int) -> tuple[slice, slice]:
    r0, c0 = pix.min(0) - WINDOW
    r1, c1 = pix.max(0) + WINDOW + 1
    return slice(max(r0, 0), min(r1, size)), slice(max(c0, 0), min(c1, size))


def _pusher_guess(fitter: _Fitter, img: np.ndarray, background: np.ndarray) -> np.ndarray:
    from reverie.envs.tabletop_scene import TABLE_TOP

    dark = (img.max(-1) < 0.3) & (np.abs(img - background).sum(-1) > 0.1)
    comps = [c for c in _components(dark) if len(c) >= 3]
    if not comps:
        return np.array([0.48, 0.48])
    r, c = max(comps, key=len).mean(0)
    return np.clip(fitter.ray_to_plane(c, r, TABLE_TOP + 0.085), -0.48, 0.48)


def fit_image(image: np.ndarray, seed: int = 0) -> FitResult:
    """Recover the objects of a tabletop frame (see the module docstring)."""
    from reverie.envs.tabletop_scene import TABLE_TOP

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ReverieError(f"expected a square RGB frame (Hi, Wi, 3), got shape {image.shape}")
    if not 16 <= image.shape[0] <= 512:
        raise ReverieError(f"frame size must be in [16, 512], got {image.shape[0]}")
    img = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    size = img.shape[0]
    rng = np.random.default_rng(seed)
    fitter = _Fitter(size)
    try:
        light = _fit_light(fitter, img)
        looks, background = _appearances(fitter)
        patches = _propose(img, looks, background)
        if not patches:
            raise ReverieError("found no object of a known colour in the frame")
        fitter.set_pusher(_pusher_guess(fitter, img, background))
        # Step 1. first guesses: a default-sized cube where each patch's centre ray lands.
        fits: list[ObjectSpec] = []
        for name, pix in patches:
            r, c = pix.mean(0)
            xy = fitter.ray_to_plane(c, r, TABLE_TOP + 0.045)
            fits.append(ObjectSpec("cube", name, pose=(float(xy[0]), float(xy[1]))))
        # Step 2. per object and kind, CEM over (x, y, size, yaw); two sweeps.
        lo = np.array([RANGES["x"][0] - 0.05, RANGES["y"][0] - 0.05, RANGES["size"][0], -np.pi])
        hi = np.array([RANGES["x"][1] + 0.05, RANGES["y"][1] + 0.05, RANGES["size"][1], np.pi])
        # Sweep 0 tries every kind from the first guess; sweep 1 refines the two best kinds of
        # each object, each from its own sweep-0 fit (a cube with a free yaw can mimic a
        # cylinder roughly before either is fitted closely).
        tried: list[list[tuple[float, ObjectSpec]]] = [[] for _ in patches]
        for sweep in range(2):
            for i, (_, pix) in enumerate(patches):
                win = _window(pix, size)
                target = img[win]
                starts = [fits[i]] * len(KINDS) if sweep == 0 else [o for _, o in tried[i][:2]]
                kinds = KINDS if sweep == 0 else tuple(o.kind for o in starts)
                results = []
                for kind, start in zip(kinds, starts):
                    fits[i] = start
                    results.append(_cem_one(fitter, fits, i, kind, target, win, rng, lo, hi, sweep))
                tried[i] = sorted(results, key=lambda r: r[0])
                fits[i] = tried[i][0][1]
        _show(fitter, fits, None)
        loss = float(np.mean((fitter.render() - img) ** 2))
        spec = SceneSpec(tuple(_rounded(o) for o in fits), light=light)
        return FitResult(spec, loss, fitter.renders)
    finally:
        fitter.close()


def _show(fitter: _Fitter, fits: list[ObjectSpec], skip: int | None) -> None:
    fitter.clear()
    for s, o in enumerate(fits):
        if s != skip:
            fitter.place((s, o.kind), o)


def _cem_one(
    fitter: _Fitter,
    fits: list[ObjectSpec],
    i: int,
    kind: str,
    target: np.ndarray,
    win: tuple[slice, slice],
    rng: np.random.Generator,
    lo: np.ndarray,
    hi: np.ndarray,
    sweep: int,
) -> tuple[float, ObjectSpec]:
    """CEM over object ``i`` as ``kind``: (error in the window, best object)."""
    o = fits[i]
    assert o.pose is not None
    mean = np.array([*o.pose, o.size if sweep else 0.045, o.yaw])
    std = np.array([0.03, 0.03, 0.012, 0.8]) * (0.5 if sweep else 1.0)
    if kind != "cube":
        std[3] = 0.0  # round things look the same at every yaw
    _show(fitter, fits, skip=i)
    key = (i, kind)
    best_err, best = math.inf, o
    for _ in range(ITERATIONS):
        cand = np.clip(mean + std * rng.standard_normal((POPULATION, 4)), lo, hi)  # [N, 4]
        cand[0] = mean
        errs = np.empty(POPULATION)
        for n, (x, y, s, yaw) in enumerate(cand):
            obj = dataclasses.replace(o, kind=kind, pose=(x, y), size=s, yaw=yaw)
            fitter.place(key, obj)
            errs[n] = float(np.mean((fitter.render()[win] - target) ** 2))
        order = np.argsort(errs)
        if errs[order[0]] < best_err:
            x, y, s, yaw = cand[order[0]]
            best_err = float(errs[order[0]])
            best = dataclasses.replace(o, kind=kind, pose=(x, y), size=s, yaw=yaw)
        elite = cand[order[:ELITES]]
        mean, std = elite.mean(0), elite.std(0) + np.array([1e-3, 1e-3, 5e-4, 0.0])
        if kind != "cube":
            std[3] = 0.0
    fitter.place(key, None)
    return best_err, best


def _rounded(o: ObjectSpec) -> ObjectSpec:
    assert o.pose is not None
    yaw = (o.yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4 if o.kind == "cube" else 0.0
    return dataclasses.replace(
        o,
        pose=(round(float(o.pose[0]), 4), round(float(o.pose[1]), 4)),
        size=round(float(o.size), 4),
        yaw=round(float(yaw), 4),
    )
