/* The compiled twin of `logicrl data generate`'s inner loop: one difficulty level's puzzles drawn and their records
 * written as JSONL, byte for byte what the Python modules make (puzzles/compiled.py calls it; tests/puzzles/
 * test_compiled.py compares the two on many levels, seeds, role words and both text styles).
 *
 * What each part mirrors:
 *   MT19937, getrandbits(k ≤ 32), random(), seeding from one 32-bit word   CPython's Modules/_randommodule.c
 *   below(n) (randrange, choice), sample(pool, k)                          CPython's Lib/random.py (3.11–3.13)
 *   statement trees, the bitset consistency check, the unique/unseen loop  puzzles/sampler.py
 *   the depth-first search with Kleene's three-valued evaluation           puzzles/solver.py (search_events)
 *   the sentences of the search, the quiz text, the answer texts           puzzles/cot.py, puzzles/render.py
 *   the record's fields in order, as json.dumps(ensure_ascii=False) writes   puzzles/record.py (Puzzle.to_record)
 *
 * Every word list (names, role words and their articles and plurals, speech templates, the reasoning's head and
 * foot) comes from the caller, so the texts are defined once, in Python; this file holds only the sentence shapes.
 * It handles levels of at most MAX_PEOPLE_C people whose draws stay within 32-bit `below` calls; the caller keeps
 * the Python path for anything else.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PEOPLE_C 20  /* logic.MAX_BITSET_PEOPLE: beyond it the Python sampler draws otherwise */
#define MAX_POOL 256  /* names to choose from */

/* ---- Mersenne Twister (CPython's) ------------------------------------------------------------------------------ */
enum { MT_N = 624, MT_M = 397 };
typedef struct { uint32_t mt[MT_N]; int index; } MT;

static uint32_t genrand(MT *r) {
    static const uint32_t mag01[2] = {0x0U, 0x9908b0dfU};
    uint32_t y;
    if (r->index >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (r->mt[kk] & 0x80000000U) | (r->mt[kk + 1] & 0x7fffffffU);
            r->mt[kk] = r->mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 0x1U];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (r->mt[kk] & 0x80000000U) | (r->mt[kk + 1] & 0x7fffffffU);
            r->mt[kk] = r->mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 0x1U];
        }
        y = (r->mt[MT_N - 1] & 0x80000000U) | (r->mt[0] & 0x7fffffffU);
        r->mt[MT_N - 1] = r->mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 0x1U];
        r->index = 0;
    }
    y = r->mt[r->index++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= (y >> 18);
    return y;
}

/* random.Random(seed) for 0 ≤ seed < 2**32: init_by_array with the one key word `seed`. */
static void seed_word(MT *r, uint32_t seed) {
    uint32_t *mt = r->mt;
    mt[0] = 19650218U;
    for (int i = 1; i < MT_N; i++) mt[i] = 1812433253U * (mt[i - 1] ^ (mt[i - 1] >> 30)) + (uint32_t)i;
    int i = 1;
    for (int k = MT_N; k; k--) {  /* max(N, key length) rounds; j stays 0 with one key word */
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525U)) + seed;
        if (++i >= MT_N) { mt[0] = mt[MT_N - 1]; i = 1; }
    }
    for (int k = MT_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
        if (++i >= MT_N) { mt[0] = mt[MT_N - 1]; i = 1; }
    }
    mt[0] = 0x80000000U;
    r->index = MT_N;
}

static int bit_length(uint64_t n) { int k = 0; while (n) { k++; n >>= 1; } return k; }

/* Random._randbelow_with_getrandbits: getrandbits(k) is the top k bits of one word for k ≤ 32. */
static uint32_t below(MT *r, uint32_t n) {
    int shift = 32 - bit_length(n);
    uint32_t value = genrand(r) >> shift;
    while (value >= n) value = genrand(r) >> shift;
    return value;
}

