// Certificates made in memory with the OpenSSL C API (EC P-256, SHA-256):
// the emulator's per-process CA, its serving certificates and client
// certificates, and the deliberately wrong ones the TLS tests need.
// Nothing touches the disk or the network.
#pragma once

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace kubefold::emulator {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

struct CertSpec {
  std::string cn;
  std::string san;            // "IP:127.0.0.1,DNS:localhost"; empty: no SAN at all
  bool server = true;         // extendedKeyUsage serverAuth, else clientAuth
  std::string organization;   // subject O= (Kubernetes reads it as the user's group); may be empty
  long valid_from_s = -3600;  // notBefore relative to now, seconds
  long valid_for_s = 24 * 3600 * 365;  // notAfter relative to now, seconds (negative: already expired)
};

class CertificateAuthority {
 public:
  // A new self-signed CA. Throws std::runtime_error with OpenSSL's reason on failure.
  explicit CertificateAuthority(const std::string& cn);
  ~CertificateAuthority();
  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;

  const std::string& cert_pem() const { return cert_pem_; }
  // A fresh key and a certificate for it signed by this CA.
  KeyPair Issue(const CertSpec& spec) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string cert_pem_;
};


// Installs `pair` as ctx's certificate and private key. Throws std::runtime_error.
void UseKeyPair(SSL_CTX* ctx, const KeyPair& pair);
// Adds every certificate in `pem` to ctx's trust store. Throws std::runtime_error.
void TrustCertificates(SSL_CTX* ctx, const std::string& pem);

}  // namespace kubefold::emulator
