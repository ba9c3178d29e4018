"""Sparse k-reciprocal Jaccard distance (Zhong et al. 2017, as used by Cluster Contrast).

Every quantity of the definition is sparse: a point only "sees" its k-reciprocal neighbourhood,
so the encoding V has O(N*k) nonzeros and the Jaccard distance is below 1 only for pairs whose
encodings share support. The reference implementations nonetheless fill dense N x N matrices
(4.3 GB each at 32k images); here V is a CSR matrix and the min-sums are accumulated only over
shared support, so nothing of size N x N is ever allocated.

Definition (names follow docs/PSEUDO_LABELS.md):
  N(i, w)    the w nearest points of i by cosine similarity, i itself first.
  R(i, w)    {j in N(i, w) : i in N(j, w)}, the reciprocal set (contains i).
  R1(i)      R(i, k1);  Rh(c) = R(c, round(k1/2) + 1).
  E(i)       R1(i) united with Rh(c) for each c in R1(i) with |Rh(c) & R1(i)| > 2/3 |Rh(c)|.
  V(i, j)    exp(-d(i, j)) / sum over E(i), d = 2 - 2 cos, for j in E(i); 0 elsewhere.
  Vq(i)      mean of V(j) over j in N(i, k2) (local query expansion).
  d_J(i, j)  1 - s / (2 - s) with s = sum_k min(Vq(i, k), Vq(j, k)).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from spcreid.clustering.knn import Neighbours, normalised_features, topk_cosine_neighbours
from spcreid.errors import SpcreidError

# Row blocks of the min-sum stage are sized so that each generates about this many
# (row, shared column, partner) triples: a few hundred MB of transient arrays.
TRIPLES_PER_BLOCK = 8_000_000
# Feature pairs whose similarity is not already known from the kNN lists are scored in chunks
# of this many pairs (two gathered chunk x D float32 matrices at a time).
PAIRS_PER_CHUNK = 8_192


@contextmanager
def _timed(stats: dict | None, name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        if stats is not None:
            seconds = stats.setdefault("stage_seconds", {})
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start


def half_width(k1: int) -> int:
    """List width of the half-size reciprocal sets used for expansion.

    Cluster Contrast takes R(c, round(k1/2)) from rank lists cut at round(k1/2) + 1 entries
    (the +1 counts the point itself), while its main sets use lists of k1 entries; we keep
    both widths so the neighbourhoods match the baseline this paper builds on. Python's
    round() halves to even, like numpy.around in that implementation.
    """
    return min(int(round(k1 / 2)) + 1, k1)


def neighbour_graph(indices: np.ndarray, width: int) -> sp.csr_matrix:
    """Binary CSR matrix with row i marking the first ``width`` entries of ``indices[i]``."""
    n = indices.shape[0]
    width = min(width, indices.shape[1])
    # A copy: sort_indices() below works in place and must not reorder the caller's rank lists.
    cols = indices[:, :width].astype(np.int32, copy=True).ravel()
    indptr = np.arange(0, n * width + 1, width, dtype=np.int64)
    graph = sp.csr_matrix((np.ones(cols.size, dtype=np.float32), cols, indptr), shape=(n, n))
    graph.sort_indices()
    return graph


def reciprocal_graph(indices: np.ndarray, width: int) -> sp.csr_matrix:
    """R(i, width): j is kept in row i when each lies in the other's first ``width`` neighbours."""
    forward = neighbour_graph(indices, width)
    return forward.multiply(forward.T.tocsr()).tocsr()


def expanded_neighbourhoods(indices: np.ndarray, k1: int) -> sp.csr_matrix:
    """E(i): the k1-reciprocal set grown by the half-size sets of candidates that mostly agree."""
    main = reciprocal_graph(indices, k1)
    half = reciprocal_graph(indices, half_width(k1))
    # overlap[i, c] = |Rh(c) & R1(i)|, needed only for candidates c in R1(i).
    overlap = (main @ half.T).multiply(main).tocsr()
    overlap.sort_indices()
    half_sizes = np.diff(half.indptr)
    candidate = overlap.indices
    # Integer form of |Rh(c) & R1(i)| > 2/3 |Rh(c)|, free of rounding.
    accepted_mask = 3 * np.rint(overlap.data).astype(np.int64) > 2 * half_sizes[candidate]
    accepted = sp.csr_matrix((accepted_mask.astype(np.float32), overlap.indices, overlap.indptr), shape=overlap.shape)
    accepted.eliminate_zeros()
    expanded = (main + accepted @ half).tocsr()
    expanded.data[:] = 1.0
    expanded.sort_indices()
    return expanded


def _row_of_entries(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))


def _as_index(values: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.int64)).to(device)


