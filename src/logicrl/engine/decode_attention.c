/* The decode step's attention on a CPU with AVX-512, in one pass over both key sets (logicrl.engine.native).
 *
 * One query per row and head (q_len = 1), grouped-query heads: the G query heads of KV head h read its keys.
 * For each row b, KV head h and query g,
 *
 *     out[b, h, g] = softmax_j(s_j) · v_j,   s_j = scale · q[b, h, g] · k_j (+ bias[b, j − C] for own keys)
 *
 * over the C keys every row shares (common_k/common_v [H, C, D], the prompts' common prefix) followed by the row's
 * own keys (own_k/own_v [B, H, ≥own_len, D]: the rest of its prompt, then its response). Arithmetic in float32
 * (bfloat16 inputs widen exactly); the scores stay in a buffer, so the softmax is the plain max-subtracted one, not
 * an online rescaling. The torch path this replaces runs two flash-attention calls and a log-sum-exp merge
 * (logicrl.engine.attention); the result is the same to float32 rounding.
 *
 * Work is split over (row, KV head) pairs with OpenMP; linked against libgomp.so.1, which is the runtime PyTorch
 * itself loads on Linux, so the kernel shares PyTorch's thread pool instead of starting a second one. */
#ifndef __AVX512F__
#error "needs AVX-512 (the engine keeps PyTorch's attention on this CPU)"
#endif
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

#include "simd_bf16.h"
#include "simd_exp.h"

#define MAX_GROUP 8
#define MAX_CHUNKS 16 /* head_dim up to 256, in chunks of 16 floats */
#define PREFETCH 16   /* own keys are read this many rows ahead */

static inline __m512 load_f32(const void *p) { return _mm512_loadu_ps((const float *)p); }

static inline __m512 load_bf16(const void *p) { return widen_bf16(_mm256_loadu_si256((const __m256i *)p)); }

typedef __m512 (*loader)(const void *);

static inline void prefetch_row(const char *row, int64_t bytes) {
    for (int64_t c = 0; c < bytes; c += 64) _mm_prefetch(row + c, _MM_HINT_T0);
}

/* The S = C + own_len keys of one (row, KV head) pair for its G queries qf [G, D] (float32, already scaled):
 * scores [G, S] (scratch), out [G, D]. Inlined with constant G and D at the common shapes (see decode_attention),
 * so that the loops over them unroll and the queries and accumulators stay in registers. */
static inline __attribute__((always_inline)) void attend_pair(
        const float *qf, const int64_t G, const int64_t D, const loader load, const int64_t item,
        const char *ck, const char *cv, int64_t C, const char *ok, const char *ov, int64_t own_len,
        const char *bias, float *scores, float *out) {
    const int64_t S = C + own_len, chunks = D / 16, row_bytes = D * item;
    for (int64_t j = 0; j < S; j++) {  /* scores */
        const char *k = j < C ? ck + j * row_bytes : ok + (j - C) * row_bytes;
        if (j + PREFETCH >= C && j + PREFETCH < S) prefetch_row(ok + (j + PREFETCH - C) * row_bytes, row_bytes);
        __m512 kc[MAX_CHUNKS];
        for (int64_t c = 0; c < chunks; c++) kc[c] = load(k + c * 16 * item);
        float add = 0.0f;
        if (bias && j >= C) add = _mm512_cvtss_f32(load(bias + (j - C) * item));  /* lane 0 */
        for (int64_t g = 0; g < G; g++) {
            __m512 acc = _mm512_mul_ps(load_f32(qf + g * D), kc[0]);
            for (int64_t c = 1; c < chunks; c++) acc = _mm512_fmadd_ps(load_f32(qf + g * D + c * 16), kc[c], acc);
            scores[g * S + j] = _mm512_reduce_add_ps(acc) + add;
        }
    }
    for (int64_t g = 0; g < G; g++) {  /* softmax, in place */
        float *s = scores + g * S;
        __m512 highest = _mm512_set1_ps(s[0]);
        for (int64_t j = 0; j < S; j += 16) {
            __mmask16 m = lanes(S - j);
            highest = _mm512_mask_max_ps(highest, m, highest, _mm512_maskz_loadu_ps(m, s + j));
        }
        const float top = _mm512_reduce_max_ps(highest);
        __m512 total = _mm512_setzero_ps(), vtop = _mm512_set1_ps(top);
        for (int64_t j = 0; j < S; j += 16) {
            __mmask16 m = lanes(S - j);
            __m512 e = _mm512_maskz_mov_ps(m, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), vtop)));
            _mm512_mask_storeu_ps(s + j, m, e);
            total = _mm512_add_ps(total, e);
        }
        const float inv = 1.0f / _mm512_reduce_add_ps(total);
        for (int64_t j = 0; j < S; j++) s[j] *= inv;
    }
    __m512 acc[MAX_GROUP * MAX_CHUNKS];  /* weights · values */
    for (int64_t i = 0; i < G * chunks; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t j = 0; j < S; j++) {
        const char *v = j < C ? cv + j * row_bytes : ov + (j - C) * row_bytes;
        if (j + PREFETCH >= C && j + PREFETCH < S) prefetch_row(ov + (j + PREFETCH - C) * row_bytes, row_bytes);
        __m512 vc[MAX_CHUNKS];
        for (int64_t c = 0; c < chunks; c++) vc[c] = load(v + c * 16 * item);
        for (int64_t g = 0; g < G; g++) {
            const __m512 p = _mm512_set1_ps(scores[g * S + j]);
            for (int64_t c = 0; c < chunks; c++) acc[g * chunks + c] = _mm512_fmadd_ps(p, vc[c], acc[g * chunks + c]);
        }
    }
    for (int64_t i = 0; i < G * chunks; i++) _mm512_storeu_ps(out + i * 16, acc[i]);
}

