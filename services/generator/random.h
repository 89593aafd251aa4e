// A fast seeded pseudo-random generator for the generator's hot path, and weighted choices.
//
// Rng is xoshiro256++ (Blackman & Vigna) with its state expanded from a 64-bit seed by
// splitmix64: the same seed gives the same sequence on every run and platform. Not
// cryptographic. Not thread-safe: one Rng per component, derived with Rng::Derive so the
// components' streams are independent (adding a draw in one does not shift the others).
#ifndef ECOMSTREAM_SERVICES_GENERATOR_RANDOM_H_
#define ECOMSTREAM_SERVICES_GENERATOR_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ecomstream::generator {

// One step of splitmix64: advances `*state` and returns a well-mixed 64-bit value.
uint64_t SplitMix64(uint64_t* state);

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // An independent stream for a named component: Rng(seed).Derive(kStreamShopper), ...
  static Rng Derive(uint64_t seed, uint64_t stream);

  uint64_t Next() {
    const uint64_t result = Rotl(s_[0] + s_[3], 23) + s_[0];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n) for n >= 1 (Lemire's multiply-shift; bias below n / 2^64).
  uint64_t Uniform(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64); }
  // Uniform in [lo, hi], inclusive; lo <= hi.
  int64_t Range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Uniform(static_cast<uint64_t>(hi - lo) + 1)); }
  // Uniform in [0, 1).
  double UniformDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // True with probability `p` (clamped to [0, 1]).
  bool Chance(double p) { return UniformDouble() < p; }
  // A geometric count >= 1 with the given mean (>= 1).
  int Geometric(double mean);

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Picks an index with probability proportional to its weight. Weights are >= 0 with a
// positive sum. Pick() is a scan of a cumulative table: cheap for the short lists used here.
class WeightedChoice {
 public:
  explicit WeightedChoice(const std::vector<double>& weights);
  size_t Pick(Rng& rng) const {
    const uint64_t r = rng.Next();
    size_t i = 0;
    const size_t last = thresholds_.size() - 1;
    while (i < last && r >= thresholds_[i]) ++i;
    return i;
  }

 private:
  std::vector<uint64_t> thresholds_;  // cumulative, last == UINT64_MAX
};

}  // namespace ecomstream::generator

#endif  // ECOMSTREAM_SERVICES_GENERATOR_RANDOM_H_