def _gathered_dot_products(features: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """features[rows[p]] . features[cols[p]] for every p, in chunks gathered into reused buffers.

    Reusing the gather targets matters: fresh allocations made this page-fault bound.
    """
    dim = features.shape[1]
    chunk = min(PAIRS_PER_CHUNK, rows.size)
    left_buffer = torch.empty((chunk, dim), dtype=features.dtype, device=features.device)
    right_buffer = torch.empty_like(left_buffer)
    dots = np.empty(rows.size, dtype=np.float32)
    for start in range(0, rows.size, chunk):
        stop = min(start + chunk, rows.size)
        left, right = left_buffer[: stop - start], right_buffer[: stop - start]
        torch.index_select(features, 0, _as_index(rows[start:stop], features.device), out=left)
        torch.index_select(features, 0, _as_index(cols[start:stop], features.device), out=right)
        dots[start:stop] = torch.einsum("pd,pd->p", left, right).cpu().numpy()
    return dots


def pair_similarities(features: torch.Tensor, neighbours: Neighbours, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cosine similarity of each (rows[p], cols[p]) pair; kNN scores are reused where available."""
    n, k = neighbours.indices.shape
    # Keys of the kNN pairs, sorted, so each wanted pair can be looked up by binary search.
    knn_keys = (np.arange(n, dtype=np.int64)[:, None] * n + neighbours.indices).ravel()
    order = np.argsort(knn_keys, kind="stable")
    knn_keys = knn_keys[order]
    knn_sims = neighbours.similarities.ravel()[order]
    wanted = rows.astype(np.int64) * n + cols
    position = np.minimum(np.searchsorted(knn_keys, wanted), knn_keys.size - 1)
    known = knn_keys[position] == wanted
    sims = np.where(known, knn_sims[position], np.float32(0)).astype(np.float32)
    missing = np.flatnonzero(~known)
    if missing.size:
        sims[missing] = _gathered_dot_products(features, rows[missing], cols[missing])
    return sims


def neighbourhood_weights(features: torch.Tensor, neighbours: Neighbours, expanded: sp.csr_matrix) -> sp.csr_matrix:
    """V: row i holds exp(-d(i, j)) over E(i), normalised to sum 1, d = 2 - 2 cos."""
    rows = _row_of_entries(expanded)
    sims = pair_similarities(features, neighbours, rows, expanded.indices)
    # Written as exp(2s - 2) = exp(-(2 - 2s)); with s in [-1, 1] it lies in [e^-4, 1], so
    # nothing overflows, and normalising in float64 keeps the small terms before the float32 cast.
    weights = np.exp(2.0 * sims.astype(np.float64) - 2.0)
    row_sums = np.bincount(rows, weights=weights, minlength=expanded.shape[0])
    weights /= row_sums[rows]
    return sp.csr_matrix(
        (weights.astype(np.float32), expanded.indices.copy(), expanded.indptr.copy()), shape=expanded.shape
    )


def query_expansion(weights: sp.csr_matrix, indices: np.ndarray, k2: int) -> sp.csr_matrix:
    """Vq(i): the mean of V over the k2 nearest points of i (itself included)."""
    k2 = max(1, min(k2, indices.shape[1]))
    if k2 == 1:
        return weights
    averaging = neighbour_graph(indices, k2)
    averaging.data[:] = 1.0 / k2
    expanded = (averaging @ weights).tocsr()
    expanded.sort_indices()
    return expanded.astype(np.float32)


def _blocks_by_work(work_per_row: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split rows into consecutive blocks whose summed work is about ``budget`` (at least one row)."""
    n = work_per_row.size
    cumulative = np.cumsum(work_per_row, dtype=np.int64)
    blocks, start = [], 0
    while start < n:
        already = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, already + budget, side="right"))
        stop = max(stop, start + 1)
        blocks.append((start, min(stop, n)))
        start = stop
    return blocks


def _upper_min_sums(
    encoding: sp.csr_matrix, column_pos: np.ndarray, columns: sp.csc_matrix, start: int, stop: int
) -> sp.coo_matrix:
    """s(i, j) for rows i in [start, stop) and partners j >= i, summed over shared columns.

    ``column_pos[e]`` is where CSR entry e sits in the CSC arrays; since CSC rows are sorted
    within a column, the partners j >= i of entry (i, k) are the suffix of column k from there.
    """
    first, last = encoding.indptr[start], encoding.indptr[stop]
    entry_cols = encoding.indices[first:last]
    entry_vals = encoding.data[first:last]
    entry_rows = np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(encoding.indptr[start : stop + 1]))
    suffix_start = column_pos[first:last]
    counts = columns.indptr[entry_cols + 1] - suffix_start
    total = int(counts.sum())
    group_offset = np.cumsum(counts) - counts
    partner_pos = np.repeat(suffix_start - group_offset, counts) + np.arange(total, dtype=np.int64)
    partners = columns.indices[partner_pos]
    mins = np.minimum(np.repeat(entry_vals, counts), columns.data[partner_pos])
    rows = np.repeat(entry_rows - start, counts)
    # COO -> CSR sums the contributions of every shared column to the same (i, j).
    return sp.coo_matrix((mins, (rows, partners)), shape=(stop - start, encoding.shape[1])).tocsr().tocoo()


