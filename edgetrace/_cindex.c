/* edgetrace._cindex: the causal index of a whole session built in one pass, outside the interpreter.
 *
 * `CausalIndex(spans)` is what `show`, `replay` and `sweep` wait for before anything else. In
 * Python it costs a few microseconds a record: grouping by node, resolving clocks stored by
 * reference (a dense row per stream, merged in dependency order), and gathering each stream's
 * change points into the packed arrays. `build` does all three here and hands back, per stream,
 * exactly what `_Stream` holds: seqs, spans, clock sums, the change points sorted by (entry,
 * seq) with each entry's segment, and the stream's last clock.
 *
 * It is a fast path, never a second definition: whenever it is not certain it would build what
 * the Python code builds - a repeated seq, a seq or clock value that is not a plain int within
 * 32 bits, a reference that does not name an earlier record of another stream in the
 * batch (missing, to itself, a cycle, not of the form `node:seq`), or a grid too large for dense
 * rows - it returns None before touching anything, and `CausalIndex` takes the Python path,
 * which builds or raises its usual error. The tests check that both build the same streams.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *s_node, *s_seq, *s_vc, *s_merged, *s_at, *s_ch_seq, *s_ch_val;

typedef struct {
    PyObject *name;        /* borrowed from the grouping dict's keys */
    Py_ssize_t code;       /* the node's code */
    Py_ssize_t n;          /* records */
    Py_ssize_t *span_at;   /* index in the input list, in seq order */
    int64_t *seq;          /* seqs, ascending */
    Py_ssize_t cap;
    /* resolution */
    Py_ssize_t cursor;     /* records done */
    Py_ssize_t *target_stream; /* per record: the stream its reference names, or -1 */
    Py_ssize_t *target_rec;    /* ... and that record's index there */
    int32_t *wanted;       /* per record: how many records still merge its clock */
    int64_t **snap;        /* per record: its full clock while still wanted */
    int64_t *row;          /* the current clock (others' entries), dense by code */
    int64_t total;         /* the sum of `row` */
    Py_ssize_t *wait_head; /* per record: the first stream waiting for it, or -1 */
    Py_ssize_t next_wait;  /* the next stream waiting for the same record, or -1 */
    /* change points, in record order */
    int32_t *e_code, *e_rec, *e_val;
    Py_ssize_t ne, ecap;
    int64_t *sums;
} Stream;

static void stream_free(Stream *s) {
    PyMem_RawFree(s->span_at);
    PyMem_RawFree(s->seq);
    PyMem_RawFree(s->target_stream);
    PyMem_RawFree(s->target_rec);
    PyMem_RawFree(s->wanted);
    if (s->snap) {
        for (Py_ssize_t i = 0; i < s->n; i++) PyMem_RawFree(s->snap[i]);
        PyMem_RawFree(s->snap);
    }
    PyMem_RawFree(s->row);
    PyMem_RawFree(s->wait_head);
    PyMem_RawFree(s->e_code);
    PyMem_RawFree(s->e_rec);
    PyMem_RawFree(s->e_val);
    PyMem_RawFree(s->sums);
}

static int push_entry(Stream *s, Py_ssize_t code, Py_ssize_t rec, int64_t val) {
    if (s->ne == s->ecap) {
        Py_ssize_t cap = s->ecap ? s->ecap * 2 : 64;
        int32_t *c = PyMem_RawRealloc(s->e_code, (size_t)cap * sizeof(int32_t));
        if (!c) return -1;
        s->e_code = c;
        int32_t *r = PyMem_RawRealloc(s->e_rec, (size_t)cap * sizeof(int32_t));
        if (!r) return -1;
        s->e_rec = r;
        int32_t *v = PyMem_RawRealloc(s->e_val, (size_t)cap * sizeof(int32_t));
        if (!v) return -1;
        s->e_val = v;
        s->ecap = cap;
    }
    s->e_code[s->ne] = (int32_t)code;
    s->e_rec[s->ne] = (int32_t)rec;
    s->e_val[s->ne] = (int32_t)val;
    s->ne++;
    return 0;
}

/* A clock value as the fast path takes it: an exact int within 32 bits (1 = not the plain case). */
static int value_of(PyObject *v, int64_t *out) {
    if (!PyLong_CheckExact(v)) return 1;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || x < INT32_MIN || x > INT32_MAX) return 1;
    *out = x;
    return 0;
}

/* A node's code from the index's Codes (a dict: a name it does not hold is not the plain case
 * here, since every name was numbered before). */
static Py_ssize_t code_of(PyObject *codes, PyObject *name) {
    PyObject *c = PyDict_GetItemWithError(codes, name);
    if (!c) return PyErr_Occurred() ? -2 : -1;
    return PyLong_AsSsize_t(c);
}

