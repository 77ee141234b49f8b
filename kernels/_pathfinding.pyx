# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, language_level=3
"""Compiled A* kernels; the twins are in ``starhold.kernels.pathfinding`` (``_GridSearchPy``,
``route_py``). Validation happens in the Python module: these functions trust their arguments.

Both searches are A* (Hart, Nilsson & Raphael 1968) with a closed set. Entries are ordered by
f, then by the order they were queued, newest first (LIFO among equal f: the newest entries
are the deepest, which expands fewer cells on open maps), as one 128-bit key: the f score's
float64 bits (f >= 0, so they order like f), then ``0xFFFFFFFF - seq`` (``seq`` counts the
entries queued by this search), then the cell or star index. The order is total, so the
pop order, hence the path, is the twin's ``heapq`` of ``(f, 0xFFFFFFFF - seq, index)``
tuples whatever the queue's layout (while fewer than 2**32 entries are queued in one search).
The floating-point operations are the twin's, in the same order, and the extension is built
without FMA contraction: compiled and twin paths are identical.

Grid open list, two implementations with that same order, both behind a LIFO for the entries
whose f does not exceed the f being expanded (with a consistent heuristic they are minimal:
on open maps most moves toward the goal keep f constant), popped first:

- in general, buckets of f (width max(min weight / 64, span / 1024), where the span bounds
  f(child) - f(parent)): the current bucket is a 4-ary heap of 128-bit keys (groups of 4
  siblings fill a cache line) in which an entry taken from the top stays there while its
  node is expanded (the first child queued into the heap replaces it: one sift-down that
  usually stops near the top); later buckets are unordered vectors, heapified in O(n) when
  their turn comes. A later bucket holds larger f, so this pops exactly in key order, with
  small heaps and O(1) pushes into later buckets;
- when every free weight is an integer and the moves are 4-connected or unit diagonals, f is
  an integer below 2**53 and a new entry's f lies in [f, f + max weight + min weight] of the
  node expanded: a circular array of LIFO buckets indexed by f (Dial 1969), O(1) a push or a
  pop, no separate LIFO: a bucket being drained only receives entries of its own f, at its
  end, which is what the LIFO would do, so popping its end is the same order again.
"""

from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memset, memcpy
from libc.math cimport sqrt, INFINITY
from libc.stdint cimport uint32_t, uint64_t, int64_t

import numpy as np

# the double nearest to sqrt(2) (== math.sqrt(2.0)); the twin uses the same constant
cdef double SQRT2 = 1.4142135623730951

# moves: 0 up, 1 left, 2 right, 3 down, then the diagonals 4 up-left, 5 up-right,
# 6 down-left, 7 down-right (the twin's order)
cdef Py_ssize_t[8] DR = [-1, 0, 0, 1, -1, -1, 1, 1]
cdef Py_ssize_t[8] DC = [0, -1, 1, 0, -1, 1, -1, 1]

