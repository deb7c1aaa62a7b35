#include <math.h>

/* Softmax of each row of a rows x cols row-major matrix of doubles (max subtracted). */
void softmax(double *y, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double m = x[r * cols];
        for (int j = 1; j < cols; j++)
            m = fmax(m, x[r * cols + j]);
        double s = 0.0;
        for (int j = 0; j < cols; j++) {
            double e = exp(x[r * cols + j] - m);
            y[r * cols + j] = e;
            s += e;
        }
        for (int j = 0; j < cols; j++)
            y[r * cols + j] = y[r * cols + j] / s;
    }
}