static double random01(MT *r) {
    uint32_t a = genrand(r) >> 5, b = genrand(r) >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

/* Random.sample(range(pool), k) as indices: the pool method for small pools, the set method otherwise. */
static void sample(MT *r, int pool, int k, int *out) {
    int64_t setsize = 21;
    if (k > 5) setsize += (int64_t)pow(4.0, ceil(log((double)(k * 3)) / log(4.0)));
    if (pool <= setsize) {
        int left[MAX_POOL];
        for (int i = 0; i < pool; i++) left[i] = i;
        for (int i = 0; i < k; i++) {
            int j = (int)below(r, (uint32_t)(pool - i));
            out[i] = left[j];
            left[j] = left[pool - i - 1];
        }
    } else {
        for (int i = 0; i < k; i++) {
            int j, taken;
            do {
                j = (int)below(r, (uint32_t)pool);
                taken = 0;
                for (int q = 0; q < i; q++) taken |= out[q] == j;
            } while (taken);
            out[i] = j;
        }
    }
}

/* ---- growable buffers ------------------------------------------------------------------------------------------ */
typedef struct { char *p; size_t len, cap; int failed; } Text;

static void grow(Text *t, size_t more) {
    if (t->len + more <= t->cap || t->failed) return;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + more) cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) { t->failed = 1; return; }
    t->p = p;
    t->cap = cap;
}
static void put(Text *t, const char *s, size_t n) {
    grow(t, n);
    if (t->failed) return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
}
static void puts_(Text *t, const char *s) { put(t, s, strlen(s)); }
static void putc_(Text *t, char c) { put(t, &c, 1); }
static void put_int(Text *t, int64_t v) {
    char digits[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
    do { digits[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) putc_(t, '-');
    while (n) putc_(t, digits[--n]);
}

/* A JSON string as json.dumps(ensure_ascii=False) writes it: quotes, backslashes and control characters escaped. */
static void put_json(Text *t, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    putc_(t, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(t, s + start, i - start);
        start = i + 1;
        switch (c) {
            case '"': puts_(t, "\\\""); break;
            case '\\': puts_(t, "\\\\"); break;
            case '\n': puts_(t, "\\n"); break;
            case '\r': puts_(t, "\\r"); break;
            case '\t': puts_(t, "\\t"); break;
            case '\b': puts_(t, "\\b"); break;
            case '\f': puts_(t, "\\f"); break;
            default: {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                put(t, u, 6);
            }
        }
    }
    put(t, s + start, n - start);
    putc_(t, '"');
}
static void put_json_text(Text *t, const Text *s) { put_json(t, s->p, s->len); }
static void put_json_cstr(Text *t, const char *s) { put_json(t, s, strlen(s)); }

/* ---- SHA-1 (the record id) ------------------------------------------------------------------------------------- */
static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void sha1_block(uint32_t h[5], const unsigned char *block) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8
               | block[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999U; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1U; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDCU; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6U; }
        uint32_t tmp = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = tmp;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* The first 12 hex digits of SHA-1(data). */
static void sha1_hex12(const char *data, size_t n, char out[12]) {
    uint32_t h[5] = {0x67452301U, 0xEFCDAB89U, 0x98BADCFEU, 0x10325476U, 0xC3D2E1F0U};
    unsigned char block[64];
    size_t done = 0;
    for (; done + 64 <= n; done += 64) sha1_block(h, (const unsigned char *)data + done);
    size_t rest = n - done;
    memset(block, 0, 64);
    memcpy(block, data + done, rest);
    block[rest] = 0x80;
    if (rest >= 56) { sha1_block(h, block); memset(block, 0, 64); }
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) block[63 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, block);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 12; i++) out[i] = hex[(h[i / 8] >> (28 - 4 * (i % 8))) & 15];
}

/* ---- statement trees ------------------------------------------------------------------------------------------- */
enum { KNIGHT, KNAVE, NOT, AND, OR, IMPLIES, IFF };  /* logic.Op's order; the die's leaf face is -1 */
static const char *const OP_TAG[] = {"telling-truth", "lying", "not", "and", "or", "->", "<=>"};

typedef struct { int op, person, n, first; } Node;  /* children: kids[first .. first + n) */
typedef struct { Node *nodes; int count, cap; int *kids; int nkids, kcap; int failed; } Arena;

static int new_node(Arena *a, int op, int person, const int *children, int n) {
    if (a->count == a->cap) {
        int cap = a->cap ? 2 * a->cap : 256;
        Node *nodes = realloc(a->nodes, sizeof(Node) * (size_t)cap);
        if (!nodes) { a->failed = 1; return 0; }
        a->nodes = nodes;
        a->cap = cap;
    }
    if (a->nkids + n > a->kcap) {
        int cap = a->kcap ? a->kcap : 256;
        while (cap < a->nkids + n) cap *= 2;
        int *kids = realloc(a->kids, sizeof(int) * (size_t)cap);
        if (!kids) { a->failed = 1; return 0; }
        a->kids = kids;
        a->kcap = cap;
    }
    Node *node = &a->nodes[a->count];
    node->op = op;
    node->person = person;
    node->n = n;
    node->first = a->nkids;
    memcpy(a->kids + a->nkids, children, sizeof(int) * (size_t)n);
    a->nkids += n;
    return a->count++;
}

