#include "TestCerts.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <memory>
#include <stdexcept>

namespace relay::test {
namespace {

template <auto Fn>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("TestCerts: OpenSSL failed: ") + what);
}

KeyPtr new_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

std::string to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(n)};
}

std::string to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return {data, static_cast<std::size_t>(n)};
}

CertPtr cert_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  check(cert != nullptr, "PEM_read_bio_X509");
  return cert;
}

KeyPtr key_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  check(key != nullptr, "PEM_read_bio_PrivateKey");
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  check(ok == 1, "X509_add_ext");
}

// `issuer`/`issuer_key` null: self-signed.
CertPtr make_cert(EVP_PKEY* key, const std::string& common_name, bool is_ca, X509* issuer,
                  EVP_PKEY* issuer_key, const std::string& san) {
  CertPtr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  unsigned char serial_bytes[16];
  check(RAND_bytes(serial_bytes, sizeof serial_bytes) == 1, "RAND_bytes");
  serial_bytes[0] &= 0x7f;
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  check(serial != nullptr && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get())),
        "serial");
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("relayd tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1, "issuer name");
  check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (is_ca) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    if (!san.empty()) add_ext(cert.get(), signer, NID_subject_alt_name, san);
  }
  check(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
        "X509_sign");
  return cert;
}

std::string san_of(const std::vector<std::string>& dns, const std::vector<std::string>& ips) {
  std::string san;
  // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict for `"," + std::string`.
  const auto add = [&san](std::string_view kind, const std::string& value) {
    if (!san.empty()) san += ',';
    san += kind;
    san += value;
  };
  for (const auto& d : dns) add("DNS:", d);
  for (const auto& ip : ips) add("IP:", ip);
  return san;
}

}  // namespace

TestCerts::TestCerts() {
  KeyPtr ca_key = new_key();
  CertPtr ca = make_cert(ca_key.get(), "relayd test CA", true, nullptr, nullptr, "");
  ca_ = {to_pem(ca.get()), to_pem(ca_key.get())};
  server_ = make_leaf({"localhost"}, {"127.0.0.1", "::1"});
}

CertAndKey TestCerts::make_leaf(const std::vector<std::string>& dns_names,
                                const std::vector<std::string>& ip_addresses) const {
  CertPtr ca = cert_from_pem(ca_.cert_pem);
  KeyPtr ca_key = key_from_pem(ca_.key_pem);
  KeyPtr key = new_key();
  const std::string cn = dns_names.empty() ? "relayd test server" : dns_names.front();
  CertPtr cert =
      make_cert(key.get(), cn, false, ca.get(), ca_key.get(), san_of(dns_names, ip_addresses));
  return {to_pem(cert.get()), to_pem(key.get())};
}

CertAndKey TestCerts::self_signed() {
  KeyPtr key = new_key();
  CertPtr cert = make_cert(key.get(), "localhost", false, nullptr, nullptr,
                           san_of({"localhost"}, {"127.0.0.1", "::1"}));
  return {to_pem(cert.get()), to_pem(key.get())};
}

void TestCerts::write_pem_files(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  const auto write = [&](const char* name, const std::string& text) {
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("TestCerts: cannot write " + (dir / name).string());
  };
  write("ca.pem", ca_.cert_pem);
  write("server.pem", server_.cert_pem);
  write("server-key.pem", server_.key_pem);
}

}  // namespace relay::test