cdef uint32_t GEN_LIMIT = 0x0FFFFFFF     # kept-map generations live in 28 bits
cdef Py_ssize_t MAX_BUCKETS = 4096       # integer mode when max + min weight + 1 <= this

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    typedef unsigned __int128 sh_key_t;
    static inline sh_key_t sh_key(double f, uint32_t seq, uint64_t idx) {
        uint64_t fb;
        memcpy(&fb, &f, 8);
        return ((sh_key_t)fb << 64) | ((sh_key_t)(0xFFFFFFFFu - seq) << 32) | (sh_key_t)(uint32_t)idx;
    }
    static inline double sh_key_f(sh_key_t k) {
        uint64_t fb = (uint64_t)(k >> 64); double f;
        memcpy(&f, &fb, 8);
        return f;
    }
    static inline Py_ssize_t sh_key_idx(sh_key_t k) { return (Py_ssize_t)(uint32_t)k; }
    #define STARHOLD_NOT_DIR 0xFFFFFFF8u

    /* One pass over a one-off query's map: flags[i] = 0x80 for a blocked (+inf) cell, else 0;
       the largest free weight; whether a free weight has a fractional part (checked below
       1e9 only: larger weights rule the bucket open list out anyway). SSE2 (baseline x86-64)
       four cells at a time, with a scalar tail and a scalar fallback elsewhere. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    static void sh_scan_map(const float* w, unsigned char* flags, Py_ssize_t n,
                            float* maxw_out, int* fractional_out) {
        Py_ssize_t i = 0;
        float maxw = 0.0f;
        int fractional = 0;
    #if defined(__SSE2__)
        static const uint32_t bytes[16] = {
            0x00000000u, 0x00000080u, 0x00008000u, 0x00008080u, 0x00800000u, 0x00800080u,
            0x00808000u, 0x00808080u, 0x80000000u, 0x80000080u, 0x80008000u, 0x80008080u,
            0x80800000u, 0x80800080u, 0x80808000u, 0x80808080u};
        const __m128 inf = _mm_set1_ps(INFINITY), big = _mm_set1_ps(1e9f);
        __m128 vmax = _mm_setzero_ps(), vfrac = _mm_setzero_ps();
        for (; i + 4 <= n; i += 4) {
            __m128 x = _mm_loadu_ps(w + i);
            __m128 blocked = _mm_cmpeq_ps(x, inf);
            uint32_t fb = bytes[_mm_movemask_ps(blocked)];   /* little-endian: cell i first */
            memcpy(flags + i, &fb, 4);
            x = _mm_andnot_ps(blocked, x);
            vmax = _mm_max_ps(vmax, x);
            x = _mm_min_ps(x, big);
            vfrac = _mm_or_ps(vfrac, _mm_cmpneq_ps(x, _mm_cvtepi32_ps(_mm_cvttps_epi32(x))));
        }
        {
            float m[4];
            _mm_storeu_ps(m, vmax);
            for (int j = 0; j < 4; j++) if (m[j] > maxw) maxw = m[j];
            fractional = _mm_movemask_ps(vfrac) != 0;
        }
    #endif
        for (; i < n; i++) {
            float x = w[i];
            if (x == INFINITY) { flags[i] = 0x80; continue; }
            flags[i] = 0;
            if (x > maxw) maxw = x;
            if (x < 1e9f && x != (float)(int)x) fractional = 1;
        }
        *maxw_out = maxw;
        *fractional_out = fractional;
    }
    """
    ctypedef unsigned long long key_t "sh_key_t"    # (Cython only copies and compares them)
    key_t sh_key(double f, uint32_t seq, uint64_t idx) noexcept nogil
    double sh_key_f(key_t k) noexcept nogil
    Py_ssize_t sh_key_idx(key_t k) noexcept nogil
    int posix_memalign(void** memptr, size_t alignment, size_t size) nogil
    const uint32_t NOT_DIR "STARHOLD_NOT_DIR"   # a kept-map tag without its direction bits
    void sh_scan_map(const float* w, unsigned char* flags, Py_ssize_t n, float* maxw_out,
                     int* fractional_out) noexcept nogil


# ---------------------------------------------------------------------------- heap

cdef struct Heap:
    key_t* data         # 4-ary min-heap: data[0] the minimum, children of i at 4i+1 .. 4i+4;
    key_t* base         # also used as a plain vector (the LIFO). The allocation is 64-byte
    Py_ssize_t size     # aligned and data = base + 3, so every group of four siblings fills
    Py_ssize_t cap      # exactly one cache line


cdef inline void _heap_clear(Heap* h) noexcept nogil:
    h.base = NULL
    h.data = NULL
    h.size = 0
    h.cap = 0


cdef int _heap_reserve(Heap* h, Py_ssize_t cap) noexcept nogil:
    """Grow to at least ``cap`` slots, keeping the entries; 0 or -1 (out of memory)."""
    cdef void* nb = NULL
    cdef Py_ssize_t n = h.cap if h.cap > 0 else 256
    if cap <= h.cap:
        return 0
    while n < cap:
        n *= 2
    if posix_memalign(&nb, 64, (n + 4) * sizeof(key_t)) != 0:
        return -1
    if h.base != NULL:
        memcpy(<key_t*> nb + 3, h.data, h.size * sizeof(key_t))
        free(h.base)
    h.base = <key_t*> nb
    h.data = <key_t*> nb + 3
    h.cap = n
    return 0


cdef inline int _heap_push(Heap* h, key_t k) noexcept nogil:
    cdef Py_ssize_t i, p
    cdef key_t* d
    if h.size == h.cap:
        if _heap_reserve(h, h.size + 1) < 0:
            return -1
    d = h.data
    i = h.size
    h.size += 1
    while i > 0:
        p = (i - 1) >> 2
        if k < d[p]:
            d[i] = d[p]
            i = p
        else:
            break
    d[i] = k
    return 0


cdef inline Py_ssize_t _min_child(key_t* d, Py_ssize_t c, Py_ssize_t n) noexcept nogil:
    """Index of the smallest of the (up to four) children ``c .. c+3`` of a node in a 4-ary
    heap of ``n`` entries, or -1 when it has none."""
    cdef Py_ssize_t a, b, m, j
    if c + 3 < n:
        a = c + (d[c + 1] < d[c])
        b = c + 2 + (d[c + 3] < d[c + 2])
        return b if d[b] < d[a] else a
    if c < n:
        m = c
        for j in range(c + 1, n):
            if d[j] < d[m]:
                m = j
        return m
    return -1


cdef inline key_t _heap_pop(Heap* h) noexcept nogil:
    """Remove and return the minimum (bottom-up: the hole sinks to a leaf along the smallest
    children, then the last entry rises from there)."""
    cdef key_t* d = h.data
    cdef key_t top = d[0]
    cdef key_t last
    cdef Py_ssize_t i = 0, m, p, n
    h.size -= 1
    n = h.size
    last = d[n]
    while True:
        m = _min_child(d, 4 * i + 1, n)
        if m < 0:
            break
        d[i] = d[m]
        i = m
    while i > 0:
        p = (i - 1) >> 2
        if last < d[p]:
            d[i] = d[p]
            i = p
        else:
            break
    d[i] = last
    return top


cdef inline void _heap_replace_top(Heap* h, key_t k) noexcept nogil:
    """Replace the minimum by ``k`` and restore the order (top-down, stopping early)."""
    cdef key_t* d = h.data
    cdef Py_ssize_t i = 0, m, n = h.size
    while True:
        m = _min_child(d, 4 * i + 1, n)
        if m < 0:
            break
        if d[m] < k:
            d[i] = d[m]
            i = m
        else:
            break
    d[i] = k


cdef inline int _vec_push(Heap* st, key_t k) noexcept nogil:
    if st.size == st.cap:
        if _heap_reserve(st, st.size + 1) < 0:
            return -1
    st.data[st.size] = k
    st.size += 1
    return 0


# ---------------------------------------------------------------------------- grid open lists

cdef struct HeapQ:
    Heap hp             # a 4-ary heap of the entries of bucket ``cur`` (and of earlier ones)
    Heap st             # the LIFO of entries with f <= the f being expanded
    Heap* vecs          # B unordered vectors: vecs[b % B] holds the entries of bucket b > cur
    Py_ssize_t B
    double inv_width    # bucket of f: floor(f * inv_width)
    int64_t cur
    Py_ssize_t later    # entries in vecs
    bint top_pending    # hp's top is the entry being expanded
    uint32_t seq


cdef struct BucketQ:
    uint32_t** items    # B LIFO vectors of cell indices; bucket f % B holds the entries of f
    Py_ssize_t* size
    Py_ssize_t* cap
    Py_ssize_t B
    int64_t F           # the f being drained
    Py_ssize_t total


ctypedef fused Queue:
    HeapQ
    BucketQ


cdef int _heapq_init(HeapQ* q, double span, double minw) noexcept nogil:
    """``span``: a bound on f(child) - f(parent). Buckets of width max(minw / 64, span / 1024)
    (measured: finer is faster, up to a point), so the entries in the open list always lie
    within B = span / width + 3 <= 1027 buckets."""
    cdef double width = minw / 64.0
    cdef Py_ssize_t b
    if span / 1024.0 > width:
        width = span / 1024.0
    _heap_clear(&q.hp)
    _heap_clear(&q.st)
    q.B = <Py_ssize_t> (span / width) + 3
    q.inv_width = 1.0 / width
    q.cur = 0
    q.later = 0
    q.top_pending = False
    q.seq = 0
    q.vecs = <Heap*> malloc(q.B * sizeof(Heap))
    if q.vecs == NULL:
        q.B = 0
        return -1
    for b in range(q.B):
        _heap_clear(&q.vecs[b])
    if _heap_reserve(&q.hp, 1024) < 0 or _heap_reserve(&q.st, 256) < 0:
        return -1
    return 0


cdef void _heapq_free(HeapQ* q) noexcept nogil:
    cdef Py_ssize_t b
    free(q.hp.base)
    free(q.st.base)
    _heap_clear(&q.hp)
    _heap_clear(&q.st)
    if q.vecs != NULL:
        for b in range(q.B):
            free(q.vecs[b].base)
        free(q.vecs)
    q.vecs = NULL
    q.B = 0


cdef void _heapify(Heap* h) noexcept nogil:
    """Make ``h`` a 4-ary heap (bottom-up, O(size))."""
    cdef key_t* d = h.data
    cdef Py_ssize_t n = h.size, i, j, c, m, e
    cdef key_t k
    if n < 2:
        return
    for i in range((n - 2) // 4, -1, -1):
        k = d[i]
        j = i
        while True:
            c = 4 * j + 1
            if c >= n:
                break
            m = c
            e = c + 4 if c + 4 <= n else n
            for c in range(c + 1, e):
                if d[c] < d[m]:
                    m = c
            if d[m] < k:
                d[j] = d[m]
                j = m
            else:
                break
        d[j] = k


cdef int _bucketq_init(BucketQ* q, Py_ssize_t B) noexcept nogil:
    q.B = B
    q.F = 0
    q.total = 0
    q.items = <uint32_t**> calloc(B, sizeof(uint32_t*))
    q.size = <Py_ssize_t*> calloc(B, sizeof(Py_ssize_t))
    q.cap = <Py_ssize_t*> calloc(B, sizeof(Py_ssize_t))
    if q.items == NULL or q.size == NULL or q.cap == NULL:
        return -1
    return 0


cdef void _bucketq_free(BucketQ* q) noexcept nogil:
    cdef Py_ssize_t b
    if q.items != NULL:
        for b in range(q.B):
            free(q.items[b])
    free(q.items)
    free(q.size)
    free(q.cap)
    q.items = NULL
    q.size = NULL
    q.cap = NULL
    q.B = 0


cdef inline void _q_reset(Queue* q, double f0) noexcept nogil:
    cdef Py_ssize_t b
    if Queue is HeapQ:
        q.hp.size = 0
        q.st.size = 0
        if q.later:
            for b in range(q.B):
                q.vecs[b].size = 0
        q.later = 0
        q.cur = <int64_t> (f0 * q.inv_width)
        q.top_pending = False
        q.seq = 0
    else:
        memset(q.size, 0, q.B * sizeof(Py_ssize_t))
        q.total = 0
        q.F = <int64_t> f0


cdef inline int _q_push(Queue* q, double f, double cur_f, Py_ssize_t idx) noexcept nogil:
    """Queue cell ``idx`` with score ``f`` while expanding a node of score ``cur_f``."""
    cdef key_t key
    cdef Py_ssize_t b, n
    cdef void* grown
    cdef int64_t bucket
    if Queue is HeapQ:
        key = sh_key(f, q.seq, idx)
        q.seq += 1
        if f <= cur_f:
            return _vec_push(&q.st, key)
        bucket = <int64_t> (f * q.inv_width)       # monotone in f: a later bucket, a larger f
        if bucket > q.cur:
            q.later += 1
            return _vec_push(&q.vecs[bucket % q.B], key)
        if q.top_pending:
            _heap_replace_top(&q.hp, key)
            q.top_pending = False
            return 0
        return _heap_push(&q.hp, key)
    else:
        b = <Py_ssize_t> ((<int64_t> f) % q.B)
        if q.size[b] == q.cap[b]:
            n = q.cap[b] * 2 if q.cap[b] else 256
            grown = realloc(q.items[b], n * sizeof(uint32_t))
            if grown == NULL:
                return -1
            q.items[b] = <uint32_t*> grown
            q.cap[b] = n
        q.items[b][q.size[b]] = <uint32_t> idx
        q.size[b] += 1
        q.total += 1
        return 0


cdef inline bint _q_next(Queue* q, Py_ssize_t* idx, double* f) noexcept nogil:
    """The next entry to expand into ``idx`` and ``f``; False when the queue is empty."""
    cdef key_t e
    cdef Py_ssize_t b
    cdef Heap swap
    if Queue is HeapQ:
        if q.top_pending:
            _heap_pop(&q.hp)
            q.top_pending = False
        if q.st.size > 0:
            q.st.size -= 1
            e = q.st.data[q.st.size]
        else:
            while q.hp.size == 0:       # on to the next non-empty bucket: it becomes the heap
                if q.later == 0:
                    return False
                q.cur += 1
                b = <Py_ssize_t> (q.cur % q.B)
                if q.vecs[b].size:
                    swap = q.hp
                    q.hp = q.vecs[b]
                    q.vecs[b] = swap
                    q.later -= q.hp.size
                    _heapify(&q.hp)
            e = q.hp.data[0]            # left on top: see _q_push
            q.top_pending = True
        idx[0] = sh_key_idx(e)
        f[0] = sh_key_f(e)
        return True
    else:
        if q.total == 0:
            return False
        b = <Py_ssize_t> (q.F % q.B)
        while q.size[b] == 0:
            q.F += 1
            b += 1
            if b == q.B:
                b = 0
        q.size[b] -= 1
        q.total -= 1
        idx[0] = q.items[b][q.size[b]]
        f[0] = <double> q.F
        return True


# ---------------------------------------------------------------------------- grid A*

cdef struct Grid:
    Py_ssize_t H
    Py_ssize_t W
    int mode            # 0: 4-connected, 1: 8-connected unit diagonals, 2: octile diagonals
    bint corner         # corner cutting allowed
    double minw         # minimum free weight (heuristic scale)
    Py_ssize_t gr
    Py_ssize_t gc


# One-off query state over the caller's weights: ``flags[i]``, one byte a cell (so the array
# stays in cache): bit 7 blocked or expanded, bit 6 reached (``g[i]`` valid), bits 0-2 the move
# that reached the cell; one pass marks the blocked cells. ``g`` (float64) is never initialised
# (its pages are mapped as the search writes them) and is read only where reached.
cdef struct OnceState:
    const float* w
    double* g
    unsigned char* flags


# A kept map's state: one 16-byte record per cell, so a neighbour costs one cache line.
# ``tag``: bits 0-2 the move that reached the cell, bit 3 expanded, bits 4-31 the generation
# of the query that wrote it; g is valid only when the generation is the current query's.
cdef struct Cell:
    double g
    float w
    uint32_t tag


cdef struct KeptState:
    Cell* cells
    uint32_t open_tag   # gen << 4
    uint32_t closed_tag # gen << 4 | 8


ctypedef fused State:
    OnceState
    KeptState


cdef inline double _heur(int mode, double minw, Py_ssize_t dr, Py_ssize_t dc) noexcept nogil:
    """The heuristic of a cell ``(dr, dc)`` away from the goal (see the module docstring of
    ``starhold.kernels.pathfinding``)."""
    cdef Py_ssize_t mx, mn
    if dr < 0:
        dr = -dr
    if dc < 0:
        dc = -dc
    if mode == 0:
        return minw * <double>(dr + dc)
    if dr > dc:
        mx = dr
        mn = dc
    else:
        mx = dc
        mn = dr
    if mode == 1:
        return minw * <double>mx
    return minw * (<double>(mx - mn) + SQRT2 * <double>mn)


cdef Py_ssize_t _grid_search(const Grid* G, State* S, Queue* Q, Py_ssize_t start,
                             Py_ssize_t goal, Py_ssize_t* expanded) noexcept nogil:
    """A* from start to goal. Returns 1 when the goal was reached, 0 when unreachable, -1 when
    out of memory; ``expanded`` receives the number of cells expanded (the goal included).
    Neighbours in the order of ``DR``/``DC``; a neighbour is updated when it is free, not
    expanded, the move is legal (corner rule) and it improves the neighbour's g."""
    # everything the loop reads goes into locals: the byte stores below may alias any memory,
    # so fields read through pointers would be reloaded after each of them
    cdef Py_ssize_t Wn = G.W, gr = G.gr, gc = G.gc
    cdef size_t H = <size_t> G.H, W = <size_t> G.W
    cdef int mode = G.mode
    cdef double minw = G.minw
    cdef bint nocut = not G.corner
    cdef Py_ssize_t u, v, r, c, i, k, ndir = 4 if G.mode == 0 else 8, n_exp = 0
    cdef unsigned int inside
    cdef unsigned char[16] masks
    cdef Py_ssize_t[8] off, dc
    cdef double[8] mult
    cdef double gu, wv, ng, h, cur_f
    cdef const float* w
    cdef double* g
    cdef unsigned char* flags
    cdef unsigned char fl
    cdef Cell* cells
    cdef Cell* cv
    cdef uint32_t tv, open_tag, closed_tag
    if State is OnceState:
        w = S.w
        g = S.g
        flags = S.flags
    else:
        cells = S.cells
        open_tag = S.open_tag
        closed_tag = S.closed_tag
    for k in range(8):
        dc[k] = DC[k]
        off[k] = DR[k] * Wn + DC[k]
        mult[k] = SQRT2 if (k >= 4 and mode == 2) else 1.0   # x 1.0 is exact
    for i in range(16):     # bit 0: a row above, 1: a row below, 2: a column left, 3: right
        masks[i] = 0
        for k in range(8):
            if ((DR[k] >= 0 or i & 1) and (DR[k] <= 0 or i & 2)
                    and (DC[k] >= 0 or i & 4) and (DC[k] <= 0 or i & 8)):
                masks[i] |= 1 << k
    r = start // Wn
    h = _heur(mode, minw, r - gr, start - r * Wn - gc)
    _q_reset(Q, h)
    if State is OnceState:
        g[start] = 0.0
        flags[start] = 0x40
    else:
        cells[start].g = 0.0
        cells[start].tag = open_tag
    if _q_push(Q, h, -INFINITY, start) < 0:
        return -1
    while _q_next(Q, &u, &cur_f):
        if State is OnceState:
            fl = flags[u]
            if fl & 0x80:
                continue        # a stale entry: u was reached more cheaply and expanded
            flags[u] = fl | 0x80
            gu = g[u]
        else:
            if (cells[u].tag & NOT_DIR) == closed_tag:
                continue
            cells[u].tag |= 8
            gu = cells[u].g
        n_exp += 1
        if u == goal:
            expanded[0] = n_exp
            return 1
        r = u // Wn
        c = u - r * Wn
        # the moves that stay inside the grid, one bit each
        inside = masks[(r > 0) | ((<size_t> r + 1 < H) << 1) | ((c > 0) << 2) | ((<size_t> c + 1 < W) << 3)]
        for k in range(ndir):
            if not (inside >> k) & 1:
                continue
            v = u + off[k]
            if State is OnceState:
                fl = flags[v]
                if fl & 0x80:
                    continue                # expanded or blocked
                wv = w[v]
                # no corner cutting: both orthogonal neighbours on the way must be free
                if k >= 4 and nocut and (w[v - dc[k]] == INFINITY or w[u + dc[k]] == INFINITY):
                    continue
                ng = gu + mult[k] * wv
                if (fl & 0x40) and ng >= g[v]:
                    continue
                g[v] = ng
                flags[v] = 0x40 | <unsigned char> k
            else:
                cv = &cells[v]
                wv = cv.w
                if wv == INFINITY:
                    continue
                tv = cv.tag & NOT_DIR
                if tv == closed_tag:
                    continue
                if k >= 4 and nocut and (cells[v - dc[k]].w == INFINITY
                                         or cells[u + dc[k]].w == INFINITY):
                    continue
                ng = gu + mult[k] * wv
                if tv == open_tag and ng >= cv.g:
                    continue
                cv.g = ng
                cv.tag = open_tag | <uint32_t> k
            h = _heur(mode, minw, r + DR[k] - gr, c + dc[k] - gc)
            if _q_push(Q, ng + h, cur_f, v) < 0:
                expanded[0] = n_exp
                return -1
    expanded[0] = n_exp
    return 0


