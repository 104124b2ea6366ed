// Errors a person can act on: every input problem becomes an InputError whose message names the
// file and the record. The Python layer turns it into one line and a non-zero exit.
#pragma once
#include <stdexcept>
#include <string>

namespace gms {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gms