def jaccard_from_encoding(encoding: sp.csr_matrix, max_distance: float = 1.0, progress: bool = True) -> sp.csr_matrix:
    """Symmetric CSR of d_J(i, j) <= ``max_distance`` between rows of ``encoding``.

    Only pairs sharing support are visited (others are at distance exactly 1). The diagonal is
    stored as explicit zeros: d_J(i, i) = 0 by definition, and a sparse "precomputed" DBSCAN
    treats only stored entries as neighbours.
    """
    n = encoding.shape[0]
    encoding = encoding.tocsr()
    encoding.sort_indices()
    # CSR entries ordered by (column, row) are exactly the CSC layout, which gives each entry's
    # position inside its column.
    order = np.argsort(encoding.indices, kind="stable")
    column_pos = np.empty(order.size, dtype=np.int64)
    column_pos[order] = np.arange(order.size, dtype=np.int64)
    columns = encoding.tocsc()
    columns.sort_indices()
    # Work of row i: for each of its entries, the partners after it in that column.
    entry_work = columns.indptr[encoding.indices + 1] - column_pos
    cumulative = np.concatenate([[0], np.cumsum(entry_work, dtype=np.int64)])
    work_per_row = cumulative[encoding.indptr[1:]] - cumulative[encoding.indptr[:-1]]

    kept_rows, kept_cols, kept_dist = [], [], []
    blocks = _blocks_by_work(work_per_row, TRIPLES_PER_BLOCK)
    for start, stop in tqdm(blocks, desc="Jaccard", unit="block", disable=None if progress else True, leave=False):
        sums = _upper_min_sums(encoding, column_pos, columns, start, stop)
        rows = sums.row.astype(np.int64) + start
        cols = sums.col.astype(np.int64)
        off_diagonal = cols != rows
        s = sums.data[off_diagonal].astype(np.float64)
        dist = 1.0 - s / (2.0 - s)
        keep = dist <= max_distance
        kept_rows.append(rows[off_diagonal][keep])
        kept_cols.append(cols[off_diagonal][keep])
        kept_dist.append(np.clip(dist[keep], 0.0, 1.0).astype(np.float32))
    upper_rows = np.concatenate(kept_rows) if kept_rows else np.empty(0, np.int64)
    upper_cols = np.concatenate(kept_cols) if kept_cols else np.empty(0, np.int64)
    upper_dist = np.concatenate(kept_dist) if kept_dist else np.empty(0, np.float32)
    return symmetric_with_zero_diagonal(n, upper_rows, upper_cols, upper_dist)


def symmetric_with_zero_diagonal(n: int, rows: np.ndarray, cols: np.ndarray, dist: np.ndarray) -> sp.csr_matrix:
    """CSR holding each upper-triangle pair twice (i, j) and (j, i) plus explicit zero self pairs.

    Built from raw arrays because scipy's arithmetic would silently drop the explicit zeros
    (exact duplicates also sit at distance 0 and must stay neighbours).
    """
    diagonal = np.arange(n, dtype=np.int64)
    all_rows = np.concatenate([rows, cols, diagonal])
    all_cols = np.concatenate([cols, rows, diagonal])
    all_dist = np.concatenate([dist, dist, np.zeros(n, dtype=np.float32)])
    order = np.lexsort((all_cols, all_rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(all_rows, minlength=n), out=indptr[1:])
    index_dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix((all_dist[order], all_cols[order].astype(index_dtype), indptr), shape=(n, n))


def jaccard_distance(
    features,
    k1: int = 30,
    k2: int = 6,
    max_distance: float = 1.0,
    device: str | torch.device | None = None,
    stats: dict | None = None,
    progress: bool = True,
) -> sp.csr_matrix:
    """k-reciprocal Jaccard distances of ``features`` (N x D) as a sparse symmetric CSR matrix.

    Stores every pair with d_J <= ``max_distance`` (pairs with no shared support are at 1 and
    never stored) and the zero diagonal. ``stats``, if given, receives ``stage_seconds`` (wall
    clock per stage: knn, reciprocal, weights, query_expansion, jaccard) and the sizes
    ``knn_rows_redone_exactly``, ``encoding_nonzeros`` and ``stored_pairs``.
    """
    if k1 < 1 or k2 < 1:
        raise SpcreidError(f"k1 and k2 must be >= 1 (got k1={k1}, k2={k2}); see method.k1/k2 in params.yaml")
    with _timed(stats, "knn"):
        normalised = normalised_features(features, device)
        neighbours = topk_cosine_neighbours(normalised, k1, progress=progress)
    with _timed(stats, "reciprocal"):
        expanded = expanded_neighbourhoods(neighbours.indices, k1)
    with _timed(stats, "weights"):
        weights = neighbourhood_weights(normalised, neighbours, expanded)
        del expanded
    with _timed(stats, "query_expansion"):
        encoding = query_expansion(weights, neighbours.indices, k2)
        del weights
    with _timed(stats, "jaccard"):
        distances = jaccard_from_encoding(encoding, max_distance, progress=progress)
    if stats is not None:
        stats["knn_rows_redone_exactly"] = neighbours.rows_redone_exactly
        stats["encoding_nonzeros"] = int(encoding.nnz)
        stats["stored_pairs"] = int(distances.nnz)
    return distances