cdef object _grid_path(State* S, Py_ssize_t W, Py_ssize_t sr, Py_ssize_t sc, Py_ssize_t gr,
                       Py_ssize_t gc):
    """The (K, 2) int32 path from (sr, sc) to (gr, gc), following the moves back."""
    cdef Py_ssize_t n = 1, i, r = gr, c = gc, d
    while r != sr or c != sc:
        if State is OnceState:
            d = S.flags[r * W + c] & 7
        else:
            d = S.cells[r * W + c].tag & 7
        r -= DR[d]
        c -= DC[d]
        n += 1
    path = np.empty((n, 2), dtype=np.int32)
    cdef int[:, ::1] out = path
    r = gr
    c = gc
    for i in range(n - 1, -1, -1):
        out[i, 0] = <int> r
        out[i, 1] = <int> c
        if i:
            if State is OnceState:
                d = S.flags[r * W + c] & 7
            else:
                d = S.cells[r * W + c].tag & 7
            r -= DR[d]
            c -= DC[d]
    return path


cdef inline Py_ssize_t _buckets_for(int mode, bint integral, double minw, double maxw) noexcept nogil:
    """The number of buckets of the integer open list, or 0 when it does not apply."""
    if mode == 2 or not integral or maxw + minw + 1.0 > <double> MAX_BUCKETS:
        return 0
    return <Py_ssize_t> (maxw + minw) + 1


