// The client's trust per webhook ca_file (issue #21): one context per file, rebuilt when the
// file changes, an unreadable or empty file an attempt error (never an exception).
#include "TlsContexts.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "TempDir.hpp"
#include "TestCerts.hpp"

namespace relay::delivery {
namespace {

namespace fs = std::filesystem;

TEST(TlsContexts, OneContextPerFileRebuiltWhenTheFileChanges) {
  const relay::test::TempDir tmp;
  const auto& dir = tmp.path();
  const relay::test::TestCerts a;
  const relay::test::TestCerts b;
  const auto file = dir / "ca.pem";
  std::ofstream(file) << a.ca_pem();

  TlsContexts contexts("");  // OpenSSL's default paths
  std::string gen1;
  std::string gen2;
  std::string error;
  auto* ctx1 = contexts.with_extra(file.string(), gen1, error);
  ASSERT_NE(ctx1, nullptr) << error;
  EXPECT_NE(ctx1, &contexts.default_context());
  auto* again = contexts.with_extra(file.string(), gen2, error);
  EXPECT_EQ(again, ctx1);
  EXPECT_EQ(gen2, gen1);

  // A renewed CA at the same path: a new context, a new pool key.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(file) << a.ca_pem() << b.ca_pem();
  auto* renewed = contexts.with_extra(file.string(), gen2, error);
  ASSERT_NE(renewed, nullptr) << error;
  EXPECT_NE(gen2, gen1);

  std::string bad_gen;
  EXPECT_EQ(contexts.with_extra((dir / "missing.pem").string(), bad_gen, error), nullptr);
  EXPECT_NE(error.find("cannot load the webhook's ca_file"), std::string::npos) << error;
  std::ofstream(dir / "empty.pem") << "not a certificate\n";
  error.clear();
  EXPECT_EQ(contexts.with_extra((dir / "empty.pem").string(), bad_gen, error), nullptr);
  EXPECT_NE(error.find("empty.pem"), std::string::npos) << error;
}

}  // namespace
}  // namespace relay::delivery
