"""The evaluation protocol: which views of each object are sources and targets.

Everything comes from the experiment config's `eval` section (an EvalConfig), so the render
step, the metrics step and the tests agree on one definition. Call chain:
Protocol.from_config -> select -> (_sources, _targets); shard_objects splits a split's
objects into jobs.

A view setting (e.g. `1v`, `3v`) names how source views are chosen, one of:
- `views: [64, 104]`: the same views for every object (SRN, DTU);
- `view_list: FILE`: per object from a file of `<category folder> <object> <view...>` lines
  (the published `src_dvr.txt`, `src_gen.txt`);
- `random: {count, seed}`: a seeded draw per object (demo, two chairs), recorded by the
  render step in each object's done.json.
Targets are all views but the sources, intersected with `targets.view_list` when given and
without `targets.exclude` (DTU's views 3-7, 16-21, 36-39).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelnerf.errors import PipelineError
from pixelnerf.eval.config import EvalConfig


@dataclass(frozen=True)
class ViewSelection:
    """Sources and targets of one object in one view setting (sorted view indices)."""

    sources: tuple[int, ...]
    targets: tuple[int, ...]


def stable_seed(*keys: object) -> int:
    """A 63-bit seed from ``keys``, identical across runs, machines and Python processes.

    Python's ``hash`` of a string changes per process; seeding per object from a digest keeps
    renders independent of sharding, ordering and resume.
    """
    digest = hashlib.sha256("\x1f".join(str(k) for k in keys).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def read_view_line(path: str | Path) -> tuple[int, ...]:
    """The view indices on the first line of a view list file (e.g. `srn_eval_views.txt`)."""
    path = Path(path)
    try:
        first = path.read_text(encoding="utf-8").splitlines()[:1]
    except OSError as exc:
        raise PipelineError(f"cannot read view list {path}: {exc.strerror or exc}") from exc
    try:
        views = tuple(int(v) for v in (first[0].split() if first else []))
    except ValueError as exc:
        raise PipelineError(f"view list {path} line 1 holds a non-integer view") from exc
    if not views:
        raise PipelineError(f"view list {path} has no views on its first line")
    return views


def read_source_table(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``<category folder>/<object>`` -> source views, from a file of `cat obj view...` lines."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PipelineError(f"cannot read source view list {path}: {exc.strerror or exc}") from exc
    table: dict[str, tuple[int, ...]] = {}
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise PipelineError(
                f"source view list {path} line {number}: want 'category object view...'"
            )
        try:
            table[f"{parts[0]}/{parts[1]}"] = tuple(sorted(int(v) for v in parts[2:]))
        except ValueError as exc:
            raise PipelineError(f"source view list {path} line {number}: non-integer view") from exc
    return table


@dataclass(frozen=True)
class SettingRule:
    """How one view setting chooses source views (exactly one of the three is set)."""

    name: str
    views: tuple[int, ...] | None = None
    view_list: str | None = None
    random_count: int | None = None
    random_seed: int | None = None


@dataclass
class Protocol:
    """The experiment's evaluation protocol; :meth:`select` gives one object's views."""

    settings: dict[str, SettingRule]
    target_list: tuple[int, ...] | None = None
    exclude: frozenset[int] = frozenset()
    _tables: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, eval_config: EvalConfig) -> Protocol:
        """Build from the experiment's ``eval`` section."""
        settings: dict[str, SettingRule] = {}
        # the schema allows exactly one of views, view_list, random per setting
        for name, spec in eval_config.settings.items():
            if "views" in spec:
                rule = SettingRule(name, views=tuple(sorted(int(v) for v in spec["views"])))
            elif "view_list" in spec:
                rule = SettingRule(name, view_list=str(spec["view_list"]))
            else:
                rand = spec["random"]
                rule = SettingRule(
                    name, random_count=int(rand["count"]), random_seed=int(rand["seed"])
                )
            settings[name] = rule
        target_file = eval_config.targets.view_list
        target_list = read_view_line(target_file) if target_file else None
        return cls(settings=settings, target_list=target_list,
                   exclude=frozenset(eval_config.targets.exclude))

    @property
    def setting_names(self) -> list[str]:
        return list(self.settings)

    def rule(self, setting: str) -> SettingRule:
        if setting not in self.settings:
            known = ", ".join(self.settings)
            raise PipelineError(f"view setting {setting!r} is not in eval.settings ({known})")
        return self.settings[setting]

    def select(self, setting: str, object_id: str, n_views: int) -> ViewSelection:
        """Sources and targets of ``object_id`` (e.g. ``02691156/1a2b``) with ``n_views`` views."""
        rule = self.rule(setting)
        allowed = self._target_candidates(n_views)
        sources = self._sources(rule, object_id, n_views, allowed)
        targets = tuple(v for v in allowed if v not in set(sources))
        if not targets:
            raise PipelineError(
                f"object {object_id}, setting {setting}: no target views are left "
                f"(sources {list(sources)}, {n_views} views)"
            )
        return ViewSelection(sources=sources, targets=targets)

    def _target_candidates(self, n_views: int) -> tuple[int, ...]:
        base = range(n_views) if self.target_list is None else self.target_list
        return tuple(sorted(v for v in set(base) if 0 <= v < n_views and v not in self.exclude))

    def _sources(
        self, rule: SettingRule, object_id: str, n_views: int, allowed: Sequence[int]
    ) -> tuple[int, ...]:
        if rule.views is not None:
            sources = rule.views
        elif rule.view_list is not None:
            table = self._tables.get(rule.view_list)
            if table is None:
                table = self._tables[rule.view_list] = read_source_table(rule.view_list)
            if object_id not in table:
                raise PipelineError(f"object {object_id} has no source view in {rule.view_list}")
            sources = table[object_id]
        else:
            sources = self._random_sources(rule, object_id, n_views, allowed)
        bad = [v for v in sources if not 0 <= v < n_views]
        if bad:
            raise PipelineError(
                f"object {object_id}, setting {rule.name}: source views {bad} do not exist "
                f"({n_views} views)"
            )
        return tuple(sorted(sources))

    @staticmethod
    def _random_sources(
        rule: SettingRule, object_id: str, n_views: int, allowed: Sequence[int]
    ) -> tuple[int, ...]:
        # Draw from views that are never targets when there are enough of them, so that the
        # target set stays the same for every object; otherwise from all views.
        count = int(rule.random_count or 0)
        pool = [v for v in range(n_views) if v not in set(allowed)]
        if len(pool) < count:
            pool = list(range(n_views))
        if len(pool) < count:
            raise PipelineError(
                f"object {object_id}, setting {rule.name}: {count} random sources wanted, "
                f"only {n_views} views"
            )
        rng = np.random.default_rng(stable_seed(rule.random_seed, rule.name, object_id))
        return tuple(sorted(int(v) for v in rng.choice(pool, size=count, replace=False)))


def shard_objects(object_ids: Sequence[str], shard: int, shards: int) -> list[str]:
    """Objects of shard ``shard`` (0-based) of ``shards``: every ``shards``-th object.

    Round robin keeps the categories of a sorted split spread over all shards.
    """
    if shards < 1 or not 0 <= shard < shards:
        raise PipelineError(f"shard {shard} of {shards}: want 0 <= shard < shards")
    return list(object_ids[shard::shards])
