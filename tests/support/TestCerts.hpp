#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace relay::test {

/// A certificate and its private key, both PEM.
struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

/// Test PKI made in memory with the OpenSSL API (EC P-256 keys, SHA-256, valid from one hour
/// ago for 7 days): a CA and, signed by it, a server certificate for "localhost", 127.0.0.1
/// and ::1. Also makes leaves for other names and a self-signed (untrusted) certificate.
/// Thread-safe after construction (const methods); throws std::runtime_error when OpenSSL fails.
class TestCerts {
 public:
  /// Generates the CA and the default server certificate.
  TestCerts();

  [[nodiscard]] const std::string& ca_pem() const { return ca_.cert_pem; }
  /// Leaf for DNS:localhost, IP:127.0.0.1, IP:::1, signed by the CA.
  [[nodiscard]] const CertAndKey& server() const { return server_; }

  /// A new leaf signed by the CA with exactly these subjectAltNames (e.g. a wrong host name).
  [[nodiscard]] CertAndKey make_leaf(const std::vector<std::string>& dns_names,
                                     const std::vector<std::string>& ip_addresses) const;

  /// A self-signed certificate for localhost/127.0.0.1/::1 that no CA vouches for.
  [[nodiscard]] static CertAndKey self_signed();

  /// Writes ca.pem, server.pem and server-key.pem into `dir` (created if needed).
  void write_pem_files(const std::filesystem::path& dir) const;

 private:
  CertAndKey ca_;
  CertAndKey server_;
};

}  // namespace relay::test
