// Placeholder until the io stage lands.
#include "gmsaccel/bindings.hpp"

namespace gms {
void bind_io(pybind11::module_&) {}
}  // namespace gms
