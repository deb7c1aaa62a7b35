"""fANOVA on a random forest, with the marginals of every tree computed at once in NumPy.

The method is Hutter, Hoos and Leyton-Brown's (ICML 2014) as Optuna implements it
(``optuna/importance/_fanova``): a random forest predicts the objective from the encoded
parameters; each tree cuts the search box into leaf boxes, and the importance of a parameter in
one tree is the variance of the tree's marginal prediction along that parameter (the prediction
averaged over every other parameter, uniformly over the box) divided by the tree's total
variance. The importance is the mean over the trees whose total variance is not zero.

Optuna walks each tree once per grid cell of each parameter in Python. Here the leaf boxes of
all trees are computed level by level for the whole forest at once, and the marginal along one
column is a difference array over the cells between that tree's split points: a leaf adds its
value, weighted by its volume in the other dimensions, to the range of cells its box spans
(``bincount`` and ``cumsum``, no per-leaf Python loop). A categorical parameter is one-hot
encoded (several columns); its marginal is over the product of those columns' cells, as in
Optuna.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fanova_importances"]


def _forest(X: np.ndarray, y: np.ndarray, n_trees: int, max_depth: int, seed: int | None) -> list:
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError:  # pragma: no cover - scikit-learn is in the hpo/test extras
        raise ImportError(
            "fANOVA importance needs scikit-learn: pip install scikit-learn "
            "(or use evaluator='ped-anova', which needs nothing more)"
        ) from None
    forest = RandomForestRegressor(
        n_estimators=n_trees,
        max_depth=max_depth,
        min_samples_split=2,
        min_samples_leaf=1,
        random_state=seed,
    )
    forest.fit(X, y)
    return [e.tree_ for e in forest.estimators_]


class _Forest:
    """Every node of every tree in flat arrays, with each node's box in the encoded space."""

    def __init__(self, trees: list, bounds: np.ndarray):
        sizes = np.array([t.node_count for t in trees])
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self.n_trees = len(trees)
        self.feature = np.concatenate([t.feature for t in trees]).astype(np.int64)
        self.threshold = np.concatenate([t.threshold for t in trees]).astype(np.float64)
        left = [
            np.where(t.children_left >= 0, t.children_left + o, -1)
            for t, o in zip(trees, offsets, strict=True)
        ]
        right = [
            np.where(t.children_right >= 0, t.children_right + o, -1)
            for t, o in zip(trees, offsets, strict=True)
        ]
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.value = np.concatenate([np.asarray(t.value)[:, 0, 0] for t in trees]).astype(float)
        self.tree = np.repeat(np.arange(len(trees)), sizes)
        n, d = len(self.feature), bounds.shape[0]
        lo = np.empty((n, d))
        hi = np.empty((n, d))
        lo[offsets] = bounds[:, 0]
        hi[offsets] = bounds[:, 1]
        frontier = offsets
        # Children come after their parent; one step per depth level for the whole forest.
        while frontier.size:
            inner = frontier[self.feature[frontier] >= 0]
            if not inner.size:
                break
            f, thr = self.feature[inner], self.threshold[inner]
            kids_l, kids_r = self.left[inner], self.right[inner]
            lo[kids_l], hi[kids_l] = lo[inner], hi[inner]
            lo[kids_r], hi[kids_r] = lo[inner], hi[inner]
            hi[kids_l, f] = thr
            lo[kids_r, f] = thr
            frontier = np.concatenate((kids_l, kids_r))
        leaves = np.flatnonzero(self.feature < 0)
        self.leaf_tree = self.tree[leaves]
        self.leaf_lo, self.leaf_hi = lo[leaves], hi[leaves]
        self.leaf_value = self.value[leaves]
        self.leaf_volume = np.prod(self.leaf_hi - self.leaf_lo, axis=1)
        self.bounds = bounds
        # Total variance of each tree: leaf values weighted by leaf volume.
        w = self.leaf_volume
        wsum = np.bincount(self.leaf_tree, w, self.n_trees)
        mean = np.bincount(self.leaf_tree, w * self.leaf_value, self.n_trees) / _nz(wsum)
        centred = self.leaf_value - mean[self.leaf_tree]
        self.leaf_centred = centred  # variance is shift-free: centring keeps the sums small
        self.variance = np.bincount(self.leaf_tree, w * centred**2, self.n_trees) / _nz(wsum)

    def _edges(self, col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The sorted split points of column `col` in every tree (bounds included), and the
        indices of each leaf's low and high ends among them."""
        split = self.feature == col
        t_all = np.arange(self.n_trees)
        n_leaf = len(self.leaf_tree)
        trees = np.concatenate((self.tree[split], t_all, t_all, self.leaf_tree, self.leaf_tree))
        lo_b, hi_b = self.bounds[col]
        vals = np.concatenate(
            (
                self.threshold[split],
                np.full(self.n_trees, lo_b),
                np.full(self.n_trees, hi_b),
                self.leaf_lo[:, col],
                self.leaf_hi[:, col],
            )
        )
        order = np.lexsort((vals, trees))
        st, sv = trees[order], vals[order]
        first = np.empty(len(order), dtype=bool)
        first[0] = True
        first[1:] = (st[1:] != st[:-1]) | (sv[1:] != sv[:-1])
        uid = np.cumsum(first) - 1
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[order] = uid
        edge_tree, edge_val = st[first], sv[first]
        a = inverse[-2 * n_leaf : -n_leaf]
        b = inverse[-n_leaf:]
        return edge_tree, edge_val, a, b

    def marginal_variance(self, cols: np.ndarray) -> np.ndarray:
        """Per tree, the variance of the marginal prediction along the columns `cols`."""
        if len(cols) == 1:
            return self._marginal_variance_1d(int(cols[0]))
        return self._marginal_variance_nd(cols)

    def _marginal_variance_1d(self, col: int) -> np.ndarray:
        edge_tree, edge_val, a, b = self._edges(col)
        length = self.leaf_hi[:, col] - self.leaf_lo[:, col]
        w = np.where(length > 0, self.leaf_volume / _nz(length), 0.0)
        n = len(edge_val) + 1
        num = np.bincount(a, w * self.leaf_centred, n) - np.bincount(b, w * self.leaf_centred, n)
        den = np.bincount(a, w, n) - np.bincount(b, w, n)
        num, den = np.cumsum(num)[:-1], np.cumsum(den)[:-1]
        # Each tree's contributions cancel at its last edge; subtract what rounding carried.
        start = np.flatnonzero(np.r_[True, edge_tree[1:] != edge_tree[:-1]])
        carry_num = np.where(start > 0, num[np.maximum(start - 1, 0)], 0.0)
        carry_den = np.where(start > 0, den[np.maximum(start - 1, 0)], 0.0)
        seg = np.cumsum(np.r_[True, edge_tree[1:] != edge_tree[:-1]]) - 1
        num = num - carry_num[seg]
        den = den - carry_den[seg]
        cell = np.flatnonzero(edge_tree[:-1] == edge_tree[1:])  # cell k: edge k to edge k+1
        size = edge_val[cell + 1] - edge_val[cell]
        t = edge_tree[cell]
        m = num[cell] / _nz(den[cell])
        weight = den[cell] * size  # Optuna's: the marginal's weight times the cell's size
        return _weighted_variance(t, m, weight, self.n_trees)

    def _marginal_variance_nd(self, cols: np.ndarray) -> np.ndarray:
        per_col = [self._edges(int(c)) for c in cols]
        length = np.prod(
            np.stack([self.leaf_hi[:, c] - self.leaf_lo[:, c] for c in cols], axis=1), axis=1
        )
        w_all = np.where(length > 0, self.leaf_volume / _nz(length), 0.0)
        out = np.zeros(self.n_trees)
        for t in range(self.n_trees):
            leaves = self.leaf_tree == t
            grids, sizes, spans = [], [], []
            for edge_tree, edge_val, a, b in per_col:
                idx = np.flatnonzero(edge_tree == t)
                first = idx[0]
                vals = edge_val[idx]
                grids.append(np.arange(len(vals) - 1))
                sizes.append(np.diff(vals))
                spans.append((a[leaves] - first, b[leaves] - first))
            mesh = np.meshgrid(*grids, indexing="ij")
            inside = np.ones((mesh[0].size, int(leaves.sum())), dtype=bool)
            for g, (lo_i, hi_i) in zip(mesh, spans, strict=True):
                cell = g.reshape(-1, 1)
                inside &= (lo_i[None, :] <= cell) & (cell < hi_i[None, :])
            w = w_all[leaves]
            den = inside @ w
            m = (inside @ (w * self.leaf_centred[leaves])) / _nz(den)
            size = np.prod(np.meshgrid(*sizes, indexing="ij"), axis=0).reshape(-1)
            out[t] = _weighted_variance(np.zeros(len(m), dtype=np.int64), m, den * size, 1)[0]
        return out


def _nz(x: np.ndarray) -> np.ndarray:
    return np.where(x == 0, 1.0, x)


def _weighted_variance(group: np.ndarray, x: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    wsum = np.bincount(group, w, n)
    mean = np.bincount(group, w * x, n) / _nz(wsum)
    return np.bincount(group, w * (x - mean[group]) ** 2, n) / _nz(wsum)


def fanova_importances(
    X: np.ndarray,
    y: np.ndarray,
    bounds: np.ndarray,
    groups: list[np.ndarray],
    *,
    n_trees: int = 64,
    max_depth: int = 64,
    seed: int | None = 0,
) -> np.ndarray:
    """The fANOVA importance of each group of encoded columns (not normalised).

    Args:
        X: the encoded parameters, one row per trial.
        y: the target values.
        bounds: ``(n_columns, 2)`` low and high of each column.
        groups: the columns of each parameter (one, or the one-hot columns of a categorical).

    Raises ValueError when the target does not vary (no tree has any variance).
    """
    trees = _forest(X, y, n_trees, max_depth, seed)
    forest = _Forest(trees, np.asarray(bounds, dtype=np.float64))
    live = forest.variance > 0
    if not live.any():
        raise ValueError(
            "the target values do not vary between trials: no importance can be assessed"
        )
    out = np.empty(len(groups))
    for i, cols in enumerate(groups):
        var = np.clip(forest.marginal_variance(np.asarray(cols)), 0.0, None)
        out[i] = float(np.mean(var[live] / forest.variance[live]))
    return out