typedef struct {
    int64_t seq;
    Py_ssize_t at;
} SeqAt;

static int by_seq(const void *a, const void *b) {
    const SeqAt *x = a, *y = b;
    if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
    return x->at < y->at ? -1 : (x->at > y->at);
}

static Py_ssize_t find_rec(const Stream *s, int64_t seq) {
    Py_ssize_t lo = 0, hi = s->n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (s->seq[mid] < seq) lo = mid + 1; else hi = mid;
    }
    return lo < s->n && s->seq[lo] == seq ? lo : -1;
}

/* A ref `node:digits` (a non-empty node, then 1 to 18 ASCII digits; with a leading 0 only if
 * `zeros`): its seq, and the position of its ':' in `*colon`; -1 when it is not that form. The
 * build takes the form the resolver's fast path reads (no leading 0), the query the form
 * `CausalIndex._happens_before` reads (int() takes leading zeros). */
static long long ref_parts(PyObject *ref, int zeros, Py_ssize_t *colon) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(ref);
    Py_ssize_t at = PyUnicode_FindChar(ref, ':', 0, n, -1);
    if (at < 1 || at == n - 1 || n - at - 1 > 18) return -1;
    int kind = PyUnicode_KIND(ref);
    const void *data = PyUnicode_DATA(ref);
    if (!zeros && PyUnicode_READ(kind, data, at + 1) == '0') return -1;
    long long seq = 0;
    for (Py_ssize_t i = at + 1; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < '0' || c > '9') return -1;
        seq = seq * 10 + (long long)(c - '0');
    }
    *colon = at;
    return seq;
}

#define DECLINE 1
#define FAIL (-1)

typedef struct {
    PyObject *spans;  /* the input list */
    Stream *st;
    Py_ssize_t ns, ncodes;
    PyObject *codes;
    int64_t *before;  /* scratch: a row before a merge */
    PyObject **vcs;   /* per input span: its vc (borrowed: a frozen span holds it, the list the span) */
} Build;

/* Process stream k's records until it ends or waits on a record not done yet (then it is
 * listed on that record, and made ready again once the record is done). */
static int run_stream(Build *b, Py_ssize_t k, Py_ssize_t *ready, Py_ssize_t *nready) {
    Stream *s = &b->st[k];
    Py_ssize_t N = b->ncodes;
    int64_t *row = s->row;
    while (s->cursor < s->n) {
        Py_ssize_t i = s->cursor;
        Py_ssize_t ts = s->target_stream[i];
        if (ts >= 0 && s->target_rec[i] >= b->st[ts].cursor) { /* not done yet: wait for it */
            Stream *t = &b->st[ts];
            s->next_wait = t->wait_head[s->target_rec[i]];
            t->wait_head[s->target_rec[i]] = k;
            return 0;
        }
        PyObject *vc = b->vcs[s->span_at[i]];
        Py_ssize_t pos = 0;
        PyObject *key, *val;
        if (ts >= 0) {
            Stream *t = &b->st[ts];
            Py_ssize_t tr = s->target_rec[i];
            const int64_t *merged = t->snap[tr];
            int64_t *before = b->before;
            Py_ssize_t own = s->code;
            /* the merge: entry by entry the larger, own entry kept, then the residual (vc) */
            for (Py_ssize_t c = 0; c < N; c++) {
                int64_t old = row[c];
                before[c] = old;
                if (merged[c] > old) row[c] = merged[c];
            }
            row[own] = before[own];
            while (PyDict_Next(vc, &pos, &key, &val)) {
                int64_t v;
                Py_ssize_t c = code_of(b->codes, key);
                if (c < 0 || value_of(val, &v)) {
                    return c == -2 ? FAIL : DECLINE;
                }
                row[c] = v;
            }
            for (Py_ssize_t c = 0; c < N; c++) {
                if (row[c] == before[c]) continue;
                s->total += row[c] - before[c];
                if (push_entry(s, c, i, row[c]) < 0) { PyErr_NoMemory(); return FAIL; }
            }
            if (--t->wanted[tr] == 0) {
                PyMem_RawFree(t->snap[tr]);
                t->snap[tr] = NULL;
            }
        } else {
            while (PyDict_Next(vc, &pos, &key, &val)) {
                int64_t v;
                Py_ssize_t c = code_of(b->codes, key);
                if (c < 0 || value_of(val, &v)) {
                    return c == -2 ? FAIL : DECLINE;
                }
                s->total += v - row[c];
                row[c] = v;
                if (push_entry(s, c, i, v) < 0) { PyErr_NoMemory(); return FAIL; }
            }
        }
        s->sums[i] = s->total + s->seq[i];
        if (s->wanted[i]) {
            int64_t *snap = PyMem_RawMalloc((size_t)N * sizeof(int64_t));
            if (!snap) { PyErr_NoMemory(); return FAIL; }
            memcpy(snap, row, (size_t)N * sizeof(int64_t));
            snap[s->code] = s->seq[i];
            s->snap[i] = snap;
        }
        s->cursor = i + 1;
        for (Py_ssize_t w = s->wait_head[i]; w >= 0;) { /* the streams waiting for this record */
            Py_ssize_t next = b->st[w].next_wait;
            ready[(*nready)++] = w;
            w = next;
        }
        s->wait_head[i] = -1;
    }
    return 0;
}

