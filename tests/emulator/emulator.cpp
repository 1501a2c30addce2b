#include "tests/emulator/emulator.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <stdexcept>

namespace kubefold::emulator {
namespace {

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("kube-emulator: cannot write " + tmp);
    f << content;
    if (!f.flush()) throw std::runtime_error("kube-emulator: cannot write " + tmp);
  }
  ::chmod(tmp.c_str(), mode);
  // Renamed into place so a reader never sees half a file.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("kube-emulator: cannot rename to " + path);
}

bool ParseBoolParam(const Request& req, const char* key, bool fallback) {
  const std::string* v = req.Query(key);
  if (v == nullptr) return fallback;
  auto b = ParseGoBool(*v);
  return b.value_or(fallback);
}

int IntParam(const Request& req, const char* key, int fallback) {
  const std::string* v = req.Query(key);
  if (v == nullptr || v->empty()) return fallback;
  try {
    return std::stoi(*v);
  } catch (const std::exception&) {
    return fallback;
  }
}

// <dir>/<cluster>-<user>.kubeconfig, the user name made file-safe.
std::string UserKubeconfigPath(const std::string& dir, const std::string& cluster, const std::string& user) {
  std::string file;
  for (char c : user) file += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  return dir + "/" + cluster + "-" + file + ".kubeconfig";
}

}  // namespace

std::string NewToken() {
  unsigned char raw[24];
  if (RAND_bytes(raw, sizeof(raw)) != 1) throw std::runtime_error("kube-emulator: RAND_bytes failed");
  std::string token = Base64(std::string(reinterpret_cast<char*>(raw), sizeof(raw)));
  for (char& c : token) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return token;
}

Emulator::Emulator(EmulatorOptions options) : options_(std::move(options)), ca_("kube-emulator-ca") {
  CertSpec spec;
  spec.cn = "kube-apiserver";
  spec.san = "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc";
  serving_ = ca_.Issue(spec);
  if (!options_.dir.empty()) ::mkdir(options_.dir.c_str(), 0755);
  int index = 0;
  for (const std::string& name : options_.clusters) {
    if (members_.count(name) != 0) throw std::runtime_error("kube-emulator: cluster '" + name + "' given twice");
    ClusterOptions co = options_.cluster;
    co.name = name;
    if (options_.authorization_log && !options_.dir.empty()) {
      co.authorization_log = options_.dir + "/" + name + ".authorization.log";
    }
    Member m;
    m.cluster = std::make_unique<Cluster>(co);
    m.token = NewToken();
    m.cluster->SetToken(m.token, Admin());
    ServerOptions so;
    so.tls = options_.tls;
    so.serving = serving_;
    so.client_ca_pem = ca_.cert_pem();
    so.port = options_.first_port == 0 ? 0 : options_.first_port + index;
    m.server = std::make_unique<HttpServer>(so, m.cluster.get());
    members_.emplace(name, std::move(m));
    ++index;
  }
  if (options_.control_port >= 0) {
    ServerOptions so;
    so.tls = false;
    so.port = options_.control_port;
    control_ = std::make_unique<HttpServer>(so, this);
  }
  std::lock_guard lock(mu_);
  if (!options_.dir.empty()) {
    WriteFile(options_.dir + "/ca.crt", ca_.cert_pem(), 0644);
    for (const auto& [name, m] : members_) WriteFiles(name);
    // One kubeconfig with every cluster as a context, the first current.
    std::string all = "apiVersion: v1\nkind: Config\nclusters:\n";
    for (const auto& name : options_.clusters) {
      all += "- name: " + name + "\n  cluster:\n    server: " + members_.at(name).server->Url() + "\n";
      if (options_.tls) all += "    certificate-authority-data: " + Base64(ca_.cert_pem()) + "\n";
    }
    all += "users:\n";
    for (const auto& name : options_.clusters) {
      all += "- name: " + name + "-admin\n  user:\n    tokenFile: " + options_.dir + "/" + name + ".token\n";
    }
    all += "contexts:\n";
    for (const auto& name : options_.clusters) {
      all += "- name: " + name + "\n  context:\n    cluster: " + name + "\n    user: " + name +
             "-admin\n    namespace: default\n";
    }
    all += "current-context: " + options_.clusters.front() + "\n";
    WriteFile(options_.dir + "/kubeconfig", all, 0600);
    std::string state = "{\"clusters\":[";
    bool first = true;
    for (const auto& name : options_.clusters) {
      const auto& m = members_.at(name);
      state += std::string(first ? "" : ",") + "{\"name\":\"" + name + "\",\"url\":\"" + m.server->Url() +
               "\",\"kubeconfig\":\"" + options_.dir + "/" + name + ".kubeconfig\",\"tokenFile\":\"" + options_.dir +
               "/" + name + ".token\"}";
      first = false;
    }
    state += "],\"control\":\"" + control_url() + "\",\"ca\":\"" + options_.dir + "/ca.crt\"}\n";
    WriteFile(options_.dir + "/emulator.json", state, 0644);
  }
}

