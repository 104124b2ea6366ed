// Wall-clock laps for the per-stage time accounting of the aligner and the caller.
#pragma once
#include <chrono>

namespace gms {

// Seconds since construction or the previous lap().
class StageClock {
 public:
  StageClock() : t_(std::chrono::steady_clock::now()) {}
  double lap() {
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - t_).count();
    t_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point t_;
};

}  // namespace gms
