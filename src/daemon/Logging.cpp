#include "relay/daemon/Logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

namespace relay::daemon {

namespace {

// The keys an operator filters JSON logs by (SPEC §13); everything else stays in msg.
constexpr std::array<std::string_view, 4> kLiftedKeys = {"delivery", "webhook", "event", "attempt"};

std::string json_string(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The message as a JSON string (so that any text in it stays one valid JSON line), then the
// lifted fields as their own keys.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view message(msg.payload.data(), msg.payload.size());
    std::string text = json_string(message);
    for (const auto& [key, value] : log_fields(message)) {
      text += ",\"" + key + "\":";
      int number = 0;
      const auto* end = value.data() + value.size();
      if (key == "attempt" && !value.empty() &&
          std::from_chars(value.data(), end, number).ptr == end) {
        text += std::to_string(number);
      } else {
        text += json_string(value);
      }
    }
    dest.append(text.data(), text.data() + text.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// sd-daemon(3) priority prefix: journald strips "<N>" and records priority N.
class JournalPriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string text = "<" + std::to_string(journal_priority(msg.level)) + ">";
    dest.append(text.data(), text.data() + text.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriorityFlag>();
  }
};

}  // namespace

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LOG_DEBUG;
    case spdlog::level::info:
      return LOG_INFO;
    case spdlog::level::warn:
      return LOG_WARNING;
    case spdlog::level::err:
      return LOG_ERR;
    case spdlog::level::critical:
      return LOG_CRIT;
    default:
      return LOG_INFO;
  }
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  const std::string_view s(stream);
  const auto colon = s.find(':');
  if (colon == std::string_view::npos) return false;
  if (std::from_chars(s.data(), s.data() + colon, dev).ptr != s.data() + colon) return false;
  if (std::from_chars(s.data() + colon + 1, s.data() + s.size(), ino).ptr != s.data() + s.size()) {
    return false;
  }
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

std::vector<std::pair<std::string, std::string>> log_fields(std::string_view message) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (pos < message.size()) {
    const auto end = std::min(message.find(' ', pos), message.size());
    const auto token = message.substr(pos, end - pos);
    const auto eq = token.find('=');
    if (eq != std::string_view::npos && eq + 1 < token.size()) {
      const auto key = token.substr(0, eq);
      const bool wanted =
          std::find(kLiftedKeys.begin(), kLiftedKeys.end(), key) != kLiftedKeys.end();
      const bool seen =
          std::any_of(out.begin(), out.end(), [&](const auto& f) { return f.first == key; });
      if (wanted && !seen) out.emplace_back(std::string(key), std::string(token.substr(eq + 1)));
    }
    pos = end + 1;
  }
  return out;
}

std::string json_log_line(std::string_view ts, std::string_view level, std::string_view message) {
  spdlog::pattern_formatter formatter(spdlog::pattern_time_type::utc, "");
  formatter.add_flag<JsonMessageFlag>('*').set_pattern(R"(%*)");
  const spdlog::details::log_msg msg(spdlog::source_loc{}, "relayd", spdlog::level::info, message);
  spdlog::memory_buf_t buf;
  formatter.format(msg, buf);
  return "{\"ts\":" + json_string(ts) + ",\"level\":" + json_string(level) +
         ",\"msg\":" + std::string(buf.data(), buf.size()) + "}";
}

void configure_logging(const config::LoggingConfig& logging) {
  auto logger = spdlog::default_logger();
  if (!logger || logger->name() != "relayd") {
    logger = std::make_shared<spdlog::logger>("relayd",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
    spdlog::set_default_logger(logger);
  }
  logger->set_level(spdlog::level::from_str(logging.level));
  logger->flush_on(spdlog::level::trace);
  const std::string prefix = stderr_is_journal() ? "%&" : "";
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JournalPriorityFlag>('&');
  if (logging.format == config::LoggingConfig::Format::kJson) {
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        prefix + R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":%*})");
  } else {
    formatter->set_pattern(prefix + "%Y-%m-%dT%H:%M:%S.%eZ %l %v");
  }
  logger->set_formatter(std::move(formatter));
}

}  // namespace relay::daemon
