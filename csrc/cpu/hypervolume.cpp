// CPU kernel of the hypervolume op: a sweep over the points sorted by their last objective, keeping
// the staircase of the points seen so far in the plane of the others (Beume et al. 2009 for 3-D),
// O(n log n).
#include "airda/hypervolume.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <stdexcept>
#include <vector>

namespace airda::cpu {
namespace {

// b - a when positive, else 0; never inf - inf.
inline double gap(double a, double b) { return b > a ? b - a : 0.0; }
// Area of a box with these sides; 0 when either is 0, so 0 * inf never yields NaN.
inline double box(double w, double h) { return (w > 0.0 && h > 0.0) ? w * h : 0.0; }

// The points inserted so far, reduced to their non-dominated staircase in the plane: x
// increasing, y strictly decreasing. insert() returns the area it adds below (rx, ry).
class Staircase {
 public:
  Staircase(double rx, double ry) : rx_(rx), ry_(ry) {}

  double insert(double x, double y) {
    auto it = steps_.lower_bound(x);
    if (it != steps_.end() && it->first == x && it->second <= y) return 0.0;
    double height = ry_;  // the covered region at x starts at this height
    if (it != steps_.begin()) {
      const auto before = std::prev(it);
      if (before->second <= y) return 0.0;
      height = before->second;
    }
    double added = 0.0;
    double left = x;
    // Steps at or right of x that are not below y are dominated by (x, y): the area they leave
    // between their height and y is new.
    while (it != steps_.end() && it->second >= y) {
      added += box(gap(left, it->first), gap(y, height));
      left = it->first;
      height = it->second;
      it = steps_.erase(it);
    }
    const double right = it == steps_.end() ? rx_ : it->first;
    added += box(gap(left, right), gap(y, height));
    steps_.emplace_hint(it, x, y);
    return added;
  }

 private:
  double rx_, ry_;
  std::map<double, double> steps_;
};

struct Point3 {
  double x, y, z;
};

double hypervolume_2d(std::vector<Point3>& pts, const double* ref) {
  std::sort(pts.begin(), pts.end(), [](const Point3& a, const Point3& b) {
    return a.x < b.x || (a.x == b.x && a.y < b.y);
  });
  double area = 0.0;
  double lowest = ref[1];
  for (const Point3& p : pts) {
    if (p.y < lowest) {
      area += box(gap(p.x, ref[0]), gap(p.y, lowest));
      lowest = p.y;
    }
  }
  return area;
}

double hypervolume_3d(std::vector<Point3>& pts, const double* ref) {
  std::sort(pts.begin(), pts.end(), [](const Point3& a, const Point3& b) { return a.z < b.z; });
  Staircase stairs(ref[0], ref[1]);
  double volume = 0.0;
  double area = 0.0;  // of the slice just above the last z seen
  double z = pts.empty() ? ref[2] : pts[0].z;
  for (const Point3& p : pts) {
    volume += box(area, gap(z, p.z));
    z = p.z;
    area += stairs.insert(p.x, p.y);
  }
  return volume + box(area, gap(z, ref[2]));
}

}  // namespace

double hypervolume(const double* values, int64_t n, int64_t m, const double* reference) {
  if (m != 2 && m != 3) throw std::invalid_argument("hypervolume supports only m = 2 and m = 3");
  std::vector<Point3> pts;
  for (int64_t i = 0; i < n; ++i) {
    const double* row = values + i * m;
    bool inside = true;
    for (int64_t k = 0; k < m; ++k) inside = inside && row[k] < reference[k];
    if (inside) pts.push_back({row[0], row[1], m == 3 ? row[2] : 0.0});
  }
  return m == 2 ? hypervolume_2d(pts, reference) : hypervolume_3d(pts, reference);
}

}  // namespace airda::cpu
