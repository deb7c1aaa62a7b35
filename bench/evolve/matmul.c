/* Naive matrix multiply, C = A B for n x n row-major doubles: i-j-k order, a scalar
   accumulator per element of C. */
void matmul(double *c, const double *a, const double *b, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
}
