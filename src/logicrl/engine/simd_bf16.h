/* bfloat16 on 16 float32 lanes, and the lanes of a partial block, for the AVX-512 kernels (decode_attention.c,
 * decode_elementwise.c, head_softmax.c). A header that a C source includes is part of that library's build key
 * (logicrl.engine.native). */
#ifndef LOGICRL_SIMD_BF16_H
#define LOGICRL_SIMD_BF16_H
#include <immintrin.h>
#include <stdint.h>

/* the lanes of a block of 16 that hold one of the `left` values still to go */
static inline __mmask16 lanes(int64_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* 16 bfloat16 values widened to float32 (exact: a 16-bit shift) */
static inline __m512 widen_bf16(__m256i half) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

/* x rounded to bfloat16 (to nearest even, as c10::BFloat16; NaN stays NaN): the 16 bits, in each 32-bit lane */
static inline __m512i bf16_bits(__m512 x) {
    __m512i b = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40)));
}

/* x rounded to bfloat16 and back: what a PyTorch op in bfloat16 returns */
static inline __m512 rounded_bf16(__m512 x) { return _mm512_castsi512_ps(_mm512_slli_epi32(bf16_bits(x), 16)); }

#endif
