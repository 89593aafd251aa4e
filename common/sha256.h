// SHA-256 (OpenSSL EVP) for file fingerprints and manifest checksums.
#ifndef ECOMSTREAM_COMMON_SHA256_H_
#define ECOMSTREAM_COMMON_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace ecomstream {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  // Lower-case hex of the digest. Finishes the hash; call once.
  std::string HexDigest();

 private:
  evp_md_ctx_st* ctx_;
};

std::string Sha256Hex(absl::string_view data);

}  // namespace ecomstream

#endif  // ECOMSTREAM_COMMON_SHA256_H_