def astar_once(const float[:, ::1] weights, double minw, Py_ssize_t sr, Py_ssize_t sc,
               Py_ssize_t gr, Py_ssize_t gc, int mode, bint corner):
    """One A* query on ``weights`` (validated by the caller), read in place. One pass over the
    map marks the blocked cells in the flags and finds whether the weights are integers (and
    their maximum) for the bucket open list. Returns ``(path or None, expanded)``."""
    cdef Grid G
    cdef OnceState S
    cdef HeapQ hq
    cdef BucketQ bq
    cdef Py_ssize_t H = weights.shape[0], W = weights.shape[1], n = H * W, i, B
    cdef Py_ssize_t start = sr * W + sc, goal = gr * W + gc, expanded = 0, res = -1
    cdef float maxw = 0.0
    cdef int fractional = 0
    S.w = &weights[0, 0]
    if S.w[start] == INFINITY or S.w[goal] == INFINITY:
        return None, 0
    G.H = H
    G.W = W
    G.mode = mode
    G.corner = corner
    G.minw = minw
    G.gr = gr
    G.gc = gc
    _heap_clear(&hq.hp)
    _heap_clear(&hq.st)
    hq.vecs = NULL
    hq.B = 0
    bq.items = NULL
    bq.size = NULL
    bq.cap = NULL
    bq.B = 0
    S.g = <double*> malloc(n * sizeof(double))
    S.flags = <unsigned char*> malloc(n)
    try:
        if S.g == NULL or S.flags == NULL:
            raise MemoryError()
        with nogil:
            # blocked cells are flagged like expanded ones: never a move's target
            sh_scan_map(S.w, S.flags, n, &maxw, &fractional)
            B = _buckets_for(mode, not fractional, minw, maxw)
            if B:
                if _bucketq_init(&bq, B) == 0:
                    res = _grid_search(&G, &S, &bq, start, goal, &expanded)
            elif _heapq_init(&hq, (SQRT2 if mode == 2 else 1.0) * (maxw + minw), minw) == 0:
                res = _grid_search(&G, &S, &hq, start, goal, &expanded)
        if res < 0:
            raise MemoryError()
        if res == 0:
            return None, expanded
        return _grid_path(&S, W, sr, sc, gr, gc), expanded
    finally:
        _heapq_free(&hq)
        _bucketq_free(&bq)
        free(S.g)
        free(S.flags)


