#pragma once

// Private to the delivery module: includes Asio's SSL (slow to compile); only HttpClient.cpp
// and TlsContexts.cpp include it.

#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "TlsSessionCache.hpp"

namespace relay::delivery {

/// The client's TLS contexts: the default trust (delivery.ca_file, or OpenSSL's default paths)
/// and, for each distinct per-webhook `ca_file`, a context trusting that file IN ADDITION to
/// the default. A context is rebuilt when its file changes (size or modification time), so a
/// reload that points at a renewed CA takes effect; a replaced one is kept alive (connections
/// made with it may still be pooled). Every context hands its client sessions to one
/// TlsSessionCache, for resumption per pool key. Thread-safe.
class TlsContexts {
 public:
  /// Throws std::runtime_error when `default_ca_file` cannot be loaded.
  explicit TlsContexts(std::string default_ca_file);

  boost::asio::ssl::context& default_context() { return *default_; }

  /// The sessions of every context here, for resumption (keys include the trust generation).
  TlsSessionCache& sessions() { return sessions_; }

  /// The context for default trust + `extra_ca_file`, and in `generation` a string that
  /// changes whenever the context does (pool keys include it, so connections made under
  /// different trust never mix). nullptr with `error` set when the file cannot be loaded.
  boost::asio::ssl::context* with_extra(const std::string& extra_ca_file, std::string& generation,
                                        std::string& error);

 private:
  struct Entry {
    std::string stamp;  // size + mtime when loaded
    std::unique_ptr<boost::asio::ssl::context> context;
  };
  std::unique_ptr<boost::asio::ssl::context> make(const std::string* extra, std::string& error);

  TlsSessionCache sessions_;  // first: the contexts point at it, so it outlives them
  std::string default_ca_file_;
  std::unique_ptr<boost::asio::ssl::context> default_;
  std::mutex mutex_;
  std::map<std::string, Entry> extra_;                               // by path; by mutex_
  std::vector<std::unique_ptr<boost::asio::ssl::context>> retired_;  // by mutex_
};

}  // namespace relay::delivery