static int same_tree(const Arena *a, int x, int y) {
    const Node *p = &a->nodes[x], *q = &a->nodes[y];
    if (p->op != q->op || p->person != q->person || p->n != q->n) return 0;
    for (int i = 0; i < p->n; i++)
        if (!same_tree(a, a->kids[p->first + i], a->kids[q->first + i])) return 0;
    return 1;
}

static int is_leaf(int op) { return op == KNIGHT || op == KNAVE; }

static int tree_depth(const Arena *a, int x) {
    const Node *node = &a->nodes[x];
    int deepest = 0;
    for (int i = 0; i < node->n; i++) {
        int d = tree_depth(a, a->kids[node->first + i]);
        if (d > deepest) deepest = d;
    }
    return 1 + deepest;
}

/* ---- the sampler (sampler.StatementSampler) ------------------------------------------------------------------- */
typedef struct {
    MT rng;
    int n, depth, faces;
    uint32_t width_choices;  /* width - 1 */
    const int32_t *die;
    Arena arena;
} Sampler;

static int statement(Sampler *s, int speaker, int depth);

static int leaf(Sampler *s, int speaker) {
    for (;;) {
        int person = (int)below(&s->rng, (uint32_t)s->n);
        if (random01(&s->rng) < 0.5) return new_node(&s->arena, KNIGHT, person, NULL, 0);
        if (person != speaker) return new_node(&s->arena, KNAVE, person, NULL, 0);
    }
}

static int distinct_operands(Sampler *s, int op, int speaker, int depth, int64_t count) {
    if (depth == 1 && count > 2 * s->n - 1) count = 2 * s->n - 1;
    int *operands = malloc(sizeof(int) * (size_t)count);
    if (!operands) { s->arena.failed = 1; return 0; }
    int have = 0;
    while (have < count && !s->arena.failed) {
        int candidate = statement(s, speaker, depth), seen = 0;
        for (int i = 0; i < have && !seen; i++) seen = same_tree(&s->arena, operands[i], candidate);
        if (!seen) operands[have++] = candidate;
    }
    int node = new_node(&s->arena, op, -1, operands, have);
    free(operands);
    return node;
}

static int statement(Sampler *s, int speaker, int depth) {
    int op = depth == 1 ? -1 : s->die[below(&s->rng, (uint32_t)s->faces)];
    if (op < 0) return leaf(s, speaker);
    if (op == NOT) {
        int child = statement(s, speaker, depth - 1);
        return new_node(&s->arena, NOT, -1, &child, 1);
    }
    int64_t count = (op == AND || op == OR) ? 2 + (int64_t)below(&s->rng, s->width_choices) : 2;
    return distinct_operands(s, op, speaker, depth - 1, count);
}

/* ---- truth tables over all 2**n assignments (logic._table), `words` 64-bit words each ------------------------- */
typedef struct { int words; uint64_t full_last; uint64_t *knights; uint64_t *scratch; } Tables;

static void truth_table(const Arena *a, int x, const Tables *t, uint64_t *out, uint64_t *scratch) {
    const Node *node = &a->nodes[x];
    int w = t->words;
    if (is_leaf(node->op)) {
        const uint64_t *k = t->knights + (size_t)node->person * w;
        for (int i = 0; i < w; i++) out[i] = node->op == KNIGHT ? k[i] : ~k[i];
        return;
    }
    truth_table(a, a->kids[node->first], t, out, scratch);
    if (node->op == NOT) {
        for (int i = 0; i < w; i++) out[i] = ~out[i];
        return;
    }
    for (int c = 1; c < node->n; c++) {
        truth_table(a, a->kids[node->first + c], t, scratch, scratch + w);
        for (int i = 0; i < w; i++) {
            uint64_t l = out[i], r = scratch[i];
            out[i] = node->op == AND ? l & r : node->op == OR ? l | r : node->op == IMPLIES ? ~l | r : ~(l ^ r);
        }
    }
}

