// The random streams: Philox known answers, cuRAND's addressing, and the shared transforms.
#include <gtest/gtest.h>

#include <cmath>

#include "causalsweep/random_stream.hpp"
#include "engine.hpp"

namespace cs = causalsweep;

// Known-answer vectors published with Random123 (kat_vectors, philox4x32 10 rounds); cuRAND's
// Philox4_32_10 produces the same words for the same counter and key.
TEST(Philox, KnownAnswers) {
  struct Case {
    uint32_t ctr[4], key[2], out[4];
  };
  const Case cases[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Case& c : cases) {
    // philox_block(seed, subsequence, block) puts block in ctr[0..1] and subsequence in ctr[2..3].
    const uint64_t seed = c.key[0] | (uint64_t{c.key[1]} << 32);
    const uint64_t block = c.ctr[0] | (uint64_t{c.ctr[1]} << 32);
    const uint64_t subsequence = c.ctr[2] | (uint64_t{c.ctr[3]} << 32);
    const cs::RandomBlock r = cs::philox_block(seed, subsequence, block);
    for (int w = 0; w < 4; ++w) EXPECT_EQ(r.word[w], c.out[w]) << "word " << w;
  }
}

TEST(RandomStream, SubsequencesAreDistinctAndStable) {
  using cs::Purpose;
  EXPECT_NE(cs::subsequence(Purpose::connectivity, 3), cs::subsequence(Purpose::dynamics, 3));
  EXPECT_EQ(cs::subsequence(Purpose::dynamics, 7), (uint64_t{2} << 32) | 7u);
  const auto a = cs::philox_block(42, cs::subsequence(Purpose::dynamics, 0), 10);
  const auto b = cs::philox_block(42, cs::subsequence(Purpose::dynamics, 1), 10);
  const auto c = cs::philox_block(43, cs::subsequence(Purpose::dynamics, 0), 10);
  EXPECT_NE(a.word[0], b.word[0]);
  EXPECT_NE(a.word[0], c.word[0]);
}

TEST(RandomTransform, UniformIsOpenInterval) {
  EXPECT_GT(cs::uniform_open01(0), 0.0);
  EXPECT_LT(cs::uniform_open01(0xffffffffu), 1.0);
  EXPECT_FALSE(cs::bernoulli(0, 0.0));
  EXPECT_TRUE(cs::bernoulli(0xffffffffu, 1.0));
}

TEST(RandomTransform, PairAndSingleDrawsAgree) {
  const auto block = cs::philox_block(5, cs::subsequence(cs::Purpose::dynamics, 2), 17);
  cs::StepDraws even{}, odd{};
  cs::step_draws_pair(block, even, odd);
  const auto e = cs::step_draws(block, 34), o = cs::step_draws(block, 35);
  EXPECT_EQ(e.noise, even.noise);
  EXPECT_EQ(o.noise, odd.noise);
  EXPECT_EQ(e.instrument, even.instrument);
  EXPECT_EQ(o.clamp, odd.clamp);
}

// Moments of 2^20 draws: normal mean 0 and variance 1, Bernoulli(0.5) frequencies, at about five
// standard errors so the test fails only when the transform is wrong.
TEST(RandomTransform, DistributionMoments) {
  const int blocks = 1 << 19;
  double sum = 0, squares = 0, fourth = 0, instruments = 0, clamps = 0;
  for (int b = 0; b < blocks; ++b) {
    cs::StepDraws d[2];
    cs::step_draws_pair(cs::philox_block(99, cs::subsequence(cs::Purpose::dynamics, 0), static_cast<uint64_t>(b)), d[0],
                        d[1]);
    for (const auto& x : d) {
      sum += x.noise;
      squares += x.noise * x.noise;
      fourth += std::pow(x.noise, 4);
      instruments += x.instrument;
      clamps += x.clamp;
      ASSERT_TRUE(x.instrument == 0.0 || x.instrument == 1.0);
    }
  }
  const double n = 2.0 * blocks;
  EXPECT_NEAR(sum / n, 0.0, 5 / std::sqrt(n));
  EXPECT_NEAR(squares / n, 1.0, 5 * std::sqrt(2 / n));
  EXPECT_NEAR(fourth / n, 3.0, 5 * std::sqrt(96 / n));
  EXPECT_NEAR(instruments / n, 0.5, 5 * 0.5 / std::sqrt(n));
  EXPECT_NEAR(clamps / n, 0.5, 5 * 0.5 / std::sqrt(n));
}

TEST(RandomTransform, EvenAndOddNormalsAreUncorrelated) {
  const int blocks = 1 << 18;
  double cross = 0;
  for (int b = 0; b < blocks; ++b) {
    cs::StepDraws even{}, odd{};
    cs::step_draws_pair(cs::philox_block(7, cs::subsequence(cs::Purpose::dynamics, 1), static_cast<uint64_t>(b)), even,
                        odd);
    cross += even.noise * odd.noise;
  }
  EXPECT_NEAR(cross / blocks, 0.0, 5 / std::sqrt(static_cast<double>(blocks)));
}
