"""Synthetic SBU-like and FPHA-like datasets: the project's embedded default data.

Both generators reproduce the real datasets' skeleton, class list, sequence count, length range and protocol
(SBU: 21 subject-pair sets in the official 5 folds, each set holding every class once or twice, 282 sequences;
FPHA: 6 subjects, 45 classes, the 600 / 575 official split with ``Subject_k/action/seq`` ids). Motions are
class-specific and kinematic (joint angles through bone lengths), then perturbed by nuisance factors.

Difficulty. One knob, ``difficulty`` = d in [0, 1], sets every nuisance together:

- class overlap: each sample's motion programme is a blend ``lam * own + (1 - lam) * partner`` of its class
  and a confusable partner class (same joints, different direction / speed / limb / timing; e.g. approaching vs
  departing, punching vs pushing, shaking hands vs exchanging, open_* vs close_*), ``lam ~ U[1 - 0.6 d, 1]``;
- motion amplitude ``~ U[1 - 0.5 d, 1.1]`` (small gestures are harder to read);
- sensor noise (SBU ``8 + 28 d`` mm, FPHA ``2 + 6 d`` mm per coordinate and frame);
- label-irrelevant distractor motion (a random limb / finger / wrist bump at a random time) with probability
  ``0.3 + 0.6 d`` and an amplitude growing with d;
- global pose: SBU scene yaw ``+-(5 + 10 d)`` degrees; FPHA hand orientation (gaussian, random axis) of
  ``3 + 10 d`` degrees per sequence on top of 4 degrees per subject.

Independent of d: random onset, duration and power-law time warping; random phase of periodic motions (gait,
hand pumping, oscillations: only their amplitude is informative); body / hand size; translation; SBU's random
actor / reactor swap and a left-limbed actor 30 % of the time.

``DEFAULT_DIFFICULTY`` (SBU 0.5, FPHA 0.1) was calibrated with the `small` dense GCN (300 epochs, default
trainer settings, seed 0): SBU 88 % mean test accuracy over the 5 folds (81-93 % per fold); FPHA 82-85 %
(seeds 0 and 1, with ``data.scale=true``). Raise it for harder data, lower it for cleaner data.

Exactness. Coordinates are rounded to the on-disk text precision (SBU: 5 significant digits, normalised units;
FPHA: 4 decimals, mm) and cast to float32, so ``write_synthetic`` followed by ``load_sbu`` / ``load_fpha``
gives bit-identical arrays: each written number ``s`` satisfies ``np.float32(float(s)) == value``.
Sequences are sorted by id in both paths.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from .dataset import SkeletonDataset
from .fpha import FPHA_CLASSES, SPLIT_FILE
from .graph import FPHA_GRAPH, SBU_GRAPH
from .sbu import SBU_CLASSES, SBU_SETS, sbu_splits

DEFAULT_DIFFICULTY = {"sbu": 0.5, "fpha": 0.1}
LIKES = ("sbu", "fpha")

_POW10 = 10.0 ** np.arange(0, 12)  # exact powers of ten


# --------------------------------------------------------------------------------------------- shared pieces
def _quantize_sig(x: np.ndarray, digits: int = 5) -> np.ndarray:
    """Round to ``digits`` significant digits (at most 8 decimals) as float64 ``n / 10**k`` (the nearest double
    to the decimal); magnitudes below 1e-4 become 0 so that ``%g`` never needs an exponent."""
    ax = np.abs(x)
    e = np.floor(np.log10(np.where(ax > 0, ax, 1.0)))
    k = np.clip(digits - 1 - e, 0, 8).astype(np.int64)
    scale = _POW10[k]
    d = np.rint(x * scale) / scale
    d[np.abs(d) < 1e-4] = 0.0
    return d + 0.0  # no negative zeros


def _quantize_dec(x: np.ndarray, decimals: int = 4) -> np.ndarray:
    """Round to ``decimals`` decimals as float64 (the nearest double to the decimal)."""
    return np.rint(x * _POW10[decimals]) / _POW10[decimals] + 0.0


def _smooth(x: np.ndarray) -> np.ndarray:
    """Smoothstep on [0, 1] (clipped outside)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _hold(p: np.ndarray, rise: float = 0.3, fall: float = 0.25) -> np.ndarray:
    """Go to 1, stay, come back: a smooth trapezoid over p in [0, 1]."""
    return _smooth(p / rise) * _smooth((1.0 - p) / fall)


def _window(p: np.ndarray, start: float, end: float) -> np.ndarray:
    """Re-map the part [start, end] of the progress to [0, 1] (clipped)."""
    return np.clip((p - start) / (end - start), 0.0, 1.0)