#define PAIR(G_, D_, LOAD_, ITEM_) \
    attend_pair(qf, G_, D_, LOAD_, ITEM_, ck, cv, C, ok, ov, own_len, row_bias, scores, o)
#define GROUPS(D_, LOAD_, ITEM_)                                                                                   \
    switch (G) {                                                                                                   \
        case 1: PAIR(1, D_, LOAD_, ITEM_); break;                                                                  \
        case 2: PAIR(2, D_, LOAD_, ITEM_); break;                                                                  \
        case 3: PAIR(3, D_, LOAD_, ITEM_); break;                                                                  \
        case 4: PAIR(4, D_, LOAD_, ITEM_); break;                                                                  \
        case 5: PAIR(5, D_, LOAD_, ITEM_); break;                                                                  \
        case 6: PAIR(6, D_, LOAD_, ITEM_); break;                                                                  \
        case 7: PAIR(7, D_, LOAD_, ITEM_); break;                                                                  \
        default: PAIR(8, D_, LOAD_, ITEM_); break;                                                                 \
    }

/* q [B, H, G, D] contiguous; common_k, common_v [H, C, D] contiguous (C may be 0, then both may be NULL); own_k,
 * own_v: row b, head h, key j at element (b·own_row_stride + h·own_head_stride + j·D); bias: NULL, or row b's
 * additive bias of own key j at element (b·bias_row_stride + j); out [B, H, G, D] float32. Every input is bfloat16
 * when bf16 != 0, else float32. Runs on `threads` OpenMP threads. Returns 0, or −1 (nothing written) when
 * G ∉ [1, 8], D is not a multiple of 16 up to 256, or there is no key. */
int decode_attention(const void *q, const void *common_k, const void *common_v, int64_t C, const void *own_k,
                     const void *own_v, int64_t own_len, int64_t own_row_stride, int64_t own_head_stride,
                     const void *bias, int64_t bias_row_stride, float scale, float *out, int64_t B, int64_t H,
                     int64_t G, int64_t D, int bf16, int threads) {
    if (G < 1 || G > MAX_GROUP || D < 16 || D % 16 || D / 16 > MAX_CHUNKS || C + own_len < 1) return -1;
    const int64_t item = bf16 ? 2 : 4, S = C + own_len;
    int failed = 0;
    #pragma omp parallel num_threads(threads) reduction(|| : failed)
    {
        float *scores = malloc(sizeof(float) * (size_t)(G * S + G * D));
        if (!scores) failed = 1;
        float *qf = scores + G * S;
        #pragma omp for schedule(static)
        for (int64_t pair = 0; pair < B * H; pair++) {
            if (!scores) continue;
            const int64_t b = pair / H, h = pair % H, own = (b * own_row_stride + h * own_head_stride) * item;
            const loader load = bf16 ? load_bf16 : load_f32;
            for (int64_t i = 0; i < G * D; i += 16)
                _mm512_storeu_ps(qf + i, _mm512_mul_ps(load((const char *)q + (pair * G * D + i) * item),
                                                       _mm512_set1_ps(scale)));
            const char *ck = (const char *)common_k + h * C * D * item, *cv = (const char *)common_v + h * C * D * item;
            const char *ok = (const char *)own_k + own, *ov = (const char *)own_v + own;
            const char *row_bias = bias ? (const char *)bias + b * bias_row_stride * item : NULL;
            float *o = out + pair * G * D;
            if (D == 64 && bf16) { GROUPS(64, load_bf16, 2) }
            else if (D == 64) { GROUPS(64, load_f32, 4) }
            else if (D == 128 && bf16) { GROUPS(128, load_bf16, 2) }
            else if (D == 128) { GROUPS(128, load_f32, 4) }
            else PAIR(G, D, load, item);
        }
        free(scores);
    }
    return failed ? -1 : 0;
}