static PyObject *list_of_int64(const int64_t *v, Py_ssize_t n) {
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PyLong_FromLongLong(v[i]);
        if (!x) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, x);
    }
    return out;
}

/* Stream k's change points sorted by (entry, seq), its segments, clock and sums, as Python objects:
 * (seqs, spans, sums, at, ch_seq bytes, ch_val bytes (both int32), clock, total). */
static PyObject *stream_result(Build *b, Py_ssize_t k, PyObject *names) {
    Stream *s = &b->st[k];
    Py_ssize_t N = b->ncodes, ne = s->ne;
    PyObject *seqs = NULL, *spans = NULL, *sums = NULL, *at = NULL, *clock = NULL, *chs = NULL, *chv = NULL;
    PyObject *result = NULL;
    Py_ssize_t *start = PyMem_RawCalloc((size_t)N + 1, sizeof(Py_ssize_t));
    /* every seq and value is within 32 bits (`build` declines others): the arrays are 'i' */
    chs = PyBytes_FromStringAndSize(NULL, ne * (Py_ssize_t)sizeof(int32_t));
    chv = PyBytes_FromStringAndSize(NULL, ne * (Py_ssize_t)sizeof(int32_t));
    if (!start || !chs || !chv) { if (!start) PyErr_NoMemory(); goto done; }
    int32_t *ch_seq = (int32_t *)PyBytes_AS_STRING(chs), *ch_val = (int32_t *)PyBytes_AS_STRING(chv);
    for (Py_ssize_t e = 0; e < ne; e++) start[s->e_code[e] + 1]++;
    for (Py_ssize_t c = 0; c < N; c++) start[c + 1] += start[c];
    {   /* a counting sort by entry: record order kept within each (stable, as numpy's) */
        Py_ssize_t *fill = PyMem_RawMalloc(((size_t)N + 1) * sizeof(Py_ssize_t));
        if (!fill) { PyErr_NoMemory(); goto done; }
        memcpy(fill, start, ((size_t)N + 1) * sizeof(Py_ssize_t));
        for (Py_ssize_t e = 0; e < ne; e++) {
            Py_ssize_t at_ = fill[s->e_code[e]]++;
            ch_seq[at_] = (int32_t)s->seq[s->e_rec[e]];
            ch_val[at_] = s->e_val[e];
        }
        PyMem_RawFree(fill);
    }
    /* the entries go as they came (these buffers are the largest the build holds) */
    PyMem_RawFree(s->e_code); s->e_code = NULL;
    PyMem_RawFree(s->e_rec); s->e_rec = NULL;
    PyMem_RawFree(s->e_val); s->e_val = NULL;
    at = PyDict_New();
    clock = PyDict_New();
    if (!at || !clock) goto done;
    for (Py_ssize_t c = 0; c < N; c++) {
        if (start[c + 1] == start[c]) continue;
        PyObject *name = PyList_GET_ITEM(names, c);
        PyObject *seg = Py_BuildValue("(nn)", start[c], start[c + 1]);
        if (!seg) goto done;
        int bad = PyDict_SetItem(at, name, seg);
        Py_DECREF(seg);
        if (bad) goto done;
        PyObject *last = PyLong_FromLong(ch_val[start[c + 1] - 1]);
        if (!last) goto done;
        bad = PyDict_SetItem(clock, name, last);
        Py_DECREF(last);
        if (bad) goto done;
    }
    seqs = list_of_int64(s->seq, s->n);
    sums = list_of_int64(s->sums, s->n);
    spans = PyList_New(s->n);
    if (!seqs || !sums || !spans) goto done;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        PyObject *span = PyList_GET_ITEM(b->spans, s->span_at[i]);
        Py_INCREF(span);
        PyList_SET_ITEM(spans, i, span);
    }
    result = Py_BuildValue("(OOOOOOOL)", seqs, spans, sums, at, chs, chv, clock, (long long)s->total);
