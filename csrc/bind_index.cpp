// Placeholder until the index stage lands.
#include "gmsaccel/bindings.hpp"

namespace gms {
void bind_index(pybind11::module_&) {}
}  // namespace gms
