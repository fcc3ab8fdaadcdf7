// A full disk under the database (SPEC §3: 503 storage_unavailable, nothing half-written,
// intake resumes by itself once space returns). The test mounts a small tmpfs, so it needs
// root; elsewhere it is skipped with the reason.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "HttpTestClient.hpp"
#include "TestConfig.hpp"

namespace relay::testing {
namespace {

using nlohmann::json;

class SmallDisk {
 public:
  SmallDisk(const std::filesystem::path& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  [[nodiscard]] bool mounted() const { return mounted_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

TEST(DiskFull, IntakeAnswers503ThenResumesByItselfAndNothingIsCorrupted) {
  TempDir dir;
  SmallDisk disk(dir.path() / "disk", "6m");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  TestConfig cfg;
  cfg.port = free_port();
  cfg.db = dir.path() / "disk" / "relayd.db";
  DaemonProcess daemon(dir.path(), cfg.yaml());
  daemon.start(cfg.port);
  HttpTestClient client("127.0.0.1", cfg.port);

  // Take most of the space with a filler file, then post until the database cannot grow.
  const auto filler = dir.path() / "disk" / "filler";
  write_file(filler, std::string(4 * 1024 * 1024, 'f'));
  const std::string body =
      R"({"event":"ticket.created","data":{"blob":")" + std::string(20000, 'x') + "\"}}";
  std::vector<std::string> acked;
  HttpReply refused;
  for (int i = 0; i < 400; ++i) {
    const auto r = client.post_json("/v1/events", body);
    if (r.status == 202) {
      acked.push_back(json::parse(r.body).at("id").get<std::string>());
      continue;
    }
    refused = r;
    break;
  }
  ASSERT_EQ(refused.status, 503) << "the disk never filled up; acked " << acked.size();
  EXPECT_EQ(json::parse(refused.body)["error"]["code"], "storage_unavailable") << refused.body;
  EXPECT_FALSE(acked.empty());
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
  EXPECT_EQ(client.request("GET", "/readyz").status, 503);

  // Space returns: intake carries on without a restart.
  std::filesystem::remove(filler);
  bool resumed = false;
  for (int i = 0; i < 100 && !resumed; ++i) {
    const auto r = client.post_json("/v1/events", body);
    if (r.status == 202) {
      acked.push_back(json::parse(r.body).at("id").get<std::string>());
      resumed = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_TRUE(resumed) << daemon.log();
  EXPECT_TRUE(daemon.running());

  daemon.kill_hard();
  Db db(cfg.db);
  EXPECT_EQ(db.value("PRAGMA integrity_check"), "ok");
  for (const auto& id : acked) {
    EXPECT_EQ(db.count("SELECT count(*) FROM events WHERE id='" + id + "'"), 1) << id;
  }
  EXPECT_EQ(db.count("SELECT count(*) FROM events"), static_cast<long long>(acked.size()));
}

}  // namespace
}  // namespace relay::testing
