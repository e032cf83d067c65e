// libFuzzer harness: parse_config must either return a config or throw InputError for any text.
#include <cstdint>
#include <string_view>

#include "causalsweep/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = causalsweep::parse_config(text, "fuzz.toml");
    (void)causalsweep::to_json(config).dump();
  } catch (const causalsweep::InputError&) {
  }
  return 0;
}
