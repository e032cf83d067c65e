// The compiler, under the project's flags, builds what the code says. Debian 12's GCC 12.2 with
// -march=native on AVX-512 CPUs does not: at -O2 and above its SLP vectoriser stores the initialiser
// {1, 1, 0, 0} as four 1s. CMakeLists.txt probes for that and turns SLP off; this test fails in an
// optimised build that lacks the workaround (it cannot fail at -O0, where the bug does not occur).
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

TEST(Toolchain, SmallConstantInitialisersAreStoredAsWritten) {
  const std::vector<double> v = {1.0, 1.0, 0.0, 0.0};
  std::printf("[          ] initialiser %g %g %g %g\n", v[0], v[1], v[2], v[3]);  // the constants in registers...
  std::fflush(stdout);                                                          // ...v read back after a call
  EXPECT_EQ(v[2], 0.0);
  EXPECT_EQ(v[3], 0.0);
}
