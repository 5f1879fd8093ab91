/* edgetrace._recscan: a records frame's span records as columns, without a Python object per span.
 *
 * The explorer's scan of a million spans spent most of its time building a Python object per
 * span (msgspec's decode) and then reading each field back out of it (one list comprehension
 * per column). `columns(body)` walks the MessagePack body once and returns the columns the
 * explorer's table needs: the strings of every string field interned (each distinct one a
 * Python str once), integers as packed int64, `cause` and `parent` parsed into (node, seq),
 * the raw attribute maps interned by their bytes.
 *
 * It is a fast path, never a second definition: anything it is not certain about - a record
 * that is not the plain well-formed case, a value out of the bounds `Span` declares, invalid
 * UTF-8 anywhere, an extension type, nesting deeper than it follows, trailing bytes - makes it
 * return None, and the caller decodes the frame the ordinary way (msgspec), which accepts or
 * refuses with its own message. So it may be stricter than msgspec, never looser; the tests
 * check that whatever it accepts, the ordinary path gives the same columns.
 *
 * Every read is bounds-checked against the end of the body: the body is file data.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Fields of a span record, in the order `Span` declares them (array-like). */
enum { F_NODE, F_SEQ, F_KIND, F_NAME, F_TRACE, F_PARENT, F_CAUSE, F_START, F_END, F_VC, F_ATTRS,
       F_STATUS, F_ERROR, N_FIELDS };
#define REQUIRED 4
/* String columns returned, in this order. */
enum { S_NODE, S_KIND, S_NAME, S_TRACE, S_STATUS, S_ERROR, N_SCOLS };
#define MAX_DEPTH 32
#define MAX_SEQ 0xFFFFFFFFLL
#define NANOS_MAX (1LL << 62)

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

/* ---- interning: distinct byte strings of the body, numbered in order of first appearance ---- */

typedef struct {
    const uint8_t **ptr;
    Py_ssize_t *len;
    Py_ssize_t count, cap;
    Py_ssize_t *slots; /* open addressing: index + 1, 0 empty */
    Py_ssize_t nslots;
} Interner;

/* A frame's own strings (the walk's interner, dropped with the frame): eight bytes at a time
 * (ids and names are short: one or two words), then mixed well enough for linear probing. It
 * is not keyed, so a file could hold strings chosen to collide: a lookup that has looked at
 * MAX_PROBES slots gives up, and the walk declines the frame (the ordinary decode reads it, with
 * Python's keyed dicts). A frame costs at most MAX_PROBES steps a string, whatever it holds. */
#define MAX_PROBES 256

/* Eight bytes at a time (ids and names are short: one or two words), then mixed well enough
 * for linear probing on the low bits and 5 tag bits from the top. */
static uint64_t quick_hash(const uint8_t *p, Py_ssize_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, (size_t)n);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 29);
}

/* The trace table's hash (it lives as long as the session is open, and cannot decline a frame):
 * SipHash-1-3, the hash Python and Rust give their dicts, keyed per process from os.urandom at
 * import. With a fixed hash a file could hold millions of trace ids chosen to fall on one slot,
 * and each lookup would walk all of them (the scan would take hours); keyed, which ids collide
 * cannot be known when the file is written. */
static uint64_t sip_k0, sip_k1;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                          \
    do {                                                                  \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);         \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                            \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                            \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);         \
    } while (0)

static uint64_t keyed_hash(const uint8_t *p, Py_ssize_t n) {
    uint64_t v0 = sip_k0 ^ 0x736f6d6570736575ULL, v1 = sip_k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = sip_k0 ^ 0x6c7967656e657261ULL, v3 = sip_k1 ^ 0x7465646279746573ULL;
    uint64_t b = ((uint64_t)n) << 56;
    while (n >= 8) {
        uint64_t m;
        memcpy(&m, p, 8); /* little-endian hosts (x86-64, arm64); elsewhere still a keyed hash */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    memcpy(&t, p, (size_t)n);
    b |= t;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static int interner_init(Interner *t, Py_ssize_t expect) {
    memset(t, 0, sizeof(*t));
    t->cap = 64;
    t->nslots = 128;
    while (t->nslots < expect * 2) t->nslots *= 2;
    t->ptr = PyMem_RawMalloc(sizeof(*t->ptr) * t->cap);
    t->len = PyMem_RawMalloc(sizeof(*t->len) * t->cap);
    t->slots = PyMem_RawCalloc(t->nslots, sizeof(*t->slots));
    return (t->ptr && t->len && t->slots) ? 0 : -1;
}

static void interner_free(Interner *t) {
    PyMem_RawFree(t->ptr);
    PyMem_RawFree(t->len);
    PyMem_RawFree(t->slots);
}

static int interner_grow(Interner *t) {
    Py_ssize_t nslots = t->nslots * 2;
    Py_ssize_t *slots = PyMem_RawCalloc(nslots, sizeof(*slots));
    if (!slots) return -1;
    for (Py_ssize_t i = 0; i < t->count; i++) {
        uint64_t h = quick_hash(t->ptr[i], t->len[i]);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)(nslots - 1));
        while (slots[at]) at = (at + 1) & (nslots - 1);
        slots[at] = i + 1;
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return 0;
}

/* The number of `p[0:n]`, added if new; -1 when out of memory, -2 after MAX_PROBES slots. */
static Py_ssize_t intern(Interner *t, const uint8_t *p, Py_ssize_t n) {
    uint64_t h = quick_hash(p, n);
    Py_ssize_t mask = t->nslots - 1;
    Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)mask);
    int probes = 0;
    while (t->slots[at]) {
        Py_ssize_t i = t->slots[at] - 1;
        if (t->len[i] == n && (n == 0 || memcmp(t->ptr[i], p, (size_t)n) == 0)) return i;
        if (++probes == MAX_PROBES) return -2;
        at = (at + 1) & mask;
    }
    if (t->count == t->cap) {
        Py_ssize_t cap = t->cap * 2;
        const uint8_t **ptr = PyMem_RawRealloc(t->ptr, sizeof(*ptr) * cap);
        if (!ptr) return -1;
        t->ptr = ptr;
        Py_ssize_t *len = PyMem_RawRealloc(t->len, sizeof(*len) * cap);
        if (!len) return -1;
        t->len = len;
        t->cap = cap;
    }
    Py_ssize_t i = t->count++;
    t->ptr[i] = p;
    t->len[i] = n;
    t->slots[at] = i + 1;
    if (t->count * 2 > t->nslots && interner_grow(t) < 0) return -1;
    return i;
}

