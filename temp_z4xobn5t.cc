extern "C" {
#define grid_size_x 128
#define grid_size_y 1
#define grid_size_z 1
#define block_size_x 256
#define block_size_y 1
#define block_size_z 1
#define BLOCK 8
#define UNROLL 8
#define kernel_tuner 1
#line 1

void matmul(float* C, const float* A, const float* B, int n) {
    for (int i = 0; i < n * n; ++i) C[i] = 0.0f;
    for (int ii = 0; ii < n; ii += BLOCK)
        for (int kk = 0; kk < n; kk += BLOCK)
            for (int i = ii; i < ii + BLOCK && i < n; ++i)
                for (int k = kk; k < kk + BLOCK && k < n; ++k) {
                    const float a = A[i * n + k];
                    int j = 0;
                    for (; j + UNROLL <= n; j += UNROLL)
                        for (int u = 0; u < UNROLL; ++u) C[i * n + j + u] += a * B[k * n + j + u];
                    for (; j < n; ++j) C[i * n + j] += a * B[k * n + j];
                }
}

#include <time.h>
float matmul_kt(float* C, const float* A, const float* B, int n) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    matmul(C, A, B, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (float)((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6);
}

}