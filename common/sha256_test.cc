#include "common/sha256.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace ecomstream {
namespace {

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileHashEqualsMemoryHashAndMissingFileIsNotFound) {
  std::string path = testing::TempDir() + "/sha_test.bin";
  std::string content(3 << 20, 'x');
  content[12345] = '\0';
  { std::ofstream(path, std::ios::binary) << content; }
  auto file_hash = Sha256File(path);
  ASSERT_TRUE(file_hash.ok()) << file_hash.status();
  EXPECT_EQ(*file_hash, Sha256Hex(content));
  std::remove(path.c_str());
  EXPECT_EQ(Sha256File(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ecomstream
