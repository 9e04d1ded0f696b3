"""Vectorised evaluation of many XGBoost boosters at once, from their saved models.

Why: ``Booster.inplace_predict`` costs ~0.2 ms per call, so 500 symbols a day cost ~100 ms of
per-call overhead for 500 rows. Flattening every tree of every symbol into arrays lets one numpy
loop of ``depth`` steps route all (symbol, tree) pairs together. Tests check it equals xgboost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FlatTrees:
    """One booster's trees as arrays (``[n_trees, n_nodes]``); leaves loop onto themselves."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    base_score: float
    depth: int


def _ubj_key(name: bytes) -> bytes:
    """A key as XGBoost's UBJSON writer lays it out: ``L``, the length as big-endian int64."""
    return b"L" + len(name).to_bytes(8, "big") + name


def _ubj_string(raw: bytes, name: bytes, start: int = 0) -> str | None:
    head = _ubj_key(name) + b"SL"
    i = raw.find(head, start)
    if i < 0:
        return None
    at = i + len(head)
    n = int.from_bytes(raw[at : at + 8], "big")
    return raw[at + 8 : at + 8 + n].decode()


def _ubj_arrays(raw: bytes, name: bytes, code: bytes, n: int) -> list[np.ndarray] | None:
    """The ``n`` typed arrays stored under key ``name`` (one per tree, in order), or None."""
    head = _ubj_key(name) + b"[$" + code + b"#L"
    dtype = {b"l": ">i4", b"d": ">f4"}[code]
    out, pos = [], 0
    for _ in range(n):
        i = raw.find(head, pos)
        if i < 0:
            return None
        at = i + len(head) + 8
        count = int.from_bytes(raw[at - 8 : at], "big")
        out.append(np.frombuffer(raw, dtype, count, at))
        pos = at + 4 * count
    return None if raw.find(head, pos) >= 0 else out


def _tree_fields_ubj(booster: Any) -> tuple[str, str, dict[str, list[Any]]] | None:
    """(objective, base_score text, per-tree node lists) read from the binary (UBJSON) model.

    Why: the JSON model of a 150-tree booster is ~280 KB of decimal text; writing and parsing
    it made flattening a booster cost about as much as a small fit (a monthly walk-forward run
    flattens thousands). The binary model stores each node list as one typed array, read here
    with ``np.frombuffer``: :func:`flatten_booster` took a third of the time (1.1 against 3.1 ms
    for 40 trees, 3.8 against 11.5 ms for 150; 2026-12-01, idle machine), with the same values
    bit for bit (floats stay float32 instead of a decimal round trip). Only the four lists
    routing needs are located, by their keys, in tree order. Anything unexpected (a layout
    another XGBoost version might write, a count that does not match the trees) returns None and
    the caller reads the JSON model instead.
    """
    raw = bytes(booster.save_raw("ubj"))
    obj_at = raw.find(_ubj_key(b"objective") + b"{")
    objective = _ubj_string(raw, b"name", obj_at) if obj_at >= 0 else None
    base = _ubj_string(raw, b"base_score")
    head = _ubj_key(b"trees") + b"[#L"
    at = raw.find(head)
    if objective is None or base is None or at < 0:
        return None
    at += len(head)
    n = int.from_bytes(raw[at : at + 8], "big")
    fields: dict[str, list[Any]] = {}
    for name, code in (("left_children", b"l"), ("right_children", b"l"),
                       ("split_conditions", b"d"), ("split_indices", b"l")):  # fmt: skip
        arrays = _ubj_arrays(raw, name.encode(), code, n)
        if arrays is None:
            return None
        fields[name] = arrays
    sizes = [len(a) for a in fields["left_children"]]
    if any([len(a) for a in fields[k]] != sizes for k in fields):
        return None
    return objective, base, fields


def _tree_fields_json(booster: Any) -> tuple[str, str, dict[str, list[Any]]]:
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    objective = learner.get("objective", {}).get("name", "reg:squarederror")
    trees = learner["gradient_booster"]["model"]["trees"]
    names = ("left_children", "right_children", "split_conditions", "split_indices")
    fields = {k: [t[k] for t in trees] for k in names}
    return objective, str(learner["learner_model_param"]["base_score"]), fields