/* ---- Kleene's evaluation and the search (solver.partial_evaluate, solver.search_events) ------------------------ */
static int partial(const Arena *a, int x, const signed char *assigned) {  /* -1: open */
    const Node *node = &a->nodes[x];
    switch (node->op) {
        case KNIGHT: return assigned[node->person];
        case KNAVE: return assigned[node->person] < 0 ? -1 : !assigned[node->person];
        case NOT: { int v = partial(a, a->kids[node->first], assigned); return v < 0 ? -1 : !v; }
        case AND: case OR: {
            int decisive = node->op == OR, open = 0;
            for (int i = 0; i < node->n; i++) {
                int v = partial(a, a->kids[node->first + i], assigned);
                if (v == decisive) return decisive;
                open |= v < 0;
            }
            return open ? -1 : !decisive;
        }
        default: {
            int l = partial(a, a->kids[node->first], assigned), r = partial(a, a->kids[node->first + 1], assigned);
            if (node->op == IMPLIES) {
                if (l == 0 || r == 1) return 1;
                return l < 0 || r < 0 ? -1 : 0;
            }
            return l < 0 || r < 0 ? -1 : l == r;
        }
    }
}

static void mentions(const Arena *a, int x, unsigned char *seen) {
    const Node *node = &a->nodes[x];
    if (is_leaf(node->op)) seen[node->person] = 1;
    for (int i = 0; i < node->n; i++) mentions(a, a->kids[node->first + i], seen);
}

/* ---- texts (render.py, cot.py) ---------------------------------------------------------------------------------- */
typedef struct {  /* one role pair's words, as Python makes them (names.Roles, render._plural) */
    const char *knight, *knave, *a_knight, *a_knave, *cap_knight, *cap_knave, *knights, *knaves, *cap_knights;
} Words;

typedef struct {
    const Arena *arena;
    const int *roots;
    const char *const *names;  /* this puzzle's names, by person */
    const Words *words;
    int public_style;
} Scene;

static int simple(const Arena *a, int x) {
    const Node *node = &a->nodes[x];
    return is_leaf(node->op) || (node->op == NOT && is_leaf(a->nodes[a->kids[node->first]].op));
}

static void statement_text(Text *t, const Scene *s, int x, int public_style);

static void operand_text(Text *t, const Scene *s, int x, int public_style) {
    if (simple(s->arena, x)) { statement_text(t, s, x, public_style); return; }
    putc_(t, '(');
    statement_text(t, s, x, public_style);
    putc_(t, ')');
}

static void statement_text(Text *t, const Scene *s, int x, int public_style) {
    const Arena *a = s->arena;
    const Node *node = &a->nodes[x];
    if (simple(a, x)) {
        const Node *leaf_node = is_leaf(node->op) ? node : &a->nodes[a->kids[node->first]];
        puts_(t, s->names[leaf_node->person]);
        puts_(t, is_leaf(node->op) ? " is " : " is not ");
        puts_(t, leaf_node->op == KNIGHT ? s->words->a_knight : s->words->a_knave);
        return;
    }
    const int *kids = a->kids + node->first;
    switch (node->op) {
        case NOT: puts_(t, "it is not the case that "); operand_text(t, s, kids[0], public_style); return;
        case AND: case OR:
            for (int i = 0; i < node->n; i++) {
                if (i) puts_(t, node->op == AND ? " and " : " or ");
                operand_text(t, s, kids[i], public_style);
            }
            return;
        case IMPLIES:
            puts_(t, public_style ? "If " : "if ");
            operand_text(t, s, kids[0], public_style);
            puts_(t, " then ");
            operand_text(t, s, kids[1], public_style);
            return;
        default:
            operand_text(t, s, kids[0], public_style);
            puts_(t, " if and only if ");
            operand_text(t, s, kids[1], public_style);
    }
}

static const char *role_with_article(const Words *w, int knight) { return knight ? w->a_knight : w->a_knave; }

/* A speech template: {name}, {content} and {Content} (first letter capitalised, ASCII) filled in. */
static void fill_template(Text *t, const char *template, const char *name, const Text *content) {
    for (const char *p = template; *p;) {
        if (!strncmp(p, "{name}", 6)) { puts_(t, name); p += 6; }
        else if (!strncmp(p, "{content}", 9)) { put(t, content->p, content->len); p += 9; }
        else if (!strncmp(p, "{Content}", 9)) {
            if (content->len) {
                char first = content->p[0];
                putc_(t, first >= 'a' && first <= 'z' ? (char)(first - 32) : first);
                put(t, content->p + 1, content->len - 1);
            }
            p += 9;
        } else putc_(t, *p++);
    }
}

