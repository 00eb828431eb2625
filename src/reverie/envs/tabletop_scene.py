"""The Tabletop's furniture as MJCF: table, legs, floor, light, camera, pusher, occluding screen.

    from reverie.envs.tabletop_scene import tabletop_xml, TABLE_TOP
    xml = tabletop_xml(64, objects_xml)        # the default scene when given the default objects

Kept apart from ``tabletop.py`` so that ``reverie.scenes`` (which writes the objects of a
``SceneSpec``) and the env can both use it without importing each other: the env asks
``reverie.scenes.mjcf`` for a scene's objects, and that module builds around this template.
With its defaults the template gives the default Tabletop scene byte for byte.
"""

from __future__ import annotations

import numpy as np

from reverie.envs.mujoco_base import visual_xml

TABLE_HALF = 0.4  # m, half side of the square table top
TABLE_TOP = 0.4  # m, height of the table surface above the floor
PUSHER_RADIUS = 0.03
PUSHER_RANGE = 0.48  # m, pusher slide limits: past the edge, so it can get behind any object
PUSHER_START = 0.35  # m, starts and goals keep the pusher over the table
PUSHER_SPEED = 0.5  # m/s at |action| = 1 and actuator_gain = 1
OCCLUDER_HALF = (0.12, 0.01, 0.18)  # m, half-extents of the occluding screen (0.24 wide, 0.36 tall)
OCCLUDER_PARKED = np.array([-10.0, 10.0, -1.0])  # m, where the screen waits: off camera
TABLE_RGB = (1.0, 0.73, 0.5)  # the table top's colour at brightness 1 (set by the env's factor)
TABLE_BRIGHTNESS = 0.55  # the table_brightness factor's default


def tabletop_xml(
    size: int,
    objects: str,
    *,
    contacts: str = "",
    gravity: float = 9.81,
    light_diffuse: float = 0.55,
    ambient: float = 0.25,
    camera_pos: tuple[float, float, float] = (0.0, -0.9, 1.9),
) -> str:
    """The Tabletop MJCF around ``objects`` (body XML); the defaults give the default scene
    byte for byte. ``contacts`` goes inside a ``<contact>`` block (scenes' explicit pairs)."""
    option = '<option timestep="0.01" integrator="implicitfast">'
    if gravity != 9.81:
        option = f'<option timestep="0.01" integrator="implicitfast" gravity="0 0 {-gravity:g}">'
    light = "0.55 0.55 0.55" if light_diffuse == 0.55 else " ".join([f"{light_diffuse:g}"] * 3)
    camera = "0 -0.9 1.9"
    if tuple(camera_pos) != (0.0, -0.9, 1.9):
        camera = " ".join(f"{v:g}" for v in camera_pos)
    contact = f"\n  <contact>{contacts}\n  </contact>" if contacts else ""
    leg = TABLE_HALF - 0.05
    legs = "".join(
        f'<geom type="box" size="0.025 0.025 {TABLE_TOP / 2 - 0.01}" '
        f'pos="{sx * leg} {sy * leg} {TABLE_TOP / 2 - 0.01}" rgba="0.35 0.25 0.18 1"/>'
        for sx in (-1, 1)
        for sy in (-1, 1)
    )
    # Collision groups: table, legs and floor are contype 1; objects collide with all (3);
    # the pusher (2) only with objects, so it glides over the table without friction.
    return f"""
<mujoco model="tabletop">
  <compiler angle="radian"/>
  {option}
    <flag warmstart="disable"/>
  </option>
  {visual_xml(size, ambient)}
  <default>
    <geom contype="1" conaffinity="1" friction="0.5 0.005 0.0001"/>
  </default>
  <worldbody>
    <light name="sun" pos="0.3 -0.3 2.5" dir="-0.1 0.1 -1" directional="true"
           diffuse="{light}" specular="0 0 0"/>
    <camera name="main" pos="{camera}" xyaxes="1 0 0 0 1.7 0.9" fovy="40"/>
    <geom name="floor" type="plane" size="3 3 0.05" rgba="0.45 0.5 0.55 1"/>
    <body name="table">
      <geom name="table_top" type="box" size="{TABLE_HALF} {TABLE_HALF} 0.02"
            pos="0 0 {TABLE_TOP - 0.02}" rgba="0.55 0.4 0.28 1"/>
      {legs}
    </body>
    <body name="pusher" pos="0 0 {TABLE_TOP + 0.045}">
      <joint name="pusher_x" type="slide" axis="1 0 0" range="-{PUSHER_RANGE} {PUSHER_RANGE}"/>
      <joint name="pusher_y" type="slide" axis="0 1 0" range="-{PUSHER_RANGE} {PUSHER_RANGE}"/>
      <geom name="pusher" type="cylinder" size="{PUSHER_RADIUS} 0.04" mass="1.0" contype="2"
            conaffinity="2" rgba="0.15 0.15 0.15 1"/>
    </body>
    {objects}
    <body name="occluder" mocap="true" pos="{" ".join(map(str, OCCLUDER_PARKED))}">
      <geom name="occluder" type="box" size="{" ".join(map(str, OCCLUDER_HALF))}" contype="0"
            conaffinity="0" rgba="0.82 0.82 0.78 1"/>
    </body>
  </worldbody>{contact}
  <actuator>
    <!-- force = kv (gain·ctrl - v): the pusher tracks gain·ctrl m/s; _apply_factors sets gain -->
    <velocity name="pusher_x" joint="pusher_x" kv="60" ctrlrange="-1 1"/>
    <velocity name="pusher_y" joint="pusher_y" kv="60" ctrlrange="-1 1"/>
  </actuator>
</mujoco>"""
