// libFuzzer harness: the CSV and .npy readers must either return a table of finite numbers or throw
// InputError, for any bytes (no crash, no other exception, no sanitizer report).
#include <cmath>
#include <cstdint>
#include <string_view>

#include "causalsweep/config.hpp"
#include "data_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const bool header : {false, true}) {
    try {
      const auto table = causalsweep::parse_csv(bytes, "fuzz.csv", header);
      if (!table.values.allFinite() || table.values.size() == 0) __builtin_trap();
      if (header && table.header.size() != static_cast<size_t>(table.values.cols())) __builtin_trap();
    } catch (const causalsweep::InputError&) {
    }
  }
  try {
    const auto m = causalsweep::parse_npy(bytes, "fuzz.npy");
    if (!m.allFinite()) __builtin_trap();
  } catch (const causalsweep::InputError&) {
  }
  return 0;
}
