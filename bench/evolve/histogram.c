/* Histogram of n doubles over [lo, hi) in nbins equal bins; values outside go to the end
   bins. */
void histogram(int *hist, const double *x, int n, int nbins, double lo, double hi) {
    for (int b = 0; b < nbins; b++)
        hist[b] = 0;
    for (int i = 0; i < n; i++) {
        int b = (int)((x[i] - lo) / (hi - lo) * nbins);
        if (b < 0)
            b = 0;
        if (b >= nbins)
            b = nbins - 1;
        hist[b] += 1;
    }
}
