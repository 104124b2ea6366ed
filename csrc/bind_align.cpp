// Placeholder until the align stage lands.
#include "gmsaccel/bindings.hpp"

namespace gms {
void bind_align(pybind11::module_&) {}
}  // namespace gms