/* ---- MessagePack reading (0: ok, 1: not the plain case, the caller falls back) ---- */

static int need(Reader *r, Py_ssize_t n) { return n >= 0 && r->end - r->p >= n; }

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF): what msgspec and
 * Python's decoder accept, so a string passed here decodes there. */
static int utf8_ok(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) { /* eight ASCII bytes at a time: names and ids nearly always are */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) { i += 8; continue; }
        }
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[i + 1] < 0xA0) return 0;  /* overlong */
            if (c == 0xED && s[i + 1] >= 0xA0) return 0;  /* surrogates */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80
                || (s[i + 3] & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && s[i + 1] < 0x90) return 0;  /* overlong */
            if (c == 0xF4 && s[i + 1] >= 0x90) return 0;  /* past U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* A str header and its bytes; valid UTF-8 if `check` (msgspec checks the strings it decodes,
 * not those inside a value it keeps raw). */
static int str_at(Reader *r, const uint8_t **s, Py_ssize_t *n, int check) {
    if (!need(r, 1)) return 1;
    uint8_t b = *r->p;
    Py_ssize_t len;
    if (b >= 0xA0 && b <= 0xBF) { len = b & 0x1F; r->p += 1; }
    else if (b == 0xD9) { if (!need(r, 2)) return 1; len = r->p[1]; r->p += 2; }
    else if (b == 0xDA) { if (!need(r, 3)) return 1; len = (Py_ssize_t)be(r->p + 1, 2); r->p += 3; }
    else if (b == 0xDB) { if (!need(r, 5)) return 1; len = (Py_ssize_t)be(r->p + 1, 4); r->p += 5; }
    else return 1;
    if (!need(r, len) || (check && !utf8_ok(r->p, len))) return 1;
    *s = r->p;
    *n = len;
    r->p += len;
    return 0;
}

static int read_str(Reader *r, const uint8_t **s, Py_ssize_t *n) { return str_at(r, s, n, 1); }

/* An integer within [lo, hi]. */
static int read_int(Reader *r, int64_t lo, int64_t hi, int64_t *out) {
    if (!need(r, 1)) return 1;
    uint8_t b = *r->p;
    int64_t v;
    if (b <= 0x7F) { v = b; r->p += 1; }
    else if (b >= 0xE0) { v = (int8_t)b; r->p += 1; }
    else if (b >= 0xCC && b <= 0xCF) {
        int n = 1 << (b - 0xCC);
        if (!need(r, 1 + n)) return 1;
        uint64_t u = be(r->p + 1, n);
        if (u > (uint64_t)INT64_MAX) return 1;
        v = (int64_t)u;
        r->p += 1 + n;
    } else if (b >= 0xD0 && b <= 0xD3) {
        int n = 1 << (b - 0xD0);
        if (!need(r, 1 + n)) return 1;
        uint64_t u = be(r->p + 1, n);
        if (n == 1) v = (int8_t)u;
        else if (n == 2) v = (int16_t)u;
        else if (n == 4) v = (int32_t)u;
        else v = (int64_t)u;
        r->p += 1 + n;
    } else return 1;
    if (v < lo || v > hi) return 1;
    *out = v;
    return 0;
}

/* The length of an array header. */
static int read_array(Reader *r, Py_ssize_t *n) {
    if (!need(r, 1)) return 1;
    uint8_t b = *r->p;
    if (b >= 0x90 && b <= 0x9F) { *n = b & 0x0F; r->p += 1; }
    else if (b == 0xDC) { if (!need(r, 3)) return 1; *n = (Py_ssize_t)be(r->p + 1, 2); r->p += 3; }
    else if (b == 0xDD) { if (!need(r, 5)) return 1; *n = (Py_ssize_t)be(r->p + 1, 4); r->p += 5; }
    else return 1;
    return 0;
}

