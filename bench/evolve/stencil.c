/* One Jacobi sweep of the 2-D 5-point stencil on an n x n grid; the border is copied. */
void stencil(double *out, const double *in, int n) {
    for (int j = 0; j < n; j++) {
        out[j] = in[j];
        out[(n - 1) * n + j] = in[(n - 1) * n + j];
    }
    for (int i = 1; i < n - 1; i++) {
        out[i * n] = in[i * n];
        out[i * n + n - 1] = in[i * n + n - 1];
    }
    for (int i = 1; i < n - 1; i++)
        for (int j = 1; j < n - 1; j++)
            out[i * n + j] = 0.2 * (in[i * n + j] + in[(i - 1) * n + j] + in[(i + 1) * n + j]
                                    + in[i * n + j - 1] + in[i * n + j + 1]);
}
