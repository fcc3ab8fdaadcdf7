// The README's five-minute tour, run as written against a live daemon with the example config
// (issue #21): every command must succeed and print what the README shows after it.
//
// The tour block is read from README.md itself, so an edit there is tested as it stands. Its
// conventions: a `# …` line right after a command is that command's output (`…` matches
// anything within one line; the shown lines must be the first lines printed); other comment
// lines are narrative. The only substitutions: the port (the README's 8686 becomes a free
// one), `dlv_…` in a command becomes the delivery id step 2 printed, and the attempt timeout is
// shortened (the example's crm.example.com never answers, and step 4 waits for its attempt).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "DaemonProcess.hpp"
#include "Db.hpp"
#include "Waiting.hpp"

namespace relay::testing {
namespace {

namespace fs = std::filesystem;

struct TourStep {
  std::string command;
  std::vector<std::string> shown;  // expected output lines, without "# "
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// True when `text` ends inside a quote or with a line continuation.
bool unfinished(const std::string& text) {
  bool single = false;
  bool dbl = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' && !dbl) single = !single;
    if (c == '"' && !single && (i == 0 || text[i - 1] != '\\')) dbl = !dbl;
  }
  return single || dbl || (!text.empty() && text.back() == '\\');
}

std::vector<TourStep> tour_steps(const std::string& readme) {
  const auto heading = readme.find("## A five-minute tour");
  EXPECT_NE(heading, std::string::npos) << "README.md has no tour";
  const auto open = readme.find("```sh\n", heading);
  const auto close = readme.find("\n```", open + 6);
  std::istringstream block(readme.substr(open + 6, close - open - 6));
  std::vector<TourStep> steps;
  std::string line;
  std::string pending;
  bool after_command = false;
  while (std::getline(block, line)) {
    if (!pending.empty()) {
      pending += "\n" + line;
      if (!unfinished(pending)) {
        steps.push_back({pending, {}});
        pending.clear();
        after_command = true;
      }
      continue;
    }
    if (line.empty()) {
      after_command = false;
      continue;
    }
    if (line[0] == '#') {
      if (after_command) steps.back().shown.push_back(line.size() > 2 ? line.substr(2) : "");
      continue;
    }
    if (unfinished(line)) {
      pending = line;
      after_command = false;
    } else {
      steps.push_back({line, {}});
      after_command = true;
    }
  }
  return steps;
}

// "…" matches any run of characters within the line; everything else literally.
bool line_matches(const std::string& shown, const std::string& actual) {
  std::string re;
  static const std::string kEllipsis = "\xE2\x80\xA6";
  for (std::size_t i = 0; i < shown.size();) {
    if (shown.compare(i, kEllipsis.size(), kEllipsis) == 0) {
      re += ".*";
      i += kEllipsis.size();
      continue;
    }
    const char c = shown[i++];
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) re += '\\';
    re += c;
  }
  return std::regex_match(actual, std::regex(re));
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

TEST(ReadmeTour, EveryCommandPrintsWhatTheReadmeShows) {
  const auto readme = read_file(fs::path(RELAY_SOURCE_DIR) / "README.md");
  const auto steps = tour_steps(readme);
  ASSERT_GE(steps.size(), 7U) << "the tour's commands were not found";

  // A checkout-like directory: config/relayd.example.yaml, state/, build/relayd.
  TempDir dir;
  const auto port = free_port();
  fs::create_directories(dir.path() / "config");
  fs::create_directories(dir.path() / "state");
  fs::create_directories(dir.path() / "build");
  fs::create_symlink(relayd_binary(), dir.path() / "build" / "relayd");
  auto example = read_file(fs::path(RELAY_SOURCE_DIR) / "config" / "relayd.example.yaml");
  ASSERT_NE(example.find("listen: 127.0.0.1:8686"), std::string::npos);
  ASSERT_NE(example.find("timeout: 30s"), std::string::npos);
  example =
      replace_all(example, "listen: 127.0.0.1:8686", "listen: 127.0.0.1:" + std::to_string(port));
  example = replace_all(example, "timeout: 30s", "timeout: 3s");
  write_file(dir.path() / "config" / "relayd.example.yaml", example);

  DaemonProcess daemon(dir.path(), example);
  daemon.start(port, {{"STATE_DIRECTORY", (dir.path() / "state").string()}});

  std::string delivery_id;
  for (const auto& step : steps) {
    std::string command =
        replace_all(step.command, "127.0.0.1:8686", "127.0.0.1:" + std::to_string(port));
    if (command.find("dlv_\xE2\x80\xA6") != std::string::npos) {
      ASSERT_FALSE(delivery_id.empty()) << "no delivery id from an earlier step";
      command = replace_all(command, "dlv_\xE2\x80\xA6", delivery_id);
    }
    if (command.find("delivery_log") != std::string::npos) {
      // The narrative says the attempt has happened: wait for it as a reader would.
      ASSERT_TRUE(wait_until([&] {
        Db db(dir.path() / "state" / "relayd.db");
        return db.count("SELECT count(*) FROM attempts") > 0;
      })) << daemon.log();
    }
    const auto [code, out] =
        run_command("cd '" + dir.path().string() + "' && " + command + " 2>&1");
    EXPECT_EQ(code, 0) << command << "\n" << out;
    const auto actual = lines_of(out);
    ASSERT_GE(actual.size(), step.shown.size()) << command << "\nprinted:\n" << out;
    for (std::size_t i = 0; i < step.shown.size(); ++i) {
      EXPECT_TRUE(line_matches(step.shown[i], actual[i]))
          << command << "\nREADME shows: " << step.shown[i] << "\nprinted:      " << actual[i];
    }
    if (delivery_id.empty() && out.find("\"deliveries\":[{\"id\":\"dlv_") != std::string::npos) {
      const auto j = nlohmann::json::parse(out, nullptr, false);
      if (j.is_object() && j.contains("deliveries") && !j["deliveries"].empty()) {
        delivery_id = j["deliveries"][0].value("id", "");
      }
    }
  }
  EXPECT_FALSE(delivery_id.empty());
}

}  // namespace
}  // namespace relay::testing
