/* The decoder's RMSNorms in training, forward and backward on float32 rows (logicrl.engine.rms_norm): one pass
 * each where autograd runs eight ops forward and a dozen backward, each over the whole [rows, E] tensor. With
 * r = 1 / sqrt(mean(x²) + eps) kept per row:
 *
 *     forward:   y = w · (x · r)
 *     backward:  g = dy · w,   dx = r · (g − (x·r) · mean(g · x·r)),   dw = Σ_rows dy · (x·r)
 *
 * The forward's products are LlamaRMSNorm's, in its order; only the float32 sums (the mean of squares, the mean of
 * g · n, the rows of dw) are added in another order than PyTorch's. Built with -ffp-contract=off
 * (logicrl.engine.native): no fused multiply-adds. Rows are split over `threads` OpenMP threads (the libgomp
 * PyTorch itself loads); the results do not depend on their number. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The row sums below go through LANES interleaved partial sums, added together in a fixed order: the same bits
 * wherever a row lies in memory (an `omp simd reduction` may peel the loop to align it, and so reorder the sum by
 * the row's address: a resumed run, its tensors elsewhere, would not repeat its steps bit for bit). */
#define LANES 16

static inline float sum_lanes(const float partial[LANES]) {
    float total = 0.0f;
    for (int j = 0; j < LANES; j++) total += partial[j];
    return total;
}

/* Σ_e x[e]² */
static inline float sum_of_squares(const float *x, int64_t E) {
    float partial[LANES] = {0};
    int64_t e = 0;
    for (; e + LANES <= E; e += LANES)
        for (int j = 0; j < LANES; j++) partial[j] += x[e + j] * x[e + j];
    for (int j = 0; e + j < E; j++) partial[j] += x[e + j] * x[e + j];
    return sum_lanes(partial);
}

/* Σ_e (dy[e] · w[e]) · (x[e] · r) */
static inline float sum_of_grad_products(const float *dy, const float *w, const float *x, float r, int64_t E) {
    float partial[LANES] = {0};
    int64_t e = 0;
    for (; e + LANES <= E; e += LANES)
        for (int j = 0; j < LANES; j++) partial[j] += (dy[e + j] * w[e + j]) * (x[e + j] * r);
    for (int j = 0; e + j < E; j++) partial[j] += (dy[e + j] * w[e + j]) * (x[e + j] * r);
    return sum_lanes(partial);
}

void rms_norm_forward(const float *x, const float *w, float eps, float *y, float *rstd, int64_t rows, int64_t E,
                      int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * E;
        float *yr = y + r * E;
        const float inverse = 1.0f / sqrtf(sum_of_squares(xr, E) / (float)E + eps);
        rstd[r] = inverse;
        #pragma omp simd
        for (int64_t e = 0; e < E; e++) yr[e] = w[e] * (xr[e] * inverse);
    }
}

/* dw's partial sums: one row of `parts` per block of BLOCK_ROWS rows, added in block order, so that dw does not
 * depend on how many threads ran (a resumed run may have another count: its steps must give the same bits) */
#define BLOCK_ROWS 32

/* returns 0, or 1 when the partial sums could not be allocated (nothing written) */
int rms_norm_backward(const float *x, const float *w, const float *rstd, const float *dy, float *dx, float *dw,
                      int64_t rows, int64_t E, int threads) {
    const int64_t blocks = (rows + BLOCK_ROWS - 1) / BLOCK_ROWS;
    float *parts = dw ? malloc((size_t)(blocks * E) * sizeof(float)) : 0;
    if (dw && !parts) return 1;
    #pragma omp parallel num_threads(threads)
    {
        #pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            float *part = dw ? parts + b * E : 0;
            if (part) memset(part, 0, (size_t)E * sizeof(float));
            const int64_t end = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
            for (int64_t r = b * BLOCK_ROWS; r < end; r++) {
                const float *xr = x + r * E, *dyr = dy + r * E;
                float *dxr = dx + r * E;
                const float inverse = rstd[r];
                const float mean = sum_of_grad_products(dyr, w, xr, inverse, E) / (float)E;
                #pragma omp simd
                for (int64_t e = 0; e < E; e++) {
                    const float n = xr[e] * inverse;
                    dxr[e] = inverse * (dyr[e] * w[e] - n * mean);
                }
                if (part) {
                    #pragma omp simd
                    for (int64_t e = 0; e < E; e++) part[e] += dyr[e] * (xr[e] * inverse);
                }
            }
        }
        if (dw) {
            #pragma omp for schedule(static)
            for (int64_t e = 0; e < E; e++) {
                float total = 0.0f;
                for (int64_t b = 0; b < blocks; b++) total += parts[b * E + e];
                dw[e] = total;
            }
        }
    }
    free(parts);
    return 0;
}
