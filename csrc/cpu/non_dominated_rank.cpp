// CPU kernel of the non_dominated_rank op (non-dominated sorting). The rows are sorted
// lexicographically once (OpenMP: chunks sorted in parallel, then merged) and equal rows are
// merged, so that a row can only be dominated by rows before it in that order. Then one pass in
// that order places each point on the first front that does not dominate it (fronts are nested: a
// point dominated by front k is dominated by every front before it, so a binary search over the
// fronts finds it), with each front kept as what the later points need to be compared with:
//   m == 1  nothing: the rank is the position among the distinct values;
//   m == 2  the front's lowest second objective (O(n log n));
//   m == 3  the front's staircase in the plane of objectives 1 and 2, in a std::map
//           (O(n log(fronts) log n)).
// m >= 4 uses the divide and conquer of Jensen (2003) in the form of Buzdalov and Shalyto
// (2014), exact with ties: O(n log^(m-1) n). The lexicographic position stands in for the first
// objective, and its sweeps on two objectives use a prefix-maximum Fenwick tree.
#include "airda/non_dominated_rank.h"

#include <omp.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

namespace airda::cpu {
namespace {

using Index = int32_t;

// Below this many rows one thread sorts faster than a team.
constexpr int64_t kParallelSortRows = int64_t{1} << 14;

struct LexLess {
  const double* v;
  int64_t m;
  bool operator()(Index a, Index b) const {
    const double* x = v + a * m;
    const double* y = v + b * m;
    for (int64_t j = 0; j < m; ++j) {
      if (x[j] < y[j]) return true;
      if (y[j] < x[j]) return false;
    }
    return false;
  }
};

std::vector<Index> lex_order(const double* values, int64_t n, int64_t m) {
  std::vector<Index> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), Index{0});
  const LexLess less{values, m};
  const int threads = n >= kParallelSortRows ? omp_get_max_threads() : 1;
  if (threads <= 1) {
    std::sort(order.begin(), order.end(), less);
    return order;
  }
  const int chunks = threads;
  std::vector<int64_t> bounds(static_cast<size_t>(chunks) + 1);
  for (int c = 0; c <= chunks; ++c) bounds[c] = n * c / chunks;
  Index* data = order.data();
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int c = 0; c < chunks; ++c) std::sort(data + bounds[c], data + bounds[c + 1], less);
  for (int width = 1; width < chunks; width *= 2) {
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int c = 0; c < chunks; c += 2 * width) {
      const int64_t lo = bounds[c];
      const int64_t mid = bounds[std::min(c + width, chunks)];
      const int64_t hi = bounds[std::min(c + 2 * width, chunks)];
      std::inplace_merge(data + lo, data + mid, data + hi, less);
    }
  }
  return order;
}

bool equal_rows(const double* values, int64_t m, Index a, Index b) {
  const double* x = values + a * m;
  const double* y = values + b * m;
  for (int64_t j = 0; j < m; ++j) {
    if (x[j] != y[j]) return false;
  }
  return true;
}

// Prefix maximum over positions 1..size, for values that only grow between clears. Clearing
// walks the update paths of the positions written, so a sweep costs O(k log n), not O(n).
class PrefixMax {
 public:
  explicit PrefixMax(Index size) : tree_(static_cast<size_t>(size) + 1, 0) {}
  void raise(Index pos, Index value) {
    for (Index x = pos; x < static_cast<Index>(tree_.size()); x += x & -x) {
      if (tree_[x] < value) tree_[x] = value;
    }
  }
  Index query(Index pos) const {
    Index best = 0;
    for (Index x = pos; x > 0; x -= x & -x) best = std::max(best, tree_[x]);
    return best;
  }
  void clear(Index pos) {
    for (Index x = pos; x < static_cast<Index>(tree_.size()); x += x & -x) tree_[x] = 0;
  }

 private:
  std::vector<Index> tree_;
};

using Set = std::vector<Index>;

// Ranks of u distinct points given by column: objective k of point i is cols[k * u + i]. The
// points are numbered in lexicographic order, and every set below is kept in increasing number,
// so that for distinct points "p before q, and p <= q in objectives 1..m-1" means p dominates q.
class DivideAndConquer {
 public:
  DivideAndConquer(const double* cols, Index u, int m, const Index* second_rank, Index* rank)
      : cols_(cols), u_(u), m_(m), second_rank_(second_rank), rank_(rank), tree_(u) {}

  void run() {
    Set all(static_cast<size_t>(u_));
    std::iota(all.begin(), all.end(), Index{0});
    helper_a(all, m_ - 1);
  }

 private:
  // Below these sizes the quadratic loops win over splitting.
  static constexpr size_t kBruteA = 24;
  static constexpr size_t kBruteB = 256;  // |L| * |H|

  double value(int k, Index i) const { return cols_[static_cast<int64_t>(k) * u_ + i]; }