static void quiz_text(Text *t, const Scene *s, int n, const int *templates, const char *const *speech) {
    const Words *w = s->words;
    puts_(t, "A very special island is inhabited only by ");
    puts_(t, w->knights); puts_(t, " and "); puts_(t, w->knaves);
    puts_(t, ". "); puts_(t, w->cap_knights); puts_(t, " always tell the truth, and "); puts_(t, w->knaves);
    puts_(t, " always lie. You meet "); put_int(t, n); puts_(t, " inhabitants: ");
    if (n == 2 && !s->public_style) {
        puts_(t, s->names[0]); puts_(t, " and "); puts_(t, s->names[1]);
    } else {
        for (int i = 0; i < n - 1; i++) { puts_(t, s->names[i]); puts_(t, ", "); }
        puts_(t, "and "); puts_(t, s->names[n - 1]);
    }
    putc_(t, '.');
    Text content = {0};
    for (int speaker = 0; speaker < n; speaker++) {
        content.len = 0;
        statement_text(&content, s, s->roots[speaker], s->public_style);
        putc_(t, ' ');
        fill_template(t, speech[templates[speaker]], s->names[speaker], &content);
        t->failed |= content.failed;
    }
    free(content.p);
    puts_(t, " So who is "); puts_(t, w->a_knight); puts_(t, " and who is "); puts_(t, w->a_knave); putc_(t, '?');
}

typedef struct {
    const Scene *scene;
    int n;
    signed char assigned[MAX_PEOPLE_C];
    unsigned char watching[MAX_PEOPLE_C][MAX_PEOPLE_C];  /* [p][j]: j's consistency can change when p is assigned */
    Text *out;      /* the JSON list of sentences */
    Text sentence;  /* one sentence, raw */
    int steps;
} Search;

static void emit(Search *q) {
    if (q->steps++) puts_(q->out, ", ");
    put_json_text(q->out, &q->sentence);
    q->out->failed |= q->sentence.failed;
    q->sentence.len = 0;
}

static int visit(Search *q, int person) {
    const Scene *s = q->scene;
    const Words *w = s->words;
    Text *t = &q->sentence;
    for (int role = 1; role >= 0; role--) {
        q->assigned[person] = (signed char)role;
        int conflict = -1;
        for (int j = 0; j < q->n && conflict < 0; j++) {
            if (!q->watching[person][j] || q->assigned[j] < 0) continue;
            int value = partial(s->arena, s->roots[j], q->assigned);
            if (value >= 0 && value != q->assigned[j]) conflict = j;
        }
        if (conflict >= 0) {
            int speaker_role = q->assigned[conflict];
            puts_(t, s->names[person]); puts_(t, " cannot be "); puts_(t, role_with_article(w, role));
            puts_(t, ", because ");
            if (conflict == person) puts_(t, "their own claim that ");
            else {
                puts_(t, s->names[conflict]); puts_(t, ", "); puts_(t, role_with_article(w, speaker_role));
                puts_(t, ", said that ");
            }
            statement_text(t, s, s->roots[conflict], 0);
            puts_(t, conflict == person ? " would then be " : ", which would then be ");
            puts_(t, speaker_role ? "false." : "true.");
            emit(q);
            continue;
        }
        puts_(t, "Assume "); puts_(t, s->names[person]); puts_(t, " is "); puts_(t, role_with_article(w, role));
        putc_(t, '.');
        emit(q);
        if (person + 1 == q->n || visit(q, person + 1)) return 1;
    }
    q->assigned[person] = -1;
    if (person > 0) {
        puts_(t, "We have exhausted all possibilities for "); puts_(t, s->names[person]);
        puts_(t, ", so let us go back and reconsider "); puts_(t, s->names[person - 1]); putc_(t, '.');
        emit(q);
    }
    return 0;
}

static void statement_json(Text *t, const Arena *a, int x) {
    const Node *node = &a->nodes[x];
    puts_(t, "[\"");
    puts_(t, OP_TAG[node->op]);
    putc_(t, '"');
    if (is_leaf(node->op)) { putc_(t, ','); put_int(t, node->person); }
    for (int i = 0; i < node->n; i++) { putc_(t, ','); statement_json(t, a, a->kids[node->first + i]); }
    putc_(t, ']');
}