def flatten_booster(booster: Any) -> FlatTrees:
    """Parse a regression booster's model into :class:`FlatTrees`.

    Every tree's node lists are read into one array per field and laid out in one step (a walk-
    forward run flattens thousands of boosters: per-tree NumPy calls were most of the cost).
    """
    objective, base_text, lists = _tree_fields_ubj(booster) or _tree_fields_json(booster)
    if objective != "reg:squarederror":
        raise ValueError(f"only reg:squarederror boosters are supported, got {objective}")
    base = float(base_text.strip("[]"))
    sizes = np.array([len(t) for t in lists["left_children"]], np.int64)
    n_trees = len(sizes)
    n_nodes = int(max(sizes.max(initial=0), 1))
    shape = (max(n_trees, 1), n_nodes)
    ids = np.tile(np.arange(n_nodes, dtype=np.int32), (shape[0], 1))
    feature, left, right = np.zeros(shape, np.int32), ids.copy(), ids.copy()
    threshold, value = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    if not n_trees:
        return FlatTrees(feature, threshold, left, right, value, base, 0)

    def field(name: str, dtype: Any) -> np.ndarray:
        parts = lists[name]
        if parts and isinstance(parts[0], np.ndarray):
            return np.concatenate(parts).astype(dtype)
        return np.fromiter(chain.from_iterable(parts), dtype, int(sizes.sum()))

    lc, rc = field("left_children", np.int32), field("right_children", np.int32)
    cond, split = field("split_conditions", np.float32), field("split_indices", np.int32)
    used = ids < sizes[:, None]  # row-major order of `used` is the order of the node lists
    leaf = lc == -1
    own = ids[used]
    feature[used] = np.where(leaf, 0, split)
    threshold[used] = cond
    left[used] = np.where(leaf, own, lc)
    right[used] = np.where(leaf, own, rc)
    value[used] = np.where(leaf, cond, 0.0)
    # node depths, one level per pass (a child's depth is its parent's + 1)
    tree_of = np.repeat(np.arange(n_trees), sizes)[~leaf]
    kids_l, kids_r, parents = lc[~leaf], rc[~leaf], own[~leaf]
    node_depth = np.zeros(shape, np.int32)
    for _ in range(n_nodes):
        d = node_depth[tree_of, parents] + 1
        if np.array_equal(node_depth[tree_of, kids_l], d) and np.array_equal(
            node_depth[tree_of, kids_r], d
        ):
            break
        node_depth[tree_of, kids_l] = d
        node_depth[tree_of, kids_r] = d
    return FlatTrees(feature, threshold, left, right, value, base, int(node_depth.max()))


@dataclass(frozen=True)
class TreeStack:
    """Many boosters' trees in flat arrays with global node ids, for batched routing."""

    feature: np.ndarray  # [total_nodes]
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray  # [n_models, n_trees] global id of each tree's root
    base_score: np.ndarray  # [n_models]
    depth: int

    @classmethod
    def build(cls, flats: list[FlatTrees]) -> TreeStack:
        """Concatenate the boosters' trees, each booster's nodes stored once.

        A booster keeps its own ``[n_trees, n_nodes]`` block; a tree it lacks (fewer trees than
        the largest booster) has its root at node 0, one shared leaf of value 0 that loops onto
        itself. Why not pad every booster to the largest tree and node counts: in a walk-forward
        run most boosters stop early (500 symbols: 5,119 trees, the largest booster 146), and the
        padded arrays were 2.25 M nodes (~82 MB) for ~150 k real ones. The routing visits the
        same real nodes and each row sums the same values in the same order (a missing tree adds
        0.0 where the padding did), so predictions equal the padded stack's to the bit (tested).
        """
        n_trees = max(f.feature.shape[0] for f in flats)
        sizes = [f.feature.size for f in flats]
        starts = np.cumsum([1, *sizes[:-1]])  # node 0: the shared zero leaf
        total = 1 + sum(sizes)
        feature, left = np.zeros(total, np.int64), np.zeros(total, np.int64)
        right, value = np.zeros(total, np.int64), np.zeros(total, np.float64)
        threshold = np.zeros(total, np.float32)
        roots = np.zeros((len(flats), n_trees), np.int64)
        for m, (f, start) in enumerate(zip(flats, starts, strict=True)):
            a, b = f.feature.shape
            at = slice(start, start + a * b)
            tree_start = start + np.arange(a, dtype=np.int64)[:, None] * b
            feature[at], threshold[at] = f.feature.ravel(), f.threshold.ravel()
            value[at] = f.value.ravel()  # float32 leaves, summed in float64
            left[at], right[at] = (f.left + tree_start).ravel(), (f.right + tree_start).ravel()
            roots[m, :a] = tree_start[:, 0]
        base = np.array([f.base_score for f in flats], np.float64)
        return cls(feature, threshold, left, right, value, roots, base, max(f.depth for f in flats))

    def predict(self, model_idx: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Row ``i`` of ``X`` (already scaled, any float) scored by model ``model_idx[i]``."""
        xf = np.asarray(X, dtype=np.float32)  # xgboost compares in float32
        n_feat = xf.shape[1]
        node = self.roots[model_idx]  # [k, n_trees]
        row_base = (np.arange(len(model_idx), dtype=np.int64) * n_feat)[:, None]
        flat_x = xf.ravel()
        for _ in range(self.depth):
            go_left = flat_x[row_base + self.feature[node]] < self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return self.value[node].sum(axis=1) + self.base_score[model_idx]