done:
    PyMem_RawFree(start);
    Py_XDECREF(seqs);
    Py_XDECREF(spans);
    Py_XDECREF(sums);
    Py_XDECREF(at);
    Py_XDECREF(clock);
    Py_XDECREF(chs);
    Py_XDECREF(chv);
    return result;
}

PyDoc_STRVAR(build_doc,
"build(spans, codes, names, max_cells, /)\n--\n\n"
"The streams of a new causal index over `spans` (a list of Span): {node: (seqs, spans, sums, at,\n"
"ch_seq, ch_val (int32 bytes), clock, total)}, numbering names in `codes` (the\n"
"index's Codes; `names` its list). None when this is not the plain case (see _cindex.c).");

static PyObject *build(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "build(spans, codes, names, max_cells)");
        return NULL;
    }
    PyObject *spans = args[0], *codes = args[1], *names = args[2];
    Py_ssize_t max_cells = PyLong_AsSsize_t(args[3]);
    if (max_cells == -1 && PyErr_Occurred()) return NULL;
    if (!PyList_CheckExact(spans) || !PyDict_Check(codes) || !PyList_CheckExact(names)) Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(spans);
    /* the build makes millions of small objects, none of them in a cycle: the collector would
     * only walk them again and again (about a tenth of the build) */
    int gc_was = PyGC_Disable();
    PyObject *result = NULL, *by_node = PyDict_New(), *order = NULL;
    Build b = {spans, NULL, 0, 0, codes, NULL, NULL};
    Py_ssize_t *ready = NULL;
    int decline = 0;
    if (!by_node) goto done;
    b.vcs = PyMem_RawMalloc((size_t)(n ? n : 1) * sizeof(PyObject *));
    if (!b.vcs) { PyErr_NoMemory(); goto done; }
    /* 1. group by node: each node's records, and its first code (streams numbered first, by name) */
    Py_ssize_t cap = 16;
    b.st = PyMem_RawCalloc((size_t)cap, sizeof(Stream));
    if (!b.st) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *span = PyList_GET_ITEM(spans, j);
        PyObject *node = PyObject_GetAttr(span, s_node);
        if (!node) goto done;
        PyObject *seq_o = PyObject_GetAttr(span, s_seq);
        if (!seq_o) { Py_DECREF(node); goto done; }
        int overflow = 0;
        long long seq = PyLong_CheckExact(seq_o) ? PyLong_AsLongLongAndOverflow(seq_o, &overflow) : -1;
        Py_DECREF(seq_o);
        /* a seq is also a clock entry (a send's own): within 32 bits, as every entry here */
        if (!PyUnicode_CheckExact(node) || overflow || seq < 0 || seq > INT32_MAX) {
            Py_DECREF(node);
            decline = 1;
            goto done;
        }
        PyObject *k_o = PyDict_GetItemWithError(by_node, node);
        Py_ssize_t k;
        if (k_o) {
            k = PyLong_AsSsize_t(k_o);
        } else {
            if (PyErr_Occurred()) { Py_DECREF(node); goto done; }
            if (b.ns == cap) {
                Stream *more = PyMem_RawRealloc(b.st, (size_t)cap * 2 * sizeof(Stream));
                if (!more) { Py_DECREF(node); PyErr_NoMemory(); goto done; }
                memset(more + cap, 0, (size_t)cap * sizeof(Stream));
                b.st = more;
                cap *= 2;
            }
            k = b.ns++;
            PyObject *ko = PyLong_FromSsize_t(k);
            if (!ko || PyDict_SetItem(by_node, node, ko) < 0) { Py_XDECREF(ko); Py_DECREF(node); goto done; }
            Py_DECREF(ko);
        }
        Py_DECREF(node);
        Stream *s = &b.st[k];
        if (s->n == s->cap) {
            Py_ssize_t c2 = s->cap ? s->cap * 2 : 16;
            Py_ssize_t *a = PyMem_RawRealloc(s->span_at, (size_t)c2 * sizeof(Py_ssize_t));
            if (!a) { PyErr_NoMemory(); goto done; }
            s->span_at = a;
            int64_t *q = PyMem_RawRealloc(s->seq, (size_t)c2 * sizeof(int64_t));
            if (!q) { PyErr_NoMemory(); goto done; }
            s->seq = q;
            s->cap = c2;
        }
        s->span_at[s->n] = j;
        s->seq[s->n] = seq;
        s->n++;
    }
    /* streams numbered first, in name order (as the Python resolver numbers them) */
    order = PyDict_Keys(by_node);
    if (!order || PyList_Sort(order) < 0) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(order); i++) {
        PyObject *c = PyObject_GetItem(codes, PyList_GET_ITEM(order, i)); /* Codes numbers a new name */
        if (!c) goto done;
        Py_DECREF(c);
    }
    /* 2. each stream in seq order; a repeated seq is not the plain case */
    for (Py_ssize_t k = 0; k < b.ns; k++) {
        Stream *s = &b.st[k];
        int sorted = 1;
        for (Py_ssize_t i = 1; i < s->n; i++)
            if (s->seq[i] <= s->seq[i - 1]) { sorted = 0; break; }
        if (!sorted) {
            SeqAt *tmp = PyMem_RawMalloc((size_t)s->n * sizeof(SeqAt));
            if (!tmp) { PyErr_NoMemory(); goto done; }
            for (Py_ssize_t i = 0; i < s->n; i++) { tmp[i].seq = s->seq[i]; tmp[i].at = s->span_at[i]; }
            qsort(tmp, (size_t)s->n, sizeof(SeqAt), by_seq);
            for (Py_ssize_t i = 0; i < s->n; i++) { s->seq[i] = tmp[i].seq; s->span_at[i] = tmp[i].at; }
            PyMem_RawFree(tmp);
            for (Py_ssize_t i = 1; i < s->n; i++)
                if (s->seq[i] == s->seq[i - 1]) { decline = 1; goto done; }
        }
    }
    /* 3. every name a clock names gets its code now, so rows are dense and of one width */
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *vc = PyObject_GetAttr(PyList_GET_ITEM(spans, j), s_vc);
        if (!vc) goto done;
        Py_DECREF(vc); /* the span keeps it */
        b.vcs[j] = vc;
        if (!PyDict_CheckExact(vc)) { decline = 1; goto done; }
        Py_ssize_t pos = 0;
        PyObject *key, *val;
        while (PyDict_Next(vc, &pos, &key, &val)) {
            if (!PyUnicode_CheckExact(key)) { decline = 1; goto done; }
            if (PyDict_GetItemWithError(codes, key)) continue; /* known: no call */
            if (PyErr_Occurred()) goto done;
            PyObject *c = PyObject_GetItem(codes, key);
            if (!c) goto done;
            Py_DECREF(c);
        }
    }
    b.ncodes = PyList_GET_SIZE(names);
    if (b.ncodes != PyDict_GET_SIZE(codes) || b.ns * (b.ncodes ? b.ncodes : 1) > max_cells) { decline = 1; goto done; }
    for (Py_ssize_t k = 0; k < b.ns; k++) {
        Stream *s = &b.st[k];
        s->target_stream = PyMem_RawMalloc((size_t)s->n * sizeof(Py_ssize_t));
        s->target_rec = PyMem_RawMalloc((size_t)s->n * sizeof(Py_ssize_t));
        s->wanted = PyMem_RawCalloc((size_t)s->n, sizeof(int32_t));
        s->snap = PyMem_RawCalloc((size_t)s->n, sizeof(int64_t *));
        s->row = PyMem_RawCalloc((size_t)(b.ncodes ? b.ncodes : 1), sizeof(int64_t));
        s->sums = PyMem_RawMalloc((size_t)(s->n ? s->n : 1) * sizeof(int64_t));
        s->wait_head = PyMem_RawMalloc((size_t)(s->n ? s->n : 1) * sizeof(Py_ssize_t));
        if (!s->target_stream || !s->target_rec || !s->wanted || !s->snap || !s->row || !s->sums || !s->wait_head) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < s->n; i++) s->wait_head[i] = -1;
        s->next_wait = -1;
    }
    b.before = PyMem_RawMalloc((size_t)(b.ncodes ? b.ncodes : 1) * sizeof(int64_t));
    if (!b.before) { PyErr_NoMemory(); goto done; }
    {
        Py_ssize_t pos = 0;
        PyObject *key, *val;
        while (PyDict_Next(by_node, &pos, &key, &val)) {
            Stream *s = &b.st[PyLong_AsSsize_t(val)];
            s->name = key;
            s->code = code_of(codes, key);
            if (s->code < 0) { decline = s->code == -1; goto done; }
        }
    }
    /* 4. what each reference names: a record of another stream in this batch, or not the plain case */
    for (Py_ssize_t k = 0; k < b.ns; k++) {
        Stream *s = &b.st[k];
        for (Py_ssize_t i = 0; i < s->n; i++) {
            s->target_stream[i] = -1;
            PyObject *merged = PyObject_GetAttr(PyList_GET_ITEM(spans, s->span_at[i]), s_merged);
            if (!merged) goto done;
            if (!PyUnicode_CheckExact(merged)) { Py_DECREF(merged); decline = 1; goto done; }
            if (PyUnicode_GET_LENGTH(merged) == 0) { Py_DECREF(merged); continue; }
            Py_ssize_t colon;
            int64_t tseq = ref_parts(merged, 0, &colon);
            PyObject *tnode = tseq < 0 ? NULL : PyUnicode_Substring(merged, 0, colon);
            Py_DECREF(merged);
            if (!tnode) { decline = tseq < 0; goto done; }
            PyObject *t_o = PyDict_GetItemWithError(by_node, tnode);
            Py_DECREF(tnode);
            if (!t_o) { decline = !PyErr_Occurred(); goto done; }
            Py_ssize_t t = PyLong_AsSsize_t(t_o);
            Py_ssize_t r = t == k ? -1 : find_rec(&b.st[t], tseq);
            if (r < 0) { decline = 1; goto done; }
            s->target_stream[i] = t;
            s->target_rec[i] = r;
            b.st[t].wanted[r]++;
        }
    }
    /* 5. resolve in dependency order: a stream runs until it waits on a record not done yet */
    ready = PyMem_RawMalloc((size_t)(b.ns ? b.ns : 1) * sizeof(Py_ssize_t));
    if (!ready) { PyErr_NoMemory(); goto done; }
    Py_ssize_t nready = 0;
    for (Py_ssize_t k = b.ns - 1; k >= 0; k--) ready[nready++] = k;
    while (nready) {
        Py_ssize_t k = ready[--nready];
        int got = run_stream(&b, k, ready, &nready);
        if (got) { decline = got > 0; goto done; }
    }
    for (Py_ssize_t k = 0; k < b.ns; k++)
        if (b.st[k].cursor < b.st[k].n) { decline = 1; goto done; } /* a cycle: the Python path says so */
    /* 6. the streams as `_Stream` holds them */
    result = PyDict_New();
    if (!result) goto done;
    for (Py_ssize_t k = 0; k < b.ns; k++) {
        PyObject *one = stream_result(&b, k, names);
        if (!one || PyDict_SetItem(result, b.st[k].name, one) < 0) {
            Py_XDECREF(one);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(one);
    }
done:
    if (b.st) {
        for (Py_ssize_t k = 0; k < b.ns; k++) stream_free(&b.st[k]);
        PyMem_RawFree(b.st);
    }
    PyMem_RawFree(ready);
    PyMem_RawFree(b.before);
    Py_XDECREF(order);
    Py_XDECREF(by_node);
    PyMem_RawFree(b.vcs);
    if (gc_was) PyGC_Enable();
    if (decline && !PyErr_Occurred()) {
        Py_XDECREF(result);
        Py_RETURN_NONE;
    }
    return result;
}