/* ---- the set of puzzles drawn (sampler's `seen`): their statements' JSON ---------------------------------------- */
typedef struct { uint64_t *hashes; char **keys; size_t *sizes; size_t slots, used; } Seen;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h | 1;  /* 0 marks an empty slot */
}

static int seen_grow(Seen *set) {
    size_t slots = set->slots ? 2 * set->slots : 1024;
    uint64_t *hashes = calloc(slots, sizeof(uint64_t));
    char **keys = calloc(slots, sizeof(char *));
    size_t *sizes = calloc(slots, sizeof(size_t));
    if (!hashes || !keys || !sizes) { free(hashes); free(keys); free(sizes); return 0; }
    for (size_t i = 0; i < set->slots; i++) {
        if (!set->hashes[i]) continue;
        size_t j = set->hashes[i] & (slots - 1);
        while (hashes[j]) j = (j + 1) & (slots - 1);
        hashes[j] = set->hashes[i]; keys[j] = set->keys[i]; sizes[j] = set->sizes[i];
    }
    free(set->hashes); free(set->keys); free(set->sizes);
    set->hashes = hashes; set->keys = keys; set->sizes = sizes; set->slots = slots;
    return 1;
}

/* 1 when added, 0 when already there, -1 when out of memory. */
static int seen_add(Seen *set, const char *key, size_t n) {
    if (2 * (set->used + 1) > set->slots && !seen_grow(set)) return -1;
    uint64_t h = fnv1a(key, n);
    size_t j = h & (set->slots - 1);
    for (; set->hashes[j]; j = (j + 1) & (set->slots - 1))
        if (set->hashes[j] == h && set->sizes[j] == n && !memcmp(set->keys[j], key, n)) return 0;
    char *copy = malloc(n);
    if (!copy) return -1;
    memcpy(copy, key, n);
    set->hashes[j] = h; set->keys[j] = copy; set->sizes[j] = n; set->used++;
    return 1;
}

static void seen_free(Seen *set) {
    for (size_t i = 0; i < set->slots; i++) free(set->keys[i]);
    free(set->hashes); free(set->keys); free(set->sizes);
}

/* ---- one level ----------------------------------------------------------------------------------------------- */
typedef struct {
    char *data;       /* the records' JSONL text */
    int64_t size;
    int64_t *ends;    /* the end of each record's line in `data` */
    int32_t *facts;   /* per record: people, sum and max of statement depths, knights, characters of the quiz */
    int64_t made;     /* records made: fewer than asked when a puzzle was not found in max_attempts draws */
} Level;

enum { FACTS = 5 };

void kk_free(Level *level) {
    free(level->data); free(level->ends); free(level->facts);
    memset(level, 0, sizeof *level);
}