cdef class GridSearch:
    """A map kept for many queries: one 16-byte record per cell (the weight, g, a tag stamped
    with the query generation, never cleared between queries) built once from the weights,
    and an open list that keeps its buffers. Not thread-safe: the Python wrapper serialises
    ``find`` calls."""

    cdef Grid G
    cdef KeptState S
    cdef HeapQ hq
    cdef BucketQ bq
    cdef readonly bint integer_mode   # the bucket open list is used
    cdef public uint32_t gen          # the query generation (public so tests can bring the wrap near)
    cdef readonly Py_ssize_t expanded

    def __cinit__(self, const float[:, ::1] weights, double minw, int mode, bint corner):
        cdef Py_ssize_t n = weights.shape[0] * weights.shape[1], i, j, W = weights.shape[1], B
        cdef int res
        cdef double maxw = 0.0
        cdef float x
        cdef bint integral = True
        self.G.H = weights.shape[0]
        self.G.W = W
        self.G.mode = mode
        self.G.corner = corner
        self.G.minw = minw
        self.gen = 0
        self.expanded = 0
        _heap_clear(&self.hq.hp)
        _heap_clear(&self.hq.st)
        self.hq.vecs = NULL
        self.hq.B = 0
        self.bq.items = NULL
        self.bq.size = NULL
        self.bq.cap = NULL
        self.bq.B = 0
        self.S.cells = <Cell*> malloc((n if n > 0 else 1) * sizeof(Cell))
        if self.S.cells == NULL:
            raise MemoryError()
        with nogil:
            for i in range(self.G.H):
                for j in range(W):
                    x = weights[i, j]
                    self.S.cells[i * W + j].g = 0.0
                    self.S.cells[i * W + j].w = x
                    self.S.cells[i * W + j].tag = 0
                    if x != INFINITY:
                        if x > maxw:
                            maxw = x
                        if x >= 1e9 or x != <float> (<int> x):
                            integral = False
        B = _buckets_for(mode, integral, minw, maxw)
        self.integer_mode = B > 0
        if B:
            res = _bucketq_init(&self.bq, B)
        else:
            res = _heapq_init(&self.hq, (SQRT2 if mode == 2 else 1.0) * (maxw + minw), minw)
        if res < 0:
            raise MemoryError()

    def __dealloc__(self):
        free(self.S.cells)
        _heapq_free(&self.hq)
        _bucketq_free(&self.bq)

    def find(self, Py_ssize_t sr, Py_ssize_t sc, Py_ssize_t gr, Py_ssize_t gc):
        """A* from (sr, sc) to (gr, gc) (in the grid: checked by the caller) -> path or None."""
        cdef Py_ssize_t W = self.G.W, start = sr * W + sc, goal = gr * W + gc, res, expanded = 0, i
        self.expanded = 0
        if self.S.cells[start].w == INFINITY or self.S.cells[goal].w == INFINITY:
            return None
        if self.gen >= GEN_LIMIT:     # the generation would overflow: forget every stamp once
            for i in range(self.G.H * W):
                self.S.cells[i].tag = 0
            self.gen = 0
        self.gen += 1
        self.S.open_tag = self.gen << 4
        self.S.closed_tag = (self.gen << 4) | 8
        self.G.gr = gr
        self.G.gc = gc
        with nogil:
            if self.integer_mode:
                res = _grid_search(&self.G, &self.S, &self.bq, start, goal, &expanded)
            else:
                res = _grid_search(&self.G, &self.S, &self.hq, start, goal, &expanded)
        self.expanded = expanded
        if res < 0:
            raise MemoryError()
        if res == 0:
            return None
        return _grid_path(&self.S, W, sr, sc, gr, gc)