/* Past one value of any of the plain types (no extension types), nesting up to MAX_DEPTH.
 * Its strings are not checked: msgspec keeps such a value raw without looking inside them. */
static int skip(Reader *r, int depth) {
    if (depth > MAX_DEPTH || !need(r, 1)) return 1;
    uint8_t b = *r->p;
    Py_ssize_t n = 0, items = 0;
    if (b <= 0x7F || b >= 0xE0 || b == 0xC0 || b == 0xC2 || b == 0xC3) { r->p += 1; return 0; }
    if (b >= 0xA0 && b <= 0xBF) {
        const uint8_t *s;
        return str_at(r, &s, &n, 0);
    }
    switch (b) {
    case 0xD9: case 0xDA: case 0xDB: {
        const uint8_t *s;
        return str_at(r, &s, &n, 0);
    }
    case 0xCC: case 0xD0: n = 1; break;
    case 0xCD: case 0xD1: n = 2; break;
    case 0xCE: case 0xD2: case 0xCA: n = 4; break;
    case 0xCF: case 0xD3: case 0xCB: n = 8; break;
    case 0xC4: if (!need(r, 2)) return 1; n = r->p[1]; r->p += 1; break;
    case 0xC5: if (!need(r, 3)) return 1; n = (Py_ssize_t)be(r->p + 1, 2); r->p += 2; break;
    case 0xC6: if (!need(r, 5)) return 1; n = (Py_ssize_t)be(r->p + 1, 4); r->p += 4; break;
    case 0xDC: case 0xDD: case 0xDE: case 0xDF: break;
    default:
        if ((b >= 0x80 && b <= 0x9F)) break;
        return 1; /* 0xC1, and the extension types */
    }
    if (b >= 0x80 && b <= 0x8F) { items = 2 * (Py_ssize_t)(b & 0x0F); r->p += 1; }
    else if (b >= 0x90 && b <= 0x9F) { items = b & 0x0F; r->p += 1; }
    else if (b == 0xDC || b == 0xDE) {
        if (!need(r, 3)) return 1;
        items = (Py_ssize_t)be(r->p + 1, 2) * (b == 0xDE ? 2 : 1);
        r->p += 3;
    } else if (b == 0xDD || b == 0xDF) {
        if (!need(r, 5)) return 1;
        items = (Py_ssize_t)be(r->p + 1, 4) * (b == 0xDF ? 2 : 1);
        r->p += 5;
    } else {
        if (!need(r, 1 + n)) return 1;
        r->p += 1 + n;
        return 0;
    }
    if (items > r->end - r->p) return 1; /* each item takes a byte at least */
    for (Py_ssize_t i = 0; i < items; i++) {
        /* the usual items of a clock or an attribute map, without a call: fixstr, ints */
        if (r->p < r->end) {
            uint8_t c = *r->p;
            if (c <= 0x7F || c >= 0xE0) { r->p += 1; continue; }
            if (c >= 0xA0 && c <= 0xBF) {
                Py_ssize_t len = c & 0x1F;
                if (r->end - r->p < 1 + len) return 1;
                r->p += 1 + len;
                continue;
            }
            if (c >= 0xCC && c <= 0xD3) { /* uint8..64, int8..64: a clock's seqs past 127 */
                Py_ssize_t len = (Py_ssize_t)1 << ((c - 0xCC) & 3);
                if (r->end - r->p < 1 + len) return 1;
                r->p += 1 + len;
                continue;
            }
        }
        if (skip(r, depth + 1)) return 1;
    }
    return 0;
}

/* ---- span references: `node:seq` as the explorer's table keeps them ---- */

/* The node part's number and the seq of a well-formed ref, or node -1 (an empty or malformed
 * ref: the table keeps those as "none"). Well formed: a non-empty node before the last ':',
 * then 1 to 10 ASCII digits worth at most 2^32 - 1. A NUL in a ref is not the plain case. */
static int parse_ref(Interner *strings, const uint8_t *s, Py_ssize_t n, int32_t *node, uint32_t *seq) {
    if (memchr(s, 0, (size_t)n)) return 1;
    *node = -1;
    *seq = 0;
    Py_ssize_t c = n - 1;
    while (c >= 0 && s[c] != ':') c--;
    Py_ssize_t digits = n - c - 1;
    if (c <= 0 || digits < 1 || digits > 10) return 0;
    uint64_t v = 0;
    for (Py_ssize_t i = c + 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)MAX_SEQ) return 0;
    Py_ssize_t k = intern(strings, s, c);
    if (k < 0) return k == -2 ? 1 : -1; /* too many probes: decline */
    *node = (int32_t)k;
    *seq = (uint32_t)v;
    return 0;
}

/* ---- the frame ---- */

static const uint8_t EMPTY_MAP[1] = {0x80};
static const uint8_t OK[2] = {'o', 'k'};

static PyObject *strings_of(Interner *t) {
    PyObject *list = PyList_New(t->count);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < t->count; i++) {
        PyObject *s = PyUnicode_DecodeUTF8((const char *)t->ptr[i], t->len[i], "strict");
        if (!s) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, s);
    }
    return list;
}