Emulator::~Emulator() {
  control_.reset();
  for (auto& [name, m] : members_) m.cluster->Shutdown();
  for (auto& [name, m] : members_) m.server.reset();
}

std::string Emulator::control_url() const { return control_ ? control_->Url() : ""; }

Emulator::Member& Emulator::Find(const std::string& name) {
  auto it = members_.find(name);
  if (it == members_.end()) throw std::out_of_range("kube-emulator: no cluster named '" + name + "'");
  return it->second;
}

Cluster& Emulator::cluster(const std::string& name) { return *Find(name).cluster; }
HttpServer& Emulator::server(const std::string& name) { return *Find(name).server; }

std::vector<Emulator::ClusterInfo> Emulator::Clusters() const {
  std::vector<ClusterInfo> out;
  for (const auto& name : options_.clusters) out.push_back(Info(name));
  return out;
}

Emulator::ClusterInfo Emulator::Info(const std::string& name) const {
  const Member& m = members_.at(name);
  std::lock_guard lock(mu_);
  ClusterInfo info{name, m.server->Url(), m.token, "", ""};
  if (!options_.dir.empty()) {
    info.kubeconfig_path = options_.dir + "/" + name + ".kubeconfig";
    info.token_path = options_.dir + "/" + name + ".token";
  }
  return info;
}

std::string Emulator::Kubeconfig(const std::string& name, const std::string& token_file) const {
  const Member& m = members_.at(name);
  std::string token;
  {
    std::lock_guard lock(mu_);
    token = m.token;
  }
  std::string y = "apiVersion: v1\nkind: Config\nclusters:\n- name: " + name + "\n  cluster:\n    server: " +
                  m.server->Url() + "\n";
  if (options_.tls) y += "    certificate-authority-data: " + Base64(ca_.cert_pem()) + "\n";
  y += "users:\n- name: " + name + "-admin\n  user:\n";
  y += token_file.empty() ? "    token: " + token + "\n" : "    tokenFile: " + token_file + "\n";
  y += "contexts:\n- name: " + name + "\n  context:\n    cluster: " + name + "\n    user: " + name +
       "-admin\n    namespace: default\ncurrent-context: " + name + "\n";
  return y;
}

void Emulator::WriteFiles(const std::string& name) {
  const Member& m = members_.at(name);
  WriteFile(options_.dir + "/" + name + ".token", m.token, 0600);
  WriteFile(options_.dir + "/" + name + ".kubeconfig", KubeconfigForToken(name, name + "-admin", m.token), 0600);
}

std::string Emulator::RotateToken(const std::string& name) {
  Member& m = Find(name);
  const std::string token = NewToken();
  std::lock_guard lock(mu_);
  m.cluster->SetToken(token, Admin());
  m.cluster->RevokeToken(m.token);
  m.token = token;
  if (!options_.dir.empty()) WriteFiles(name);
  return token;
}

UserInfo Emulator::Admin() { return UserInfo{"kube-emulator-admin", "", {kMastersGroup}}; }

std::string Emulator::KubeconfigForToken(const std::string& cluster, const std::string& user_name,
                                         const std::string& token) const {
  const Member& m = members_.at(cluster);
  std::string y = "apiVersion: v1\nkind: Config\nclusters:\n- name: " + cluster + "\n  cluster:\n    server: " +
                  m.server->Url() + "\n";
  if (options_.tls) y += "    certificate-authority-data: " + Base64(ca_.cert_pem()) + "\n";
  y += "users:\n- name: " + user_name + "\n  user:\n    token: " + token + "\n";
  y += "contexts:\n- name: " + cluster + "\n  context:\n    cluster: " + cluster + "\n    user: " + user_name +
       "\n    namespace: default\ncurrent-context: " + cluster + "\n";
  return y;
}

std::string Emulator::AddUser(const std::string& cluster, const UserInfo& user, const std::string& token) {
  Member& m = Find(cluster);
  const std::string t = token.empty() ? NewToken() : token;
  m.cluster->SetToken(t, user);
  if (!options_.dir.empty()) {
    WriteFile(UserKubeconfigPath(options_.dir, cluster, user.name), KubeconfigForToken(cluster, user.name, t), 0600);
  }
  return t;
}