# ---------------------------------------------------------------------------- lane graph A*

def route_search(const int64_t[::1] indptr, const int64_t[::1] indices,
                 const double[::1] weights, const double[:, ::1] pos,
                 Py_ssize_t start, Py_ssize_t goal, double scale):
    """A* over a CSR graph (validated by the caller) with heuristic ``scale`` x the straight
    line to the goal; the open list is the 4-ary heap of (f, 0xFFFFFFFF - seq, star) keys.
    Returns ``(list of star indices or None, expanded)``."""
    cdef Py_ssize_t n = pos.shape[0], u, v, k, n_exp = 0, found = 0, err = 0
    cdef double gx = pos[goal, 0], gy = pos[goal, 1], gz = pos[goal, 2]
    cdef double dx, dy, dz, ng, wv, h
    cdef uint32_t seq = 0
    cdef double* g = <double*> malloc(n * sizeof(double))
    cdef int64_t* parent = <int64_t*> malloc(n * sizeof(int64_t))
    cdef unsigned char* state = <unsigned char*> calloc(n, 1)     # 0 unseen, 1 open, 2 closed
    cdef Heap hp
    cdef key_t e
    _heap_clear(&hp)
    try:
        if g == NULL or parent == NULL or state == NULL or _heap_reserve(&hp, 256) < 0:
            raise MemoryError()
        with nogil:
            g[start] = 0.0
            parent[start] = -1
            state[start] = 1
            dx = pos[start, 0] - gx
            dy = pos[start, 1] - gy
            dz = pos[start, 2] - gz
            h = scale * sqrt(dx * dx + dy * dy + dz * dz)
            err = _heap_push(&hp, sh_key(h, seq, start))
            seq += 1
            while hp.size > 0 and err == 0:
                e = _heap_pop(&hp)
                u = sh_key_idx(e)
                if state[u] == 2:
                    continue
                state[u] = 2
                n_exp += 1
                if u == goal:
                    found = 1
                    break
                for k in range(indptr[u], indptr[u + 1]):
                    v = indices[k]
                    wv = weights[k]
                    if state[v] == 2 or wv == INFINITY:
                        continue
                    ng = g[u] + wv
                    if state[v] == 1 and ng >= g[v]:
                        continue
                    g[v] = ng
                    parent[v] = u
                    state[v] = 1
                    dx = pos[v, 0] - gx
                    dy = pos[v, 1] - gy
                    dz = pos[v, 2] - gz
                    h = scale * sqrt(dx * dx + dy * dy + dz * dz)
                    if _heap_push(&hp, sh_key(ng + h, seq, v)) < 0:
                        err = 1
                        break
                    seq += 1
        if err:
            raise MemoryError()
        if not found:
            return None, n_exp
        out = []
        v = goal
        while v >= 0:
            out.append(v)
            v = parent[v]
        out.reverse()
        return out, n_exp
    finally:
        free(g)
        free(parent)
        free(state)
        free(hp.base)