static PyObject *bytes_of(Interner *t) {
    PyObject *list = PyList_New(t->count);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < t->count; i++) {
        PyObject *b = PyBytes_FromStringAndSize((const char *)t->ptr[i], t->len[i]);
        if (!b) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, b);
    }
    return list;
}

static int is_map(const uint8_t *p, Py_ssize_t n) {
    return n > 0 && ((p[0] >= 0x80 && p[0] <= 0x8F) || p[0] == 0xDE || p[0] == 0xDF);
}

/* 0: the columns are filled; 1: not the plain case; -1: out of memory. */
static int walk(Reader *r, Py_ssize_t count, Interner *strings, Interner *raws, int32_t *sid, int64_t *ints,
                int32_t *ref_node, uint32_t *ref_seq, int32_t *attr_id) {
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t fields;
        if (read_array(r, &fields) || fields < REQUIRED) return 1;
        const uint8_t *str[N_FIELDS];
        Py_ssize_t len[N_FIELDS];
        int64_t num[N_FIELDS];
        const uint8_t *attrs = EMPTY_MAP;
        Py_ssize_t attrs_len = 1;
        str[F_TRACE] = str[F_PARENT] = str[F_CAUSE] = str[F_ERROR] = OK;
        len[F_TRACE] = len[F_PARENT] = len[F_CAUSE] = len[F_ERROR] = 0;
        str[F_STATUS] = OK;
        len[F_STATUS] = 2;
        num[F_START] = num[F_END] = 0;
        for (Py_ssize_t f = 0; f < fields; f++) {
            int bad;
            switch (f) {
            case F_NODE: case F_KIND: case F_NAME: case F_TRACE: case F_PARENT: case F_CAUSE:
            case F_STATUS: case F_ERROR:
                bad = read_str(r, &str[f], &len[f]);
                break;
            case F_SEQ:
                bad = read_int(r, 1, MAX_SEQ, &num[f]);
                break;
            case F_START: case F_END:
                bad = read_int(r, -NANOS_MAX, NANOS_MAX, &num[f]);
                break;
            case F_ATTRS: {
                const uint8_t *at = r->p;
                bad = skip(r, 0);
                attrs = at;
                attrs_len = r->p - at;
                if (!bad && !is_map(attrs, attrs_len)) bad = 1;
                break;
            }
            default: /* the clock, and fields after `error` the explorer does not read */
                bad = skip(r, 0);
            }
            if (bad) return 1;
        }
        static const int scol_field[N_SCOLS] = {F_NODE, F_KIND, F_NAME, F_TRACE, F_STATUS, F_ERROR};
        for (int c = 0; c < N_SCOLS; c++) {
            int f = scol_field[c];
            Py_ssize_t k;
            if (i > 0) { /* a kind, a status, an empty error: mostly the previous span's again */
                int32_t before = sid[c * count + i - 1];
                if (strings->len[before] == len[f] && memcmp(strings->ptr[before], str[f], (size_t)len[f]) == 0) {
                    sid[c * count + i] = before;
                    continue;
                }
            }
            k = intern(strings, str[f], len[f]);
            if (k < 0) return k == -2 ? 1 : -1; /* too many probes: decline */
            sid[c * count + i] = (int32_t)k;
        }
        ints[i] = num[F_SEQ];
        ints[count + i] = num[F_START];
        ints[2 * count + i] = num[F_END];
        int got = parse_ref(strings, str[F_CAUSE], len[F_CAUSE], &ref_node[i], &ref_seq[i]);
        if (got) return got;
        got = parse_ref(strings, str[F_PARENT], len[F_PARENT], &ref_node[count + i], &ref_seq[count + i]);
        if (got) return got;
        Py_ssize_t a = intern(raws, attrs, attrs_len);
        if (a < 0) return a == -2 ? 1 : -1; /* too many probes: decline */
        attr_id[i] = (int32_t)a;
    }
    return r->p == r->end ? 0 : 1;
}

/* Per string column (and the two ref columns' node parts), the distinct numbers in order of
 * first appearance, one after another in `out` (`at[c]`: where column c's start); and for the
 * trace column, each span's position in its first-use list (`trace_local`). */
static int first_uses(Py_ssize_t count, Py_ssize_t distinct, const int32_t *sid, const int32_t *ref_node,
                      int32_t *out, Py_ssize_t *at, int32_t *trace_local) {
    int32_t *stamp = PyMem_RawCalloc(distinct > 0 ? distinct : 1, sizeof(int32_t));
    int32_t *pos = PyMem_RawCalloc(distinct > 0 ? distinct : 1, sizeof(int32_t));
    if (!stamp || !pos) { PyMem_RawFree(stamp); PyMem_RawFree(pos); return -1; }
    Py_ssize_t k = 0;
    for (int c = 0; c < N_SCOLS + 2; c++) {
        const int32_t *col = c < N_SCOLS ? sid + c * count : ref_node + (c - N_SCOLS) * count;
        at[c] = k;
        Py_ssize_t found = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            int32_t v = col[i];
            if (v < 0) continue;
            if (stamp[v] != c + 1) {
                stamp[v] = c + 1;
                pos[v] = (int32_t)found++;
                out[k++] = v;
            }
            if (c == S_TRACE) trace_local[i] = pos[v];
        }
    }
    at[N_SCOLS + 2] = k;
    PyMem_RawFree(stamp);
    PyMem_RawFree(pos);
    return 0;
}

