"""NPZ archives (``np.load(..., allow_pickle=False)``): ``qid``, ``labels``, ``features__<group>`` ...

Array names and rules: :mod:`auditor.loaders` ("NPZ").
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from auditor.data import RankingDataset
from auditor.errors import DataError
from auditor.safetext import printable
from auditor.loaders.common import (_NAME_RE, _check_contiguous, _check_duplicates, _check_file, _check_labels,
                                    _check_strings)
from auditor.loaders.groups import _apply_groups

__all__ = ["read_npz"]

_NPZ_OPTIONAL = ("item_id", "query_text", "timestamp", "group_id")


def read_npz(path: str, *, feature_groups: str | None = None) -> RankingDataset:
    """Read an ``.npz`` archive (see the module docstring for the array names)."""
    path = os.fspath(path)
    _check_file(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"cannot be read as NPZ ({str(e).splitlines()[0] if str(e) else type(e).__name__}).",
                        path=path, fix="write it with numpy.savez(path, qid=..., labels=..., features__all=...).") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError("is a single .npy array, not an .npz archive.", path=path,
                        fix="write it with numpy.savez(path, qid=..., labels=..., features__all=...).")
    with z:
        keys = list(z.keys())
        arrays: dict[str, np.ndarray] = {}
        for k in keys:
            try:
                arrays[k] = z[k]
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
                raise DataError(f"array {k!r} cannot be read ({str(e).splitlines()[0]}).", path=path, field=k,
                                fix="store strings as fixed-width unicode (np.str_), not Python objects.") from None
    for k in keys:
        if k.startswith(("features__", "extra__")):
            g = k.partition("__")[2]
            if not _NAME_RE.match(g):
                raise DataError(f"array {k!r}: the name {g!r} after '__' is not an identifier "
                                "([A-Za-z_][A-Za-z0-9_-]*).", path=path, field=printable(k, newlines=False),
                                fix="rename the array, e.g. features__text or extra__clicks.")
    allowed = {"qid", "labels", "features", *_NPZ_OPTIONAL}
    unknown = [k for k in keys if k not in allowed and not k.startswith(("features__", "extra__"))]
    if unknown:
        raise DataError(f"unexpected array {unknown[0]!r}.", path=path, field=unknown[0],
                        fix="use qid, labels, features__<group> (or features), item_id, query_text, timestamp, "
                            "group_id, extra__<name>.")
    for req in ("qid", "labels"):
        if req not in arrays:
            raise DataError(f"required array {req!r} is missing (arrays: {', '.join(keys)}).", path=path, field=req,
                            fix="save the query ids as 'qid' and the relevance labels as 'labels'.")
    qid = arrays["qid"]
    if qid.ndim != 1:
        raise DataError(f"qid has shape {qid.shape}, expected (n,).", path=path, field="qid")
    n = qid.shape[0]
    if n == 0:
        raise DataError("has no rows.", path=path, field="qid")
    lab = arrays["labels"]
    if lab.shape != (n,) or lab.dtype.kind not in "iufb":
        raise DataError(f"labels has shape {lab.shape} and dtype {lab.dtype}, expected ({n},) numbers.", path=path,
                        field="labels")
    labels = lab.astype(np.float64)

    def row(i: int) -> int:
        return i

    _check_labels(labels, path, "labels", row)
    if qid.dtype.kind == "f":
        if not np.all(np.isfinite(qid)) or np.any(qid != np.round(qid)):
            raise DataError("qid values must be integers or strings.", path=path, field="qid")
        qid = qid.astype(np.int64)
    _check_strings(qid, path, "qid", row, "row")
    _check_contiguous(qid, path, row, "row")
    group_keys = [k for k in keys if k.startswith("features__")]
    if group_keys and "features" in arrays:
        raise DataError("has both 'features' and 'features__<group>' arrays.", path=path, field="features",
                        fix="store either one 'features' matrix or one array per group.")
    feats: dict[str, np.ndarray] = {}
    if group_keys:
        if feature_groups is not None:
            raise DataError("--feature-groups applies to a single 'features' array; this file names its groups.",
                            path=path, field="--feature-groups", fix="drop --feature-groups.")
        for k in group_keys:
            g = k[len("features__"):]
            feats[g] = _npz_matrix(arrays[k], k, n, path)
    elif "features" in arrays:
        feats = _apply_groups(_npz_matrix(arrays["features"], "features", n, path), feature_groups)
    else:
        raise DataError("has no features.", path=path, field="features",
                        fix="save features as features__<group> arrays (n, d) or one 'features' array.")
    opt = {}
    for k in _NPZ_OPTIONAL:
        if k in arrays:
            a = arrays[k]
            if a.shape != (n,):
                raise DataError(f"{k} has shape {a.shape}, expected ({n},).", path=path, field=k)
            if k != "query_text":
                _check_strings(a, path, k, row, "row")
            opt[k] = a
    extra = {}
    for k in keys:
        if k.startswith("extra__"):
            a = arrays[k]
            if a.shape != (n,):
                raise DataError(f"{k} has shape {a.shape}, expected ({n},).", path=path, field=k)
            extra[k[len("extra__"):]] = a
    if "item_id" in opt:
        _check_duplicates(qid, opt["item_id"], path, row, "row")
    return RankingDataset(qid=qid, labels=labels, features=feats, extra=extra,
                          meta={"source": path, "format": "npz"}, name=path, **opt)


def _npz_matrix(a: np.ndarray, name: str, n: int, path: str) -> np.ndarray:
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n:
        raise DataError(f"{name} has shape {a.shape}, expected ({n}, d).", path=path, field=name)
    if a.dtype.kind not in "iufb":
        raise DataError(f"{name} has dtype {a.dtype}, expected numbers.", path=path, field=name)
    a = a.astype(np.float64, copy=False)  # read fresh from the archive: a float64 array is ours already
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"{name} is {a[r, c]} at row {r}, column {c}; features must be finite.", path=path,
                        line=int(r), field=name, fix="impute or drop non-finite values before auditing.")
    return a
