"""Cocktail-search-like multimodal ranking data with planted scenarios (the bundled audit data).

The world
---------
A query ("herbal gin sour without citrus for brunch") has a base spirit, a latent taste
preference ``u`` (6-d; its strongest direction is rendered as the flavour word), 0-2
constraints on six binary attributes (``with X`` / ``without X``, equally often), and
nuisance words (style, occasion). Each candidate cocktail has a spirit (the query's 35% of
the time), attributes ``a`` (6 binary), a latent taste ``z`` (6-d) and nuisance factors
(glassware, lighting, garnish style ...). Queries have 12-20 candidates (16 on average).

Embeddings are noisy linear images of these factors, CLIP-style (L2-normalised, image and
text sharing one space):

- ``text`` (1024 columns) = query text embedding (512; identical on every row of a query)
  followed by the candidate caption embedding (512). The caption mostly carries the spirit,
  taste dims 3-5 and mentions of present attributes (60% of the time).
- ``image`` (512): taste dims 0-2 strongly, 3-5 weakly, the spirit and attributes weakly,
  plus image-private nuisance (lighting, glassware).
- ``visual`` (256, standardised descriptors, not normalised): the attributes (garnish /
  colour / foam / bubble detectors) plus visual nuisance.

Relevance is made of *query-candidate interactions only* -- spirit match, taste match
``<u, z>/sqrt(6)`` and constraint violations -- plus noise, then graded 0-3 within each
query (bottom 50% -> 0, next 25% -> 1, next 15% -> 2, top 10% -> 3)::

    r = 1.0 [spirit match] + 0.7 <u, z>/sqrt(6) - 2.0 violations + 0.45 eps

No candidate-only "popularity" term exists on purpose, and "with" / "without" constraints are
equally likely (so merely having an attribute predicts nothing): a model trained on shuffled
labels then cannot carry an accidental query-independent preference that correlates with
the truth across all queries (which would inflate the random-label audit's false-alarm
rate). Grading within the query does the same for pointwise loss terms (every query has the
same label distribution, so there is no per-query base rate to learn).

Why the V1.0 baseline leaves room: its cosine between the query text and the caption / image
embeddings sees the spirit and taste, but a query's mention of "citrus" looks the same to a
cosine whether it says *with* or *without* -- the negation lives in its own directions that
no candidate embedding shares -- so V1 ranks constraint violators up. CoTRR-Pro can learn the
constraint x visual-attribute interaction. ``compliance`` (per row, 0/1) = no violation.

Scenarios (:data:`SCENARIOS`)
-----------------------------
``clean``
    Disjoint train / test queries (unique query texts across all splits, unique item ids,
    every feature row distinct) and a synthetic set (100 queries) drawn from the same
    generator, so the synthetic-shift audit sees a faithful synthetic set.
``leaky``
    The V2.0 failure, three planted defects:
    (a) 30% of test queries re-logged into train under new query ids -- same query text, same
    candidates (item ids), same feature rows, same labels (shuffled into the training order);
    (b) one ``visual`` column replaced by a label proxy (grade + small noise, rescaled to the
    column's scale) in train and test;
    (c) a naive 500-row synthetic set: independent Gaussians per feature column (train mean /
    SD), labels from a shifted grade distribution.
``shifted``
    Test queries from the same world but with a covariate shift of +0.5 SD on 16 visual
    columns (no synthetic set, so the audit compares train and test).
``no_gain``
    Relevance is exactly what the V1.0 baseline uses: ``r`` = standardised cosine between
    the query text and caption embeddings + noise. CoTRR-Pro has nothing to add.

Everything is a deterministic function of ``seed`` (numpy ``default_rng``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.data import RankingDataset, Split
from auditor.errors import ConfigError

__all__ = ["SCENARIOS", "SPIRITS", "ATTRIBUTES", "World", "generate", "make_world", "v1_cosines",
           "QUERY_DIM", "CAPTION_DIM", "IMAGE_DIM", "VISUAL_DIM"]

SCENARIOS = ("clean", "leaky", "shifted", "no_gain")

QUERY_DIM = 512
CAPTION_DIM = 512
IMAGE_DIM = 512
VISUAL_DIM = 256

SPIRITS = ("gin", "rum", "vodka", "tequila", "whiskey", "mezcal", "brandy", "pisco")
ATTRIBUTES = ("citrus", "sweet", "creamy", "bitter", "smoky", "sparkling")
STYLES = ("sour", "highball", "martini", "old fashioned", "spritz", "punch", "flip", "julep", "fizz", "collins")
OCCASIONS = ("for a summer party", "for brunch", "after dinner", "for a date night", "for a crowd",
             "on a cold evening", "by the pool", "for game night", "at a wedding", "for a picnic", "")
FLAVOURS = (("fruity", "dry"), ("herbal", "clean"), ("spicy", "mellow"), ("floral", "earthy"),
            ("tart", "rich"), ("tropical", "savory"), ("bright", "dark"), ("light", "boozy"),
            ("minty", "nutty"), ("peppery", "smooth"), ("juicy", "crisp"), ("tangy", "silky"),
            ("zesty", "toasty"), ("botanical", "woody"), ("refreshing", "warming"), ("aromatic", "subtle"))

N_TASTE = 6
N_CAND_NUIS = 8  # caption nuisance (shared space)
N_IMG_NUIS = 8  # image-private nuisance
N_VIS_NUIS = 6  # visual nuisance
# shared text/image semantic layout: spirit | mention | negation | taste | style | occasion | caption nuisance
_S_SP = slice(0, 8)
_S_MEN = slice(8, 14)
_S_NEG = slice(14, 20)
_S_TASTE = slice(20, 20 + N_TASTE)
_S_STY = slice(_S_TASTE.stop, _S_TASTE.stop + 10)
_S_OCC = slice(_S_STY.stop, _S_STY.stop + 11)
_S_NUIS = slice(_S_OCC.stop, _S_OCC.stop + N_CAND_NUIS)
D_SEM = _S_NUIS.stop

# relevance weights (see module docstring)
W_MATCH, W_TASTE, W_VIOL, W_NOISE = 1.0, 0.7, 2.0, 0.45
GRADE_QUANTILES = (0.50, 0.75, 0.90)


@dataclass(frozen=True)
class World:
    """The fixed projections of one seed: every split of a scenario shares them.

    Attributes
    ----------
    W_shared : ndarray, shape (512, D_SEM)
        Orthonormal map of the shared text/image semantic space.
    W_img : ndarray, shape (512, N_IMG_NUIS)
        Image-private nuisance directions (orthogonal to ``W_shared``).
    W_vis : ndarray, shape (256, 6 + N_VIS_NUIS)
        Visual descriptor loadings on the attributes and visual nuisance.
    """

    W_shared: np.ndarray
    W_img: np.ndarray
    W_vis: np.ndarray


def make_world(seed: int) -> World:
    """The projections for ``seed`` (deterministic)."""
    rng = np.random.default_rng([int(seed), 0x51])
    g = rng.normal(size=(IMAGE_DIM, D_SEM + N_IMG_NUIS))
    qmat, _ = np.linalg.qr(g)
    W_vis = rng.normal(size=(VISUAL_DIM, 6 + N_VIS_NUIS)) / np.sqrt(6 + N_VIS_NUIS)
    return World(W_shared=qmat[:, :D_SEM], W_img=qmat[:, D_SEM:], W_vis=W_vis)


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------- queries
def _query_text(spirit: int, u: np.ndarray, style: int, occasion: int, cons: list[tuple[int, int]]) -> str:
    k = int(np.argmax(np.abs(u)))
    flavour = FLAVOURS[k][0 if u[k] > 0 else 1]
    parts = [flavour, SPIRITS[spirit], STYLES[style]]
    for attr, want in cons:
        parts.append(("with " if want else "without ") + ATTRIBUTES[attr])
    if OCCASIONS[occasion]:
        parts.append(OCCASIONS[occasion])
    return " ".join(parts)


def _sample_queries(rng: np.random.Generator, n: int, used: set[str]) -> list[dict[str, Any]]:
    """``n`` queries with texts not in ``used`` (``used`` is updated)."""
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:  # pragma: no cover - the text space has ~10^6 combinations
            raise RuntimeError("could not draw enough distinct query texts")
        spirit = int(rng.integers(len(SPIRITS)))
        u = rng.normal(size=N_TASTE)
        style = int(rng.integers(len(STYLES)))
        occasion = int(rng.integers(len(OCCASIONS)))
        n_cons = int(rng.choice(3, p=[0.2, 0.5, 0.3]))
        attrs = rng.choice(len(ATTRIBUTES), size=n_cons, replace=False)
        cons = [(int(a), int(rng.random() < 0.5)) for a in attrs]  # "with" / "without" equally often
        text = _query_text(spirit, u, style, occasion, cons)
        if text in used:
            continue
        used.add(text)
        out.append(dict(spirit=spirit, u=u, style=style, occasion=occasion, cons=cons, text=text))
    return out


def _query_sem(q: dict[str, Any]) -> np.ndarray:
    v = np.zeros(D_SEM)
    v[_S_SP][q["spirit"]] = 1.0
    for attr, want in q["cons"]:
        v[_S_MEN][attr] = 0.8  # the attribute word, whatever the polarity (a cosine cannot tell)
        if not want:
            v[_S_NEG][attr] = 0.8  # "without X": a direction no candidate shares
    v[_S_TASTE] = 0.5 * q["u"]
    v[_S_STY][q["style"]] = 0.5
    v[_S_OCC][q["occasion"]] = 0.5
    return v


# ----------------------------------------------------------------------------------- split
_CAP_TASTE = np.r_[np.full(N_TASTE // 2, 0.3), np.full(N_TASTE - N_TASTE // 2, 0.8)]
_IMG_TASTE = _CAP_TASTE[::-1].copy()


def _make_split(world: World, rng: np.random.Generator, queries: list[dict[str, Any]], n_candidates: int,
                qid0: int, noise: float = 1.0) -> dict[str, np.ndarray]:
    """Candidates, embeddings, latent relevance and compliance for ``queries`` (no labels yet)."""
    sizes = rng.integers(max(2, n_candidates - 4), n_candidates + 5, size=len(queries))
    n = int(sizes.sum())
    qpos = np.repeat(np.arange(len(queries)), sizes)
    q_spirit = np.array([q["spirit"] for q in queries])[qpos]
    U = np.stack([q["u"] for q in queries])[qpos]  # (n, 16)
    # candidate pools: the query's spirit 35% of the time; attributes 40% (50% when constrained)
    same = rng.random(n) < 0.35
    other = (q_spirit + rng.integers(1, len(SPIRITS), size=n)) % len(SPIRITS)
    spirit = np.where(same, q_spirit, other)
    A = (rng.random((n, len(ATTRIBUTES))) < 0.4).astype(np.float64)
    viol = np.zeros(n)
    for i, q in enumerate(queries):
        rows = slice(int(sizes[:i].sum()), int(sizes[:i + 1].sum()))
        for attr, want in q["cons"]:
            col = (rng.random(int(sizes[i])) < 0.5).astype(np.float64)
            A[rows, attr] = col
            viol[rows] += (col == 0) if want else (col == 1)
    Z = rng.normal(size=(n, N_TASTE))
    match = (spirit == q_spirit).astype(np.float64)
    taste = np.einsum("nk,nk->n", U, Z) / np.sqrt(N_TASTE)
    r = W_MATCH * match + W_TASTE * taste - W_VIOL * viol + W_NOISE * rng.normal(size=n)

    # caption (shared space): spirit, mentioned attributes, taste (dims 3-5 strong), nuisance
    cap = np.zeros((n, D_SEM))
    cap[np.arange(n), _S_SP.start + spirit] = 1.0
    cap[:, _S_MEN] = 0.8 * A * (rng.random(A.shape) < 0.6)
    cap[:, _S_TASTE] = Z * _CAP_TASTE
    cap[:, _S_NUIS] = 0.5 * rng.normal(size=(n, N_CAND_NUIS))
    # image: taste (dims 0-2 strong), spirit weakly, attributes faintly, private nuisance
    img = np.zeros((n, D_SEM))
    img[np.arange(n), _S_SP.start + spirit] = 0.4
    img[:, _S_MEN] = 0.2 * A
    img[:, _S_TASTE] = Z * _IMG_TASTE
    sig_scale = 0.045 * noise  # per-dimension noise: about as much norm as the signal
    caption = cap @ world.W_shared.T + sig_scale * rng.normal(size=(n, CAPTION_DIM))
    image = (img @ world.W_shared.T + 0.5 * rng.normal(size=(n, N_IMG_NUIS)) @ world.W_img.T
             + sig_scale * rng.normal(size=(n, IMAGE_DIM)))
    vis_f = np.concatenate([2 * A - 1, rng.normal(size=(n, N_VIS_NUIS))], axis=1)
    visual = vis_f @ world.W_vis.T + 0.6 * noise * rng.normal(size=(n, VISUAL_DIM))
    qsem = np.stack([_query_sem(q) for q in queries])  # (Q, D_SEM)
    qemb = _l2(qsem @ world.W_shared.T + sig_scale * rng.normal(size=(len(queries), QUERY_DIM)))
    text = np.concatenate([qemb[qpos], _l2(caption)], axis=1)
    return dict(
        qid=np.repeat(np.arange(qid0, qid0 + len(queries)), sizes).astype(np.int64),
        query_text=np.array([q["text"] for q in queries], dtype=object)[qpos].astype(str),
        image=_l2(image).astype(np.float32), text=text.astype(np.float32), visual=visual.astype(np.float32),
        compliance=(viol == 0).astype(np.float64), relevance=r, sizes=sizes,
    )


def v1_cosines(text: np.ndarray, image: np.ndarray, query_dim: int = QUERY_DIM) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise cosine of the query text embedding with the caption and with the image.

    Parameters
    ----------
    text : ndarray, shape (n, query_dim + caption_dim)
    image : ndarray, shape (n, image_dim), same width as the caption
    query_dim : int, default 512

    Returns
    -------
    cos_caption, cos_image : ndarray, shape (n,) float64
    """
    t = np.asarray(text, dtype=np.float64)
    q, c = t[:, :query_dim], t[:, query_dim:]
    im = np.asarray(image, dtype=np.float64)

    def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        na = np.linalg.norm(a, axis=1)
        nb = np.linalg.norm(b, axis=1)
        return np.einsum("nd,nd->n", a, b) / np.maximum(na * nb, 1e-12)

    return cos(q, c), cos(q, im)