PyDoc_STRVAR(columns_doc,
"columns(body) -> (n, strings, ids, ints, ref_node, ref_seq, raws, attr_ids, firsts, at, trace_local,\n"
"    trace_blob, trace_len) | None\n\n"
"The span records of a records frame body (inflated) as columns, or None when the body is not\n"
"the plain well-formed case (decode it the ordinary way then). `strings`: the distinct strings,\n"
"in order of first appearance; `ids`: int32, 6 columns of n (node, kind, name, trace, status,\n"
"error) numbering into `strings`; `ints`: int64, 3 columns (seq, start, end); `ref_node`: int32,\n"
"2 columns (cause, parent), the node part's number in `strings` or -1 for none; `ref_seq`:\n"
"uint32, the same; `raws`: the distinct raw attribute maps; `attr_ids`: int32 into `raws`;\n"
"`firsts`: int32, per string column then the two ref columns, its distinct numbers in order of\n"
"first appearance, column c at firsts[at[c]:at[c + 1]]; `trace_local`: int32, each span's\n"
"trace as a position in the trace column's first-use list; `trace_blob`: those traces' UTF-8\n"
"bytes one after another, `trace_len` (int32) their lengths.");

static PyObject *columns(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    Reader r = {(const uint8_t *)view.buf, (const uint8_t *)view.buf + view.len};
    PyObject *result = NULL, *sid_b = NULL, *ints_b = NULL, *rn_b = NULL, *rs_b = NULL, *aid_b = NULL;
    PyObject *strs = NULL, *raw_list = NULL, *firsts_b = NULL, *local_b = NULL, *blob_b = NULL, *tlen_b = NULL;
    Py_ssize_t at[N_SCOLS + 3];
    Py_ssize_t count;
    Interner strings, raws;
    int have_strings = 0, have_raws = 0;
    /* a record takes five bytes at least: a count beyond that is not this frame's */
    if (read_array(&r, &count) || count > (r.end - r.p) / 5) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    have_strings = 1;
    if (interner_init(&strings, 64) < 0) goto nomem;
    have_raws = 1;
    if (interner_init(&raws, 64) < 0) goto nomem;
    sid_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * N_SCOLS * count);
    ints_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * 3 * count);
    rn_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * 2 * count);
    rs_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(uint32_t) * 2 * count);
    aid_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * count);
    if (!sid_b || !ints_b || !rn_b || !rs_b || !aid_b) goto fail;
    int got;
    /* the walk touches no Python object (raw allocations, an immutable buffer): the UI thread
     * and the inflating threads run meanwhile */
    Py_BEGIN_ALLOW_THREADS
    got = walk(&r, count, &strings, &raws, (int32_t *)PyBytes_AS_STRING(sid_b),
               (int64_t *)PyBytes_AS_STRING(ints_b), (int32_t *)PyBytes_AS_STRING(rn_b),
               (uint32_t *)PyBytes_AS_STRING(rs_b), (int32_t *)PyBytes_AS_STRING(aid_b));
    Py_END_ALLOW_THREADS
    if (got < 0) goto nomem;
    if (got > 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    firsts_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * (N_SCOLS + 2) * count);
    local_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * count);
    if (!firsts_b || !local_b) goto fail;
    if (first_uses(count, strings.count, (const int32_t *)PyBytes_AS_STRING(sid_b),
                   (const int32_t *)PyBytes_AS_STRING(rn_b), (int32_t *)PyBytes_AS_STRING(firsts_b), at,
                   (int32_t *)PyBytes_AS_STRING(local_b)) < 0) goto nomem;
    {   /* the distinct trace ids' bytes, one after another (the trace table keeps them so) */
        const int32_t *tr = (const int32_t *)PyBytes_AS_STRING(firsts_b) + at[S_TRACE];
        Py_ssize_t nt = at[S_TRACE + 1] - at[S_TRACE], total = 0;
        for (Py_ssize_t j = 0; j < nt; j++) total += strings.len[tr[j]];
        blob_b = PyBytes_FromStringAndSize(NULL, total);
        tlen_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int32_t) * nt);
        if (!blob_b || !tlen_b) goto fail;
        char *out = PyBytes_AS_STRING(blob_b);
        int32_t *lens = (int32_t *)PyBytes_AS_STRING(tlen_b);
        for (Py_ssize_t j = 0; j < nt; j++) {
            Py_ssize_t len = strings.len[tr[j]];
            if (len) memcpy(out, strings.ptr[tr[j]], (size_t)len);
            out += len;
            lens[j] = (int32_t)len;
        }
    }
    strs = strings_of(&strings);
    if (!strs) goto fail;
    raw_list = bytes_of(&raws);
    if (!raw_list) goto fail;
    result = Py_BuildValue("(nOOOOOOOO(nnnnnnnnn)OOO)", count, strs, sid_b, ints_b, rn_b, rs_b, raw_list, aid_b,
                           firsts_b, at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7], at[8], local_b,
                           blob_b, tlen_b);
    goto done;