/* ---- the happens-before query over a flat table --------------------------------------------
 *
 * `happens_before(a, b)` is one bisect in b's stream, but reached through a dict of streams, the
 * stream's `at` dict, a tuple, two ints and two arrays: about nine cache misses on a large
 * session, which is most of its 3.6 µs. A Query keeps, per stream, its segment of every node
 * code (lo and hi in one word) in one table, and the stream's two arrays read in place, so a
 * query is a code lookup, one table word and the bisect. It is built from an index's streams as
 * they are and answers as `CausalIndex._happens_before` does (the tests check both alike); it is
 * dropped whenever the index changes. */

typedef struct {
    PyObject_HEAD
    PyObject *codes;     /* name -> code (the index's Codes) */
    PyObject *streams;   /* kept alive: the arrays viewed below belong to them */
    Py_ssize_t ncodes, nslots;
    int32_t *slot_of;    /* code -> stream slot, or -1 */
    uint64_t *seg;       /* slot * ncodes + code -> lo << 32 | hi (lo == hi: no entry) */
    Py_buffer *seqs, *vals;
    uint8_t *wide_seq, *wide_val;
    Py_ssize_t nviews;
} Query;

static void query_dealloc(Query *q) {
    for (Py_ssize_t i = 0; i < q->nviews; i++) {
        PyBuffer_Release(&q->seqs[i]);
        PyBuffer_Release(&q->vals[i]);
    }
    PyMem_RawFree(q->slot_of);
    PyMem_RawFree(q->seg);
    PyMem_RawFree(q->seqs);
    PyMem_RawFree(q->vals);
    PyMem_RawFree(q->wide_seq);
    PyMem_RawFree(q->wide_val);
    Py_XDECREF(q->codes);
    Py_XDECREF(q->streams);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

static int view_of(PyObject *arr, Py_buffer *view, uint8_t *wide) {
    if (PyObject_GetBuffer(arr, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) return -1;
    const char *f = view->format;
    if (f && f[1] == 0 && ((f[0] == 'i' && view->itemsize == 4) || (f[0] == 'q' && view->itemsize == 8))) {
        *wide = f[0] == 'q';
        return 0;
    }
    PyBuffer_Release(view);
    return 1;
}

static PyTypeObject QueryType;

PyDoc_STRVAR(query_doc,
"query(streams, codes, max_cells, /)\n--\n\n"
"A Query over a causal index's streams (node -> _Stream) and its Codes; None when the table\n"
"would pass max_cells or a stream is not shaped as the index builds it.");

static PyObject *make_query(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "query(streams, codes, max_cells)");
        return NULL;
    }
    PyObject *streams = args[0], *codes = args[1];
    Py_ssize_t max_cells = PyLong_AsSsize_t(args[2]);
    if (max_cells == -1 && PyErr_Occurred()) return NULL;
    if (!PyDict_CheckExact(streams) || !PyDict_Check(codes)) Py_RETURN_NONE;
    Py_ssize_t N = PyDict_GET_SIZE(codes), S = PyDict_GET_SIZE(streams);
    if (S * (N ? N : 1) > max_cells) Py_RETURN_NONE;
    Query *q = PyObject_New(Query, &QueryType);
    if (!q) return NULL;
    q->codes = Py_NewRef(codes);
    q->streams = Py_NewRef(streams);
    q->ncodes = N;
    q->nslots = S;
    q->nviews = 0;
    q->slot_of = PyMem_RawMalloc((size_t)(N ? N : 1) * sizeof(int32_t));
    q->seg = PyMem_RawCalloc((size_t)(S ? S : 1) * (size_t)(N ? N : 1), sizeof(uint64_t));
    q->seqs = PyMem_RawCalloc((size_t)(S ? S : 1), sizeof(Py_buffer));
    q->vals = PyMem_RawCalloc((size_t)(S ? S : 1), sizeof(Py_buffer));
    q->wide_seq = PyMem_RawCalloc((size_t)(S ? S : 1), 1);
    q->wide_val = PyMem_RawCalloc((size_t)(S ? S : 1), 1);
    if (!q->slot_of || !q->seg || !q->seqs || !q->vals || !q->wide_seq || !q->wide_val) {
        Py_DECREF(q);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t c = 0; c < N; c++) q->slot_of[c] = -1;
    Py_ssize_t pos = 0, k = 0;
    PyObject *name, *stream;
    while (PyDict_Next(streams, &pos, &name, &stream)) {
        Py_ssize_t code = code_of(codes, name);
        PyObject *at = NULL, *cs = NULL, *cv = NULL;
        int bad = code < 0;
        if (!bad) {
            at = PyObject_GetAttr(stream, s_at);
            cs = at ? PyObject_GetAttr(stream, s_ch_seq) : NULL;
            cv = cs ? PyObject_GetAttr(stream, s_ch_val) : NULL;
            bad = !cv || !PyDict_CheckExact(at);
        }
        int got = bad ? 1 : view_of(cs, &q->seqs[k], &q->wide_seq[k]);
        if (got == 0) {
            got = view_of(cv, &q->vals[k], &q->wide_val[k]);
            if (got) PyBuffer_Release(&q->seqs[k]);
        }
        Py_XDECREF(cs);
        Py_XDECREF(cv);
        if (got) {
            Py_XDECREF(at);
            Py_DECREF(q);
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        q->nviews = k + 1;
        Py_ssize_t n = q->seqs[k].len / q->seqs[k].itemsize;
        Py_ssize_t apos = 0;
        PyObject *other, *segment;
        while (PyDict_Next(at, &apos, &other, &segment)) {
            Py_ssize_t c = code_of(codes, other);
            Py_ssize_t lo = -1, hi = -1;
            if (c >= 0 && PyTuple_CheckExact(segment) && PyTuple_GET_SIZE(segment) == 2) {
                lo = PyLong_AsSsize_t(PyTuple_GET_ITEM(segment, 0));
                hi = PyLong_AsSsize_t(PyTuple_GET_ITEM(segment, 1));
            }
            if (c < 0 || lo < 0 || hi <= lo || hi > n || hi > 0xFFFFFFFFLL) {
                Py_DECREF(at);
                Py_DECREF(q);
                if (PyErr_Occurred()) return NULL;
                Py_RETURN_NONE;
            }
            q->seg[k * N + c] = ((uint64_t)lo << 32) | (uint64_t)hi;
        }
        Py_DECREF(at);
        q->slot_of[code] = (int32_t)k;
        k++;
    }
    return (PyObject *)q;
}

static inline long long at_of(const Py_buffer *v, int wide, Py_ssize_t i) {
    return wide ? ((const int64_t *)v->buf)[i] : (long long)((const int32_t *)v->buf)[i];
}

/* a -> b: 1 or 0, -1 on an error set. */
static int query_hb(Query *q, PyObject *na, long long sa, PyObject *nb, long long sb) {
    int same = PyUnicode_Compare(na, nb);
    if (same == -1 && PyErr_Occurred()) return -1;
    if (same == 0) return sa < sb;
    Py_ssize_t cb = code_of(q->codes, nb);
    if (cb < 0) return cb == -2 ? -1 : 0;
    int32_t k = q->slot_of[cb];
    if (k < 0) return 0;
    Py_ssize_t ca = code_of(q->codes, na);
    if (ca < 0) return ca == -2 ? -1 : 0;
    uint64_t seg = q->seg[(Py_ssize_t)k * q->ncodes + ca];
    Py_ssize_t lo = (Py_ssize_t)(seg >> 32), hi = (Py_ssize_t)(seg & 0xFFFFFFFFu);
    if (lo == hi) return 0;
    const Py_buffer *seqs = &q->seqs[k];
    int wide = q->wide_seq[k];
    Py_ssize_t left = lo, right = hi; /* bisect_right(ch_seq, sb, lo, hi) */
    while (left < right) {
        Py_ssize_t mid = left + (right - left) / 2;
        if (sb < at_of(seqs, wide, mid)) right = mid; else left = mid + 1;
    }
    return left - 1 >= lo && at_of(&q->vals[k], q->wide_val[k], left - 1) >= sa;
}

PyDoc_STRVAR(query_hb_doc,
"happens_before(a, b, /)\n--\n\n"
"a -> b for two refs 'node:seq'; None when either is not the plain form (ask the Python path).");

static PyObject *query_happens_before(Query *q, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "happens_before(a, b)");
        return NULL;
    }
    PyObject *a = args[0], *b = args[1];
    if (!PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b)) Py_RETURN_NONE;
    Py_ssize_t ca, cb;
    long long sa = ref_parts(a, 1, &ca), sb = ref_parts(b, 1, &cb);
    if (sa < 0 || sb < 0) Py_RETURN_NONE;
    PyObject *na = PyUnicode_Substring(a, 0, ca);
    if (!na) return NULL;
    PyObject *nb = PyUnicode_Substring(b, 0, cb);
    if (!nb) { Py_DECREF(na); return NULL; }
    int r = query_hb(q, na, sa, nb, sb);
    Py_DECREF(na);
    Py_DECREF(nb);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

