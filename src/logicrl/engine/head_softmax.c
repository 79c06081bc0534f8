/* The fused head's work on one chunk of logits (logicrl.engine.logprobs._FusedHead), one pass per row where
 * PyTorch runs ten ops over [chunk, V] float32 tensors (logicrl.engine.native). With z = logits / τ (the quotient
 * rounded to the logits' dtype, as PyTorch divides them in it) widened to float32:
 *
 *     forward:   lse = log Σ_v exp(z_v),  ℓ = z_token − lse,  H = lse − Σ_v p_v·z_v,   p = exp(z − lse)
 *     backward:  g_v = (−p_v·gℓ + [v = token]·gℓ − gH·p_v·(log p_v + H)) / τ,  stored in the out dtype
 *
 * in the order of PyTorch's ops in _FusedHead.backward (a p_v of 0 adds nothing to H nor to its gradient, as the
 * nansum and the where(p > 0) there). exp is simd_exp.h's polynomial and the sums run in another order than
 * PyTorch's: results agree to float32 rounding, not bit for bit. A NaN logit makes the row's lse NaN. Rows are
 * split over `threads` OpenMP threads (the libgomp PyTorch itself loads). */
#ifndef __AVX512F__
#error "needs AVX-512 (the fused head keeps PyTorch's ops on this CPU)"
#endif
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "simd_bf16.h"
#include "simd_exp.h"

/* 16 logits from index i (only the first `left` when fewer remain), widened to float32 and divided by τ, the
 * quotient rounded to bfloat16 for bfloat16 logits */
static inline __m512 load_logits(const void *logits, int64_t i, int64_t left, int bf16, float temperature) {
    __m512 x;
    if (bf16) {
        x = widen_bf16(_mm256_maskz_loadu_epi16(lanes(left), (const uint16_t *)logits + i));
    } else {
        x = _mm512_maskz_loadu_ps(lanes(left), (const float *)logits + i);
    }
    if (temperature != 1.0f) {
        x = _mm512_div_ps(x, _mm512_set1_ps(temperature));
        if (bf16) x = rounded_bf16(x);
    }
    return x;
}

static inline float scalar_logit(const void *logits, int64_t i, int bf16, float temperature) {
    float out[16];
    _mm512_storeu_ps(out, load_logits(logits, i, 1, bf16, temperature));
    return out[0];
}

/* stores the first `left` (at most 16) lanes of x at index i, as bfloat16 or float32 */
static inline void store_grad(void *grad, int64_t i, int64_t left, __m512 x, int bf16) {
    if (bf16) _mm256_mask_storeu_epi16((uint16_t *)grad + i, lanes(left), _mm512_cvtepi32_epi16(bf16_bits(x)));
    else _mm512_mask_storeu_ps((float *)grad + i, lanes(left), x);
}

/* lse, logp and (when not NULL) entropy of `rows` rows of V logits (bfloat16 when bf16, else float32) */
void head_forward(const void *logits, int64_t rows, int64_t V, const int64_t *tokens, float temperature,
                  float *lse, float *logp, float *entropy, int threads, int bf16) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = r * V;
        __m512 top = _mm512_set1_ps(-INFINITY);
        __mmask16 nan = 0;
        for (int64_t v = 0; v < V; v += 16) {
            __m512 z = load_logits(logits, base + v, V - v, bf16, temperature);
            __mmask16 valid = lanes(V - v);
            nan |= _mm512_mask_cmp_ps_mask(valid, z, z, _CMP_UNORD_Q);
            top = _mm512_mask_max_ps(top, valid, top, z);
        }
        const float peak = _mm512_reduce_max_ps(top);
        const __m512 vpeak = _mm512_set1_ps(peak);
        __m512 total = _mm512_setzero_ps(), weighted = _mm512_setzero_ps();
        for (int64_t v = 0; v < V; v += 16) {
            __mmask16 valid = lanes(V - v);
            __m512 z = load_logits(logits, base + v, V - v, bf16, temperature);
            __m512 e = _mm512_maskz_mov_ps(valid, exp_nonpositive(_mm512_sub_ps(z, vpeak)));
            total = _mm512_add_ps(total, e);
            __mmask16 positive = _mm512_cmp_ps_mask(e, _mm512_setzero_ps(), _CMP_GT_OQ);  /* 0·(−inf) adds 0 */
            weighted = _mm512_mask_add_ps(weighted, positive, weighted, _mm512_mul_ps(e, z));
        }
        const float sum = _mm512_reduce_add_ps(total);
        const float row_lse = nan ? NAN : peak + logf(sum);
        lse[r] = row_lse;
        logp[r] = scalar_logit(logits, base + tokens[r], bf16, temperature) - row_lse;
        if (entropy) entropy[r] = row_lse - _mm512_reduce_add_ps(weighted) / sum;
    }
}

/* g_v on 16 lanes (the header's backward), `token_term` the [v = token]·gℓ of these lanes (0 or gℓ) */
static inline __m512 logit_grad(__m512 z, float lse, float g, float g_h, float h, float temperature,
                                float token_term) {
    __m512 log_p = _mm512_sub_ps(z, _mm512_set1_ps(lse));
    __m512 p = exp_nonpositive(log_p);
    __m512 out = _mm512_add_ps(_mm512_mul_ps(p, _mm512_set1_ps(-g)), _mm512_set1_ps(token_term));
    if (g_h != 0.0f) {
        __mmask16 positive = _mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_GT_OQ);
        __m512 term = _mm512_add_ps(_mm512_maskz_mov_ps(positive, log_p), _mm512_set1_ps(h));
        out = _mm512_sub_ps(out, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(g_h), p), term));
    }
    return temperature != 1.0f ? _mm512_div_ps(out, _mm512_set1_ps(temperature)) : out;
}

/* the gradient of the loss with respect to `rows` rows of V logits (grad_entropy may be NULL), stored as bfloat16
 * when out_bf16, else float32 */
void head_backward(const void *logits, int64_t rows, int64_t V, const int64_t *tokens, float temperature,
                   const float *lse, const float *entropy, const float *grad_logp, const float *grad_entropy,
                   void *grad, int threads, int bf16, int out_bf16) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = r * V, token = tokens[r];
        const float g = grad_logp[r], g_h = grad_entropy ? grad_entropy[r] : 0.0f, h = entropy ? entropy[r] : 0.0f;
        for (int64_t v = 0; v < V; v += 16) {
            __m512 z = load_logits(logits, base + v, V - v, bf16, temperature);
            store_grad(grad, base + v, V - v, logit_grad(z, lse[r], g, g_h, h, temperature, 0.0f), out_bf16);
        }
        /* the token's own logit again, with its term (as scatter_add, then the entropy's −=, in PyTorch) */
        __m512 z = load_logits(logits, base + token, 1, bf16, temperature);
        __m512 out = logit_grad(z, lse[r], g, g_h, h, temperature, g);
        store_grad(grad, base + token, 1, out, out_bf16);
    }
}
