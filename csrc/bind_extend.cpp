// Placeholder until the extend stage lands.
#include "gmsaccel/bindings.hpp"

namespace gms {
void bind_extend(pybind11::module_&) {}
}  // namespace gms
