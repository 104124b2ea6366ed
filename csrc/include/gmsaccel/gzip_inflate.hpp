// Gzip decompression of a whole file through ISA-L's igzip, for builds that found ISA-L. Reading
// FASTQ.gz is a serial stage (one inflate stream per file), and igzip inflates about 2.5 times
// as fast as zlib, which is what htslib's BGZF layer uses. BGZF is multi-member gzip, so it is
// read here too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace gms {

// "isa-l X.Y.Z" when this build has the fast inflater, else "".
const char* fast_inflate_library();
inline bool fast_inflate_available() { return *fast_inflate_library() != '\0'; }

// Inflates one whole gzip member held in in[0, n) (a BGZF block, say) into out[0, cap), checking
// its CRC-32 and length. Returns the bytes written, or -1 with problem set: corrupt data, a
// checksum or length mismatch, more than cap bytes, bytes after the member, or a build without
// ISA-L.
std::ptrdiff_t inflate_gzip_member(const uint8_t* in, size_t n, uint8_t* out, size_t cap,
                                   std::string& problem);

class GzipFileInflater {
 public:
  // Opens path (a regular file, not "-"). Throws InputError naming the file when it cannot, and
  // std::logic_error in a build without ISA-L. input_chunk: bytes read from the file at a time
  // (tests make it tiny to cross every member and header boundary).
  explicit GzipFileInflater(const std::string& path, size_t input_chunk = size_t{1} << 18);
  ~GzipFileInflater();
  GzipFileInflater(const GzipFileInflater&) = delete;
  GzipFileInflater& operator=(const GzipFileInflater&) = delete;

  // Inflates up to cap (> 0) bytes into out. Returns the number written, 0 once the last member has
  // ended cleanly at the end of the file, or -1 on an error that problem() describes: a read
  // error, a corrupt stream, a checksum or length mismatch, data after a member that is not
  // another gzip member, or a file that stops inside a member.
  std::ptrdiff_t read(char* out, size_t cap);
  const std::string& problem() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gms
