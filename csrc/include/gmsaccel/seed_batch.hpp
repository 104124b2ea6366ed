// Anchors of a whole batch of reads in one call: what a GPU seeding backend (registered by
// gmsaccel._cuda, as for extension) computes, identical to collect_anchors read by read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gmsaccel/seed.hpp"

namespace gms {

class Index;

// A read's anchors on the CPU (seed.cpp): for_each_anchor over the index's table.
void collect_anchors(const Index& index, const uint8_t* fwd, int32_t len,
                     std::vector<Anchor>& out);

// Read i's anchors are anchors[offsets[i] .. offsets[i + 1]), in for_each_anchor's order.
struct SeedBatchOutput {
  std::vector<Anchor> anchors;
  std::vector<uint64_t> offsets;
};

// The GPU seed kernel keeps a window's k-mers in a fixed ring: indexes with a larger w are
// seeded on the CPU.
constexpr int kGpuSeedMaxWindow = 64;

// What the Python entry points say when a backend returns false.
constexpr const char* kGpuSeedDoesNotFit =
    "GPU seeding does not fit in the device's memory (the index's table or one read's buffers)";

// Returns false, computing nothing, when the index's table or one read's buffers do not fit in
// the device's memory (the caller seeds on the CPU then).
using SeedBackendFn = bool (*)(const MinimizerTable& table, int k, int w,
                               const uint8_t* const* reads, const uint32_t* lens, size_t n_reads,
                               SeedBatchOutput& out, int device, bool emulate);
void set_seed_backend(SeedBackendFn fn);
SeedBackendFn seed_backend();  // nullptr until registered

}  // namespace gms
