/* y = x·Wᵀ + b in bfloat16 on Intel AMX tiles (logicrl.engine.native, logicrl.engine.tile_linear): the fast
 * decode engine's projections, where a step multiplies a few rows by every weight of the model once and the cost
 * is reading the weights.
 *
 * W [N, K] is packed once (`tile_linear.pack`) as [N/64][K/32][4][16][32] bfloat16: for each group of 64 output
 * columns and each 32-wide slice of K, four 1 KiB B tiles (16 output columns each) in the VNNI pair layout that
 * TDPBF16PS reads — B[r][2c + e] = W[n0 + c, k0 + 2r + e] — one after another, so that a group's weights are one
 * sequential stream. Each group's four C tiles (16 rows × 16 columns, float32) accumulate A·B over the K slices,
 * A being 16 rows × 32 columns of x; then C + b is rounded to bfloat16 (VCVTNEPS2BF16: to nearest even, NaN kept,
 * a denormal result flushed to zero, as oneDNN's bfloat16 matmuls do). Rows go by blocks of 16; where M is not a
 * multiple of 16 the rows are first copied into a zero-padded buffer (the padding rows' results are not stored).
 * Groups are split over `threads` OpenMP threads; each configures its tiles and releases them.
 *
 * Built with -march=native: on a CPU without AMX-BF16 the functions are compiled as stubs that return −1, and
 * Linux must grant the process the tile data state (`tile_linear_permit`, arch_prctl ARCH_REQ_XCOMP_PERM). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* 0 when this process may use AMX tiles (asked of Linux once; later calls are no-ops), else −1 */
int tile_linear_permit(void) {
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : -1;
}

/* tiles 0–3: C (16 × 16 float32), 4: A (16 rows × 32 bfloat16), 5–7: B (16 pair rows × 16 columns) */
static void configure_tiles(void) {
    tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.colsb[t] = 64;
    }
    _tile_loadconfig(&config);
}

/* C + b of one 16-column tile → rows [rows] of y at column n0, bfloat16 */
static void store_rows(const float *c, const float *bias, uint16_t *y, int64_t rows, int64_t N, int64_t n0) {
    __m512 b = bias ? _mm512_loadu_ps(bias + n0) : _mm512_setzero_ps();
    for (int64_t m = 0; m < rows; m++) {
        __m512 v = _mm512_add_ps(_mm512_load_ps(c + m * 16), b);
        _mm256_storeu_si256((__m256i *)(y + m * N + n0), (__m256i)_mm512_cvtneps_pbh(v));
    }
}

/* x [M, K], packed W (above), bias [N] float32 or NULL, y [M, N]; K % 32 == 0, N % 64 == 0. Returns 0, or −1
 * (nothing written) when the shapes do not fit or the padding buffer cannot be allocated. */
int tile_linear(const uint16_t *x, const uint16_t *w, const float *bias, uint16_t *y, int64_t M, int64_t K,
                int64_t N, int threads) {
    if (M < 1 || K < 32 || K % 32 || N < 64 || N % 64) return -1;
    int64_t blocks = (M + 15) / 16, slices = K / 32, groups = N / 64;
    uint16_t *padded = NULL;
    if (M % 16) {  /* rows padded with zeros to a multiple of 16 */
        padded = aligned_alloc(64, (size_t)(blocks * 16 * K * 2));
        if (!padded) return -1;
        memcpy(padded, x, (size_t)(M * K * 2));
        memset(padded + M * K, 0, (size_t)((blocks * 16 - M) * K * 2));
        x = padded;
    }
    #pragma omp parallel num_threads(threads)
    {
        float c[16 * 16] __attribute__((aligned(64)));
        configure_tiles();
        #pragma omp for schedule(static)
        for (int64_t g = 0; g < groups; g++) {
            const uint16_t *group = w + g * slices * 4 * 512;
            for (int64_t block = 0; block < blocks; block++) {
                const uint16_t *a = x + block * 16 * K;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int64_t s = 0; s < slices; s++) {
                    const uint16_t *b = group + s * 4 * 512;
                    _tile_loadd(4, a + s * 32, K * 2);
                    _tile_loadd(5, b, 64);
                    _tile_dpbf16ps(0, 4, 5);
                    _tile_loadd(6, b + 512, 64);
                    _tile_dpbf16ps(1, 4, 6);
                    _tile_loadd(7, b + 1024, 64);
                    _tile_dpbf16ps(2, 4, 7);
                    _tile_loadd(5, b + 1536, 64);
                    _tile_dpbf16ps(3, 4, 5);
                }
                int64_t rows = M - block * 16 < 16 ? M - block * 16 : 16;
                uint16_t *out = y + block * 16 * N;
                _tile_stored(0, c, 64);
                store_rows(c, bias, out, rows, N, g * 64);
                _tile_stored(1, c, 64);
                store_rows(c, bias, out, rows, N, g * 64 + 16);
                _tile_stored(2, c, 64);
                store_rows(c, bias, out, rows, N, g * 64 + 32);
                _tile_stored(3, c, 64);
                store_rows(c, bias, out, rows, N, g * 64 + 48);
            }
        }
        _tile_release();
    }
    free(padded);
    return 0;
}

#else  /* no AMX-BF16 on the CPU this was built for */

int tile_linear_permit(void) { return -1; }

int tile_linear(const uint16_t *x, const uint16_t *w, const float *bias, uint16_t *y, int64_t M, int64_t K,
                int64_t N, int threads) {
    (void)x, (void)w, (void)bias, (void)y, (void)M, (void)K, (void)N, (void)threads;
    return -1;
}

#endif