static int64_t utf8_chars(const char *s, size_t n) {
    int64_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

/* Draws `count` unique-solution puzzles from the level stream `state` (random.Random.getstate()'s 624 words and
 * index) and writes their records, numbered from 0 (generate_level + Puzzle.to_record). `die`: the faces, -1 for a
 * leaf then the operators' codes; `width_choices`: width - 1 (≥ 1); `depth` and width are also the record's
 * fields. `roles`: `pairs` Words (9 strings each), one drawn per puzzle when `random_roles`. `speech`: the speech
 * templates of the text style (`templates` of them); `style`: the record's "style" value, NULL for logicrl's.
 * Returns 0; -1 when memory ran out, -2 for arguments out of its range (then `out` holds nothing). */
int kk_level(const uint32_t *state, int32_t n, int32_t depth, uint32_t width_choices, const int32_t *die,
             int32_t faces, int64_t count, int64_t max_attempts, const char *const *pool, int32_t pool_size,
             const char *const *roles, int32_t pairs, int32_t random_roles, const char *const *speech,
             int32_t templates, int32_t public_style, const char *style, const char *cot_head, const char *cot_foot,
             Level *out) {
    memset(out, 0, sizeof *out);
    if (n < 2 || n > MAX_PEOPLE_C || depth < 1 || faces < 1 || width_choices < 1 || pool_size < n
        || pool_size > MAX_POOL || pairs < 1 || templates < 1)
        return -2;
    Sampler s = {0};
    memcpy(s.rng.mt, state, sizeof(uint32_t) * MT_N);
    s.rng.index = (int)state[MT_N];
    s.n = n; s.depth = depth; s.faces = faces; s.width_choices = width_choices; s.die = die;
    Tables tables = {0};
    tables.words = n >= 6 ? 1 << (n - 6) : 1;
    size_t w = (size_t)tables.words;
    uint64_t full_last = n >= 6 ? ~0ULL : ((1ULL << (1 << n)) - 1);  /* the valid bits of the (only) word */
    tables.knights = malloc(sizeof(uint64_t) * w * (size_t)n);
    tables.scratch = malloc(sizeof(uint64_t) * w * (size_t)(depth + 2));
    uint64_t *consistent = malloc(sizeof(uint64_t) * w);
    int *roots = malloc(sizeof(int) * (size_t)n);
    Text statements = {0}, quiz = {0};
    Search search = {0};
    Seen seen = {0};
    int64_t cap = count > 0 ? count : 1;
    out->ends = malloc(sizeof(int64_t) * (size_t)cap);
    out->facts = malloc(sizeof(int32_t) * FACTS * (size_t)cap);
    Text data = {0};
    int failed = !tables.knights || !tables.scratch || !consistent || !roots || !out->ends || !out->facts;
    for (int p = 0; p < n && !failed; p++)
        for (size_t i = 0; i < w; i++) {
            uint64_t word = 0;
            if (p >= 6) word = ((i >> (p - 6)) & 1) ? ~0ULL : 0;
            else for (int b = 0; b < 64; b++) word |= (uint64_t)((b >> p) & 1) << b;
            tables.knights[(size_t)p * w + i] = word;
        }
    const char *names[MAX_PEOPLE_C];
    int picked[MAX_PEOPLE_C], chosen[MAX_PEOPLE_C];
    for (int64_t made = 0; made < count && !failed; made++) {
        int found = 0;
        for (int64_t attempt = 0; attempt < max_attempts && !found && !failed; attempt++) {
            s.arena.count = s.arena.nkids = 0;
            for (size_t i = 0; i < w; i++) consistent[i] = i + 1 == w ? full_last : ~0ULL;
            int alive = 1;
            for (int speaker = 0; speaker < n && alive; speaker++) {
                roots[speaker] = statement(&s, speaker, depth);
                if (s.arena.failed) break;
                uint64_t *table = tables.scratch, any = 0;
                truth_table(&s.arena, roots[speaker], &tables, table, table + w);
                const uint64_t *k = tables.knights + (size_t)speaker * w;
                for (size_t i = 0; i < w; i++) any |= consistent[i] &= ~(k[i] ^ table[i]);
                alive = any != 0;
            }
            failed = s.arena.failed;
            if (!alive || failed) continue;
            int bits = 0;
            for (size_t i = 0; i < w; i++) bits += __builtin_popcountll(consistent[i]);
            if (bits != 1) continue;
            statements.len = 0;
            putc_(&statements, '[');
            for (int speaker = 0; speaker < n; speaker++) {
                if (speaker) putc_(&statements, ',');
                statement_json(&statements, &s.arena, roots[speaker]);
            }
            putc_(&statements, ']');
            int added = statements.failed ? -1 : seen_add(&seen, statements.p, statements.len);
            failed = added < 0;
            found = added > 0;
        }
        if (failed || !found) break;
        /* the look of the puzzle: roles, then names, from Random(seed); the templates from a second Random(seed) */
        uint32_t seed = genrand(&s.rng);
        MT look, speech_look;
        seed_word(&look, seed);
        speech_look = look;  /* render.choose_templates draws from a second Random(seed) */
        const Words *words = (const Words *)(roles + 9 * (random_roles ? below(&look, (uint32_t)pairs) : 0));
        sample(&look, pool_size, n, picked);
        for (int p = 0; p < n; p++) names[p] = pool[picked[p]];
        for (int p = 0; p < n; p++) chosen[p] = (int)below(&speech_look, (uint32_t)templates);
        Scene scene = {&s.arena, roots, names, words, public_style};
        int solution_bits = -1;
        for (size_t i = 0; i < w; i++)
            if (consistent[i]) solution_bits = (int)(i * 64) + __builtin_ctzll(consistent[i]);
        int knights = 0;
        int role_of[MAX_PEOPLE_C];
        for (int p = 0; p < n; p++) { role_of[p] = (solution_bits >> p) & 1; knights += role_of[p]; }

        char id[12];
        sha1_hex12(statements.p, statements.len, id);
        puts_(&data, "{\"id\": \"kk"); put_int(&data, n); putc_(&data, '-'); put(&data, id, 12);
        puts_(&data, "\", \"index\": "); put_int(&data, made);
        quiz.len = 0;
        quiz_text(&quiz, &scene, n, chosen, speech);
        puts_(&data, ", \"quiz\": "); put_json_text(&data, &quiz);
        puts_(&data, ", \"names\": [");
        for (int p = 0; p < n; p++) { if (p) puts_(&data, ", "); put_json_cstr(&data, names[p]); }
        puts_(&data, "], \"knight_knave\": {\"knight\": "); put_json_cstr(&data, words->knight);
        puts_(&data, ", \"knave\": "); put_json_cstr(&data, words->knave);
        puts_(&data, ", \"a_knight\": "); put_json_cstr(&data, words->a_knight);
        puts_(&data, ", \"a_knave\": "); put_json_cstr(&data, words->a_knave);
        puts_(&data, ", \"Knight\": "); put_json_cstr(&data, words->cap_knight);
        puts_(&data, ", \"Knave\": "); put_json_cstr(&data, words->cap_knave);
        puts_(&data, "}, \"solution\": [");
        for (int p = 0; p < n; p++) { if (p) puts_(&data, ", "); puts_(&data, role_of[p] ? "true" : "false"); }
        puts_(&data, "], \"solution_text\": \"");
        for (int p = 0; p < n; p++) {
            if (p) puts_(&data, p + 1 == n ? ", and " : ", ");
            puts_(&data, names[p]); puts_(&data, " is "); puts_(&data, role_with_article(words, role_of[p]));
        }
        puts_(&data, ".\", \"solution_text_format\": \"");
        for (int p = 0; p < n; p++) {
            if (p) puts_(&data, "\\n");
            putc_(&data, '('); put_int(&data, p + 1); puts_(&data, ") ");
            puts_(&data, names[p]); puts_(&data, " is "); puts_(&data, role_with_article(words, role_of[p]));
        }
        puts_(&data, "\", \"cot_head\": "); put_json_cstr(&data, cot_head);
        puts_(&data, ", \"cot_repeat_steps\": [");
        memset(&search.assigned, -1, sizeof search.assigned);
        memset(&search.watching, 0, sizeof search.watching);
        for (int j = 0; j < n; j++) {
            unsigned char said[MAX_PEOPLE_C] = {0};
            mentions(&s.arena, roots[j], said);
            for (int p = 0; p < n; p++) search.watching[p][j] = p == j || said[p];
        }
        search.scene = &scene; search.n = n; search.out = &data; search.steps = 0;
        visit(&search, 0);
        puts_(&data, "], \"cot_foot\": "); put_json_cstr(&data, cot_foot);
        puts_(&data, ", \"statements\": "); put_json(&data, statements.p, statements.len);
        puts_(&data, ", \"n_people\": "); put_int(&data, n);
        puts_(&data, ", \"depth\": "); put_int(&data, depth);
        puts_(&data, ", \"width\": "); put_int(&data, (int64_t)width_choices + 1);
        puts_(&data, ", \"seed\": "); put_int(&data, seed);
        puts_(&data, ", \"order\": [");
        for (int p = 0; p < n; p++) { if (p) puts_(&data, ", "); put_int(&data, p); }
        putc_(&data, ']');
        if (style) { puts_(&data, ", \"style\": "); put_json_cstr(&data, style); }
        puts_(&data, "}\n");
        failed = data.failed || quiz.failed || search.sentence.failed;
        int depth_sum = 0, depth_max = 0;
        for (int p = 0; p < n; p++) {
            int d = tree_depth(&s.arena, roots[p]);
            depth_sum += d;
            if (d > depth_max) depth_max = d;
        }
        int32_t *facts = out->facts + FACTS * made;
        facts[0] = n; facts[1] = depth_sum; facts[2] = depth_max; facts[3] = knights;
        facts[4] = (int32_t)utf8_chars(quiz.p, quiz.len);
        out->ends[made] = (int64_t)data.len;
        out->made = made + 1;
    }
    free(tables.knights); free(tables.scratch); free(consistent); free(roots);
    free(statements.p); free(quiz.p); free(search.sentence.p);
    free(s.arena.nodes); free(s.arena.kids);
    seen_free(&seen);
    out->data = data.p;
    out->size = (int64_t)data.len;
    if (failed) { kk_free(out); return -1; }
    return 0;
}
