/* Naive out-of-place transpose of an n x n row-major matrix of doubles. */
void transpose(double *out, const double *in, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            out[j * n + i] = in[i * n + j];
}