void Emulator::Handle(const Request& req, ResponseWriter& w) {
  auto reply = [&](int code, const std::string& body) {
    w.Send(code, {{"Content-Type", "application/json"}}, body + "\n");
  };
  auto error = [&](int code, const std::string& message) {
    reply(code, "{\"error\":\"" + message + "\"}");
  };
  // /clusters, /clusters/NAME/faults/WHAT, /clusters/NAME/tokens/rotate
  std::vector<std::string> seg;
  for (std::size_t start = 1; start <= req.path.size();) {
    const auto slash = req.path.find('/', start);
    const auto end = slash == std::string::npos ? req.path.size() : slash;
    if (end > start) seg.push_back(req.path.substr(start, end - start));
    start = end + 1;
  }
  if (seg.size() == 1 && seg[0] == "clusters" && req.method == "GET") {
    std::string out = "[";
    bool first = true;
    for (const auto& info : Clusters()) {
      out += std::string(first ? "" : ",") + "{\"name\":\"" + info.name + "\",\"url\":\"" + info.url +
             "\",\"requests\":" + std::to_string(members_.at(info.name).cluster->requests()) +
             ",\"openWatches\":" + std::to_string(members_.at(info.name).cluster->open_watches()) +
             ",\"partitioned\":" + (members_.at(info.name).server->partitioned() ? "true" : "false") + "}";
      first = false;
    }
    reply(200, out + "]");
    return;
  }
  if (seg.size() < 4 || seg[0] != "clusters" || members_.count(seg[1]) == 0) {
    error(404, "unknown control path " + req.path + "; see tests/emulator/README.md");
    return;
  }
  if (req.method != "POST") {
    error(405, "control actions are POST requests");
    return;
  }
  Member& m = members_.at(seg[1]);
  Cluster& c = *m.cluster;
  const std::string& what = seg[3];
  if (seg[2] == "tokens" && what == "rotate") {
    reply(200, "{\"token\":\"" + RotateToken(seg[1]) + "\"}");
    return;
  }
  if (seg[2] == "users") {
    // POST /clusters/C/users/NAME?uid=U&group=G1&group=G2&token=T
    UserInfo user{what, "", {}};
    std::string token;
    for (const auto& [k, v] : req.query) {
      if (k == "uid") {
        user.uid = v;
      } else if (k == "group" || k == "groups") {
        for (std::size_t start = 0; start <= v.size();) {
          const auto comma = v.find(',', start);
          const std::string g = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          if (!g.empty()) user.groups.push_back(g);
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      } else if (k == "token") {
        token = v;
      } else {
        error(400, "unknown parameter '" + k + "' (uid, group, token)");
        return;
      }
    }
    token = AddUser(seg[1], user, token);
    std::string out = "{\"token\":" + Json(token).dump();
    if (!options_.dir.empty()) {
      out += ",\"kubeconfig\":" + Json(UserKubeconfigPath(options_.dir, seg[1], user.name)).dump();
    }
    reply(200, out + "}");
    return;
  }
  if (seg[2] != "faults") {
    error(404, "unknown control path " + req.path);
    return;
  }
  if (what == "drop-watches") {
    const std::string* mode = req.Query("mode");
    c.DropWatches(mode != nullptr && *mode == "reset");
  } else if (what == "compact") {
    c.Compact();
  } else if (what == "fail") {
    FailSpec f;
    f.count = IntParam(req, "count", 1);
    f.code = IntParam(req, "code", 429);
    f.retry_after_s = IntParam(req, "retryAfter", 1);
    f.json = ParseBoolParam(req, "json", false);
    if (f.code != 429 && (f.code < 500 || f.code > 599)) {
      error(400, "code must be 429 or 5xx");
      return;
    }
    c.FailNext(f);
  } else if (what == "delay") {
    c.SetDelay(std::chrono::milliseconds(IntParam(req, "ms", 0)));
  } else if (what == "split-chunks") {
    c.SetSplitChunks(ParseBoolParam(req, "on", true));
  } else if (what == "stall-watches") {
    c.SetStallWatches(ParseBoolParam(req, "on", true));
  } else if (what == "watch-list") {
    c.SetWatchList(ParseBoolParam(req, "on", true));
  } else if (what == "expired-reason") {
    const std::string* r = req.Query("reason");
    if (r == nullptr || (*r != "Expired" && *r != "Gone")) {
      error(400, "reason must be Expired or Gone");
      return;
    }
    c.SetExpiredReason(*r);
  } else if (what == "expire-continue") {
    c.SetExpireContinueTokens(ParseBoolParam(req, "on", true));
  } else if (what == "partition") {
    m.server->Partition();
  } else if (what == "heal") {
    m.server->Heal();
  } else if (what == "reset-connections") {
    m.server->ResetConnections();
  } else if (what == "clear") {
    c.FailNext({});
    c.SetDelay(std::chrono::milliseconds(0));
    c.SetSplitChunks(false);
    c.SetStallWatches(false);
    c.SetWatchList(options_.cluster.watch_list);
    c.SetExpiredReason(options_.cluster.expired_reason);
    c.SetExpireContinueTokens(false);
    m.server->Heal();
  } else {
    error(404, "unknown fault '" + what + "'; see tests/emulator/README.md");
    return;
  }
  reply(200, "{\"ok\":true}");
}

}  // namespace kubefold::emulator