def _time_base(rng: np.random.Generator, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: normalised frame times t (n, Tmax), warped times u, and action progress p in [0, 1]
    (random onset, duration and a power-law time warp, so speed and timing vary)."""
    n, tmax = len(lengths), int(lengths.max())
    t = np.arange(tmax)[None, :] / np.maximum(lengths[:, None] - 1, 1)
    t = np.clip(t, 0.0, 1.0)
    gamma = np.exp(rng.uniform(-0.4, 0.4, n))[:, None]
    u = t**gamma
    onset = rng.uniform(0.0, 0.25, n)[:, None]
    duration = rng.uniform(0.55, 1.0, n)[:, None] * (1.0 - onset)
    p = _smooth((u - onset) / duration)
    return t, u, p


def _bump(t: np.ndarray, centre: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Gaussian bump in time (n, T) for per-sample centre and width (n,)."""
    return np.exp(-(((t - centre[:, None]) / width[:, None]) ** 2))


# ---------------------------------------------------------------------------------------------------- SBU
# Motion parameters per person and frame (deviations from the rest pose; angles in radians, dx in mm):
(DX, LEAN, LTH, LPHI, LPSI, RTH, RPHI, RPSI, LHIP, LKNEE, RHIP, RKNEE) = range(12)
_SBU_PARAMS = 12
# Each class's confusable partner: same limbs, different direction, speed, timing or number of arms.
_SBU_PARTNER = {0: 1, 1: 0, 2: 3, 3: 4, 4: 3, 5: 4, 6: 7, 7: 6}
_SBU_LEN = (10, 46)
_SBU_TOTAL = 282


def _sbu_structure() -> list[tuple[str, int, int]]:
    """(set, label, seq number) for all 282 sequences: every set holds every class once or twice.

    Fixed (not seed-dependent), like the real protocol. ``s01s02/08`` holds two sequences, as in the real data.
    """
    rng = np.random.default_rng(20120616)
    cells = [(s, c) for s in range(len(SBU_SETS)) for c in range(len(SBU_CLASSES))]
    forced = cells.index((0, 7))
    others = [i for i in range(len(cells)) if i != forced]
    doubles = set(rng.choice(others, _SBU_TOTAL - len(cells) - 1, replace=False).tolist()) | {forced}
    out = []
    for i, (s, c) in enumerate(cells):
        for k in range(1, 3 if i in doubles else 2):
            out.append((SBU_SETS[s], c, k))
    return out


def _gait(
    out: np.ndarray, who: int, p: np.ndarray, steps: np.ndarray, amp: np.ndarray, phase: np.ndarray
) -> None:
    """Add a walking cycle (legs in antiphase, arms swinging) to person ``who`` while p moves."""
    env = np.sin(np.pi * p) * amp
    s = np.sin(2.0 * np.pi * steps[:, None] * p + phase)
    out[..., who, LHIP] += 0.35 * env * s
    out[..., who, RHIP] -= 0.35 * env * s
    out[..., who, LKNEE] += 0.6 * env * np.maximum(s, 0.0)
    out[..., who, RKNEE] += 0.6 * env * np.maximum(-s, 0.0)
    out[..., who, LTH] -= 0.25 * env * s
    out[..., who, RTH] += 0.25 * env * s


def _sbu_program(c: int, p: np.ndarray, amp: np.ndarray, steps: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Class ``c``'s motion parameters (n, T, 2, 12); person 0 is the actor, person 1 the reactor.

    ``amp`` (n, 1) scales the motion, ``steps`` (n,) is the number of gait cycles, ``phase`` (n, 1) the phase of
    periodic parts (gait, hand pumping), random so that only their amplitude, not their sign, is informative.
    """
    out = np.zeros(p.shape + (2, _SBU_PARAMS))
    a, r = 0, 1
    sp = np.sin(np.pi * p)
    if c in (0, 1):  # approaching / departing: the actor walks towards / away from the reactor
        sign = 1.0 if c == 0 else -1.0
        out[..., a, DX] = sign * 450.0 * amp * p
        out[..., a, LEAN] = sign * 0.08 * sp
        _gait(out, a, p, steps, amp, phase)
    elif c == 2:  # kicking: actor's right leg swings forward and up, reactor flinches back
        k = sp**2
        out[..., a, RHIP] = 1.15 * amp * k
        out[..., a, RKNEE] = 1.2 * sp * (1.0 - p)
        out[..., a, LEAN] = -0.25 * amp * k
        out[..., a, LTH] = out[..., a, RTH] = 0.35 * k
        late = _smooth(_window(p, 0.45, 0.9))
        out[..., r, DX] = -90.0 * amp * late
        out[..., r, LEAN] = -0.2 * amp * np.sin(np.pi * late)
    elif c == 3:  # punching: a quick jab of the right arm towards the head; reactor's head snaps back
        q = sp**4
        out[..., a, RTH] = 1.45 * amp * q
        out[..., a, RPHI] = 1.1 * (sp - q)
        out[..., a, LTH] = 0.45 * sp
        out[..., a, LPHI] = 1.3 * sp
        out[..., a, DX] = 70.0 * amp * q
        out[..., a, LEAN] = 0.15 * amp * q
        ql = np.sin(np.pi * _window(p, 0.25, 1.0)) ** 4
        out[..., r, LEAN] = -0.3 * amp * ql
        out[..., r, DX] = -50.0 * amp * ql
    elif c == 4:  # pushing: both arms forward at chest height, the reactor is displaced backwards
        b = _hold(p)
        out[..., a, LTH] = out[..., a, RTH] = 1.3 * amp * b
        out[..., a, LPHI] = out[..., a, RPHI] = 0.35 * b
        out[..., a, DX] = 180.0 * amp * p
        out[..., a, LEAN] = 0.2 * amp * b
        late = _smooth(_window(p, 0.3, 1.0))
        out[..., r, DX] = -280.0 * amp * late
        out[..., r, LEAN] = -0.2 * amp * np.sin(np.pi * late)
        out[..., r, LTH] = out[..., r, RTH] = 0.5 * np.sin(np.pi * late)
    elif c == 5:  # hugging: both step in, arms forward and wrapped around the other
        h = _hold(p, 0.35, 0.25)
        for who in (a, r):
            out[..., who, DX] = 230.0 * amp * _smooth(p / 0.5)
            out[..., who, LTH] = out[..., who, RTH] = 1.25 * amp * h
            out[..., who, LPSI] = out[..., who, RPSI] = 0.9 * h
            out[..., who, LPHI] = out[..., who, RPHI] = 1.0 * h
            out[..., who, LEAN] = 0.15 * h
    elif c == 6:  # shaking hands: both step in, right hands meet and pump up and down
        h = _hold(p, 0.3, 0.25)
        for who in (a, r):
            out[..., who, DX] = 130.0 * amp * _smooth(p / 0.4)
            out[..., who, RTH] = 0.95 * amp * h + 0.2 * h * np.sin(2.0 * np.pi * 3.0 * p + phase)
            out[..., who, RPHI] = 0.5 * h
    elif c == 7:  # exchanging: the actor hands over with the right arm, the reactor reaches later
        ea = _hold(_window(p, 0.0, 0.65))
        eb = _hold(_window(p, 0.35, 1.0))
        out[..., a, RTH] = 1.0 * amp * ea
        out[..., a, RPHI] = 0.7 * ea
        out[..., a, DX] = 90.0 * amp * ea
        out[..., r, RTH] = 1.0 * amp * eb
        out[..., r, RPHI] = 0.7 * eb
        out[..., r, DX] = 60.0 * amp * eb
    return out


# rest pose, mm, in a person's local frame (forward f, down d, lateral l; side -1 = left, +1 = right)
_SBU_REST = dict(th=0.15, phi=0.2, neck=-330.0, head=-200.0, sh_d=-300.0, sh_l=170.0, hip_d=160.0, hip_l=95.0)
_SBU_BONES = dict(upper=290.0, fore=290.0, thigh=420.0, shin=420.0)


def _sbu_pose(prm: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Joint positions (n, T, 2, 15, 3) in each person's local frame (mm), torso at the origin plus dx."""
    sz = size[:, None, :]  # (n, 1, 2)
    R, B = _SBU_REST, _SBU_BONES
    shape = prm.shape[:-1]
    lean = prm[..., LEAN]
    cl, sl = np.cos(lean), np.sin(lean)

    def leaned(f: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return f * cl - d * sl, f * sl + d * cl

    def u(th: np.ndarray, psi: np.ndarray, side: float) -> np.ndarray:
        return np.stack([np.sin(th) * np.cos(psi), np.cos(th), -side * np.sin(th) * np.sin(psi)], axis=-1)

    zero = np.zeros(shape)
    j = np.zeros(shape + (15, 3))
    nf, nd = leaned(zero, zero + R["neck"] * sz)
    j[..., 1, :] = np.stack([nf, nd, zero], -1)
    hf, hd = leaned(zero, zero + (R["neck"] + R["head"]) * sz)
    j[..., 0, :] = np.stack([hf, hd, zero], -1)
    for side, (sh, el, ha, th, phi, psi) in (
        (-1.0, (3, 4, 5, LTH, LPHI, LPSI)),
        (1.0, (6, 7, 8, RTH, RPHI, RPSI)),
    ):
        sf, sd = leaned(zero, zero + R["sh_d"] * sz)
        j[..., sh, :] = np.stack([sf, sd, zero + side * R["sh_l"] * sz], -1)
        a1 = R["th"] + prm[..., th]
        a2 = a1 + R["phi"] + prm[..., phi]
        ps = prm[..., psi]
        j[..., el, :] = j[..., sh, :] + B["upper"] * sz[..., None] * u(a1, ps, side)
        j[..., ha, :] = j[..., el, :] + B["fore"] * sz[..., None] * u(a2, ps, side)
    for side, (hip, kn, ft, th, phi) in ((-1.0, (9, 10, 11, LHIP, LKNEE)), (1.0, (12, 13, 14, RHIP, RKNEE))):
        j[..., hip, :] = np.stack([zero, zero + R["hip_d"] * sz, zero + side * R["hip_l"] * sz], -1)
        a1 = prm[..., th]
        a2 = a1 - 0.05 - prm[..., phi]
        j[..., kn, :] = j[..., hip, :] + B["thigh"] * sz[..., None] * u(a1, zero, side)
        j[..., ft, :] = j[..., kn, :] + B["shin"] * sz[..., None] * u(a2, zero, side)
    j[..., 0] += prm[..., DX][..., None]
    return j


def _make_sbu(seed: int, difficulty: float) -> SkeletonDataset:
    d = float(difficulty)
    rng = np.random.default_rng([seed, 1])
    struct = _sbu_structure()
    n = len(struct)
    ids = [f"{s}/{c + 1:02d}/{k:03d}" for s, c, k in struct]
    labels = np.array([c for _, c, _ in struct], dtype=np.int64)
    lengths = rng.integers(_SBU_LEN[0], _SBU_LEN[1] + 1, n)
    lengths[ids.index("s01s02/08/002")] = _SBU_LEN[0]  # the real shortest and longest sequences
    lengths[ids.index("s02s07/05/001")] = _SBU_LEN[1]
    t, _, p = _time_base(rng, lengths)
    tmax = t.shape[1]
    amp = rng.uniform(1.0 - 0.5 * d, 1.1, n)[:, None]
    lam = rng.uniform(1.0 - 0.6 * d, 1.0, n)[:, None, None, None]
    steps = rng.uniform(1.5, 3.0, n)
    phase = rng.uniform(0.0, 2.0 * np.pi, (n, 1))
    prm = np.zeros((n, tmax, 2, _SBU_PARAMS))
    for c in range(len(SBU_CLASSES)):
        idx = np.flatnonzero(labels == c)
        args = (p[idx], amp[idx], steps[idx], phase[idx])
        prm[idx] = lam[idx] * _sbu_program(c, *args) + (1.0 - lam[idx]) * _sbu_program(_SBU_PARTNER[c], *args)
    # handedness: the actor uses the left arm / leg instead of the right one (not in handshakes)
    lefty = (rng.random(n) < 0.3) & (labels != 6)
    right, left = [RTH, RPHI, RPSI, RHIP, RKNEE], [LTH, LPHI, LPSI, LHIP, LKNEE]
    actor = prm[lefty, :, 0]
    actor[..., right + left] = actor[..., left + right]
    prm[lefty, :, 0] = actor
    # label-irrelevant distractors: a random bump on one arm, the lean, a leg or the position of either person
    has = rng.random(n) < 0.3 + 0.6 * d
    who = rng.integers(0, 2, n)
    which = rng.choice(np.array([LTH, RTH, LEAN, LHIP, RHIP, DX, LPHI, RPHI]), n)
    scale = np.where(which == DX, 200.0, np.where(which == LEAN, 0.3, 1.0)) * (0.3 + 0.9 * d)
    size_d = rng.uniform(-1.0, 1.0, n) * scale * has
    bump = _bump(t, rng.uniform(0.1, 0.9, n), rng.uniform(0.1, 0.3, n))
    prm[np.arange(n), :, who, which] += size_d[:, None] * bump
    # idle sway of both persons
    freq = rng.uniform(0.5, 1.5, (n, 1, 2))
    prm[..., LEAN] += 0.04 * np.sin(2 * np.pi * freq * t[..., None] + rng.uniform(0, 2 * np.pi, (n, 1, 2)))
    # random actor / reactor roles: person A (left) is the actor about half of the time
    swap = rng.random(n) < 0.5
    prm[swap] = prm[swap][:, :, ::-1]
    sizes = rng.uniform(0.88, 1.12, (n, 2))
    local = _sbu_pose(prm, sizes)  # (n, T, 2, 15, 3) in (f, d, l)
    # world (mm): A faces +X, B stands `sep` away facing -X (mirrored); small depth offsets per person
    sep = rng.uniform(900.0, 1150.0, n)[:, None, None]
    dz = rng.uniform(-60.0, 60.0, (n, 1, 2))
    X = np.stack([local[..., 0, :, 0], sep - local[..., 1, :, 0]], axis=2)
    Y = local[..., 1]
    Z = np.stack([local[..., 0, :, 2], -local[..., 1, :, 2]], axis=2) + dz[..., None]
    yaw = np.deg2rad(rng.uniform(-1.0, 1.0, n) * (5.0 + 10.0 * d))[:, None, None, None]
    Xc = X - sep[..., None] / 2.0
    X, Z = Xc * np.cos(yaw) - Z * np.sin(yaw) + sep[..., None] / 2.0, Xc * np.sin(yaw) + Z * np.cos(yaw)
    sigma = 8.0 + 28.0 * d
    X = X + rng.normal(0.0, sigma, X.shape)
    Y = Y + rng.normal(0.0, sigma, Y.shape)
    Z = Z + rng.normal(0.0, sigma, Z.shape)
    # normalised units (README): x = X / 2560, y = Y / 1920, z = Z * 7.8125 / 10000, plus the scene offsets
    x0 = rng.uniform(0.26, 0.34, n)[:, None, None, None]
    y0 = rng.uniform(0.48, 0.58, n)[:, None, None, None]
    z0 = rng.uniform(1.55, 1.9, n)[:, None, None, None]
    xyz = np.stack([x0 + X / 2560.0, y0 + Y / 1920.0, z0 + Z * 7.8125 / 10000.0], axis=-1)
    xyz = xyz.reshape(n, tmax, 30, 3)
    values = _quantize_sig(xyz, 5).astype(np.float32)
    order = sorted(range(n), key=ids.__getitem__)
    ids_sorted = [ids[i] for i in order]
    return SkeletonDataset(
        name="synthetic-sbu",
        sequences=[values[i, : lengths[i]].copy() for i in order],
        labels=labels[order],
        class_names=list(SBU_CLASSES),
        graph=SBU_GRAPH,
        splits=sbu_splits(ids_sorted),
        ids=ids_sorted,
    )


# --------------------------------------------------------------------------------------------------- FPHA
_FPHA_SUBJECTS = (1, 2, 3, 6, 4, 5)  # order within each section of the real split file
_FPHA_LEN = (50, 150)
_FPHA_TRAIN, _FPHA_TEST = 600, 575
# hand orientation spread (degrees): per subject, per sequence, per sequence and unit of difficulty
_FPHA_ROT = (4.0, 3.0, 10.0)
# grasps: flexion of (thumb, index, middle, ring, pinky), 0 = straight, ~1 = curled
_GRASPS = {
    "power": (0.7, 0.85, 0.9, 0.9, 0.95),
    "wide": (0.45, 0.45, 0.5, 0.5, 0.55),
    "tripod": (0.6, 0.6, 0.6, 0.95, 1.0),
    "pinch": (0.7, 0.7, 0.25, 0.2, 0.2),
    "flat": (0.05, 0.05, 0.05, 0.08, 0.1),
    "point": (0.6, 0.05, 0.95, 1.0, 1.0),
    "hook": (0.15, 0.75, 0.75, 0.75, 0.8),
    "key": (0.3, 1.0, 1.0, 1.0, 1.0),
}
_ALL = (1, 1, 1, 1, 1)
_THUMB = (1, 0, 0, 0, 0)
_INDEX = (0, 1, 0, 0, 0)
_TI = (1, 1, 0, 0, 0)
UP, DOWN, FWD, BACK, SIDE = (0, -1, 0), (0, 1, 0), (0, 0, 1), (0, 0, -1), (1, 0, 0)


def _v(direction: tuple[int, int, int], mm: float) -> tuple[float, float, float]:
    return tuple(mm * x for x in direction)


# class -> (grasp, primitives, partner). Primitives: ("rot", axis, rad, shape) with axis 0 = twist about the hand's
# long axis, 1 = tilt (pour), 2 = yaw; ("move", (X, Y, Z) mm, shape) in the camera frame (Y down, Z away);
# ("fing", finger mask, flexion, shape); ("circle", radius mm, cycles). Shapes: see _shape.
_FPHA_TABLE: dict[str, tuple[str, tuple, str]] = {
    "open_juice_bottle": (
        "power",
        (("rot", 0, 1.0, "ramp"), ("move", _v(UP, 60), "late")),
        "close_juice_bottle",
    ),
    "close_juice_bottle": (
        "power",
        (("rot", 0, -1.0, "ramp"), ("move", _v(UP, 60), "down")),
        "open_juice_bottle",
    ),
    "pour_juice_bottle": ("power", (("rot", 1, 1.1, "hold"), ("move", (0, -40, 40), "hold")), "pour_milk"),
    "open_peanut_butter": (
        "wide",
        (("rot", 0, 1.4, "ramp"), ("move", _v(UP, 50), "late")),
        "close_peanut_butter",
    ),
    "close_peanut_butter": (
        "wide",
        (("rot", 0, -1.4, "ramp"), ("move", _v(UP, 50), "down")),
        "open_peanut_butter",
    ),
    "prick": ("tripod", (("move", _v(DOWN, 40), "osc3"),), "put_salt"),
    "sprinkle": ("power", (("rot", 1, 0.8, "hold"), ("move", _v(DOWN, 25), "osc4")), "put_salt"),
    "scoop_spoon": ("tripod", (("rot", 1, -0.7, "bump"), ("move", (40, -30, 0), "bump")), "put_sugar"),
    "put_sugar": ("tripod", (("rot", 1, 0.9, "late"), ("move", _v(SIDE, 60), "early")), "scoop_spoon"),
    "stir": ("tripod", (("circle", 30.0, 3.0),), "write"),
    "open_milk": ("pinch", (("rot", 0, 0.9, "ramp"), ("move", _v(UP, 60), "late")), "close_milk"),
    "close_milk": ("pinch", (("rot", 0, -0.9, "ramp"), ("move", _v(UP, 60), "down")), "open_milk"),
    "pour_milk": ("power", (("rot", 1, 1.2, "hold"), ("move", (30, -30, 0), "hold")), "pour_wine"),
    "drink_mug": ("hook", (("move", (0, -150, -100), "hold"), ("rot", 1, 0.5, "hold")), "toast_wine"),
    "put_tea_bag": ("pinch", (("move", _v(DOWN, 80), "bump"),), "put_salt"),
    "put_salt": ("pinch", (("move", _v(DOWN, 20), "osc5"), ("rot", 1, 0.4, "hold")), "sprinkle"),
    "open_liquid_soap": (
        "power",
        (("fing", _THUMB, -0.6, "early"), ("move", _v(UP, 40), "late")),
        "close_liquid_soap",
    ),
    "close_liquid_soap": (
        "power",
        (("fing", _THUMB, -0.6, "late"), ("move", _v(UP, 40), "down")),
        "open_liquid_soap",
    ),
    "pour_liquid_soap": (
        "power",
        (("rot", 1, 1.0, "hold"), ("fing", _ALL, 0.25, "osc2")),
        "pour_juice_bottle",
    ),
    "wash_sponge": ("wide", (("move", _v(SIDE, 40), "osc4"),), "scratch_sponge"),
    "flip_sponge": ("wide", (("rot", 0, 2.6, "ramp"),), "open_wallet"),
    "scratch_sponge": ("flat", (("fing", _ALL, 0.5, "osc5"),), "wash_sponge"),
    "squeeze_sponge": ("wide", (("fing", _ALL, 0.5, "osc3"),), "squeeze_paper"),
    "open_soda_can": (
        "point",
        (("fing", _INDEX, 0.8, "bump"), ("move", _v(UP, 20), "late")),
        "use_calculator",
    ),
    "use_flash": ("power", (("fing", _THUMB, -0.5, "osc4"), ("rot", 2, 0.6, "bump")), "light_candle"),
    "write": ("tripod", (("circle", 12.0, 6.0), ("move", _v(SIDE, 60), "ramp")), "stir"),
    "tear_paper": ("pinch", (("rot", 0, 0.7, "bump"), ("move", _v(SIDE, 50), "ramp")), "open_letter"),
    "squeeze_paper": ("wide", (("fing", _ALL, 0.6, "ramp"),), "squeeze_sponge"),
    "open_letter": ("pinch", (("move", _v(SIDE, 80), "ramp"), ("rot", 1, 0.3, "bump")), "tear_paper"),
    "take_letter_from_enveloppe": ("pinch", (("move", _v(BACK, 100), "ramp"),), "read_letter"),
    "read_letter": (
        "pinch",
        (("rot", 1, -0.5, "hold"), ("move", (0, -40, -60), "hold")),
        "take_letter_from_enveloppe",
    ),
    "flip_pages": ("flat", (("rot", 0, -1.4, "bump"), ("move", _v(SIDE, -80), "bump")), "open_wallet"),
    "use_calculator": (
        "point",
        (("fing", _INDEX, 0.5, "osc6"), ("move", (20, 0, 20), "osc2")),
        "open_soda_can",
    ),
    "light_candle": ("pinch", (("fing", _THUMB, 0.6, "osc3"), ("move", (50, 20, 0), "bump")), "use_flash"),
    "charge_cell_phone": ("pinch", (("move", _v(FWD, 90), "bump"), ("rot", 2, 0.3, "bump")), "give_card"),
    "unfold_glasses": ("pinch", (("rot", 2, 1.0, "ramp"), ("move", _v(SIDE, 60), "ramp")), "clean_glasses"),
    "clean_glasses": ("pinch", (("move", _v(SIDE, 40), "osc4"),), "unfold_glasses"),
    "open_wallet": ("flat", (("rot", 0, 1.3, "ramp"), ("move", _v(SIDE, -50), "ramp")), "flip_pages"),
    "give_coin": ("pinch", (("move", _v(FWD, 130), "ramp"), ("fing", _TI, -0.5, "late")), "receive_coin"),
    "receive_coin": ("flat", (("move", _v(FWD, 130), "down"), ("fing", _ALL, 0.5, "ramp")), "give_coin"),
    "give_card": ("key", (("move", _v(FWD, 150), "ramp"), ("fing", _TI, -0.4, "late")), "give_coin"),
    "pour_wine": ("power", (("rot", 1, 1.4, "hold"), ("move", (50, -50, 0), "hold")), "pour_milk"),
    "toast_wine": ("hook", (("move", (0, -40, 120), "sharp"), ("rot", 1, 0.3, "bump")), "drink_mug"),
    "handshake": ("power", (("move", _v(DOWN, 40), "osc3"), ("move", _v(FWD, 100), "hold")), "high_five"),
    "high_five": ("flat", (("move", (0, -80, 120), "sharp"),), "handshake"),
}
_FPHA_INFO = {  # synthetic action_object_info.txt content: object, has-6D-pose flag, scenario
    "juice_bottle": 1, "peanut_butter": 0, "fork": 0, "salt": 1, "spoon": 0, "milk": 1, "mug": 0,
    "tea_bag": 0, "liquid_soap": 1, "sponge": 0, "soda_can": 0, "spray": 0, "pen": 0, "paper": 0,
    "letter": 0, "book": 0, "calculator": 0, "match": 0, "cell_charger": 0, "glasses": 0, "wallet": 0,
    "coin": 0, "card": 0, "wine_bottle": 0, "wine_glass": 0, "hand": 0,
}  # fmt: skip


def _shape(name: str, p: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Temporal profiles over progress p: ramp (0 -> 1), down (1 -> 0), bump, hold (trapezoid), sharp (quick
    bump), early / late (hold in the first / last 60 %), oscK (K oscillations inside a bump, starting at a
    random ``phase``, so only their amplitude is informative)."""
    sp = np.sin(np.pi * p)
    if name == "ramp":
        return p
    if name == "down":
        return 1.0 - p
    if name == "bump":
        return sp
    if name == "hold":
        return _hold(p)
    if name == "sharp":
        return sp**4
    if name == "early":
        return _hold(_window(p, 0.0, 0.6))
    if name == "late":
        return _hold(_window(p, 0.4, 1.0))
    if name.startswith("osc"):
        return np.sin(2.0 * np.pi * float(name[3:]) * p + phase) * sp
    raise ValueError(f"unknown shape {name!r}")


_NF = 11  # channels: 5 finger flexions, 3 rotations (twist, tilt, yaw), 3 translations (X, Y, Z mm)


def _fpha_program(name: str, p: np.ndarray, amp: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Class ``name``'s channels (n, T, 11): the grasp held during the action plus its primitives.

    ``amp`` (n, 1) scales the motions; ``phase`` (n, 1) is the random phase of oscillations and circles.
    """
    grasp, prims, _ = _FPHA_TABLE[name]
    out = np.zeros(p.shape + (_NF,))
    relax = 0.25
    out[..., :5] = (np.array(_GRASPS[grasp]) - relax) * _hold(p, 0.15, 0.15)[..., None]
    for prim in prims:
        kind = prim[0]
        if kind == "rot":
            out[..., 5 + prim[1]] += prim[2] * amp * _shape(prim[3], p, phase)
        elif kind == "move":
            out[..., 8:11] += np.array(prim[1]) * (amp * _shape(prim[2], p, phase))[..., None]
        elif kind == "fing":
            out[..., :5] += np.array(prim[1]) * prim[2] * (amp * _shape(prim[3], p, phase))[..., None]
        elif kind == "circle":
            ph = 2.0 * np.pi * prim[2] * p + phase
            env = amp * _hold(p, 0.15, 0.15) * prim[1]
            out[..., 8] += env * np.cos(ph)
            out[..., 10] += env * np.sin(ph)
    return out


# hand geometry (mm), local frame: a = along the hand, l = towards the thumb, n = back of the hand
_MCP = np.array(
    [[25.0, 35.0, -10.0], [88.0, 22.0, 0.0], [90.0, 2.0, 0.0], [84.0, -17.0, 0.0], [76.0, -34.0, 0.0]]
)
_PHALANX = np.array(
    [[35.0, 30.0, 26.0], [42.0, 25.0, 20.0], [46.0, 28.0, 21.0], [43.0, 27.0, 20.0], [34.0, 20.0, 18.0]]
)
_SPLAY = np.array([0.9, 0.1, 0.0, -0.08, -0.18])
_FLEX_SPLIT = np.array([1.0, 1.4, 0.9])  # MCP, PIP, DIP angle per unit flexion (radians)


def _finger_axes() -> tuple[np.ndarray, np.ndarray]:
    base = np.stack([np.cos(_SPLAY), np.sin(_SPLAY), np.zeros(5)], -1)
    curl = np.tile(np.array([0.0, 0.0, -1.0]), (5, 1))
    curl[0] = [0.0, -0.7, -0.7]  # the thumb curls across the palm
    curl -= (curl * base).sum(-1, keepdims=True) * base
    curl /= np.linalg.norm(curl, axis=-1, keepdims=True)
    return base, curl


def _hand_local(flex: np.ndarray) -> np.ndarray:
    """Joint positions (n, T, 21, 3) in the hand frame from finger flexions (n, T, 5), raw FPHA joint order."""
    base, curl = _finger_axes()
    ang = np.cumsum(np.clip(flex, -0.3, 1.4)[..., None] * _FLEX_SPLIT, axis=-1)  # (n, T, 5, 3)
    dirs = np.cos(ang)[..., None] * base[:, None, :] + np.sin(ang)[..., None] * curl[:, None, :]
    seg = dirs * _PHALANX[..., None]  # (n, T, 5, 3 segments, 3)
    chain = _MCP[:, None, :] + np.cumsum(seg, axis=-2)  # PIP, DIP, TIP per finger
    out = np.zeros(flex.shape[:-1] + (21, 3))
    out[..., 1:6, :] = _MCP
    out[..., 6:, :] = chain.reshape(flex.shape[:-1] + (15, 3))
    return out


def _rot(axis: int, ang: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about a coordinate axis."""
    c, s = np.cos(ang), np.sin(ang)
    m = np.zeros(ang.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def _random_rotations(rng: np.random.Generator, n: int, sigma_deg: float) -> np.ndarray:
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    ang = np.deg2rad(rng.normal(0.0, sigma_deg, n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)  # Rodrigues


def _fpha_structure() -> list[tuple[int, int, int, bool]]:
    """(subject, label, seq number, is_train) for 1175 sequences: 4 or 5 per subject and class, 600 / 575."""
    rng = np.random.default_rng(20180618)
    cells = [(s, c) for s in _FPHA_SUBJECTS for c in range(len(FPHA_CLASSES))]
    extra = len(FPHA_CLASSES) * len(_FPHA_SUBJECTS) * 4
    fives = rng.choice(len(cells), _FPHA_TRAIN + _FPHA_TEST - extra, replace=False)
    more_train = set(rng.choice(fives, _FPHA_TRAIN - extra // 2, replace=False).tolist())
    fives = set(fives.tolist())
    out = []
    for i, (s, c) in enumerate(cells):
        n = 5 if i in fives else 4
        train = {2, 4, 5} if i in more_train else {2, 4}  # "roughly even repetitions go to train"
        out.extend((s, c, k, k in train) for k in range(1, n + 1))
    return out


def _make_fpha(seed: int, difficulty: float) -> SkeletonDataset:
    d = float(difficulty)
    rng = np.random.default_rng([seed, 2])
    struct = _fpha_structure()
    n = len(struct)
    ids = [f"Subject_{s}/{FPHA_CLASSES[c]}/{k}" for s, c, k, _ in struct]
    labels = np.array([c for _, c, _, _ in struct], dtype=np.int64)
    subjects = np.array([s for s, _, _, _ in struct])
    lengths = rng.integers(_FPHA_LEN[0], _FPHA_LEN[1] + 1, n)
    lengths[0], lengths[1] = _FPHA_LEN
    amp = rng.uniform(1.0 - 0.5 * d, 1.1, n)
    lam = rng.uniform(1.0 - 0.6 * d, 1.0, n)
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    # subject traits: hand size, preferred hand orientation and position
    subj_size = rng.uniform(0.9, 1.1, 7)
    subj_rot = _random_rotations(rng, 7, _FPHA_ROT[0])
    subj_pos = rng.normal(0.0, 25.0, (7, 3))
    size = subj_size[subjects] * rng.uniform(0.97, 1.03, n)
    rot = subj_rot[subjects] @ _random_rotations(rng, n, _FPHA_ROT[1] + _FPHA_ROT[2] * d)
    pos = np.array([20.0, 10.0, 420.0]) + subj_pos[subjects] + rng.normal(0.0, 30.0, (n, 3))
    # the canonical hand in the camera frame: fingers away from the camera and slightly down, back of the hand up
    a = np.array([0.2, 0.3, 0.93])
    a /= np.linalg.norm(a)
    nrm = np.array([0.0, -1.0, 0.3])
    nrm -= nrm @ a * a
    nrm /= np.linalg.norm(nrm)
    canon = np.stack([a, np.cross(nrm, a), nrm], axis=1)  # columns: a, l, n in camera coordinates
    sigma = 2.0 + 6.0 * d
    values: list[np.ndarray] = [np.empty(0)] * n
    for c, name in enumerate(FPHA_CLASSES):
        idx = np.flatnonzero(labels == c)
        m = len(idx)
        t, _, p = _time_base(rng, lengths[idx])
        args = (p, amp[idx, None], phase[idx, None])
        ch = lam[idx, None, None] * _fpha_program(name, *args)
        ch += (1.0 - lam[idx, None, None]) * _fpha_program(_FPHA_TABLE[name][2], *args)
        # distractors: a random finger twitch and a random wrist drift, at random times
        has = (rng.random(m) < 0.3 + 0.6 * d).astype(float)
        finger = rng.integers(0, 5, m)
        ch[np.arange(m), :, finger] += (has * rng.uniform(-0.6, 0.6, m) * (0.3 + 0.7 * d))[:, None] * _bump(
            t, rng.uniform(0.1, 0.9, m), rng.uniform(0.08, 0.25, m)
        )
        drift = rng.normal(0.0, 25.0 * (0.3 + 0.7 * d), (m, 3)) * has[:, None]
        ch[..., 8:11] += (
            drift[:, None, :] * _bump(t, rng.uniform(0.1, 0.9, m), rng.uniform(0.15, 0.4, m))[..., None]
        )
        ch[..., 5:8] += rng.normal(0.0, 0.05, (m, 1, 3)) * np.sin(
            2 * np.pi * rng.uniform(0.5, 2.0, (m, 1, 1)) * t[..., None]
        )
        local = _hand_local(0.25 + ch[..., :5]) * size[idx, None, None, None]
        motion = _rot(2, ch[..., 7]) @ _rot(1, ch[..., 6]) @ _rot(0, ch[..., 5])  # (m, T, 3, 3)
        world_rot = rot[idx, None] @ canon @ motion
        xyz = np.einsum("mtij,mtkj->mtki", world_rot, local)
        xyz += (pos[idx, None, :] + ch[..., 8:11])[:, :, None, :]
        xyz += rng.normal(0.0, sigma, xyz.shape)
        q = _quantize_dec(xyz, 4).astype(np.float32)
        for k, i in enumerate(idx):
            values[i] = q[k, : lengths[i]].copy()
    order = sorted(range(n), key=ids.__getitem__)
    is_test = np.array([not struct[i][3] for i in order])
    return SkeletonDataset(
        name="synthetic-fpha",
        sequences=[values[i] for i in order],
        labels=labels[order],
        class_names=list(FPHA_CLASSES),
        graph=FPHA_GRAPH,
        splits={
            "official": (np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64))
        },
        ids=[ids[i] for i in order],
    )


# ------------------------------------------------------------------------------------------------- public
def _check_like(like: str) -> str:
    like = like.lower().removeprefix("synthetic-")
    if like not in LIKES:
        raise ValueError(f"like must be 'sbu' or 'fpha', got {like!r}")
    return like


def make_synthetic(like: str, seed: int = 0, difficulty: float | None = None) -> SkeletonDataset:
    """Generate the synthetic SBU-like (282 sequences, 8 classes, 5 folds) or FPHA-like (1175 sequences,
    45 classes, official 600/575 split) dataset; deterministic for ``seed``. ``difficulty`` in [0, 1] (None:
    ``DEFAULT_DIFFICULTY``) scales class overlap, noise, distractors and pose variation together."""
    like = _check_like(like)
    d = DEFAULT_DIFFICULTY[like] if difficulty is None else float(difficulty)
    if not 0.0 <= d <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {d}")
    return _make_sbu(seed, d) if like == "sbu" else _make_fpha(seed, d)


def _check_on_grid(ds: SkeletonDataset, like: str) -> None:
    """Every value must be what the text format stores, or the written files would not read back exactly."""
    for seq_id, s in zip(ds.ids, ds.sequences):
        v = s.astype(np.float64)
        back = (_quantize_sig(v, 5) if like == "sbu" else _quantize_dec(v, 4)).astype(np.float32)
        if not np.array_equal(back.view(np.int32), s.view(np.int32)):
            raise ValueError(f"{seq_id}: values are not on the {like} text grid; cannot write them exactly")


def _write_sbu(ds: SkeletonDataset, out: Path, seed: int) -> None:
    rng = np.random.default_rng([seed, 3])
    first = rng.integers(1, 1200, len(ds))
    first[0] = 566
    row = "%d," + ",".join(["%.5g"] * 90) + "\n"
    for seq_id, s, f0 in zip(ds.ids, ds.sequences, first):
        path = out / seq_id / "skeleton_pos.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        flat = s.reshape(len(s), 90).astype(np.float64).tolist()
        path.write_text("".join(row % (f0 + i, *r) for i, r in enumerate(flat)), encoding="utf-8")


def _write_fpha(ds: SkeletonDataset, out: Path) -> None:
    ann = out / "Hand_pose_annotation_v1"
    row = "%d " + " ".join(["%.4f"] * 63) + "\n"
    for seq_id, s in zip(ds.ids, ds.sequences):
        path = ann / seq_id / "skeleton.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        flat = s.reshape(len(s), 63).astype(np.float64).tolist()
        path.write_text("".join(row % (i, *r) for i, r in enumerate(flat)), encoding="utf-8")
    # the split file, in the real file's order: subjects 1, 2, 3, 6, 4, 5, then label, then sequence number
    train, test = ds.splits["official"]

    def key(i: int) -> tuple[int, int, int]:
        subject, _, seq = ds.ids[i].split("/")
        return _FPHA_SUBJECTS.index(int(subject.split("_")[1])), int(ds.labels[i]), int(seq)

    lines = []
    for header, idx in (("Training", train), ("Test", test)):
        lines.append(f"{header} {len(idx)}")
        lines.extend(f"{ds.ids[i]} {ds.labels[i]}" for i in sorted(idx.tolist(), key=key))
    (out / SPLIT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = ["action_id action_name object_name object_pose scenario"]
    for k, name in enumerate(ds.class_names):
        obj = next((o for o in _FPHA_INFO if o in name), "hand")
        scenario = "kitchen" if k < 23 else "office" if k < 38 else "social"
        info.append(f"{k + 1} {name} {obj} {_FPHA_INFO[obj]} {scenario}")
    (out / "action_object_info.txt").write_text("\n".join(info) + "\n", encoding="utf-8")


def write_synthetic(
    like: str, out_dir: str | PathLike[str], seed: int = 0, difficulty: float | None = None
) -> SkeletonDataset:
    """Generate (as make_synthetic) and write the dataset in the real on-disk format under ``out_dir``.

    SBU: ``<set>/<AA>/<NNN>/skeleton_pos.txt``, 91 comma-separated fields, frame numbers from an arbitrary
    offset (566 for the first file). FPHA: ``data_split_action_recognition.txt``, ``action_object_info.txt``
    and ``Hand_pose_annotation_v1/Subject_k/<action>/<seq>/skeleton.txt`` (64 fields, 0-based frames).
    Returns the generated dataset, which ``load_sbu`` / ``load_fpha`` on ``out_dir`` reproduce exactly.
    """
    like = _check_like(like)
    ds = make_synthetic(like, seed=seed, difficulty=difficulty)
    _check_on_grid(ds, like)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if like == "sbu":
        _write_sbu(ds, out, seed)
    else:
        _write_fpha(ds, out)
    return ds