nomem:
    PyErr_NoMemory();
fail:
    result = NULL;
done:
    Py_XDECREF(sid_b);
    Py_XDECREF(ints_b);
    Py_XDECREF(rn_b);
    Py_XDECREF(rs_b);
    Py_XDECREF(aid_b);
    Py_XDECREF(strs);
    Py_XDECREF(raw_list);
    Py_XDECREF(firsts_b);
    Py_XDECREF(local_b);
    Py_XDECREF(blob_b);
    Py_XDECREF(tlen_b);
    if (have_strings) interner_free(&strings);
    if (have_raws) interner_free(&raws);
    PyBuffer_Release(&view);
    return result;
}

/* ---- trace id -> row: the explorer's trace table, found by hash, checked against the ids ----
 *
 * The table's trace ids live in one byte array (`ids`, row r at ids[tr_off[r]:tr_off[r + 1]]),
 * which the explorer owns and grows; this keeps only one 32-bit word a slot: the row + 1 in its
 * upper 27 bits and 5 bits of the id's hash (0: empty), at most 70 % full: ~6 bytes a trace, so
 * a 10M-span session's 7M traces cost ~64 MB. A slot whose hash bits match is always checked
 * against the stored bytes, so a collision cannot merge two traces. Every call holds the GIL:
 * the UI thread's lookups and the scanner's updates never interleave inside one. */

#define TAG_BITS 5
#define PREFETCH 8 /* ids ahead whose slot is fetched while this one is probed */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH_AT(p) __builtin_prefetch(p)
#else
#define PREFETCH_AT(p) ((void)0)
#endif
#define MAX_ROWS ((1LL << (32 - TAG_BITS)) - 2)

typedef struct {
    PyObject_HEAD
    uint32_t *slot;
    Py_ssize_t nslots, count;
    unsigned long long probes; /* slots looked at by every lookup so far (tests read it: `probes`) */
} TraceTable;

static inline uint32_t tag_of(uint64_t h) { return (uint32_t)(h >> (64 - TAG_BITS)); }
static inline uint32_t slot_of(Py_ssize_t row, uint32_t tag) { return ((uint32_t)(row + 1) << TAG_BITS) | tag; }
static inline int32_t row_of(uint32_t slot) { return (int32_t)(slot >> TAG_BITS) - 1; }

static void tt_dealloc(TraceTable *self) {
    PyMem_RawFree(self->slot);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *tt_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "TraceTable() takes no arguments");
        return NULL;
    }
    TraceTable *self = (TraceTable *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->nslots = 1024;
    self->slot = PyMem_RawCalloc(self->nslots, sizeof(uint32_t));
    if (!self->slot) { Py_DECREF(self); return PyErr_NoMemory(); }
    return (PyObject *)self;
}

typedef struct {
    Py_buffer ids, off;
    Py_ssize_t rows; /* rows whose bytes are in `ids` (tr_off has rows + 1 valid entries) */
} Stored;

/* The stored bytes of row r, or NULL if the offsets do not describe them (never trusted). */
static const uint8_t *stored(const Stored *st, int32_t r, Py_ssize_t *n) {
    if (r < 0 || r >= st->rows || (r + 2) * (Py_ssize_t)sizeof(uint64_t) > st->off.len) return NULL;
    const uint64_t *off = (const uint64_t *)st->off.buf;
    uint64_t a = off[r], b = off[r + 1];
    if (a > b || b > (uint64_t)st->ids.len) return NULL;
    *n = (Py_ssize_t)(b - a);
    return (const uint8_t *)st->ids.buf + a;
}

/* Rows numbered by the current `rows` call, whose bytes are not stored yet: row first + k is the
 * k-th new id, at blob[off[k]:off[k] + len[k]]. So an id that comes twice in one call (a run of
 * frames absorbed at once) gets one row. */
typedef struct {
    const uint8_t *blob;
    const Py_ssize_t *off, *len;
    Py_ssize_t first, count;
} Fresh;

/* The bytes of row r: stored, or new in this call; NULL if neither describes them. */
static const uint8_t *id_bytes(const Stored *st, const Fresh *fr, int32_t r, Py_ssize_t *n) {
    const uint8_t *q = stored(st, r, n);
    if (q || !fr || r < fr->first || r - fr->first >= fr->count) return q;
    *n = fr->len[r - fr->first];
    return fr->blob + fr->off[r - fr->first];
}

/* The slot holding `p[0:n]` (a row below st->rows, or new in this call, with those bytes), or
 * the empty slot where it would go; `*hit` says which. */
static Py_ssize_t tt_probe(TraceTable *t, const Stored *st, const Fresh *fr, const uint8_t *p, Py_ssize_t n,
                           uint64_t h, int *hit) {
    Py_ssize_t mask = t->nslots - 1, at = (Py_ssize_t)(h & (uint64_t)mask);
    uint32_t tag = tag_of(h);
    t->probes++;
    while (t->slot[at]) {
        if ((t->slot[at] & ((1u << TAG_BITS) - 1)) == tag) {
            Py_ssize_t m;
            const uint8_t *q = id_bytes(st, fr, row_of(t->slot[at]), &m);
            if (q && m == n && (n == 0 || memcmp(p, q, (size_t)n) == 0)) { *hit = 1; return at; }
        }
        at = (at + 1) & mask;
        t->probes++;
    }
    *hit = 0;
    return at;
}

