#include "services/generator/random.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace ecomstream::generator {

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& word : s_) word = SplitMix64(&state);
}

Rng Rng::Derive(uint64_t seed, uint64_t stream) {
  uint64_t state = seed ^ (stream * 0xd1342543de82ef95ULL);
  return Rng(SplitMix64(&state));
}

int Rng::Geometric(double mean) {
  if (mean <= 1.0) return 1;
  // Number of trials until the first success with p = 1 / mean.
  const double p = 1.0 / mean;
  const double u = 1.0 - UniformDouble();  // (0, 1]
  const double draws = std::floor(std::log(u) / std::log1p(-p));
  return 1 + static_cast<int>(std::min(draws, 10000.0));
}

WeightedChoice::WeightedChoice(const std::vector<double>& weights) {
  long double total = 0;
  for (double w : weights) total += w > 0 ? w : 0;
  long double cumulative = 0;
  thresholds_.reserve(weights.size());
  for (double w : weights) {
    cumulative += w > 0 ? w : 0;
    const long double scaled = cumulative / total * 18446744073709551616.0L;
    thresholds_.push_back(scaled >= 18446744073709551615.0L ? std::numeric_limits<uint64_t>::max()
                                                            : static_cast<uint64_t>(scaled));
  }
  // The last entry catches every draw, whatever the rounding above.
  if (!thresholds_.empty()) thresholds_.back() = std::numeric_limits<uint64_t>::max();
}

}  // namespace ecomstream::generator
