// The ABI stays compatible with 1.0: the current header keeps the frozen 1.0 layout (members only
// ever appended), and a plugin built against the frozen header loads in the current host.
#include <gtest/gtest.h>

#include <cstddef>

#include "host/plugin_loader.h"

extern "C" {
extern const size_t bb_frozen_v1_layout[];
extern const size_t bb_frozen_v1_layout_count;
extern const size_t bb_current_layout[];
extern const size_t bb_current_layout_count;
}

namespace {

TEST(Abi, TheCurrentHeaderKeepsTheLayoutOfAbi10) {
  ASSERT_EQ(bb_frozen_v1_layout_count, bb_current_layout_count);
  const size_t n = bb_frozen_v1_layout_count;
  // Major version equal; minor may only grow.
  EXPECT_EQ(bb_current_layout[n - 2], bb_frozen_v1_layout[n - 2]) << "ABI major changed";
  EXPECT_GE(bb_current_layout[n - 1], bb_frozen_v1_layout[n - 1]);
  for (size_t i = 0; i + 2 < n; ++i) {
    // Offsets are equal; sizes (sizeof entries) may grow when members are appended.
    EXPECT_GE(bb_current_layout[i], bb_frozen_v1_layout[i]) << "entry " << i;
  }
  // Every offset (not a sizeof) must be identical: list the sizeof positions.
  const size_t sizes[] = {0, 12, 22, 28, 37, 42};
  for (size_t i = 0; i + 2 < n; ++i) {
    bool is_size = false;
    for (size_t s : sizes) is_size |= s == i;
    if (!is_size) EXPECT_EQ(bb_current_layout[i], bb_frozen_v1_layout[i]) << "offset entry " << i;
  }
}

TEST(Abi, APluginBuiltAgainstTheFrozen10HeaderLoadsInTheCurrentHost) {
  auto lib = bb::loadPlugin(BB_FROZEN_PLUGIN);
  EXPECT_EQ(lib->info().name, "frozen");
  EXPECT_EQ(lib->info().abi_major, 1u);
  EXPECT_EQ(lib->info().abi_minor, 0u);
  ASSERT_EQ(lib->info().config_keys.size(), 1u);
  // Run it through its whole lifecycle with what the host gives.
  std::string error;
  void* instance = lib->plugin().create(nullptr, nullptr, "{}", nullptr, nullptr);
  ASSERT_NE(instance, nullptr);
  EXPECT_EQ(lib->plugin().collect(instance, nullptr, nullptr), BB_OK);
  lib->plugin().destroy(instance);
}

}  // namespace