/* Room for `more` entries at 70 % at most: rehashed from the stored bytes (entries for rows not
 * stored, left by an update that did not complete, are dropped). */
static int tt_reserve(TraceTable *t, const Stored *st, Py_ssize_t more) {
    if ((t->count + more) * 10 <= t->nslots * 7) return 0;
    Py_ssize_t nslots = t->nslots;
    while ((t->count + more) * 10 > nslots * 7) nslots *= 2;
    uint32_t *slot = PyMem_RawCalloc(nslots, sizeof(uint32_t));
    if (!slot) { PyErr_NoMemory(); return -1; }
    Py_ssize_t count = 0, mask = nslots - 1;
    for (Py_ssize_t i = 0; i < t->nslots; i++) {
        Py_ssize_t n;
        const uint8_t *q = t->slot[i] ? stored(st, row_of(t->slot[i]), &n) : NULL;
        if (!q) continue;
        uint64_t h = keyed_hash(q, n);
        Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)mask);
        while (slot[at]) at = (at + 1) & mask;
        slot[at] = t->slot[i];
        count++;
    }
    PyMem_RawFree(t->slot);
    t->slot = slot;
    t->nslots = nslots;
    t->count = count;
    return 0;
}

static int stored_get(Stored *st, PyObject *ids, PyObject *off, Py_ssize_t rows) {
    if (PyObject_GetBuffer(ids, &st->ids, PyBUF_SIMPLE) < 0) return -1;
    if (PyObject_GetBuffer(off, &st->off, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&st->ids); return -1; }
    st->rows = rows;
    return 0;
}

static void stored_release(Stored *st) {
    PyBuffer_Release(&st->ids);
    PyBuffer_Release(&st->off);
}

PyDoc_STRVAR(tt_rows_doc,
"rows(blob, lens, ids, tr_off, next_row) -> (rows, fresh)\n\n"
"(OverflowError past 2^27 - 2 traces.)\n"
"The row of each of a run of frames' trace ids (`blob`: their bytes one after another, `lens`:\n"
"int32 lengths), numbering the ones not seen before next_row, next_row + 1, ... in order; an id\n"
"that comes again in the same call gets the row of its first coming.\n"
"`ids`/`tr_off`: the stored ids of rows below next_row. `rows`: int64; `fresh`: one byte each,\n"
"1 for the first coming of a new trace (whose bytes the caller then stores as row rows[j]).");

static PyObject *tt_rows(TraceTable *self, PyObject *args) {
    PyObject *blob_o, *lens_o, *ids_o, *off_o;
    Py_ssize_t next_row;
    if (!PyArg_ParseTuple(args, "OOOOn", &blob_o, &lens_o, &ids_o, &off_o, &next_row)) return NULL;
    Py_buffer blob, lens;
    Stored st;
    if (PyObject_GetBuffer(blob_o, &blob, PyBUF_SIMPLE) < 0) return NULL;
    if (PyObject_GetBuffer(lens_o, &lens, PyBUF_SIMPLE) < 0) { PyBuffer_Release(&blob); return NULL; }
    if (stored_get(&st, ids_o, off_o, next_row) < 0) {
        PyBuffer_Release(&blob); PyBuffer_Release(&lens); return NULL;
    }
    PyObject *rows_b = NULL, *fresh_b = NULL, *result = NULL;
    Py_ssize_t n = lens.len / (Py_ssize_t)sizeof(int32_t);
    const int32_t *len = (const int32_t *)lens.buf;
    Py_ssize_t total = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        if (len[j] < 0) goto bad;
        total += len[j];
    }
    if (total != blob.len || next_row < 0) goto bad;
    if (next_row + n > MAX_ROWS) {
        PyErr_Format(PyExc_OverflowError, "more than %lld traces", (long long)MAX_ROWS);
        goto done;
    }
    if (tt_reserve(self, &st, n) < 0) goto done;
    rows_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * n);
    fresh_b = PyBytes_FromStringAndSize(NULL, n);
    if (!rows_b || !fresh_b) goto done;
    int64_t *rows = (int64_t *)PyBytes_AS_STRING(rows_b);
    uint8_t *fresh = (uint8_t *)PyBytes_AS_STRING(fresh_b);
    const uint8_t *p = (const uint8_t *)blob.buf;
    Py_ssize_t added = 0;
    /* hashes first, so each probe's slot can be fetched from memory a few ids ahead: a table of
     * millions of traces is far larger than the caches, and the probes would otherwise wait for
     * one miss after another */
    uint64_t *hs = PyMem_RawMalloc(n ? (size_t)n * sizeof(uint64_t) : 1);
    Py_ssize_t *new_off = PyMem_RawMalloc(n ? 2 * (size_t)n * sizeof(Py_ssize_t) : 1);
    if (!hs || !new_off) { PyMem_RawFree(hs); PyMem_RawFree(new_off); PyErr_NoMemory(); goto done; }
    Fresh fr = {(const uint8_t *)blob.buf, new_off, new_off + n, next_row, 0};
    for (Py_ssize_t j = 0; j < n; j++) {
        hs[j] = keyed_hash(p, len[j]);
        p += len[j];
    }
    p = (const uint8_t *)blob.buf;
    const uint64_t mask = (uint64_t)self->nslots - 1; /* tt_reserve made room: no rehash below */
    for (Py_ssize_t j = 0; j < n; j++) {
        int hit;
        uint64_t h = hs[j];
        if (j + PREFETCH < n) PREFETCH_AT(&self->slot[hs[j + PREFETCH] & mask]);
        Py_ssize_t at = tt_probe(self, &st, &fr, p, len[j], h, &hit);
        if (hit) {
            rows[j] = row_of(self->slot[at]);
            fresh[j] = 0;
        } else {
            self->slot[at] = slot_of(next_row + added, tag_of(h));
            self->count++;
            new_off[added] = p - (const uint8_t *)blob.buf;
            new_off[n + added] = len[j];
            fr.count = ++added;
            rows[j] = next_row + added - 1;
            fresh[j] = 1;
        }
        p += len[j];
    }
    PyMem_RawFree(hs);
    PyMem_RawFree(new_off);
    result = PyTuple_Pack(2, rows_b, fresh_b);
    goto done;
