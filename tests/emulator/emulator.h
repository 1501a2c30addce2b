// kube-emulator as a whole: several independent clusters in one process, each
// on its own port with its own RV space (spec §8.36), one generated CA, a
// bearer token and a kubeconfig per cluster, and a plain-HTTP control
// endpoint for faults and users (README "Control endpoint").
//
// Tests may run an Emulator in-process and flip faults through cluster() /
// server() directly; the kube-emulator binary wraps one for kubectl, the
// Python client and the demo.
//
// Thread-safety: all member functions may be called from any thread once
// the constructor has returned.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/emulator/api.h"
#include "tests/emulator/pki.h"
#include "tests/emulator/server.h"

namespace kubefold::emulator {

struct EmulatorOptions {
  std::vector<std::string> clusters{"cluster-a"};  // DNS-1123 labels
  bool tls = true;
  std::string dir;            // non-empty: write ca.crt, <cluster>.kubeconfig, <cluster>.token, kubeconfig, emulator.json
  int first_port = 0;         // 0: ephemeral ports; else cluster i listens on first_port + i
  int control_port = -1;      // -1: no control endpoint; 0: ephemeral
  ClusterOptions cluster;     // template for every cluster (name is replaced)
  // With `dir`: each cluster writes its authorization log to
  // <dir>/<cluster>.authorization.log (ClusterOptions::authorization_log).
  bool authorization_log = false;
};

class Emulator final : public RequestHandler {
 public:
  // Starts every cluster. Throws std::runtime_error naming what failed
  // (a port in use, an unwritable directory).
  explicit Emulator(EmulatorOptions options);
  ~Emulator() override;

  struct ClusterInfo {
    std::string name;
    std::string url;
    std::string token;
    std::string kubeconfig_path;  // "" without a directory
    std::string token_path;
  };
  std::vector<ClusterInfo> Clusters() const;
  ClusterInfo Info(const std::string& name) const;

  // REQUIRES: `name` is one of options.clusters.
  Cluster& cluster(const std::string& name);
  HttpServer& server(const std::string& name);
  const CertificateAuthority& ca() const { return ca_; }
  const std::string& ca_pem() const { return ca_.cert_pem(); }
  std::string control_url() const;

  // A kubeconfig (YAML) for `name`: the server URL, the CA as
  // certificate-authority-data, the current token (or token_file when given).
  std::string Kubeconfig(const std::string& name, const std::string& token_file = "") const;
  // Replaces the cluster's token: the old one gets 401 from now on. Rewrites
  // the token file and kubeconfig when there is a directory. Returns the new token.
  std::string RotateToken(const std::string& name);

  // The admin every cluster has (the token above, certificates without an
  // O=): in system:masters, as kubeadm's admin is, so RBAC never stops it.
  static UserInfo Admin();

  // Registers another user of `cluster`, authenticated by a bearer token
  // (`token`, or a new random one when empty) and authorized by RBAC unless
  // one of `user.groups` is system:masters; every authenticated user is
  // also in system:authenticated. Writes <dir>/<cluster>-<user>.kubeconfig
  // when there is a directory. Returns the token. Re-registering a token
  // replaces its user. Throws std::out_of_range for an unknown cluster.
  std::string AddUser(const std::string& cluster, const UserInfo& user, const std::string& token = "");
  // The kubeconfig (YAML) of `cluster` authenticating with `token`.
  std::string KubeconfigForToken(const std::string& cluster, const std::string& user_name,
                                 const std::string& token) const;

  // The control endpoint (plain HTTP).
  void Handle(const Request& request, ResponseWriter& writer) override;

 private:
  struct Member {
    std::unique_ptr<Cluster> cluster;
    std::unique_ptr<HttpServer> server;
    std::string token;  // Guarded by mu_
  };
  void WriteFiles(const std::string& name);  // REQUIRES: mu_ held
  Member& Find(const std::string& name);

  const EmulatorOptions options_;
  CertificateAuthority ca_;
  KeyPair serving_;
  std::map<std::string, Member> members_;  // constant keys after construction
  std::unique_ptr<HttpServer> control_;
  mutable std::mutex mu_;
};

// A random token of 32 URL-safe characters.
std::string NewToken();

}  // namespace kubefold::emulator
