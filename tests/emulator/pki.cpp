#include "tests/emulator/pki.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <stdexcept>

namespace kubefold::emulator {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  throw std::runtime_error("pki: " + what + ": " + buf);
}

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) Fail("PEM_write_bio_X509");
  return BioString(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    Fail("PEM_write_bio_PrivateKey");
  }
  return BioString(bio.get());
}

Pkey NewKey() {
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) Fail("EVP_EC_gen");
  return key;
}

void AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (ext == nullptr) Fail(std::string("extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

void AddName(X509_NAME* name, const char* field, const std::string& value) {
  if (value.empty()) return;
  X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC, reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                             -1, 0);
}

// A certificate for `key`, signed by (issuer, issuer_key) or, with no issuer,
// self-signed; `ca` makes it a CA certificate.
Cert MakeCert(EVP_PKEY* key, const CertSpec& spec, bool ca, X509* issuer, EVP_PKEY* issuer_key) {
  static std::atomic<long> serial{1};
  Cert cert(X509_new());
  if (!cert) Fail("X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.valid_from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.valid_for_s);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  AddName(name, "O", spec.organization);
  AddName(name, "CN", spec.cn);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (ca) {
    AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert.get(), &ctx, NID_basic_constraints, "CA:FALSE");
    AddExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    AddExt(cert.get(), &ctx, NID_ext_key_usage, spec.server ? "serverAuth" : "clientAuth");
  }
  AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (!spec.san.empty()) AddExt(cert.get(), &ctx, NID_subject_alt_name, spec.san.c_str());
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) Fail("X509_sign");
  return cert;
}

}  // namespace

struct CertificateAuthority::Impl {
  Pkey key;
  Cert cert;
};

CertificateAuthority::CertificateAuthority(const std::string& cn) : impl_(std::make_unique<Impl>()) {
  impl_->key = NewKey();
  CertSpec spec;
  spec.cn = cn;
  spec.valid_for_s = 24L * 3600 * 3650;
  impl_->cert = MakeCert(impl_->key.get(), spec, /*ca=*/true, nullptr, nullptr);
  cert_pem_ = CertPem(impl_->cert.get());
}

CertificateAuthority::~CertificateAuthority() = default;
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;

KeyPair CertificateAuthority::Issue(const CertSpec& spec) const {
  Pkey key = NewKey();
  Cert cert = MakeCert(key.get(), spec, /*ca=*/false, impl_->cert.get(), impl_->key.get());
  return {CertPem(cert.get()), KeyPem(key.get())};
}

void UseKeyPair(SSL_CTX* ctx, const KeyPair& pair) {
  Bio cert_bio(BIO_new_mem_buf(pair.cert_pem.data(), static_cast<int>(pair.cert_pem.size())));
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  Bio key_bio(BIO_new_mem_buf(pair.key_pem.data(), static_cast<int>(pair.key_pem.size())));
  Pkey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!cert || !key || SSL_CTX_use_certificate(ctx, cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    Fail("loading the certificate and key");
  }
}

void TrustCertificates(SSL_CTX* ctx, const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  int added = 0;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    Cert cert(raw);
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert.get()) != 1) Fail("adding a trusted certificate");
    ++added;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (added == 0) Fail("no certificate in the trusted PEM");
}

}  // namespace kubefold::emulator
