"""Which config keys does a piece of code read?  A dict that records every key read from it.

``TrackedConfig(cfg)`` behaves like ``cfg``; every ``cfg[k]``, ``cfg.get(k)`` and ``k in cfg``
(at any depth) records the key path, and anything that looks at a whole mapping (iteration,
``items()``, ``len``, ``==``, ``json.dumps``, ``copy.deepcopy``) records that mapping's path as
read in full.  Lists are values: reading ``data.waves`` reads every wave.  A key that is absent
is recorded too (``cfg.get("blinded")`` reads ``blinded``), because a sub-config that dropped a
present key would turn that read into a silent default.

Used by tests/test_stage_config.py to check that every stage reads only the config keys its
rule passes it (``analysis.stages.config_keys.STAGE_CONFIG_KEYS``).
"""

from __future__ import annotations

import copy


class TrackedConfig(dict):
    def __init__(self, data: dict, path: tuple = (), reads: set | None = None):
        super().__init__(data)
        self._path = path
        self.reads = set() if reads is None else reads

    # whole-mapping reads
    def _whole(self):
        self.reads.add(self._path)

    def _wrap(self, key, value):
        if isinstance(value, dict) and not isinstance(value, TrackedConfig):
            return TrackedConfig(value, self._path + (key,), self.reads)
        self.reads.add(self._path + (key,))
        return value

    def __getitem__(self, key):
        return self._wrap(key, super().__getitem__(key))

    def get(self, key, default=None):
        if super().__contains__(key):
            return self[key]
        self.reads.add(self._path + (key,))
        return default

    def __contains__(self, key):
        self.reads.add(self._path + (key,))
        return super().__contains__(key)

    def setdefault(self, key, default=None):  # pragma: no cover - stages should not write
        raise TypeError(f"stage wrote config key {'.'.join(map(str, self._path + (key,)))}")

    def __setitem__(self, key, value):  # pragma: no cover
        raise TypeError(f"stage wrote config key {'.'.join(map(str, self._path + (key,)))}")

    def __iter__(self):
        self._whole()
        return super().__iter__()

    def keys(self):
        self._whole()
        return super().keys()

    def items(self):
        self._whole()
        return [(k, self._wrap(k, v)) for k, v in super().items()]

    def values(self):
        self._whole()
        return [self._wrap(k, v) for k, v in super().items()]

    def __bool__(self):  # `cfg.get("x") or {}` asks only whether the mapping is empty
        return super().__len__() > 0

    def __len__(self):
        self._whole()
        return super().__len__()

    def __eq__(self, other):
        self._whole()
        return dict(super().items()) == other

    __hash__ = None

    def __repr__(self):
        self._whole()
        return repr(dict(super().items()))

    def copy(self):
        self._whole()
        return copy.deepcopy(dict(super().items()))

    def __deepcopy__(self, memo):
        self._whole()
        return copy.deepcopy(dict(super().items()), memo)

    def __reduce_ex__(self, protocol):
        self._whole()
        return dict, (copy.deepcopy(dict(super().items())),)


def paths(reads: set) -> set[str]:
    """The recorded key paths as dotted strings (``data.waves``); the top level is ``''``."""
    return {".".join(map(str, p)) for p in reads}
