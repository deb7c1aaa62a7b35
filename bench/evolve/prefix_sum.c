/* Inclusive prefix sum of n doubles. */
void prefix_sum(double *out, const double *x, int n) {
    if (n <= 0)
        return;
    out[0] = x[0];
    for (int i = 1; i < n; i++)
        out[i] = out[i - 1] + x[i];
}