PyDoc_STRVAR(query_hb_at_doc,
"happens_before_at(a_node, a_seq, b_node, b_seq, /)\n--\n\n"
"happens_before for records given as (node, seq); None to ask the Python path.");

static PyObject *query_happens_before_at(Query *q, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "happens_before_at(a_node, a_seq, b_node, b_seq)");
        return NULL;
    }
    if (!PyUnicode_CheckExact(args[0]) || !PyUnicode_CheckExact(args[2]) || !PyLong_CheckExact(args[1])
        || !PyLong_CheckExact(args[3]))
        Py_RETURN_NONE;
    int overflow = 0;
    long long sa = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (overflow) Py_RETURN_NONE;
    long long sb = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (overflow) Py_RETURN_NONE;
    if (PyErr_Occurred()) return NULL;
    int r = query_hb(q, args[0], sa, args[2], sb);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

static PyMethodDef query_methods[] = {
    {"happens_before", (PyCFunction)(void (*)(void))query_happens_before, METH_FASTCALL, query_hb_doc},
    {"happens_before_at", (PyCFunction)(void (*)(void))query_happens_before_at, METH_FASTCALL, query_hb_at_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject QueryType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "edgetrace._cindex.Query",
    .tp_basicsize = sizeof(Query),
    .tp_dealloc = (destructor)query_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "happens-before over a causal index's streams, in one flat table (see _cindex.c).",
    .tp_methods = query_methods,
};

static PyMethodDef methods[] = {
    {"build", (PyCFunction)(void (*)(void))build, METH_FASTCALL, build_doc},
    {"query", (PyCFunction)(void (*)(void))make_query, METH_FASTCALL, query_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "edgetrace._cindex",
    "The causal index of a whole session built in C (a fast path; see _cindex.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__cindex(void) {
    s_node = PyUnicode_InternFromString("node");
    s_seq = PyUnicode_InternFromString("seq");
    s_vc = PyUnicode_InternFromString("vc");
    s_merged = PyUnicode_InternFromString("merged");
    s_at = PyUnicode_InternFromString("at");
    s_ch_seq = PyUnicode_InternFromString("ch_seq");
    s_ch_val = PyUnicode_InternFromString("ch_val");
    if (!s_node || !s_seq || !s_vc || !s_merged || !s_at || !s_ch_seq || !s_ch_val) return NULL;
    if (PyType_Ready(&QueryType) < 0) return NULL;
    return PyModule_Create(&module);
}