  // p is numbered before q; true when p <= q in objectives 1..m-1 (so p dominates q).
  bool before_dominates(Index p, Index q) const {
    for (int k = 1; k < m_; ++k) {
      if (value(k, p) > value(k, q)) return false;
    }
    return true;
  }

  void lift(Index q, Index p) { rank_[q] = std::max(rank_[q], rank_[p] + 1); }

  // Ranks within s, whose points are equal in the objectives above k and whose ranks already
  // count every dominating point outside s.
  void helper_a(const Set& s, int k) {
    if (s.size() < 2) return;
    if (s.size() <= kBruteA) {
      for (size_t b = 1; b < s.size(); ++b) {
        for (size_t a = 0; a < b; ++a) {
          if (before_dominates(s[a], s[b])) lift(s[b], s[a]);
        }
      }
      return;
    }
    if (k == 1) {
      sweep_a(s);
      return;
    }
    const auto [lo, hi] = bounds(s, k);
    if (lo == hi) {
      helper_a(s, k - 1);
      return;
    }
    Set low, mid, high;
    split(s, k, median(s, s, k), low, mid, high);
    helper_a(low, k);
    helper_b(low, mid, k - 1);
    helper_a(mid, k - 1);
    helper_b(merged(low, mid), high, k - 1);
    helper_a(high, k);
  }

  // Raises the ranks of h by the points of l, whose ranks are final. Every point of l is <= every
  // point of h in the objectives above k; only objectives 0..k decide.
  void helper_b(const Set& l, const Set& h, int k) {
    if (l.empty() || h.empty()) return;
    if (l.size() == 1 || h.size() == 1 || l.size() * h.size() <= kBruteB) {
      size_t a_end = 0;
      for (Index q : h) {
        while (a_end < l.size() && l[a_end] < q) ++a_end;
        for (size_t a = 0; a < a_end; ++a) {
          if (before_dominates(l[a], q)) lift(q, l[a]);
        }
      }
      return;
    }
    if (k == 1) {
      sweep_b(l, h);
      return;
    }
    const auto [l_lo, l_hi] = bounds(l, k);
    const auto [h_lo, h_hi] = bounds(h, k);
    if (l_hi <= h_lo) {
      helper_b(l, h, k - 1);
      return;
    }
    if (l_lo > h_hi) return;
    const double pivot = median(l, h, k);
    Set l_low, l_mid, l_high, h_low, h_mid, h_high;
    split(l, k, pivot, l_low, l_mid, l_high);
    split(h, k, pivot, h_low, h_mid, h_high);
    helper_b(l_low, h_low, k);
    helper_b(l_low, h_mid, k - 1);
    helper_b(l_mid, h_mid, k - 1);
    helper_b(merged(l_low, l_mid), h_high, k - 1);
    helper_b(l_high, h_high, k);
  }

  // Two objectives: in numbering order, each point takes the best rank among the earlier points
  // whose objective 1 is not above its own.
  void sweep_a(const Set& s) {
    for (Index q : s) {
      const Index pos = second_rank_[q];
      rank_[q] = std::max(rank_[q], tree_.query(pos));
      tree_.raise(pos, rank_[q] + 1);
    }
    for (Index q : s) tree_.clear(second_rank_[q]);
  }

  void sweep_b(const Set& l, const Set& h) {
    size_t a = 0;
    for (Index q : h) {
      for (; a < l.size() && l[a] < q; ++a) tree_.raise(second_rank_[l[a]], rank_[l[a]] + 1);
      rank_[q] = std::max(rank_[q], tree_.query(second_rank_[q]));
    }
    for (size_t i = 0; i < a; ++i) tree_.clear(second_rank_[l[i]]);
  }