def _grade(r: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Grades 0-3 by within-query rank of ``r``: bottom 50% -> 0, next 25% -> 1, next 15% -> 2, top 10% -> 3.

    Grading within the query gives every query the same label distribution, so a pointwise
    loss trained on labels shuffled within queries has no query-level base rate to latch on
    to (which would otherwise correlate with candidate features and bias the random-label
    audit either way).
    """
    out = np.empty(r.shape[0])
    start = 0
    for n in sizes.tolist():
        rr = r[start:start + n]
        frac = (np.argsort(np.argsort(rr, kind="stable"), kind="stable") + 0.5) / n  # (n,) in (0, 1)
        out[start:start + n] = np.digitize(frac, GRADE_QUANTILES)
        start += n
    return out


def _dataset(parts: dict[str, np.ndarray], labels: np.ndarray, item_id: np.ndarray, name: str,
             meta: dict[str, Any]) -> RankingDataset:
    return RankingDataset(
        qid=parts["qid"], labels=labels,
        features={"image": parts["image"], "text": parts["text"], "visual": parts["visual"]},
        item_id=item_id, query_text=parts["query_text"], extra={"compliance": parts["compliance"]},
        meta=meta, name=name)


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _take_queries(parts: dict[str, np.ndarray], qpos: np.ndarray) -> dict[str, np.ndarray]:
    """Sub-table of the given query positions (in the given order)."""
    off = np.r_[0, np.cumsum(parts["sizes"])]
    rows = np.concatenate([np.arange(off[i], off[i + 1]) for i in qpos]) if len(qpos) else np.arange(0)
    out = {k: v[rows] for k, v in parts.items() if k != "sizes"}
    out["sizes"] = parts["sizes"][qpos]
    return out


def generate(seed: int = 0, scenario: str = "clean", *, n_train_queries: int = 400, n_test_queries: int = 120,
             n_candidates: int = 16, n_synthetic_queries: int = 100, overlap_frac: float = 0.3,
             train_dup_frac: float = 0.0, proxy_noise: float = 0.1, synthetic_rows: int = 500, shift_sd: float = 0.5,
             shift_dims: int = 16, noise: float = 1.0) -> Split:
    """Generate one scenario's :class:`~auditor.data.Split`.

    Parameters
    ----------
    seed : int, default 0
    scenario : {"clean", "leaky", "shifted", "no_gain"}, default "clean"
    n_train_queries, n_test_queries : int, default 300, 120
    n_candidates : int, default 20
        Mean candidates per query (each query has ``n_candidates - 4 .. n_candidates + 4``).
    n_synthetic_queries : int, default 100
        ``clean``: queries of the faithful synthetic set (drawn from the generator; enough of
        them that a two-sample test on it has power).
    overlap_frac : float, default 0.3
        ``leaky``: share of test queries re-logged into train.
    train_dup_frac : float, default 0.0
        ``leaky``: share of training queries additionally logged twice inside train (off by
        default; the planted defect is the cross-split overlap).
    proxy_noise : float, default 0.1
        ``leaky``: SD of the noise on the label proxy, in grade units.
    synthetic_rows : int, default 500
        ``leaky``: rows of the naive synthetic set (20 per query).
    shift_sd, shift_dims : float, int, default 0.5, 16
        ``shifted``: test shift (in training SDs) on that many visual columns.
    noise : float, default 1.0
        Embedding noise multiplier.

    Returns
    -------
    Split
        ``train``, ``test`` (feature groups ``image`` 512, ``text`` 1024 = query 512 | caption
        512, ``visual`` 256; ``item_id``, ``query_text``, ``extra["compliance"]``, graded labels
        0-3) and ``synthetic`` (``clean`` and ``leaky``; None otherwise). ``meta["planted"]``
        of each dataset records what the scenario planted.

    Raises
    ------
    ConfigError
        Unknown scenario or impossible sizes.
    """
    scenario = str(scenario).lower()
    if scenario not in SCENARIOS:
        raise ConfigError(f"reference data: unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}.")
    if n_train_queries < 5 or n_test_queries < 2 or n_candidates < 3:
        raise ConfigError("reference data: need at least 5 train queries, 2 test queries and 3 candidates per query.")
    if not 0 <= overlap_frac <= 1 or not 0 <= train_dup_frac <= 1:
        raise ConfigError("reference data: overlap_frac and train_dup_frac must be in [0, 1].")
    world = make_world(seed)
    rng = np.random.default_rng([int(seed), 0xDA7A, SCENARIOS.index(scenario)])
    used: set[str] = set()
    n_syn = n_synthetic_queries if scenario == "clean" else 0
    qs_train = _sample_queries(rng, n_train_queries, used)
    qs_test = _sample_queries(rng, n_test_queries, used)
    qs_syn = _sample_queries(rng, n_syn, used) if n_syn else []
    tr = _make_split(world, rng, qs_train, n_candidates, 0, noise)
    te = _make_split(world, rng, qs_test, n_candidates, 100_000, noise)
    sy = _make_split(world, rng, qs_syn, n_candidates, 200_000, noise) if n_syn else None

    if scenario == "shifted":
        cols = np.sort(rng.choice(VISUAL_DIM, size=min(shift_dims, VISUAL_DIM), replace=False))
        sd = tr["visual"][:, cols].std(axis=0)
        v = te["visual"].copy()
        v[:, cols] += (shift_sd * sd).astype(np.float32)
        te["visual"] = v
    if scenario == "no_gain":
        # relevance = exactly the V1 signal (query-caption cosine), standardised on train, plus noise
        c_tr = v1_cosines(tr["text"], tr["image"])[0]
        mu, sd = c_tr.mean(), c_tr.std() + 1e-12
        for p in (tr, te):
            c = v1_cosines(p["text"], p["image"])[0]
            p["relevance"] = (c - mu) / sd + W_NOISE * rng.normal(size=c.shape[0])
    y_tr, y_te = _grade(tr["relevance"], tr["sizes"]), _grade(te["relevance"], te["sizes"])
    y_sy = _grade(sy["relevance"], sy["sizes"]) if sy is not None else None

    # item ids: one random bijection over every generated row, so id order carries no signal
    n_all = tr["qid"].size + te["qid"].size + (sy["qid"].size if sy is not None else 0)
    ids = rng.permutation(n_all).astype(np.int64) + 1_000_000
    id_tr, id_te = ids[:tr["qid"].size], ids[tr["qid"].size:tr["qid"].size + te["qid"].size]
    id_sy = ids[tr["qid"].size + te["qid"].size:] if sy is not None else None

    base_meta = {"generator": "reference_model.synthetic", "scenario": scenario, "seed": int(seed),
                 "text_layout": f"text[:, :{QUERY_DIM}] = query text embedding (constant within a query); "
                                f"text[:, {QUERY_DIM}:] = candidate caption embedding"}
    planted: dict[str, Any] = {}
    synthetic: RankingDataset | None = None
    if scenario == "leaky":
        # (b) label proxy in one visual column: grade + noise, on the column's own scale
        col = int(rng.integers(VISUAL_DIM))
        allv = np.concatenate([tr["visual"][:, col], te["visual"][:, col]])
        mu_c, sd_c = float(allv.mean()), float(allv.std())
        ally = np.concatenate([y_tr, y_te])
        my, sy_ = float(ally.mean()), float(ally.std())
        for p, y in ((tr, y_tr), (te, y_te)):
            v = p["visual"].copy()
            v[:, col] = (mu_c + sd_c * ((y - my) / sy_ + proxy_noise / sy_ * rng.normal(size=y.size))).astype(np.float32)
            p["visual"] = v
        # (a) test queries re-logged into train (new qids, same text / items / rows / labels),
        #     plus some training queries logged twice within train
        k_over = int(round(overlap_frac * n_test_queries))
        over = np.sort(rng.choice(n_test_queries, size=k_over, replace=False))
        k_dup = int(round(train_dup_frac * n_train_queries))
        dup = np.sort(rng.choice(n_train_queries, size=k_dup, replace=False))
        te_lab = dict(te, labels=y_te, item_id=id_te)
        tr_lab = dict(tr, labels=y_tr, item_id=id_tr)
        blocks = [tr_lab, _take_queries(te_lab, over), _take_queries(tr_lab, dup)]
        merged = _concat([{k: b[k] for k in tr_lab} for b in blocks])
        n_q = n_train_queries + k_over + k_dup
        # shuffle query order so the copies are not a tail block; qids renumbered in file order
        order = rng.permutation(n_q)
        merged = _take_queries(merged, order)
        merged["qid"] = np.repeat(np.arange(n_q), merged["sizes"]).astype(np.int64)
        tr, y_tr, id_tr = merged, merged["labels"], merged["item_id"]
        planted = {"test_queries_copied_into_train": k_over, "train_queries_duplicated": k_dup,
                   "label_proxy": f"visual.{col}", "synthetic": "independent Gaussians per column, shifted labels"}
        # (c) naive synthetic set: independent Gaussians per column, shifted label distribution
        per_q = 20
        n_sq = max(1, int(round(synthetic_rows / per_q)))
        n_rows_s = n_sq * per_q
        feats = {}
        for g in ("image", "text", "visual"):
            x = tr[g].astype(np.float64)
            feats[g] = (x.mean(0) + x.std(0) * rng.normal(size=(n_rows_s, x.shape[1]))).astype(np.float32)
        y_syn = rng.choice(4, size=n_rows_s, p=[0.2, 0.2, 0.3, 0.3]).astype(np.float64)
        synthetic = RankingDataset(
            qid=np.repeat(np.arange(300_000, 300_000 + n_sq), per_q), labels=y_syn, features=feats,
            item_id=np.arange(n_rows_s, dtype=np.int64) + 5_000_000,
            query_text=np.repeat(np.array([f"synthetic query {i}" for i in range(n_sq)]), per_q),
            extra={"compliance": (rng.random(n_rows_s) < 0.5).astype(np.float64)},
            meta={**base_meta, "planted": planted, "role": "synthetic"},
            name=f"reference:{scenario}:synthetic")
    elif scenario == "shifted":
        planted = {"covariate_shift": f"+{shift_sd} SD on visual columns {cols.tolist()} (test only)"}
    elif scenario == "no_gain":
        planted = {"relevance": "standardised query-caption cosine + noise (the V1.0 signal)"}

    train = _dataset(tr, y_tr, id_tr, f"reference:{scenario}:train", {**base_meta, "planted": planted, "role": "train"})
    test = _dataset(te, y_te, id_te, f"reference:{scenario}:test", {**base_meta, "planted": planted, "role": "test"})
    if sy is not None:
        synthetic = _dataset(sy, y_sy, id_sy, f"reference:{scenario}:synthetic",
                             {**base_meta, "planted": planted, "role": "synthetic"})
    return Split(train=train, test=test, synthetic=synthetic, name=f"reference-{scenario}(seed={seed})")
