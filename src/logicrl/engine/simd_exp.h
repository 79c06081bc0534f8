/* exp on 16 float32 lanes, for the AVX-512 kernels (decode_attention.c, decode_elementwise.c, head_softmax.c). A header that a C source
 * includes is part of that library's build key (logicrl.engine.native). */
#ifndef LOGICRL_SIMD_EXP_H
#define LOGICRL_SIMD_EXP_H
#include <immintrin.h>

/* exp(x) on 16 lanes for x ≤ 0 (scores minus their maximum), 0 below −87 (a hidden key's −inf included):
 * x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for an exact n·ln2), exp(r) by its degree-6 Taylor-like
 * minimax polynomial (Cephes expf), then scaled by 2^n. Relative error about 2e-7. */
static inline __m512 exp_nonpositive(__m512 x) {
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.98756915e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.39819994e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.33345205e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16657962e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666657e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.00000000e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps((__mmask16)~tiny, _mm512_scalef_ps(p, n));
}

#endif