  std::pair<double, double> bounds(const Set& s, int k) const {
    double lo = value(k, s[0]), hi = lo;
    for (Index i : s) {
      const double x = value(k, i);
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    return {lo, hi};
  }

  // The median of objective k over the union of a and b (which may be the same set).
  double median(const Set& a, const Set& b, int k) {
    scratch_.clear();
    for (Index i : a) scratch_.push_back(value(k, i));
    if (&a != &b) {
      for (Index i : b) scratch_.push_back(value(k, i));
    }
    auto mid = scratch_.begin() + static_cast<std::ptrdiff_t>(scratch_.size() / 2);
    std::nth_element(scratch_.begin(), mid, scratch_.end());
    return *mid;
  }

  void split(const Set& s, int k, double pivot, Set& low, Set& mid, Set& high) const {
    for (Index i : s) {
      const double x = value(k, i);
      (x < pivot ? low : x == pivot ? mid : high).push_back(i);
    }
  }

  static Set merged(const Set& a, const Set& b) {
    Set out(a.size() + b.size());
    std::merge(a.begin(), a.end(), b.begin(), b.end(), out.begin());
    return out;
  }

  const double* cols_;
  Index u_;
  int m_;
  const Index* second_rank_;
  Index* rank_;
  PrefixMax tree_;
  std::vector<double> scratch_;
};

// m == 2 on distinct, lexicographically sorted points: every earlier point has a smaller or
// equal first objective, so a point is dominated by a front iff the front's lowest second
// objective is <= its own. Those lowest values never decrease with the front number.
void rank_two_objectives(const double* second, Index u, Index* rank) {
  std::vector<double> front_low;
  for (Index i = 0; i < u; ++i) {
    const auto at = std::upper_bound(front_low.begin(), front_low.end(), second[i]);
    rank[i] = static_cast<Index>(at - front_low.begin());
    if (at == front_low.end()) {
      front_low.push_back(second[i]);
    } else {
      *at = second[i];
    }
  }
}

// m == 3 on distinct, lexicographically sorted points: every earlier point has a smaller or
// equal first objective, so only objectives 1 and 2 decide, and each front is kept as its
// staircase in that plane (objective 1 increasing, objective 2 decreasing): a front dominates a
// point iff its last step at or left of the point is not above it. Being dominated by front k
// implies being dominated by every front before k, so a binary search finds the rank.
// O(n log(fronts) log(front size)).
void rank_three_objectives(const double* second, const double* third, Index u, Index* rank) {
  std::vector<std::map<double, double>> fronts;
  const auto dominates = [](const std::map<double, double>& front, double y, double z) {
    auto it = front.upper_bound(y);
    return it != front.begin() && std::prev(it)->second <= z;
  };
  for (Index i = 0; i < u; ++i) {
    const double y = second[i], z = third[i];
    size_t lo = 0, hi = fronts.size();  // the rank lies in [lo, hi]
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (dominates(fronts[mid], y, z)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == fronts.size()) fronts.emplace_back();
    auto& front = fronts[lo];
    // Steps at or right of y that are not below z are now redundant: (y, z) dominates them.
    auto it = front.lower_bound(y);
    while (it != front.end() && it->second >= z) it = front.erase(it);
    front.emplace_hint(it, y, z);
    rank[i] = static_cast<Index>(lo);
  }
}

}  // namespace

void non_dominated_rank(const double* values, int64_t n, int64_t m, int64_t* ranks) {
  if (n <= 0) return;
  if (n > std::numeric_limits<Index>::max()) {
    throw std::invalid_argument("non_dominated_rank supports at most 2^31 - 1 points");
  }
  const std::vector<Index> order = lex_order(values, n, m);
  // Merge equal rows: unique point u of each row, the rows of the distinct points in order.
  std::vector<Index> unique_of(static_cast<size_t>(n));
  std::vector<Index> rows;
  rows.reserve(static_cast<size_t>(n));
  for (int64_t pos = 0; pos < n; ++pos) {
    const Index row = order[pos];
    if (pos == 0 || !equal_rows(values, m, order[pos - 1], row)) rows.push_back(row);
    unique_of[row] = static_cast<Index>(rows.size() - 1);
  }
  const auto u = static_cast<Index>(rows.size());
  std::vector<Index> rank(static_cast<size_t>(u), 0);
  if (m == 1) {
    std::iota(rank.begin(), rank.end(), Index{0});
  } else {
    // Column-major copies of the distinct points keep each pass over one objective contiguous.
    std::vector<double> cols(static_cast<size_t>(m) * u);
    for (int64_t k = 0; k < m; ++k) {
      for (Index i = 0; i < u; ++i) cols[k * u + i] = values[rows[i] * m + k];
    }
    if (m == 2) {
      rank_two_objectives(cols.data() + u, u, rank.data());
    } else if (m == 3) {
      rank_three_objectives(cols.data() + u, cols.data() + 2 * static_cast<int64_t>(u), u,
                            rank.data());
    } else {
      // Objective 1 as 1-based dense ranks (equal values, equal ranks) for the Fenwick tree.
      std::vector<Index> by_second(static_cast<size_t>(u));
      std::iota(by_second.begin(), by_second.end(), Index{0});
      const double* second = cols.data() + u;
      std::sort(by_second.begin(), by_second.end(),
                [second](Index a, Index b) { return second[a] < second[b]; });
      std::vector<Index> second_rank(static_cast<size_t>(u));
      Index dense = 0;
      for (Index pos = 0; pos < u; ++pos) {
        if (pos == 0 || second[by_second[pos - 1]] < second[by_second[pos]]) ++dense;
        second_rank[by_second[pos]] = dense;
      }
      DivideAndConquer(cols.data(), u, static_cast<int>(m), second_rank.data(), rank.data()).run();
    }
  }
  for (int64_t i = 0; i < n; ++i) ranks[i] = rank[unique_of[i]];
}

}  // namespace airda::cpu
