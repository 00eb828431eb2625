"""``SceneSpec``: a tabletop world as data (objects, table, gravity, light, camera), versioned JSON.

    from reverie.scenes import SceneSpec, ObjectSpec, save_spec, load_spec
    spec = SceneSpec(objects=(ObjectSpec("cube", "red", pose=(0.1, 0.0)),))
    save_spec(spec, "runs/scene.json")          # atomic; {"version": 1, ...}
    spec, warnings = load_spec("runs/scene.json")

A spec is the persistent world: the tabletop env builds itself from one (``make("tabletop",
scene=spec)``), ``reverie world export`` turns one into MJCF, and a collection records the spec of
every episode. Units are SI: sizes are half-extents (a cube's half side, a ball's radius, a
cylinder's radius and half height) in metres, masses in kg, gravity in m/s² downward, positions
in metres on the table top (origin at its centre; +x right and +y away from the camera).

Two kinds of bad input, two answers:

- *malformed* (a kind or colour we do not know, 0 or more than ``MAX_OBJECTS`` objects, a wrong
  type, a newer ``version``): a one-line ``ReverieError`` naming the problem;
- *out of the family's range* (``RANGES``: what the family's world model trains on): the value is
  clamped and a warning naming the range is returned (``clamp``), never silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reverie.io import ReverieError, atomic_write_json, read_json

SPEC_VERSION = 1
MAX_OBJECTS = 4
KINDS = ("cube", "ball", "cylinder")
#: Named colours (rgb in [0, 1]). Chosen far apart in hue and value so a frame tells them apart,
#: and none is the table's brown, the floor's grey or the pusher's near-black.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.75, 0.15),
    "blue": (0.1, 0.25, 0.95),
    "yellow": (0.95, 0.9, 0.1),
    "orange": (1.0, 0.5, 0.0),
    "purple": (0.55, 0.15, 0.8),
    "pink": (1.0, 0.45, 0.75),
    "white": (0.97, 0.97, 0.97),
    "cyan": (0.1, 0.85, 0.9),
}
#: The family's training ranges, (low, high) per parameter. Values outside are clamped by
#: ``clamp`` with a warning. Positions keep objects within the pusher's reachable square.
RANGES: dict[str, tuple[float, float]] = {
    "size": (0.025, 0.07),
    "mass": (0.05, 2.0),
    "friction": (0.05, 1.5),
    "restitution": (0.0, 0.9),
    "x": (-0.25, 0.25),
    "y": (-0.25, 0.25),
    "table_friction": (0.05, 1.5),
    "gravity": (4.9, 14.7),
    "light": (0.2, 0.8),
    "ambient": (0.0, 0.5),
    "camera_offset": (-0.05, 0.05),
}
RELATIONS = ("left_of", "right_of", "behind", "in_front_of", "on", "near")
DEFAULTS = {"size": 0.045, "mass": 0.25, "friction": 0.5, "restitution": 0.0}


@dataclass(frozen=True)
class Relation:
    """Object placed relative to another: ``kind`` one of ``RELATIONS``, ``target`` its index."""

    kind: str
    """left_of | right_of | behind | in_front_of | on | near (screen directions: the camera
    looks along +y, so behind = +y)."""
    target: int
    """Index of the object it is placed relative to (another object of the same spec)."""

    def __post_init__(self) -> None:
        if isinstance(self.target, bool) or not isinstance(self.target, int):
            raise ReverieError(f"relation target must be an object index, got {self.target!r}")


@dataclass(frozen=True)
class ObjectSpec:
    """One object on the table."""

    kind: str
    """cube | ball | cylinder."""
    colour: str
    """A name in ``COLOURS``; ``rgb`` follows it unless given."""
    size: float = DEFAULTS["size"]
    """Half-extent in metres (cube half side; ball and cylinder radius; cylinder half height)."""
    mass: float = DEFAULTS["mass"]
    """kg."""
    friction: float = DEFAULTS["friction"]
    """Sliding friction coefficient of the object's surface (contact uses the geometric mean
    with the table's)."""
    restitution: float = DEFAULTS["restitution"]
    """Bounciness: the coefficient of restitution of its contacts, 0 (dead) to 0.9."""
    pose: tuple[float, float] | None = None
    """Centre (x, y) on the table in metres; None: placed by ``relation`` (``layout.place``)."""
    yaw: float = 0.0
    """Rotation about the vertical (radians; cubes only show it)."""
    relation: Relation | None = None
    """Where it stands relative to another object (kept in the file; ``pose`` is the solution)."""
    rgb: tuple[float, float, float] | None = None
    """Colour in [0, 1]³; None: the named colour's value."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ReverieError(f"unknown object kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.colour not in COLOURS:
            raise ReverieError(f"unknown colour {self.colour!r}; known: {', '.join(COLOURS)}")
        for name in ("size", "mass", "friction", "restitution", "yaw"):
            _check_number(name, getattr(self, name))
        if self.pose is not None:
            if len(self.pose) != 2:
                raise ReverieError(f"object pose must be (x, y), got {self.pose!r}")
            object.__setattr__(self, "pose", tuple(_check_number("pose", v) for v in self.pose))
        if self.rgb is None:
            object.__setattr__(self, "rgb", COLOURS[self.colour])
        elif len(self.rgb) != 3 or not all(0 <= _check_number("rgb", v) <= 1 for v in self.rgb):
            raise ReverieError(f"object rgb must be 3 numbers in [0, 1], got {self.rgb!r}")
        else:
            object.__setattr__(self, "rgb", tuple(float(v) for v in self.rgb))
        if self.relation is not None and self.relation.kind not in RELATIONS:
            raise ReverieError(
                f"unknown relation {self.relation.kind!r}; known: {', '.join(RELATIONS)}"
            )

    @property
    def radius(self) -> float:
        """Horizontal reach from the centre (a cube's half-diagonal)."""
        return self.size * (math.sqrt(2.0) if self.kind == "cube" else 1.0)

    @property
    def label(self) -> str:
        return f"{self.colour} {self.kind}"


@dataclass(frozen=True)
class Light:
    """The overhead light and the ambient level."""

    diffuse: float = 0.55
    """Grey level of the directional light's diffuse colour."""
    ambient: float = 0.25
    """Headlight ambient level."""


@dataclass(frozen=True)
class Camera:
    """Offset of the render camera from its standard pose (metres)."""

    dx: float = 0.0
    dy: float = 0.0
    dz: float = 0.0


@dataclass(frozen=True)
class SceneSpec:
    """A tabletop world: 1–4 objects, the table's friction, gravity, light and camera."""

    objects: tuple[ObjectSpec, ...]
    """1 to ``MAX_OBJECTS`` objects."""
    table_friction: float = 0.5
    """Sliding friction coefficient of the table top (icy ≈ 0.05, rubber ≈ 1.2)."""
    gravity: float = 9.81
    """m/s², downward."""
    light: Light = field(default_factory=Light)
    camera: Camera = field(default_factory=Camera)
    prompt: str | None = None
    """The text it was made from, if any (kept for the record)."""

    def __post_init__(self) -> None:
        objects = tuple(self.objects)
        object.__setattr__(self, "objects", objects)
        if not 1 <= len(objects) <= MAX_OBJECTS:
            raise ReverieError(
                f"a scene holds 1 to {MAX_OBJECTS} objects (the family's range), got {len(objects)}"
            )
        if not all(isinstance(o, ObjectSpec) for o in objects):
            raise ReverieError("scene objects must be ObjectSpec values")
        _check_number("table_friction", self.table_friction)
        _check_number("gravity", self.gravity)
        for i, o in enumerate(objects):
            if o.relation is not None:
                t = o.relation.target
                if not 0 <= t < len(objects):
                    raise ReverieError(f"object {i} ({o.label}) relates to no object {t}")
                if t == i:
                    raise ReverieError(f"object {i} ({o.label}) cannot be {o.relation.kind} itself")

    @property
    def placed(self) -> bool:
        """Whether every object has a pose (``layout.place`` fills the missing ones)."""
        return all(o.pose is not None for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["version"] = SPEC_VERSION
        return d


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReverieError(f"scene field {name!r} must be a finite number, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------ ranges / clamp
def clamp(spec: SceneSpec) -> tuple[SceneSpec, list[str]]:
    """``spec`` with every value inside ``RANGES``, and one warning per clamped value."""
    warnings: list[str] = []

    def fit(what: str, key: str, value: float) -> float:
        lo, hi = RANGES[key]
        if lo <= value <= hi:
            return value
        new = min(max(value, lo), hi)
        warnings.append(
            f"{what} {value:g} outside the family's training range [{lo:g}, {hi:g}]: "
            f"clamped to {new:g}"
        )
        return new

    objects = []
    for i, o in enumerate(spec.objects):
        who = f"object {i} ({o.label})"
        changes: dict[str, Any] = {
            k: fit(f"{who} {k}", k, getattr(o, k)) for k in ("size", "mass", "friction")
        }
        changes["restitution"] = fit(f"{who} restitution", "restitution", o.restitution)
        if o.pose is not None:
            changes["pose"] = (fit(f"{who} x", "x", o.pose[0]), fit(f"{who} y", "y", o.pose[1]))
        objects.append(dataclasses.replace(o, **changes))
    c = spec.camera
    out = dataclasses.replace(
        spec,
        objects=tuple(objects),
        table_friction=fit("table friction", "table_friction", spec.table_friction),
        gravity=fit("gravity (m/s²)", "gravity", spec.gravity),
        light=Light(
            fit("light", "light", spec.light.diffuse),
            fit("ambient light", "ambient", spec.light.ambient),
        ),
        camera=Camera(*(fit(f"camera d{a}", "camera_offset", getattr(c, f"d{a}")) for a in "xyz")),
    )
    return out, warnings


# ----------------------------------------------------------------------------------- JSON
def spec_from_dict(d: Any, where: str = "scene spec") -> SceneSpec:
    """Build a spec from its JSON form; malformed or newer-version input raises one line."""
    if not isinstance(d, dict):
        raise ReverieError(f"{where} must be a JSON object, got {type(d).__name__}")
    version = d.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReverieError(f"{where} has no integer 'version' field")
    if version > SPEC_VERSION:
        raise ReverieError(
            f"{where} has version {version}, newer than this Reverie reads ({SPEC_VERSION}); "
            "upgrade reverie"
        )
    try:
        body = {k: v for k, v in d.items() if k != "version"}
        objects = body.pop("objects", None)
        if not isinstance(objects, (list, tuple)):
            raise ReverieError(f"{where} needs an 'objects' list")
        objs = []
        for o in objects:
            if not isinstance(o, dict):
                raise ReverieError(f"{where}: every object must be a JSON object")
            o = dict(o)
            if o.get("relation") is not None:
                o["relation"] = Relation(**o["relation"])
            for key in ("pose", "rgb"):
                if o.get(key) is not None:
                    o[key] = tuple(o[key])
            objs.append(ObjectSpec(**o))
        if "light" in body:
            body["light"] = Light(**body["light"])
        if "camera" in body:
            body["camera"] = Camera(**body["camera"])
        return SceneSpec(objects=tuple(objs), **body)
    except TypeError as e:
        # dataclass constructors name the unknown or missing field in their message
        msg = str(e).split(".__init__() ")[-1]
        raise ReverieError(f"{where} is malformed: {msg}") from None


def spec_to_json(spec: SceneSpec) -> str:
    return json.dumps(spec.to_dict(), indent=2, sort_keys=True)


def save_spec(spec: SceneSpec, path: str | Path) -> Path:
    """Write ``spec`` as JSON atomically (a crash leaves the old file or the new one)."""
    atomic_write_json(path, spec.to_dict())
    return Path(path)


def load_spec(path: str | Path) -> tuple[SceneSpec, list[str]]:
    """Read a spec file: (spec clamped to the family's ranges, warnings for clamped values)."""
    spec = spec_from_dict(read_json(path, what="scene spec"), where=f"scene spec {path}")
    return clamp(spec)


def describe(spec: SceneSpec) -> list[str]:
    """A few human lines: one per object, then the table, gravity, light and camera."""
    lines = []
    for i, o in enumerate(spec.objects):
        where = f"at ({o.pose[0]:+.3f}, {o.pose[1]:+.3f}) m" if o.pose else "not placed"
        rel = ""
        if o.relation is not None:
            target = spec.objects[o.relation.target].label
            rel = f", {o.relation.kind.replace('_', ' ')} the {target} ({o.relation.target})"
        lines.append(
            f"{i}: {o.label:<16} size {o.size:.3f} m  mass {o.mass:.3g} kg  friction "
            f"{o.friction:.3g}  bounciness {o.restitution:.2g}  {where}{rel}"
        )
    c = spec.camera
    lines.append(
        f"table friction {spec.table_friction:.3g}; gravity {spec.gravity:.3g} m/s²; light "
        f"{spec.light.diffuse:.2g}, ambient {spec.light.ambient:.2g}; camera offset "
        f"({c.dx:+.2f}, {c.dy:+.2f}, {c.dz:+.2f}) m"
    )
    return lines
