/* The decode step's elementwise work between its projections, one call where PyTorch runs a dozen small ops
 * (logicrl.engine.native, logicrl.engine.fused). Each function computes what the PyTorch ops it replaces compute
 * in the same dtype, rounding where they round: bfloat16 results are rounded to nearest even after every op that
 * PyTorch runs in bfloat16; float32 results are plain float32 ops (built with -ffp-contract=off: no fused
 * multiply-adds that PyTorch's separate ops would not have). The only difference is the order of the sum in the
 * RMSNorm's mean of squares (float32 rounding). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __AVX512F__
#include "simd_bf16.h"
#include "simd_exp.h"
#endif

static inline float from_bf16(uint16_t x) {
    uint32_t bits = (uint32_t)x << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t to_bf16(float f) {  /* round to nearest even, as c10::BFloat16 */
    uint32_t bits;
    memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);  /* NaN stays NaN */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* round to the storage dtype and back: what a PyTorch op in that dtype returns */
static inline float rounded(float f, int bf16) { return bf16 ? from_bf16(to_bf16(f)) : f; }
static inline float load(const void *p, int64_t i, int bf16) {
    return bf16 ? from_bf16(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
static inline void store(void *p, int64_t i, float f, int bf16) {
    if (bf16) ((uint16_t *)p)[i] = to_bf16(f);
    else ((float *)p)[i] = f;
}

/* y = x + delta (when delta is not NULL; else y is x and y_out is not written), then h = weight · rms_norm(y),
 * for `rows` rows of E:
 *     s = y (float32);  s ← s · 1/sqrt(mean(s²) + eps);  h = weight · s   (s rounded to the dtype first)
 * as LlamaRMSNorm (statistics in float32, the product with the weight in the dtype). x, delta, y_out, h:
 * rows × E, contiguous; weight: E. */
static inline __attribute__((always_inline)) void add_rms_norm_in(
        const void *x, const void *delta, void *y_out, const void *weight, float eps, void *h, int64_t rows,
        int64_t E, const int bf16) {
    const void *y = delta ? y_out : x;
    for (int64_t r = 0; r < rows; r++) {
        float total = 0.0f;
        #pragma omp simd reduction(+ : total)
        for (int64_t e = 0; e < E; e++) {
            int64_t i = r * E + e;
            float value = load(x, i, bf16);
            if (delta) {
                value = rounded(value + load(delta, i, bf16), bf16);
                store(y_out, i, value, bf16);
            }
            total += value * value;
        }
        const float inverse = 1.0f / sqrtf(total / (float)E + eps);
        #pragma omp simd
        for (int64_t e = 0; e < E; e++) {
            int64_t i = r * E + e;
            float scaled = rounded(load(y, i, bf16) * inverse, bf16);
            store(h, i, load(weight, e, bf16) * scaled, bf16);
        }
    }
}

void add_rms_norm(const void *x, const void *delta, void *y_out, const void *weight, float eps, void *h,
                  int64_t rows, int64_t E, int bf16) {
    if (bf16) add_rms_norm_in(x, delta, y_out, weight, eps, h, rows, E, 1);
    else add_rms_norm_in(x, delta, y_out, weight, eps, h, rows, E, 0);
}

/* Rotary embedding of the new token's queries and keys, the keys and values written into the cache:
 *     rot(u) = u·cos + rotate_half(u)·sin,   rotate_half(u) = [−u[D/2:], u[:D/2]]
 * (each product and the sum rounded to the dtype, as transformers' apply_rotary_pos_emb in that dtype).
 * qkv: row b holds H query heads, then H_kv key heads, then H_kv value heads, each D wide (row stride qkv_row);
 * cos, sin: B × D; q_out: B × H × D; key/value head h of row b goes to k_cache/v_cache at element
 * b·cache_row + h·cache_head (then D contiguous). */
static inline __attribute__((always_inline)) void rotate(const void *u, const void *cos, const void *sin,
                                                         void *out, int64_t D, const int bf16) {
    const int64_t half = D / 2;
    #pragma omp simd
    for (int64_t d = 0; d < half; d++) {
        float first = rounded(load(u, d, bf16) * load(cos, d, bf16), bf16);
        float second = rounded(-load(u, d + half, bf16) * load(sin, d, bf16), bf16);
        store(out, d, first + second, bf16);
    }
    #pragma omp simd
    for (int64_t d = half; d < D; d++) {
        float first = rounded(load(u, d, bf16) * load(cos, d, bf16), bf16);
        float second = rounded(load(u, d - half, bf16) * load(sin, d, bf16), bf16);
        store(out, d, first + second, bf16);
    }
}

static inline __attribute__((always_inline)) void rotary_into_cache_in(
        const char *qkv, int64_t qkv_row, const char *cos, const char *sin, char *q_out, char *k_cache,
        char *v_cache, int64_t cache_row, int64_t cache_head, int64_t B, int64_t H, int64_t H_kv, int64_t D,
        const int bf16) {
    const int64_t item = bf16 ? 2 : 4;
    for (int64_t b = 0; b < B; b++) {
        const char *row = qkv + b * qkv_row * item, *c = cos + b * D * item, *s = sin + b * D * item;
        for (int64_t head = 0; head < H; head++)
            rotate(row + head * D * item, c, s, q_out + (b * H + head) * D * item, D, bf16);
        for (int64_t head = 0; head < H_kv; head++) {
            const int64_t slot = (b * cache_row + head * cache_head) * item;
            rotate(row + (H + head) * D * item, c, s, k_cache + slot, D, bf16);
            memcpy(v_cache + slot, row + (H + H_kv + head) * D * item, (size_t)(D * item));
        }
    }
}

void rotary_into_cache(const void *qkv, int64_t qkv_row, const void *cos, const void *sin, void *q_out,
                       void *k_cache, void *v_cache, int64_t cache_row, int64_t cache_head, int64_t B, int64_t H,
                       int64_t H_kv, int64_t D, int bf16) {
    if (bf16) rotary_into_cache_in(qkv, qkv_row, cos, sin, q_out, k_cache, v_cache, cache_row, cache_head, B, H,
                                   H_kv, D, 1);
    else rotary_into_cache_in(qkv, qkv_row, cos, sin, q_out, k_cache, v_cache, cache_row, cache_head, B, H, H_kv,
                              D, 0);
}

/* The gated MLP's product out = silu(gate) · up for `rows` rows of gate_up = [gate (I) | up (I)], as the ops
 * act_fn(gate) * up in the dtype: silu(g) = g / (1 + exp(−g)) rounded to the dtype, then the product rounded.
 * With AVX-512, 16 lanes at a time and exp from simd_exp.h on −|g| (for g < 0, silu(g) = g·e^g / (1 + e^g)): float32
 * rounding of PyTorch's result before the dtype's rounding, a NaN kept, silu(−inf) NaN as PyTorch's −inf / inf; below
 * g = −87 that exp is 0, so silu(g) is −0 where PyTorch's is a value under 1e−36 down to g = −88.7 (then −0 too).
 * gate_up: rows × 2I, out: rows × I, contiguous. */
#ifdef __AVX512F__
static inline __m512 load16(const void *p, int64_t i, __mmask16 m, const int bf16) {
    return bf16 ? widen_bf16(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i))
                : _mm512_maskz_loadu_ps(m, (const float *)p + i);
}
#endif

static inline __attribute__((always_inline)) void silu_mul_in(const void *gate_up, void *out, int64_t rows,
                                                              int64_t I, const int bf16) {
    for (int64_t r = 0; r < rows; r++) {
        const int64_t gate = r * 2 * I, up = gate + I, o = r * I;
#ifdef __AVX512F__
        for (int64_t i = 0; i < I; i += 16) {
            const __mmask16 m = lanes(I - i);
            const __m512 g = load16(gate_up, gate + i, m, bf16), zero = _mm512_setzero_ps();
            const __m512 e = exp_nonpositive(_mm512_sub_ps(zero, _mm512_abs_ps(g)));
            const __m512 top = _mm512_mask_mul_ps(g, _mm512_cmp_ps_mask(g, zero, _CMP_LT_OQ), g, e);
            __m512 silu = _mm512_div_ps(top, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
            if (bf16) silu = rounded_bf16(silu);
            const __m512 product = _mm512_mul_ps(silu, load16(gate_up, up + i, m, bf16));
            if (bf16) _mm256_mask_storeu_epi16((uint16_t *)out + o + i, m, _mm512_cvtepi32_epi16(bf16_bits(product)));
            else _mm512_mask_storeu_ps((float *)out + o + i, m, product);
        }
#else
        for (int64_t i = 0; i < I; i++) {
            const float g = load(gate_up, gate + i, bf16);
            store(out, o + i, rounded(g / (1.0f + expf(-g)), bf16) * load(gate_up, up + i, bf16), bf16);
        }
#endif
    }
}

void silu_mul(const void *gate_up, void *out, int64_t rows, int64_t I, int bf16) {
    if (bf16) silu_mul_in(gate_up, out, rows, I, 1);
    else silu_mul_in(gate_up, out, rows, I, 0);
}
