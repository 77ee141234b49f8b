"""Jump lanes between stars: every pair within the lane distance, plus the shortest links that
join the rest into one connected graph (see ``catalogue``'s module docstring)."""

from __future__ import annotations

import numpy as np


def build_lanes(positions: np.ndarray, lane_distance: float) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Jump lanes between points.

    ``positions``: array of shape (n, 3), parsecs. Returns ``(near, extra)``, lists of index
    pairs ``(i, j)`` with ``i < j``: ``near`` joins every pair at most ``lane_distance`` apart;
    ``extra`` are the shortest lanes that connect the components of ``near`` (Kruskal over the
    components; ties broken by index), ``len(extra) == components - 1``.
    """
    n = len(positions)
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    iu, ju = np.triu_indices(n, 1)
    pair_dist = dist[iu, ju]
    close = pair_dist <= lane_distance
    near = list(zip(iu[close].tolist(), ju[close].tolist()))

    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in near:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = sorted({find(i) for i in range(n)})
    if len(roots) <= 1:
        return near, []
    comp = np.searchsorted(roots, [find(i) for i in range(n)])

    # Shortest pair between each two components, then Kruskal over those candidates.
    ci, cj = comp[iu], comp[ju]
    between = ci != cj
    bi, bj, bd = iu[between], ju[between], pair_dist[between]
    lo, hi = np.minimum(ci[between], cj[between]), np.maximum(ci[between], cj[between])
    order = np.lexsort((bj, bi, bd))
    keys = (lo * len(roots) + hi)[order]
    _, first = np.unique(keys, return_index=True)
    best = order[np.sort(first)]  # still ordered by (distance, i, j)
    best = best[np.lexsort((bj[best], bi[best], bd[best]))]

    comp_parent = list(range(len(roots)))

    def find_comp(a: int) -> int:
        while comp_parent[a] != a:
            comp_parent[a] = comp_parent[comp_parent[a]]
            a = comp_parent[a]
        return a

    extra: list[tuple[int, int]] = []
    for k in best.tolist():
        a, b = find_comp(int(lo[k])), find_comp(int(hi[k]))
        if a != b:
            comp_parent[max(a, b)] = min(a, b)
            extra.append((int(bi[k]), int(bj[k])))
            if len(extra) == len(roots) - 1:
                break
    return near, extra