bad:
    PyErr_SetString(PyExc_ValueError, "rows(): lengths that do not describe the blob, or a bad next_row");
done:
    Py_XDECREF(rows_b);
    Py_XDECREF(fresh_b);
    PyBuffer_Release(&blob);
    PyBuffer_Release(&lens);
    stored_release(&st);
    return result;
}

PyDoc_STRVAR(tt_find_doc,
"find(trace, ids, tr_off, rows) -> int\n\n"
"The row (below `rows`) whose stored id is the bytes `trace`, or -1.");

static PyObject *tt_find(TraceTable *self, PyObject *args) {
    Py_buffer trace;
    PyObject *ids_o, *off_o;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "y*OOn", &trace, &ids_o, &off_o, &rows)) return NULL;
    Stored st;
    if (stored_get(&st, ids_o, off_o, rows) < 0) { PyBuffer_Release(&trace); return NULL; }
    int hit;
    uint64_t h = keyed_hash(trace.buf, trace.len);
    Py_ssize_t at = tt_probe(self, &st, NULL, trace.buf, trace.len, h, &hit);
    long found = hit ? (long)row_of(self->slot[at]) : -1;
    PyBuffer_Release(&trace);
    stored_release(&st);
    return PyLong_FromLong(found);
}

static Py_ssize_t tt_len(TraceTable *self) { return self->count; }

static PyMethodDef tt_methods[] = {
    {"rows", (PyCFunction)tt_rows, METH_VARARGS, tt_rows_doc},
    {"find", (PyCFunction)tt_find, METH_VARARGS, tt_find_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods tt_sequence = {.sq_length = (lenfunc)tt_len};

static PyObject *tt_probes(TraceTable *self, void *closure) { return PyLong_FromUnsignedLongLong(self->probes); }

static PyGetSetDef tt_getset[] = {
    {"probes", (getter)tt_probes, NULL, "Slots looked at by every lookup so far (what a hostile file would inflate).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TraceTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "edgetrace._recscan.TraceTable",
    .tp_basicsize = sizeof(TraceTable),
    .tp_dealloc = (destructor)tt_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Trace id -> row of the explorer's trace table (see _recscan.c).",
    .tp_methods = tt_methods,
    .tp_getset = tt_getset,
    .tp_as_sequence = &tt_sequence,
    .tp_new = tt_new,
};

PyDoc_STRVAR(hash_doc,
"hash(data) -> int\n\n"
"The trace table's keyed hash (SipHash-1-3, keyed per process), for tests.");

static PyObject *hash_py(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint64_t h = keyed_hash(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef methods[] = {
    {"columns", columns, METH_O, columns_doc},
    {"hash", hash_py, METH_O, hash_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "edgetrace._recscan",
    "A records frame's span records as columns (the explorer's scan); see _recscan.c.", -1, methods,
};

/* The hash key, from os.urandom (the same source Python's own hash secret comes from). */
static int seed_hash(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (!os) return -1;
    PyObject *key = PyObject_CallMethod(os, "urandom", "n", (Py_ssize_t)16);
    Py_DECREF(os);
    if (!key) return -1;
    if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) != 16) {
        Py_DECREF(key);
        PyErr_SetString(PyExc_RuntimeError, "os.urandom(16) did not give 16 bytes");
        return -1;
    }
    memcpy(&sip_k0, PyBytes_AS_STRING(key), 8);
    memcpy(&sip_k1, PyBytes_AS_STRING(key) + 8, 8);
    Py_DECREF(key);
    return 0;
}

PyMODINIT_FUNC PyInit__recscan(void) {
    if (seed_hash() < 0) return NULL;
    if (PyType_Ready(&TraceTableType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&TraceTableType);
    if (PyModule_AddObject(m, "TraceTable", (PyObject *)&TraceTableType) < 0) {
        Py_DECREF(&TraceTableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
