#define BOOST_TEST_MODULE store_model_test
#include <boost/test/unit_test.hpp>

// Model-based randomized test of state::Store (and Diff) against a
// deliberately naive reference: nested std::maps, deep-copied at every
// published snapshot.
//
// Each sequence drives a fresh Store, with a manual clock and small history
// options, through random steps: batches of 1-5 operations (upserts, some of
// them unchanged; deletes, some of absent keys; ReplaceKind; AddCluster;
// RemoveCluster), pins and unpins, Collect, releases of snapshot handles and
// clock jumps. After every step it compares with the model: the ApplyResult,
// the current snapshot's full content, vector, counts and record counters,
// Stats(), ListRetained(), Get/Pin/Unpin/AtOrBefore outcomes (exact status
// codes), one older snapshot (immutability), and at random Diff and ComposeAt.
// At the end of a sequence a second store builds the same content by another
// route and must iterate in the same order.
//
// Environment:
//   KUBEFOLD_MODEL_ITERATIONS  number of sequences (default kDefaultIterations)
//   KUBEFOLD_MODEL_BASE_SEED   base of the per-sequence seeds (default 20261122)
//   KUBEFOLD_MODEL_SEED        run only the sequence with this seed, as printed
//                              on failure
//   KUBEFOLD_MODEL_STEPS       steps per sequence (default 60); a shorter run of
//                              the same seed replays a prefix of the longer one
//   KUBEFOLD_MODEL_VERBOSE     when set, print every sequence's operation log
// Seeds replay exactly with the same standard library (std::shuffle and the
// distributions are implementation-defined); --log_level=message prints how
// often each outcome (no-op, kGone, composed view, ...) was exercised.
//
// Model choices where the headers leave room:
//   - ReplaceKind writes only the differences, each one an event: every
//     deletion and every changed object advances the cluster's component by
//     one and counts as applied; every unchanged object counts as a no-op.
//     The order of those events inside one ReplaceKind is not specified, so a
//     record it writes must carry a counter in the range the op spanned (and
//     counters of live records in a cluster must be distinct).
//   - A namespace exists while it holds workloads.
//   - An upsert into an absent (never seen or removed) cluster creates it.
//   - keep_for keeps a snapshot while now - time <= keep_for; max_retained is
//     drawn >= keep_last so the two rules never conflict.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "state/batch.h"
#include "state/diff.h"
#include "state/internal/diff_paths.h"
#include "state/record.h"
#include "state/snapshot.h"
#include "state/status.h"
#include "state/store.h"
#include "state/version_vector.h"

namespace kubefold::state {
namespace {

using std::chrono::milliseconds;

// ~3000 sequences x 60 steps: a few seconds optimised, a few minutes under
// ASan or TSan.
constexpr uint64_t kDefaultIterations = 3000;
constexpr uint64_t kDefaultBaseSeed = 20261122;
constexpr int kDefaultSteps = 60;
constexpr int kMaxReportedFailures = 8;
constexpr int kMaxFailedSequences = 3;

// ------------------------------------------------------------ environment ---

std::optional<uint64_t> EnvU64(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  unsigned long long x = std::strtoull(v, &end, 0);
  if (end == v || *end != '\0') {
    BOOST_FAIL("environment variable " << name << "='" << v << "' is not an unsigned integer");
  }
  return static_cast<uint64_t>(x);
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The seed of sequence `i`: printed on failure, accepted by KUBEFOLD_MODEL_SEED.
uint64_t SequenceSeed(uint64_t base, uint64_t i) { return SplitMix64(base * 0x100000001b3ULL + i); }

// --------------------------------------------------------------- universe ---

// Names chosen so that prefixes ("us-2" < "us-20") and the empty core group
// take part.
constexpr std::string_view kClusterPool[] = {"ap-3", "eu-1", "us-2", "us-20", "eu"};
constexpr std::string_view kNamespaces[] = {"default", "kube-system", "prod"};
struct KindName {
  std::string_view group;
  std::string_view kind;
};
// Each sequence uses 2 of these: sometimes of one group, sometimes of one kind
// name, so a check of only the group or only the kind shows.
constexpr KindName kKindPool[] = {
    {"apps", "Deployment"}, {"apps", "StatefulSet"}, {"", "ReplicationController"}, {"batch", "Deployment"}};
// Each sequence uses 6 of these, so hash layouts differ between sequences.
constexpr std::string_view kNamePool[] = {
    "api",     "cache",  "db",      "web",        "worker",  "x",       "frontend", "backend",
    "queue",   "redis",  "nginx",   "ingress",    "a",       "b",       "metrics",  "logs",
    "auth",    "search", "mail",    "batch-job-1", "batch-job-2", "payments", "checkout", "cart",
    "catalog", "users",  "reports", "a-very-long-workload-name-that-is-still-valid-0123456789"};

struct Content {
  std::string json;
  WorkloadSummary summary;
};

// Distinct (json, summary) pairs: content ids compare like content. Pairs
// share JSON or summary so that a change of either alone is a modification.
const std::vector<Content>& Contents() {
  static const std::vector<Content> contents = [] {
    std::vector<Content> c;
    c.push_back({R"({"spec":{"replicas":3}})", {1, 1, 3, 3, 3}});
    c.push_back({R"({"spec":{"replicas":3}})", {1, 1, 3, 2, 2}});  // summary differs
    c.push_back({R"({"spec":{"replicas":5}})", {1, 1, 3, 3, 3}});  // JSON differs
    c.push_back({"{}", WorkloadSummary{}});
    c.push_back({"", {2, 1, -1, -1, -1}});
    std::string long_json = R"({"metadata":{"annotations":{)";
    for (int i = 0; i < 12; ++i) {
      if (i > 0) long_json += ',';
      long_json += "\"example.com/key-" + std::to_string(i) + "\":\"value-" + std::to_string(i * 7919) + "\"";
    }
    long_json += R"(}},"spec":{"replicas":10}})";
    c.push_back({long_json, {7, 7, 10, 10, 10}});
    // Long enough to be kept compressed, and differing only inside.
    std::string longer = long_json;
    longer.replace(longer.find("value-7919"), 10, "value-7920");
    c.push_back({longer, {7, 7, 10, 10, 10}});
    return c;
  }();
  return contents;
}

// The dictionary compressed upserts use (OpSpec::compress): records of one
// content are kept plain or compressed at random, and must compare equal
// either way.
const ObjectDictionary* ModelDictionary() {
  static const ObjectDictionary* d = ObjectDictionary::For("store-model-test", Contents()[5].json);
  return d;
}

void Cover(const std::string& what);

int ContentIdOf(const Record* r) {
  if (r->compressed()) Cover("read a compressed record");
  const auto& contents = Contents();
  for (size_t i = 0; i < contents.size(); ++i) {
    if (r->object_json() == contents[i].json && r->summary() == contents[i].summary) return static_cast<int>(i);
  }
  return -1;
}

WorkloadObject MakeObject(const WorkloadKey& key, size_t content, bool compress = false) {
  WorkloadObject o{key, Contents()[content].json, Contents()[content].summary};
  if (compress) o.compress_with = ModelDictionary();
  return o;
}

std::string KeyString(WorkloadKeyView k) {
  std::string s(k.group);
  s += '/';
  s += k.kind;
  s += '/';
  s += k.name;
  return s;
}

// How often each interesting outcome happened, printed at the end (with
// --log_level=message) so a change that starves a path shows up.
std::map<std::string, uint64_t>& Coverage() {
  static std::map<std::string, uint64_t> coverage;
  return coverage;
}
void Cover(const std::string& what) { ++Coverage()[what]; }

// ------------------------------------------------------------------ model ---

struct ModelRecord {
  size_t content = 0;
  // The record's counter() lies in [counter_lo, counter_hi]: one value for an
  // upsert, the op's span for ReplaceKind (its internal order is unspecified).
  uint64_t counter_lo = 0;
  uint64_t counter_hi = 0;
  friend bool operator==(const ModelRecord&, const ModelRecord&) = default;
};
// Ordered like WorkloadKey; looks up by WorkloadKeyView without copying.
struct KeyLess {
  using is_transparent = void;
  bool operator()(WorkloadKeyView a, WorkloadKeyView b) const { return a < b; }
};
using NamespaceModel = std::map<WorkloadKey, ModelRecord, KeyLess>;
using ClusterModel = std::map<std::string, NamespaceModel, std::less<>>;  // non-empty namespaces only

struct ViewModel {
  std::map<std::string, ClusterModel, std::less<>> clusters;  // present clusters
  std::map<std::string, uint64_t, std::less<>> counters;      // every cluster ever changed

  uint64_t Counter(std::string_view c) const {
    auto it = counters.find(c);
    return it == counters.end() ? 0 : it->second;
  }
  uint64_t Workloads() const {
    uint64_t n = 0;
    for (const auto& [c, cm] : clusters) {
      for (const auto& [ns, nm] : cm) n += nm.size();
    }
    return n;
  }
  const ModelRecord* Find(std::string_view c, std::string_view ns, WorkloadKeyView key) const {
    auto ci = clusters.find(c);
    if (ci == clusters.end()) return nullptr;
    auto ni = ci->second.find(ns);
    if (ni == ci->second.end()) return nullptr;
    auto ri = ni->second.find(key);
    return ri == ni->second.end() ? nullptr : &ri->second;
  }
};

struct PublishedModel {
  TimePoint time{};
  ViewModel view;
};

// One operation as generated, applied to both the batch and the model.
struct OpSpec {
  enum Type { kUpsert, kDelete, kReplaceKind, kAddCluster, kRemoveCluster } type = kUpsert;
  std::string cluster;
  std::string ns;
  WorkloadKey key;  // kReplaceKind: group and kind only
  size_t content = 0;
  bool compress = false;  // kUpsert: keep the object compressed (ModelDictionary)
  struct Object {
    std::string ns;
    std::string name;
    size_t content = 0;
    bool compress = false;
  };
  std::vector<Object> objects;  // kReplaceKind

  std::string ToString() const {
    std::ostringstream os;
    switch (type) {
      case kUpsert:
        os << "Upsert(" << cluster << ", " << ns << ", " << KeyString(key) << ", content " << content
           << (compress ? ", compressed" : "") << ")";
        break;
      case kDelete: os << "Delete(" << cluster << ", " << ns << ", " << KeyString(key) << ")"; break;
      case kReplaceKind:
        os << "ReplaceKind(" << cluster << ", " << key.group << "/" << key.kind << ", [";
        for (size_t i = 0; i < objects.size(); ++i) {
          os << (i ? " " : "") << objects[i].ns << "/" << objects[i].name << "=" << objects[i].content
             << (objects[i].compress ? "z" : "");
        }
        os << "])";
        break;
      case kAddCluster: os << "AddCluster(" << cluster << ")"; break;
      case kRemoveCluster: os << "RemoveCluster(" << cluster << ")"; break;
    }
    return os.str();
  }
};

struct OpCounts {
  size_t applied = 0;
  size_t noops = 0;
};

// Applies `op` to the model state `w` the way the headers describe it.
void ApplyToModel(ViewModel& w, const OpSpec& op, OpCounts& counts) {
  auto present = w.clusters.find(op.cluster);
  switch (op.type) {
    case OpSpec::kUpsert: {
      if (present != w.clusters.end()) {
        if (const ModelRecord* cur = w.Find(op.cluster, op.ns, op.key); cur && cur->content == op.content) {
          ++counts.noops;
          Cover("op: upsert unchanged");
          return;
        }
      }
      Cover(present == w.clusters.end() ? "op: upsert creating its cluster" : "op: upsert changed");
      uint64_t c = ++w.counters[op.cluster];
      w.clusters[op.cluster][op.ns][op.key] = ModelRecord{op.content, c, c};
      ++counts.applied;
      return;
    }
    case OpSpec::kDelete: {
      if (present == w.clusters.end() || w.Find(op.cluster, op.ns, op.key) == nullptr) {
        ++counts.noops;
        Cover("op: delete absent");
        return;
      }
      Cover("op: delete present");
      NamespaceModel& nm = present->second[op.ns];
      nm.erase(op.key);
      if (nm.empty()) present->second.erase(op.ns);
      ++w.counters[op.cluster];
      ++counts.applied;
      return;
    }
    case OpSpec::kReplaceKind: {
      const uint64_t base = w.Counter(op.cluster);
      size_t changed = 0;
      std::set<std::pair<std::string, std::string>> wanted;
      for (const auto& o : op.objects) wanted.emplace(o.ns, o.name);
      if (present != w.clusters.end()) {
        ClusterModel& cm = present->second;
        for (auto ni = cm.begin(); ni != cm.end();) {
          for (auto ri = ni->second.begin(); ri != ni->second.end();) {
            if (ri->first.group == op.key.group && ri->first.kind == op.key.kind &&
                !wanted.contains({ni->first, ri->first.name})) {
              ri = ni->second.erase(ri);
              ++changed;
            } else {
              ++ri;
            }
          }
          ni = ni->second.empty() ? cm.erase(ni) : std::next(ni);
        }
      }
      std::vector<ModelRecord*> written;
      for (const auto& o : op.objects) {
        WorkloadKey key{op.key.group, op.key.kind, o.name};
        if (const ModelRecord* cur = w.Find(op.cluster, o.ns, key); cur && cur->content == o.content) {
          ++counts.noops;
          continue;
        }
        ModelRecord& r = w.clusters[op.cluster][o.ns][key];
        r.content = o.content;
        written.push_back(&r);
        ++changed;
      }
      if (changed > 0) {
        w.counters[op.cluster] = base + changed;
        for (ModelRecord* r : written) {
          r->counter_lo = base + 1;
          r->counter_hi = base + changed;
        }
      }
      counts.applied += changed;
      Cover(changed == 0 ? "op: replace_kind unchanged" : written.size() < changed ? "op: replace_kind deleting"
                                                                                   : "op: replace_kind writing only");
      return;
    }
    case OpSpec::kAddCluster: {
      if (present != w.clusters.end()) {
        ++counts.noops;
        Cover("op: add_cluster present");
        return;
      }
      Cover(w.counters.contains(op.cluster) ? "op: add_cluster re-adding" : "op: add_cluster new");
      w.clusters[op.cluster];
      ++w.counters[op.cluster];
      ++counts.applied;
      return;
    }
    case OpSpec::kRemoveCluster: {
      if (present == w.clusters.end()) {
        ++counts.noops;
        Cover("op: remove_cluster absent");
        return;
      }
      Cover("op: remove_cluster present");
      w.clusters.erase(present);
      ++w.counters[op.cluster];
      ++counts.applied;
      return;
    }
  }
}

Status AddToBatch(Batch& batch, const OpSpec& op) {
  switch (op.type) {
    case OpSpec::kUpsert: return batch.Upsert(op.cluster, op.ns, MakeObject(op.key, op.content, op.compress));
    case OpSpec::kDelete: return batch.Delete(op.cluster, op.ns, op.key);
    case OpSpec::kReplaceKind: {
      std::vector<NamespacedObject> objects;
      for (const auto& o : op.objects) {
        objects.push_back(NamespacedObject{o.ns, MakeObject(WorkloadKey{op.key.group, op.key.kind, o.name}, o.content, o.compress)});
      }
      return batch.ReplaceKind(op.cluster, op.key.group, op.key.kind, objects);
    }
    case OpSpec::kAddCluster: return batch.AddCluster(op.cluster);
    case OpSpec::kRemoveCluster: return batch.RemoveCluster(op.cluster);
  }
  return InternalError("unknown op");
}

// The reference diff: one line per change, sorted.
std::string ChangeLine(ChangeType type, std::string_view cluster, std::string_view ns, WorkloadKeyView key,
                       std::optional<int> before, std::optional<int> after) {
  std::ostringstream os;
  os << ChangeTypeName(type) << " " << cluster << "/" << ns << " " << KeyString(key) << " ";
  if (before) os << *before; else os << "-";
  os << "->";
  if (after) os << *after; else os << "-";
  return os.str();
}

std::vector<std::string> ReferenceDiff(const ViewModel& a, const ViewModel& b, const DiffFilter& filter) {
  std::vector<std::string> out;
  std::set<std::string, std::less<>> clusters;
  for (const auto& [c, cm] : a.clusters) clusters.insert(c);
  for (const auto& [c, cm] : b.clusters) clusters.insert(c);
  static const ClusterModel kEmptyCluster;
  static const NamespaceModel kEmptyNamespace;
  for (const std::string& c : clusters) {
    if (filter.cluster && *filter.cluster != c) continue;
    auto ai = a.clusters.find(c);
    auto bi = b.clusters.find(c);
    const ClusterModel& ca = ai == a.clusters.end() ? kEmptyCluster : ai->second;
    const ClusterModel& cb = bi == b.clusters.end() ? kEmptyCluster : bi->second;
    std::set<std::string, std::less<>> namespaces;
    for (const auto& [ns, nm] : ca) namespaces.insert(ns);
    for (const auto& [ns, nm] : cb) namespaces.insert(ns);
    for (const std::string& ns : namespaces) {
      if (filter.ns && *filter.ns != ns) continue;
      auto ani = ca.find(ns);
      auto bni = cb.find(ns);
      const NamespaceModel& na = ani == ca.end() ? kEmptyNamespace : ani->second;
      const NamespaceModel& nb = bni == cb.end() ? kEmptyNamespace : bni->second;
      std::set<WorkloadKey> keys;
      for (const auto& [k, r] : na) keys.insert(k);
      for (const auto& [k, r] : nb) keys.insert(k);
      for (const WorkloadKey& k : keys) {
        auto ra = na.find(k);
        auto rb = nb.find(k);
        if (ra == na.end()) {
          out.push_back(ChangeLine(ChangeType::kAdded, c, ns, k, std::nullopt, static_cast<int>(rb->second.content)));
        } else if (rb == nb.end()) {
          out.push_back(ChangeLine(ChangeType::kRemoved, c, ns, k, static_cast<int>(ra->second.content), std::nullopt));
        } else if (ra->second.content != rb->second.content) {
          out.push_back(ChangeLine(ChangeType::kModified, c, ns, k, static_cast<int>(ra->second.content),
                                   static_cast<int>(rb->second.content)));
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What a snapshot shows when iterated: (cluster, ns, key, content), in order.
struct Visit {
  std::string cluster;
  std::string ns;
  WorkloadKey key;
  int content = -1;
  friend bool operator==(const Visit&, const Visit&) = default;
};

std::vector<Visit> IterationOrder(const Snapshot& s) {
  std::vector<Visit> out;
  s.ForEachWorkload([&](const WorkloadRef& w) {
    out.push_back(Visit{std::string(w.cluster), std::string(w.ns),
                        WorkloadKey{std::string(w.record->group()), std::string(w.record->kind()),
                                    std::string(w.record->name())},
                        ContentIdOf(w.record)});
    return true;
  });
  return out;
}

std::vector<std::string> NamespaceOrder(const Snapshot& s) {
  std::vector<std::string> out;
  s.ForEachCluster([&](const ClusterInfo& c) {
    s.ForEachNamespace(c.name, [&](const NamespaceInfo& n) {
      out.push_back(std::string(n.cluster) + "/" + std::string(n.name));
      return true;
    });
    return true;
  });
  return out;
}

std::string Describe(const std::vector<Visit>& v) {
  std::ostringstream os;
  for (const Visit& x : v) os << "\n    " << x.cluster << "/" << x.ns << " " << KeyString(x.key) << "=" << x.content;
  return os.str();
}

// -------------------------------------------------------------- the run ---

#define MODEL_EXPECT(cond, detail)                     \
  do {                                                 \
    if (!(cond)) {                                     \
      std::ostringstream model_expect_os;              \
      model_expect_os << detail;                       \
      Fail(__LINE__, #cond, model_expect_os.str());    \
    }                                                  \
  } while (0)

class SequenceRun {
 public:
  SequenceRun(uint64_t seed, int steps, bool verbose) : seed_(seed), steps_(steps), verbose_(verbose), rng_(seed) {}

  // Runs the whole sequence; returns false if any check failed.
  bool Run() {
    Setup();
    for (step_ = 1; step_ <= steps_ && failures_ == 0; ++step_) {
      AdvanceClock();
      int r = Uniform(0, 99);
      if (r < 58) {
        StepApply();
      } else if (r < 65) {
        StepPin();
      } else if (r < 72) {
        StepUnpin();
      } else if (r < 78) {
        StepCollect();
      } else if (r < 84) {
        StepReleaseHandles();
      } else {
        Log("read only");
      }
      CheckAfterStep();
    }
    step_ = steps_ + 1;
    if (failures_ == 0) CheckIterationOrderIsCanonical();
    if (failures_ == 0) Teardown();
    if (failures_ > 0 || verbose_) {
      std::cerr << (failures_ > 0 ? "FAILED" : "passed") << " sequence seed " << seed_
                << " (replay: KUBEFOLD_MODEL_SEED=" << seed_ << ")\n  options: " << options_text_
                << "\n  operation log:\n";
      for (const std::string& line : log_) std::cerr << "    " << line << "\n";
    }
    return failures_ == 0;
  }

 private:
  // ---------------------------------------------------------------- utils --
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  uint64_t UniformU(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
  bool Chance(int percent) { return Uniform(0, 99) < percent; }
  template <class C>
  const auto& Pick(const C& c) {
    return c[static_cast<size_t>(Uniform(0, static_cast<int>(std::size(c)) - 1))];
  }

  void Fail(int line, std::string_view cond, const std::string& detail) {
    ++failures_;
    if (failures_ <= kMaxReportedFailures) {
      BOOST_ERROR("seed " << seed_ << " step " << step_ << " [line " << line << "] " << cond << ": " << detail
                          << "\n  replay: KUBEFOLD_MODEL_SEED=" << seed_
                          << " KUBEFOLD_MODEL_STEPS=" << std::min(step_, steps_));
    }
  }

  void Log(std::string what) {
    std::ostringstream os;
    os << "step " << step_ << " t=+" << std::chrono::duration_cast<milliseconds>(now_ - start_).count()
       << "ms: " << what;
    log_.push_back(os.str());
  }

  uint64_t Newest() const { return published_.size() - 1; }
  bool Retained(uint64_t seq) const { return retained_.contains(seq); }
  bool Known(std::string_view c) const { return working_.counters.contains(c); }

  // ---------------------------------------------------------------- setup --
  void Setup() {
    std::vector<std::string_view> pool(std::begin(kClusterPool), std::end(kClusterPool));
    std::shuffle(pool.begin(), pool.end(), rng_);
    clusters_.assign(pool.begin(), pool.begin() + Uniform(3, 4));
    std::vector<std::string_view> names(std::begin(kNamePool), std::end(kNamePool));
    std::shuffle(names.begin(), names.end(), rng_);
    names_.assign(names.begin(), names.begin() + 6);
    std::vector<KindName> kinds(std::begin(kKindPool), std::end(kKindPool));
    std::shuffle(kinds.begin(), kinds.end(), rng_);
    kinds_.assign(kinds.begin(), kinds.begin() + 2);
    unused_kind_ = kinds[2];

    HistoryOptions h;
    h.keep_last = static_cast<size_t>(Chance(15) ? Uniform(1, 2) : Uniform(3, 8));
    static constexpr int kKeepForMs[] = {0, 300, 1000, 2000, 4000};
    h.keep_for = milliseconds(Pick(kKeepForMs));
    if (Chance(30)) h.max_retained = static_cast<size_t>(Uniform(std::max<int>(2, static_cast<int>(h.keep_last)), 12));
    history_ = h;

    std::ostringstream os;
    os << "clusters";
    for (auto c : clusters_) os << " " << c;
    os << "; kinds";
    for (const KindName& k : kinds_) os << " " << k.group << "/" << k.kind;
    os << "; names";
    for (auto n : names_) os << " " << n;
    os << "; keep_last " << h.keep_last << ", keep_for " << h.keep_for.count() << "ms, max_retained "
       << h.max_retained;
    options_text_ = os.str();

    start_ = now_ = TimePoint(std::chrono::seconds(1763000000)) + milliseconds(Uniform(0, 999));
    StoreOptions options;
    options.clock = [this] { return now_; };
    options.history = h;
    store_ = std::make_unique<Store>(std::move(options));
    published_.push_back(PublishedModel{now_, ViewModel{}});
    retained_[0] = 0;
    held_[0] = store_->Current();
    Log("new Store: " + options_text_);
    CheckAfterStep();
  }

  void AdvanceClock() {
    int r = Uniform(0, 99);
    if (r < 35) return;  // equal times are interesting for AtOrBefore
    if (r < 80) {
      now_ += milliseconds(Uniform(1, 400));
    } else if (r < 95) {
      now_ += milliseconds(Uniform(400, 2000));
    } else {
      now_ += milliseconds(Uniform(3000, 8000));
    }
  }

  // ------------------------------------------------------ op generation --
  WorkloadKey RandomKey() {
    const KindName& k = Pick(kinds_);
    return WorkloadKey{std::string(k.group), std::string(k.kind), std::string(Pick(names_))};
  }

  // A random (cluster, ns, key) present in the working state, if any.
  std::optional<std::tuple<std::string, std::string, WorkloadKey>> RandomPresentKey() {
    std::vector<std::tuple<std::string, std::string, WorkloadKey>> all;
    for (const auto& [c, cm] : working_.clusters) {
      for (const auto& [ns, nm] : cm) {
        for (const auto& [k, r] : nm) all.emplace_back(c, ns, k);
      }
    }
    if (all.empty()) return std::nullopt;
    return all[static_cast<size_t>(Uniform(0, static_cast<int>(all.size()) - 1))];
  }

  size_t RandomContent() { return static_cast<size_t>(Uniform(0, static_cast<int>(Contents().size()) - 1)); }

  OpSpec RandomOp(const ViewModel& w) {
    OpSpec op;
    int r = Uniform(0, 99);
    if (r < 50) {
      op.type = OpSpec::kUpsert;
      op.cluster = std::string(Pick(clusters_));
      op.ns = std::string(Pick(kNamespaces));
      op.key = RandomKey();
      if (Chance(40)) {  // rewrite an existing workload, often unchanged
        if (auto k = RandomPresentKey()) std::tie(op.cluster, op.ns, op.key) = *k;
      }
      const ModelRecord* cur = w.Find(op.cluster, op.ns, op.key);
      op.content = cur != nullptr && Chance(40) ? cur->content : RandomContent();
      op.compress = Chance(50);
    } else if (r < 70) {
      op.type = OpSpec::kDelete;
      op.cluster = std::string(Pick(clusters_));
      op.ns = std::string(Pick(kNamespaces));
      op.key = RandomKey();
      if (Chance(60)) {
        if (auto k = RandomPresentKey()) std::tie(op.cluster, op.ns, op.key) = *k;
      }
    } else if (r < 83) {
      op.type = OpSpec::kReplaceKind;
      op.cluster = std::string(Pick(clusters_));
      const KindName& k = Pick(kinds_);
      op.key = WorkloadKey{std::string(k.group), std::string(k.kind), ""};
      const int p = Pick(std::array<int, 4>{0, 15, 35, 60});
      for (std::string_view ns : kNamespaces) {
        for (std::string_view name : names_) {
          if (!Chance(p)) continue;
          WorkloadKey key{op.key.group, op.key.kind, std::string(name)};
          const ModelRecord* cur = w.Find(op.cluster, ns, key);
          size_t content = cur != nullptr && Chance(50) ? cur->content : RandomContent();
          op.objects.push_back(OpSpec::Object{std::string(ns), std::string(name), content, Chance(50)});
        }
      }
      std::shuffle(op.objects.begin(), op.objects.end(), rng_);
    } else if (r < 93) {
      op.type = OpSpec::kAddCluster;
      op.cluster = std::string(Pick(clusters_));
    } else {
      op.type = OpSpec::kRemoveCluster;
      op.cluster = std::string(Pick(clusters_));
      if (!w.clusters.empty() && Chance(60)) {
        auto it = w.clusters.begin();
        std::advance(it, Uniform(0, static_cast<int>(w.clusters.size()) - 1));
        op.cluster = it->first;
      }
    }
    return op;
  }

  // ----------------------------------------------------------- the steps --
  void StepApply() {
    const int n = Chance(4) ? 0 : Uniform(1, 5);
    Batch batch;
    OpCounts expected;
    std::ostringstream what;
    what << "Apply[";
    for (int i = 0; i < n; ++i) {
      OpSpec op = RandomOp(working_);
      Status s = AddToBatch(batch, op);
      MODEL_EXPECT(s.ok(), "batch rejected " << op.ToString() << ": " << s.ToString());
      ApplyToModel(working_, op, expected);
      what << (i ? ", " : "") << op.ToString();
    }
    MODEL_EXPECT(batch.size() == static_cast<size_t>(n), "batch size " << batch.size() << " != " << n);
    ++batches_;
    applied_ += expected.applied;
    noops_ += expected.noops;
    const bool publish = expected.applied > 0;
    Cover(publish ? "apply: published" : "apply: nothing to publish");
    if (publish) {
      published_.push_back(PublishedModel{now_, working_});
      retained_[Newest()] = 0;
    }
    what << "] -> expect " << (publish ? "publish seq " + std::to_string(Newest()) : std::string("no publish"))
         << ", applied " << expected.applied << ", noops " << expected.noops;
    Log(what.str());

    Result<ApplyResult> result = store_->Apply(std::move(batch));
    MODEL_EXPECT(result.ok(), "Apply failed: " << result.status().ToString());
    if (publish) {
      held_[Newest()] = store_->Current();
      ModelTrim();
    }
    if (!result.ok()) return;
    MODEL_EXPECT(result->published == publish, "published " << result->published << ", model " << publish);
    MODEL_EXPECT(result->seq == Newest(), "ApplyResult.seq " << result->seq << ", model " << Newest());
    MODEL_EXPECT(result->applied == expected.applied,
                 "ApplyResult.applied " << result->applied << ", model " << expected.applied);
    MODEL_EXPECT(result->noops == expected.noops, "ApplyResult.noops " << result->noops << ", model " << expected.noops);
  }

  uint64_t RandomSeqForLookup() {
    int r = Uniform(0, 99);
    if (r < 55) {
      auto it = retained_.begin();
      std::advance(it, Uniform(0, static_cast<int>(retained_.size()) - 1));
      return it->first;
    }
    if (r < 97) return UniformU(0, Newest() + 2);
    return UINT64_MAX;
  }

  // The exact error a lookup of `seq` must fail with, or kOk.
  StatusCode ExpectedLookup(uint64_t seq) const {
    if (Retained(seq)) return StatusCode::kOk;
    return seq > Newest() ? StatusCode::kNotFound : StatusCode::kGone;
  }

  void StepPin() {
    uint64_t seq = RandomSeqForLookup();
    StatusCode want = ExpectedLookup(seq);
    Log("Pin(" + std::to_string(seq) + ") -> expect " + std::string(StatusCodeName(want)));
    Result<Snapshot> r = store_->Pin(seq);
    Cover("pin: " + std::string(StatusCodeName(want)));
    MODEL_EXPECT(r.status().code() == want,
                 "Pin(" << seq << ") gave " << r.status().ToString() << ", model " << StatusCodeName(want));
    if (want == StatusCode::kOk) ++retained_[seq];
    if (r.ok() && want == StatusCode::kOk) ExpectSameAsHeld(*r, seq, "Pin");
  }

  void StepUnpin() {
    uint64_t seq;
    std::vector<uint64_t> pinned;
    for (const auto& [s, pins] : retained_) {
      if (pins > 0) pinned.push_back(s);
    }
    if (!pinned.empty() && Chance(75)) {
      seq = pinned[static_cast<size_t>(Uniform(0, static_cast<int>(pinned.size()) - 1))];
    } else {
      seq = RandomSeqForLookup();
    }
    const bool ok = Retained(seq) && retained_[seq] > 0;
    Log("Unpin(" + std::to_string(seq) + ") -> expect " + (ok ? "ok" : "failed_precondition"));
    Status s = store_->Unpin(seq);
    Cover(ok ? "unpin: ok" : "unpin: not pinned");
    MODEL_EXPECT(s.code() == (ok ? StatusCode::kOk : StatusCode::kFailedPrecondition),
                 "Unpin(" << seq << ") gave " << s.ToString());
    if (ok) --retained_[seq];  // dropped at the writer's next pass, not now
  }

  void StepCollect() {
    Log("Collect()");
    store_->Collect();
    ModelTrim();
  }

  // Drops the test's handles to some snapshots history no longer holds, so
  // reclamation runs while history and other handles are alive.
  void StepReleaseHandles() {
    std::vector<uint64_t> released;
    for (auto it = held_.begin(); it != held_.end();) {
      if (!Retained(it->first) && Chance(50)) {
        released.push_back(it->first);
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    size_t composed_released = 0;
    for (auto it = composed_.begin(); it != composed_.end();) {
      if (Chance(40)) {
        it = composed_.erase(it);
        ++composed_released;
      } else {
        ++it;
      }
    }
    std::ostringstream os;
    os << "release handles of seqs [";
    for (size_t i = 0; i < released.size(); ++i) os << (i ? " " : "") << released[i];
    os << "] and " << composed_released << " composed views";
    Log(os.str());
  }

  // History retention as store.h describes it: the newest keep_last, those
  // younger than keep_for, and pinned ones; then the cap on unpinned ones,
  // oldest first.
  void ModelTrim() {
    const uint64_t newest = Newest();
    for (auto it = retained_.begin(); it != retained_.end();) {
      const uint64_t seq = it->first;
      const bool keep = seq + history_.keep_last > newest || now_ - published_[seq].time <= history_.keep_for ||
                        it->second > 0;
      if (!keep) Cover("retention: dropped by age");
      if (keep && seq + history_.keep_last <= newest && now_ - published_[seq].time > history_.keep_for) {
        Cover("retention: kept only by a pin");
      }
      it = keep ? std::next(it) : retained_.erase(it);
    }
    size_t unpinned = 0;
    for (const auto& [seq, pins] : retained_) unpinned += pins == 0;
    for (auto it = retained_.begin(); unpinned > history_.max_retained && it != retained_.end();) {
      if (it->second == 0 && it->first != newest) {
        Cover("retention: dropped by max_retained");
        it = retained_.erase(it);
        --unpinned;
      } else {
        ++it;
      }
    }
  }

  // ---------------------------------------------------------- the checks --
  void CheckAfterStep() {
    // The model's own invariant: the working state is the newest snapshot's.
    MODEL_EXPECT(working_.clusters == published_.back().view.clusters &&
                     working_.counters == published_.back().view.counters,
                 "model bug: the working state differs from the newest published model");
    CheckCurrent();
    CheckStats();
    CheckListRetained();
    for (int i = 0; i < 2; ++i) ProbeGet();
    ProbeAtOrBefore();
    CheckRandomHeld();
    if (Chance(35)) ProbeComposeAt();
    if (Chance(35)) ProbeDiff();
  }

  void CheckCurrent() {
    Snapshot s = store_->Current();
    MODEL_EXPECT(s.valid(), "Current() is invalid");
    if (!s.valid()) return;
    MODEL_EXPECT(s.seq() == Newest(), "Current().seq() " << s.seq() << ", model " << Newest());
    MODEL_EXPECT(!s.composed(), "Current() is composed");
    MODEL_EXPECT(s.store_id() == store_->id(), "Current().store_id() " << s.store_id() << " != " << store_->id());
    MODEL_EXPECT(s.time() == published_.back().time,
                 "Current().time() is " << (s.time() - start_).count() << " after start, model "
                                        << (published_.back().time - start_).count());
    auto h = held_.find(Newest());
    MODEL_EXPECT(h != held_.end() && h->second == s, "Current() is not the snapshot published as seq " << Newest());
    CheckView(s, published_.back().view, "Current()");
  }

  void CheckStats() {
    StoreStats st = store_->Stats();
    const ViewModel& v = published_.back().view;
    size_t pinned = 0;
    for (const auto& [seq, pins] : retained_) pinned += pins > 0;
    MODEL_EXPECT(st.seq == Newest(), "Stats().seq " << st.seq << ", model " << Newest());
    MODEL_EXPECT(st.workloads == v.Workloads(), "Stats().workloads " << st.workloads << ", model " << v.Workloads());
    MODEL_EXPECT(st.clusters == v.clusters.size(), "Stats().clusters " << st.clusters << ", model " << v.clusters.size());
    MODEL_EXPECT(st.retained_snapshots == retained_.size(),
                 "Stats().retained_snapshots " << st.retained_snapshots << ", model " << retained_.size());
    MODEL_EXPECT(st.pinned_snapshots == pinned, "Stats().pinned_snapshots " << st.pinned_snapshots << ", model " << pinned);
    MODEL_EXPECT(st.batches == batches_, "Stats().batches " << st.batches << ", model " << batches_);
    MODEL_EXPECT(st.events_applied == applied_, "Stats().events_applied " << st.events_applied << ", model " << applied_);
    MODEL_EXPECT(st.events_noop == noops_, "Stats().events_noop " << st.events_noop << ", model " << noops_);
    // Byte accounting is not modelled, only bounded: every current workload is a live record.
    MODEL_EXPECT(st.records_live >= v.Workloads(),
                 "Stats().records_live " << st.records_live << " < " << v.Workloads() << " current workloads");
  }

  void CheckListRetained() {
    std::vector<RetainedSnapshot> all = store_->ListRetained();
    std::ostringstream got, want;
    for (const RetainedSnapshot& r : all) got << " " << r.seq << (r.pins ? "p" + std::to_string(r.pins) : "");
    for (const auto& [seq, pins] : retained_) want << " " << seq << (pins ? "p" + std::to_string(pins) : "");
    MODEL_EXPECT(got.str() == want.str(), "ListRetained() seqs [" << got.str() << " ], model [" << want.str() << " ]");
    for (const RetainedSnapshot& r : all) {
      if (r.seq > Newest()) continue;
      const PublishedModel& m = published_[r.seq];
      MODEL_EXPECT(r.time == m.time, "ListRetained() time of seq " << r.seq);
      ExpectVector(r.vector, m.view, "ListRetained() vector of seq " + std::to_string(r.seq));
    }
    // Paged from a random seq (inclusive): page after page, then nothing.
    const uint64_t from = UniformU(0, Newest() + 1);
    const size_t limit = static_cast<size_t>(Uniform(1, 4));
    std::vector<uint64_t> want_pages, got_pages;
    for (auto it = retained_.lower_bound(from); it != retained_.end(); ++it) want_pages.push_back(it->first);
    uint64_t next = from;
    for (int page = 0; page < 100; ++page) {
      std::vector<RetainedSnapshot> part = store_->ListRetained(next, limit);
      MODEL_EXPECT(part.size() <= limit, "ListRetained(" << next << ", " << limit << ") returned " << part.size());
      if (part.empty()) break;
      for (const RetainedSnapshot& r : part) got_pages.push_back(r.seq);
      next = part.back().seq + 1;
    }
    MODEL_EXPECT(got_pages == want_pages, "ListRetained paged from " << from << " by " << limit << " returned "
                                                                     << got_pages.size() << " entries, model "
                                                                     << want_pages.size());
    MODEL_EXPECT(store_->ListRetained(from, 0).empty(), "ListRetained(" << from << ", 0) is not empty");
  }

  void ProbeGet() {
    const uint64_t seq = RandomSeqForLookup();
    const StatusCode want = ExpectedLookup(seq);
    Result<Snapshot> r = store_->Get(seq);
    Cover("get: " + std::string(StatusCodeName(want)));
    MODEL_EXPECT(r.status().code() == want,
                 "Get(" << seq << ") gave " << r.status().ToString() << ", model " << StatusCodeName(want)
                        << " (newest " << Newest() << ")");
    if (r.ok() && want == StatusCode::kOk) ExpectSameAsHeld(*r, seq, "Get");
  }

  // Snapshots history returns are the published ones, which the test holds.
  void ExpectSameAsHeld(const Snapshot& s, uint64_t seq, std::string_view what) {
    MODEL_EXPECT(s.valid() && s.seq() == seq, what << "(" << seq << ") returned seq " << (s.valid() ? s.seq() : 0));
    auto h = held_.find(seq);
    MODEL_EXPECT(h != held_.end() && h->second == s, what << "(" << seq << ") is not the snapshot published as it");
    if (Chance(10)) CheckView(s, published_[seq].view, std::string(what) + "(" + std::to_string(seq) + ")");
  }

  void ProbeAtOrBefore() {
    TimePoint t;
    int r = Uniform(0, 99);
    if (r < 50) {
      auto it = retained_.begin();
      std::advance(it, Uniform(0, static_cast<int>(retained_.size()) - 1));
      t = published_[it->first].time + milliseconds(Uniform(-1, 1));
    } else {
      auto span = std::chrono::duration_cast<milliseconds>(now_ - start_).count();
      t = start_ + milliseconds(Uniform(-1000, static_cast<int>(span) + 1000));
    }
    std::optional<uint64_t> want;
    for (const auto& [seq, pins] : retained_) {
      if (published_[seq].time <= t) want = seq;
    }
    Result<Snapshot> got = store_->AtOrBefore(t);
    Cover(want ? "at_or_before: found" : "at_or_before: gone");
    const auto at = std::chrono::duration_cast<milliseconds>(t - start_).count();
    if (!want) {
      MODEL_EXPECT(got.status().code() == StatusCode::kGone,
                   "AtOrBefore(+" << at << "ms) gave " << got.status().ToString() << ", model gone");
      return;
    }
    MODEL_EXPECT(got.ok(), "AtOrBefore(+" << at << "ms) gave " << got.status().ToString() << ", model seq " << *want);
    if (got.ok()) {
      MODEL_EXPECT(got->seq() == *want, "AtOrBefore(+" << at << "ms) gave seq " << got->seq() << ", model " << *want);
      if (got->seq() == *want) ExpectSameAsHeld(*got, *want, "AtOrBefore");
    }
  }

  // Immutability: a snapshot published earlier (retained or only held by
  // the test) still shows exactly what it showed when published.
  void CheckRandomHeld() {
    auto it = held_.begin();
    std::advance(it, Uniform(0, static_cast<int>(held_.size()) - 1));
    const Snapshot& s = it->second;
    MODEL_EXPECT(s.seq() == it->first && !s.composed() && s.time() == published_[it->first].time,
                 "held snapshot " << it->first << " changed its header: seq " << s.seq());
    CheckView(s, published_[it->first].view, "held snapshot " + std::to_string(it->first));
    if (!composed_.empty()) {
      const auto& [cs, cv] = composed_[static_cast<size_t>(Uniform(0, static_cast<int>(composed_.size()) - 1))];
      MODEL_EXPECT(cs.composed() && cs.seq() == 0, "held composed view changed its header");
      CheckView(cs, cv, "held composed view");
    }
  }

  // ComposeAt(v) against the model: for each cluster the store has seen, the
  // newest retained snapshot whose component is <= v's.
  void ProbeComposeAt() {
    VersionVector v;
    for (const auto& [c, counter] : working_.counters) {
      int r = Uniform(0, 99);
      uint64_t x;
      if (r < 35) {
        auto it = retained_.begin();
        std::advance(it, Uniform(0, static_cast<int>(retained_.size()) - 1));
        x = published_[it->first].view.Counter(c);
      } else if (r < 60) {
        x = UniformU(0, counter);
      } else if (r < 70) {
        x = 0;
      } else if (r < 80) {
        continue;  // absent: 0
      } else if (r < 90) {
        x = counter;
      } else {
        x = counter + UniformU(1, 3);
      }
      v.Set(c, x);
    }
    bool unknown = false;
    if (Chance(5)) {
      for (std::string_view c : kClusterPool) {
        if (!Known(c)) {
          v.Set(c, UniformU(1, 5));
          unknown = true;
          break;
        }
      }
    }
    // Expected.
    ViewModel want;
    std::optional<std::string> gone;
    std::set<uint64_t> sources;  // may differ in seq only between equal subtrees: coverage only
    for (const auto& [c, counter] : working_.counters) {
      const uint64_t target = v.Get(c);
      std::optional<uint64_t> src;
      for (const auto& [seq, pins] : retained_) {
        if (published_[seq].view.Counter(c) <= target) src = seq;
      }
      if (!src) {
        if (!gone) gone = c;
        continue;
      }
      const ViewModel& from = published_[*src].view;
      sources.insert(*src);
      want.counters[c] = from.Counter(c);
      if (auto ci = from.clusters.find(c); ci != from.clusters.end()) want.clusters[c] = ci->second;
    }
    Result<Snapshot> got = store_->ComposeAt(v);
    Cover(unknown ? "compose_at: unseen cluster" : gone ? "compose_at: gone" : "compose_at: view");
    const std::string what = "ComposeAt(" + v.ToJson() + ")";
    if (unknown) {
      MODEL_EXPECT(got.status().code() == StatusCode::kInvalidArgument,
                   what << " names an unseen cluster but gave " << got.status().ToString());
      return;
    }
    if (gone) {
      MODEL_EXPECT(got.status().code() == StatusCode::kGone,
                   what << " gave " << got.status().ToString() << ", model gone (history no longer reaches "
                        << *gone << ")");
      return;
    }
    MODEL_EXPECT(got.ok(), what << " gave " << got.status().ToString() << ", model a view");
    if (!got.ok()) return;
    MODEL_EXPECT(got->composed() && got->seq() == 0, what << ": composed() " << got->composed() << ", seq " << got->seq());
    MODEL_EXPECT(got->store_id() == store_->id(), what << ": store_id " << got->store_id());
    CheckView(*got, want, what);
    if (sources.size() > 1) Cover("compose_at: view joining several snapshots");
    if (sources.size() == 1 && *sources.begin() != Newest()) Cover("compose_at: view of one older snapshot");
    composed_.emplace_back(*got, std::move(want));
    if (composed_.size() > 3) composed_.erase(composed_.begin());
  }

  void ProbeDiff() {
    auto pick = [&]() -> std::pair<Snapshot, const ViewModel*> {
      if (!composed_.empty() && Chance(15)) {
        const auto& [cs, cv] = composed_[static_cast<size_t>(Uniform(0, static_cast<int>(composed_.size()) - 1))];
        return {cs, &cv};
      }
      auto it = held_.begin();
      std::advance(it, Uniform(0, static_cast<int>(held_.size()) - 1));
      return {it->second, &published_[it->first].view};
    };
    auto [a, va] = pick();
    auto [b, vb] = Chance(10) ? std::pair<Snapshot, const ViewModel*>{a, va} : pick();
    DiffFilter filter;
    int r = Uniform(0, 99);
    if (r >= 50 && r < 80) filter.cluster = std::string(Pick(kClusterPool));
    if (r >= 70) filter.ns = Chance(90) ? std::string(Pick(kNamespaces)) : std::string("nope");
    std::ostringstream what;
    what << "Diff(" << (a.composed() ? "composed" : std::to_string(a.seq())) << ", "
         << (b.composed() ? "composed" : std::to_string(b.seq())) << ", {cluster " << filter.cluster.value_or("*")
         << ", ns " << filter.ns.value_or("*") << "})";

    const std::vector<std::string> want = ReferenceDiff(*va, *vb, filter);
    Cover(want.empty() ? "diff: empty" : "diff: changes");
    if (filter.cluster || filter.ns) Cover(want.empty() ? "diff: filtered, empty" : "diff: filtered, changes");
    for (const std::string& line : want) Cover("diff: " + line.substr(0, line.find(' ')));
    Result<DiffResult> got = Diff(a, b, filter);
    MODEL_EXPECT(got.ok(), what.str() << " failed: " << got.status().ToString());
    if (!got.ok()) return;
    std::vector<std::string> lines;
    size_t added = 0, removed = 0, modified = 0;
    std::string last_cluster;
    for (const Change& c : got->changes()) {
      const Record* any = c.after != nullptr ? c.after : c.before;
      MODEL_EXPECT(any != nullptr, what.str() << ": a change with neither record");
      if (any == nullptr) continue;
      MODEL_EXPECT((c.type == ChangeType::kAdded) == (c.before == nullptr) &&
                       (c.type == ChangeType::kRemoved) == (c.after == nullptr),
                   what.str() << ": " << ChangeTypeName(c.type) << " with before " << c.before << ", after " << c.after);
      MODEL_EXPECT(c.before == nullptr || c.after == nullptr || c.before->key() == c.after->key(),
                   what.str() << ": modified change pairs different keys");
      MODEL_EXPECT(c.before == a.Get(c.cluster, c.ns, any->key()),
                   what.str() << ": before of " << KeyString(any->key()) << " is not the record of `from`");
      MODEL_EXPECT(c.after == b.Get(c.cluster, c.ns, any->key()),
                   what.str() << ": after of " << KeyString(any->key()) << " is not the record of `to`");
      MODEL_EXPECT(std::string(c.cluster) >= last_cluster, what.str() << ": clusters out of order: " << c.cluster
                                                                      << " after " << last_cluster);
      last_cluster = std::string(c.cluster);
      std::optional<int> before, after;
      if (c.before) before = ContentIdOf(c.before);
      if (c.after) after = ContentIdOf(c.after);
      lines.push_back(ChangeLine(c.type, c.cluster, c.ns, any->key(), before, after));
      added += c.type == ChangeType::kAdded;
      removed += c.type == ChangeType::kRemoved;
      modified += c.type == ChangeType::kModified;
    }
    std::sort(lines.begin(), lines.end());
    if (lines != want) {
      std::ostringstream d;
      d << what.str() << " differs from the reference diff:\n  store:";
      for (const auto& l : lines) d << "\n    " << l;
      d << "\n  model:";
      for (const auto& l : want) d << "\n    " << l;
      MODEL_EXPECT(lines == want, d.str());
    }
    MODEL_EXPECT(got->added() == added && got->removed() == removed && got->modified() == modified,
                 what.str() << ": counts " << got->added() << "/" << got->removed() << "/" << got->modified()
                            << " but changes " << added << "/" << removed << "/" << modified);
    MODEL_EXPECT(got->from() == a && got->to() == b, what.str() << ": DiffResult holds other snapshots");

    // Diff answers from the change log when it covers the pair, else by
    // walking the tries: both ways must give the same changes.
    const internal::SnapshotData* da = SnapshotAccess::Data(a);
    const internal::SnapshotData* db = SnapshotAccess::Data(b);
    if (da == db) return;
    auto collect = [](std::vector<std::string>& out) {
      return [&out](const Change& c) {
        const Record* any = c.after != nullptr ? c.after : c.before;
        std::ostringstream l;
        l << ChangeTypeName(c.type) << ' ' << c.cluster << '/' << c.ns << '/' << KeyString(any->key()) << ' '
          << c.before << "->" << c.after;
        out.push_back(l.str());
        return true;
      };
    };
    std::vector<std::string> by_log, by_walk;
    const bool logged = internal::VisitDiffByLog(da, db, filter, collect(by_log));
    internal::VisitDiffByWalk(da, db, filter, collect(by_walk));
    Cover(logged ? "diff: from the change log" : "diff: by walking the tries");
    if (!logged) {
      MODEL_EXPECT(by_log.empty(), what.str() << ": the change log declined but visited changes");
      return;
    }
    if (!want.empty()) Cover("diff: from the change log, changes");
    std::sort(by_log.begin(), by_log.end());
    std::sort(by_walk.begin(), by_walk.end());
    MODEL_EXPECT(by_log == by_walk, what.str() << ": the change log's diff (" << by_log.size()
                                               << " changes) differs from the walk's (" << by_walk.size() << ")");
  }

  void ExpectVector(const VersionVector& v, const ViewModel& m, const std::string& what) {
    for (const auto& [c, n] : m.counters) {
      MODEL_EXPECT(v.Get(c) == n, what << ": component " << c << " is " << v.Get(c) << ", model " << n);
    }
    for (size_t i = 0; i < v.size(); ++i) {
      MODEL_EXPECT(m.Counter(v.name(i)) == v.counter(i),
                   what << ": component " << v.name(i) << " is " << v.counter(i) << ", model " << m.Counter(v.name(i)));
      MODEL_EXPECT(i == 0 || v.name(i - 1) < v.name(i), what << ": vector names not sorted");
    }
  }

  // Compares everything a snapshot exposes with the model `m`.
  void CheckView(const Snapshot& s, const ViewModel& m, const std::string& what) {
    const uint64_t total = m.Workloads();
    MODEL_EXPECT(s.workload_count() == total, what << ": workload_count " << s.workload_count() << ", model " << total);
    MODEL_EXPECT(s.cluster_count() == m.clusters.size(),
                 what << ": cluster_count " << s.cluster_count() << ", model " << m.clusters.size());
    ExpectVector(s.vector(), m, what + " vector");

    // Clusters, in name order, with their counts.
    std::vector<std::string> cluster_names;
    s.ForEachCluster([&](const ClusterInfo& ci) {
      cluster_names.emplace_back(ci.name);
      auto it = m.clusters.find(ci.name);
      if (it == m.clusters.end()) return true;  // reported below
      uint64_t n = 0;
      for (const auto& [ns, nm] : it->second) n += nm.size();
      MODEL_EXPECT(ci.counter == m.Counter(ci.name) && ci.namespaces == it->second.size() && ci.workloads == n,
                   what << ": ForEachCluster " << ci.name << " {counter " << ci.counter << ", namespaces "
                        << ci.namespaces << ", workloads " << ci.workloads << "}, model {" << m.Counter(ci.name)
                        << ", " << it->second.size() << ", " << n << "}");
      return true;
    });
    std::vector<std::string> model_names;
    for (const auto& [c, cm] : m.clusters) model_names.push_back(c);
    MODEL_EXPECT(cluster_names == model_names, what << ": ForEachCluster visited " << cluster_names.size()
                                                    << " clusters, model " << model_names.size());

    for (std::string_view c : kClusterPool) {
      auto it = m.clusters.find(c);
      std::optional<ClusterInfo> info = s.Cluster(c);
      MODEL_EXPECT(info.has_value() == (it != m.clusters.end()),
                   what << ": Cluster(" << c << ") present " << info.has_value() << ", model "
                        << (it != m.clusters.end()));
      uint64_t n = 0;
      if (it != m.clusters.end()) {
        for (const auto& [ns, nm] : it->second) n += nm.size();
      }
      if (info && it != m.clusters.end()) {
        MODEL_EXPECT(info->name == c && info->counter == m.Counter(c) && info->namespaces == it->second.size() &&
                         info->workloads == n,
                     what << ": Cluster(" << c << ") {counter " << info->counter << ", namespaces " << info->namespaces
                          << ", workloads " << info->workloads << "}, model {" << m.Counter(c) << ", "
                          << it->second.size() << ", " << n << "}");
      }
      MODEL_EXPECT(s.CountWorkloads(c) == n, what << ": CountWorkloads(" << c << ") " << s.CountWorkloads(c)
                                                  << ", model " << n);
      for (std::string_view ns : {kNamespaces[0], kNamespaces[1], kNamespaces[2], std::string_view("nope")}) {
        size_t want = 0;
        if (it != m.clusters.end()) {
          if (auto ni = it->second.find(ns); ni != it->second.end()) want = ni->second.size();
        }
        MODEL_EXPECT(s.CountWorkloads(c, ns) == want,
                     what << ": CountWorkloads(" << c << ", " << ns << ") " << s.CountWorkloads(c, ns) << ", model "
                          << want);
      }
      std::map<std::string, uint64_t> namespaces;
      s.ForEachNamespace(c, [&](const NamespaceInfo& ni) {
        MODEL_EXPECT(ni.cluster == c, what << ": ForEachNamespace(" << c << ") reports cluster " << ni.cluster);
        MODEL_EXPECT(namespaces.emplace(std::string(ni.name), ni.workloads).second,
                     what << ": ForEachNamespace(" << c << ") visits " << ni.name << " twice");
        return true;
      });
      std::map<std::string, uint64_t> want_namespaces;
      if (it != m.clusters.end()) {
        for (const auto& [ns, nm] : it->second) want_namespaces[ns] = nm.size();
      }
      MODEL_EXPECT(namespaces == want_namespaces, what << ": ForEachNamespace(" << c << ") visits "
                                                       << namespaces.size() << " namespaces, model "
                                                       << want_namespaces.size());
    }

    // Every workload, its content and counter; order: cluster by name, each
    // cluster and namespace contiguous.
    std::unordered_map<const ModelRecord*, const Record*> by_slot;  // model slot -> the record visited there
    struct Group {  // a run of one (cluster, namespace) in the iteration
      std::string_view cluster, ns;
      std::vector<const Record*> records;
    };
    std::vector<Group> groups;
    size_t visited = 0;
    std::map<std::string_view, std::set<uint64_t>> counters;
    s.ForEachWorkload([&](const WorkloadRef& w) {
      MODEL_EXPECT(w.record != nullptr, what << ": ForEachWorkload visits a null record");
      if (w.record == nullptr) return true;
      if (groups.empty() || w.cluster != groups.back().cluster || w.ns != groups.back().ns) {
        if (!groups.empty()) {
          MODEL_EXPECT(groups.back().cluster <= w.cluster,
                       what << ": cluster " << w.cluster << " after " << groups.back().cluster);
        }
        for (const Group& g : groups) {
          MODEL_EXPECT(g.cluster != w.cluster || g.ns != w.ns,
                       what << ": " << w.cluster << "/" << w.ns << " is not contiguous in ForEachWorkload");
        }
        groups.push_back(Group{w.cluster, w.ns, {}});
      }
      groups.back().records.push_back(w.record);
      ++visited;
      const WorkloadKeyView key = w.record->key();
      const ModelRecord* mr = m.Find(w.cluster, w.ns, key);
      MODEL_EXPECT(mr != nullptr, what << ": " << w.cluster << "/" << w.ns << " " << KeyString(key)
                                       << " is in the store, not in the model");
      if (mr == nullptr) return true;
      MODEL_EXPECT(by_slot.emplace(mr, w.record).second,
                   what << ": " << w.cluster << "/" << w.ns << " " << KeyString(key) << " visited twice");
      const Content& want = Contents()[mr->content];
      MODEL_EXPECT(w.record->object_json() == want.json && w.record->summary() == want.summary,
                   what << ": " << w.cluster << "/" << w.ns << " " << KeyString(key) << " holds content "
                        << ContentIdOf(w.record) << ", model " << mr->content);
      MODEL_EXPECT(w.record->counter() >= mr->counter_lo && w.record->counter() <= mr->counter_hi,
                   what << ": " << w.cluster << "/" << w.ns << " " << KeyString(key) << " has counter "
                        << w.record->counter() << ", model [" << mr->counter_lo << ", " << mr->counter_hi << "]");
      MODEL_EXPECT(counters[w.cluster].insert(w.record->counter()).second,
                   what << ": two live records of " << w.cluster << " carry counter " << w.record->counter());
      return true;
    });
    MODEL_EXPECT(visited == total && by_slot.size() == total,
                 what << ": ForEachWorkload visited " << visited << ", model " << total);

    // The filtered visitors show the same records in the same relative order.
    for (std::string_view c : kClusterPool) {
      std::vector<const Record*> want_order, got_order;
      for (const Group& g : groups) {
        if (g.cluster == c) want_order.insert(want_order.end(), g.records.begin(), g.records.end());
      }
      s.ForEachWorkload(c, [&](const WorkloadRef& w) {
        MODEL_EXPECT(w.cluster == c, what << ": ForEachWorkload(" << c << ") visits cluster " << w.cluster);
        got_order.push_back(w.record);
        return true;
      });
      MODEL_EXPECT(got_order == want_order, what << ": ForEachWorkload(" << c << ") visits " << got_order.size()
                                                 << " records, expected the " << want_order.size()
                                                 << " of the full iteration, in its order");
      for (std::string_view ns : kNamespaces) {
        std::vector<const Record*> want_ns, got_ns;
        for (const Group& g : groups) {
          if (g.cluster == c && g.ns == ns) want_ns = g.records;
        }
        s.ForEachWorkload(c, ns, [&](const WorkloadRef& w) {
          MODEL_EXPECT(w.cluster == c && w.ns == ns,
                       what << ": ForEachWorkload(" << c << ", " << ns << ") visits " << w.cluster << "/" << w.ns);
          got_ns.push_back(w.record);
          return true;
        });
        MODEL_EXPECT(got_ns == want_ns, what << ": ForEachWorkload(" << c << ", " << ns << ") visits "
                                             << got_ns.size() << " records, expected " << want_ns.size());
      }
    }

    // Point lookups: every workload the model holds, then the whole key
    // universe (and a kind the sequence never writes) of one random cluster.
    auto expect_get = [&](std::string_view c, std::string_view ns, WorkloadKeyView key, const ModelRecord* mr) {
      const Record* got = s.Get(c, ns, key);
      auto it = mr == nullptr ? by_slot.end() : by_slot.find(mr);
      const Record* want = it == by_slot.end() ? nullptr : it->second;
      MODEL_EXPECT(got == want, what << ": Get(" << c << ", " << ns << ", " << KeyString(key) << ") is "
                                     << (got ? "a record" : "null") << ", iteration found " << (want ? "one" : "none"));
    };
    for (const auto& [c, cm] : m.clusters) {
      for (const auto& [ns, nm] : cm) {
        for (const auto& [k, mr] : nm) expect_get(c, ns, k, &mr);
      }
    }
    const std::string_view probe_cluster = Pick(kClusterPool);
    for (std::string_view ns : kNamespaces) {
      for (const KindName& k : {kinds_[0], kinds_[1], unused_kind_}) {
        for (std::string_view name : names_) {
          WorkloadKeyView key(k.group, k.kind, name);
          expect_get(probe_cluster, ns, key, m.Find(probe_cluster, ns, key));
        }
      }
    }

    // Early stop.
    size_t calls = 0;
    bool completed = s.ForEachWorkload([&](const WorkloadRef&) {
      ++calls;
      return false;
    });
    MODEL_EXPECT(calls == std::min<uint64_t>(total, 1) && completed == (total == 0),
                 what << ": ForEachWorkload stopping at once made " << calls << " calls and returned " << completed);
  }

  // Another store reaches the same content by another route (noise written
  // and deleted, other contents first, shuffled order, other batching) and
  // must iterate in exactly the same order.
  void CheckIterationOrderIsCanonical() {
    const ViewModel& final_view = published_.back().view;
    Store other;
    std::vector<OpSpec> phase1, phase2, phase3, phase4;
    std::set<std::tuple<std::string, std::string, WorkloadKey>> noise;
    const int noise_count = Uniform(0, 12);
    for (int i = 0; i < noise_count; ++i) {
      OpSpec op;
      op.type = OpSpec::kUpsert;
      op.cluster = std::string(Pick(kClusterPool));
      op.ns = Chance(80) ? std::string(Pick(kNamespaces)) : std::string("noise-ns");
      op.key = RandomKey();
      if (final_view.Find(op.cluster, op.ns, op.key) != nullptr) continue;
      op.content = RandomContent();
      noise.emplace(op.cluster, op.ns, op.key);
      phase1.push_back(op);
    }
    for (const auto& [c, cm] : final_view.clusters) {
      for (const auto& [ns, nm] : cm) {
        for (const auto& [k, r] : nm) {
          OpSpec op;
          op.type = OpSpec::kUpsert;
          op.cluster = c;
          op.ns = ns;
          op.key = k;
          if (Chance(30)) {
            op.content = (r.content + 1) % Contents().size();
            phase1.push_back(op);
          }
          op.content = r.content;
          phase2.push_back(op);
        }
      }
    }
    for (const auto& [c, ns, k] : noise) {
      OpSpec op;
      op.type = OpSpec::kDelete;
      op.cluster = c;
      op.ns = ns;
      op.key = k;
      phase3.push_back(op);
    }
    for (std::string_view c : kClusterPool) {
      OpSpec op;
      op.cluster = std::string(c);
      op.type = final_view.clusters.contains(c) ? OpSpec::kAddCluster : OpSpec::kRemoveCluster;
      phase4.push_back(op);
    }
    ViewModel scratch;
    std::ostringstream log;
    log << "second store:";
    for (auto* phase : {&phase1, &phase2, &phase3, &phase4}) {
      std::shuffle(phase->begin(), phase->end(), rng_);
      for (size_t i = 0; i < phase->size();) {
        Batch batch;
        const size_t n = std::min(phase->size() - i, static_cast<size_t>(Uniform(1, 6)));
        OpCounts counts;
        for (size_t j = 0; j < n; ++j, ++i) {
          Status s = AddToBatch(batch, (*phase)[i]);
          MODEL_EXPECT(s.ok(), "second store: batch rejected " << (*phase)[i].ToString());
          ApplyToModel(scratch, (*phase)[i], counts);
          log << " " << (*phase)[i].ToString();
        }
        Result<ApplyResult> r = other.Apply(std::move(batch));
        MODEL_EXPECT(r.ok() && r->applied == counts.applied && r->noops == counts.noops,
                     "second store: Apply gave " << (r.ok() ? std::to_string(r->applied) : r.status().ToString()));
      }
    }
    Log(log.str());
    const Snapshot mine = store_->Current();
    const Snapshot theirs = other.Current();
    const std::vector<Visit> a = IterationOrder(mine);
    const std::vector<Visit> b = IterationOrder(theirs);
    MODEL_EXPECT(a == b, "two stores with equal content iterate differently:\n  this store:" << Describe(a)
                                                                                            << "\n  second store:"
                                                                                            << Describe(b));
    MODEL_EXPECT(NamespaceOrder(mine) == NamespaceOrder(theirs),
                 "two stores with equal content visit namespaces in different orders");
    // Snapshots of different stores do not diff; invalid handles neither.
    Result<DiffResult> cross = Diff(mine, theirs);
    MODEL_EXPECT(cross.status().code() == StatusCode::kInvalidArgument,
                 "Diff across stores gave " << cross.status().ToString());
    Result<DiffResult> invalid = Diff(Snapshot(), mine);
    MODEL_EXPECT(invalid.status().code() == StatusCode::kInvalidArgument,
                 "Diff of an invalid handle gave " << invalid.status().ToString());
  }

  // Snapshot handles may outlive the store; sometimes the store goes first.
  void Teardown() {
    if (Chance(50)) {
      Log("destroy the store before the snapshot handles");
      store_.reset();
      for (const auto& [seq, s] : held_) {
        if (Chance(30)) CheckView(s, published_[seq].view, "after ~Store, snapshot " + std::to_string(seq));
      }
      for (const auto& [cs, cv] : composed_) CheckView(cs, cv, "after ~Store, composed view");
    }
    held_.clear();
    composed_.clear();
    store_.reset();
  }

  // Constant for the run.
  const uint64_t seed_;
  const int steps_;
  const bool verbose_;
  std::mt19937_64 rng_;
  std::vector<std::string_view> clusters_;
  std::vector<std::string_view> names_;
  std::vector<KindName> kinds_;
  KindName unused_kind_;
  HistoryOptions history_;
  std::string options_text_;
  TimePoint start_{};

  int step_ = 0;
  int failures_ = 0;
  std::vector<std::string> log_;
  TimePoint now_{};  // the store's clock

  // The model.
  ViewModel working_;
  std::vector<PublishedModel> published_;  // by seq
  std::map<uint64_t, uint32_t> retained_;  // seq -> pins: what history holds
  uint64_t batches_ = 0, applied_ = 0, noops_ = 0;

  // The store and the handles the test holds. Declared last: destroyed first.
  std::unique_ptr<Store> store_;
  std::map<uint64_t, Snapshot> held_;                        // every retained seq, some dropped ones
  std::vector<std::pair<Snapshot, ViewModel>> composed_;     // recent composed views
};

#undef MODEL_EXPECT

// ------------------------------------------------------------------ tests ---

BOOST_AUTO_TEST_CASE(random_operation_sequences_match_the_reference_model) {
  const int steps = static_cast<int>(EnvU64("KUBEFOLD_MODEL_STEPS").value_or(kDefaultSteps));
  const bool verbose = EnvU64("KUBEFOLD_MODEL_VERBOSE").value_or(0) != 0;
  std::vector<uint64_t> seeds;
  if (std::optional<uint64_t> seed = EnvU64("KUBEFOLD_MODEL_SEED")) {
    seeds.push_back(*seed);
  } else {
    const uint64_t base = EnvU64("KUBEFOLD_MODEL_BASE_SEED").value_or(kDefaultBaseSeed);
    const uint64_t n = EnvU64("KUBEFOLD_MODEL_ITERATIONS").value_or(kDefaultIterations);
    for (uint64_t i = 0; i < n; ++i) seeds.push_back(SequenceSeed(base, i));
  }
  BOOST_TEST_MESSAGE("running " << seeds.size() << " sequences of " << steps << " steps");
  int failed = 0;
  for (uint64_t seed : seeds) {
    BOOST_TEST_CONTEXT("sequence seed " << seed << " (replay with KUBEFOLD_MODEL_SEED=" << seed << ")") {
      SequenceRun run(seed, steps, verbose);
      if (!run.Run()) ++failed;
    }
    if (failed >= kMaxFailedSequences) {
      BOOST_TEST_MESSAGE("stopping after " << failed << " failed sequences");
      break;
    }
  }
  for (const auto& [what, n] : Coverage()) BOOST_TEST_MESSAGE("  " << what << ": " << n);
  BOOST_TEST(failed == 0);
  if (seeds.size() > 100) {  // both ways of diffing were exercised, with changes
    BOOST_TEST(Coverage()["diff: from the change log, changes"] > 0u);
    BOOST_TEST(Coverage()["diff: by walking the tries"] > 0u);
  }
}

// The trie's canonical order on a larger key set: deeper tries, deletions
// that must collapse nodes back, and many insertion orders.
BOOST_AUTO_TEST_CASE(iteration_order_depends_on_the_content_alone) {
  const uint64_t base = EnvU64("KUBEFOLD_MODEL_BASE_SEED").value_or(kDefaultBaseSeed);
  for (uint64_t round = 0; round < 8; ++round) {
    const uint64_t seed = SequenceSeed(base ^ 0x5eed, round);
    BOOST_TEST_CONTEXT("round " << round << ", seed " << seed) {
      std::mt19937_64 rng(seed);
      struct Entry {
        std::string cluster, ns;
        WorkloadKey key;
        size_t content;
      };
      std::vector<Entry> keep, extra;
      for (int i = 0; i < 400; ++i) {
        Entry e{std::string(kClusterPool[i % 2]), "ns-" + std::to_string(i % 3),
                WorkloadKey{std::string(kKindPool[i % 4].group), std::string(kKindPool[i % 4].kind),
                            "w-" + std::to_string(i)},
                static_cast<size_t>(i) % Contents().size()};
        (i % 4 == 3 ? extra : keep).push_back(e);
      }
      auto upsert_all = [](Store& s, const std::vector<Entry>& v, size_t per_batch) {
        for (size_t i = 0; i < v.size();) {
          Batch b;
          for (size_t j = 0; j < per_batch && i < v.size(); ++j, ++i) {
            BOOST_REQUIRE(b.Upsert(v[i].cluster, v[i].ns, MakeObject(v[i].key, v[i].content)).ok());
          }
          BOOST_REQUIRE(s.Apply(std::move(b)).ok());
        }
      };
      auto delete_all = [](Store& s, const std::vector<Entry>& v) {
        Batch b;
        for (const Entry& e : v) BOOST_REQUIRE(b.Delete(e.cluster, e.ns, e.key).ok());
        BOOST_REQUIRE(s.Apply(std::move(b)).ok());
      };

      Store forward;
      upsert_all(forward, keep, 50);
      const Snapshot plain = forward.Current();
      // The same store returns to equal content after noise is added and removed.
      upsert_all(forward, extra, 7);
      delete_all(forward, extra);
      const Snapshot returned = forward.Current();
      BOOST_TEST(returned.seq() > plain.seq());
      Result<DiffResult> d = Diff(plain, returned);
      BOOST_REQUIRE(d.ok());
      BOOST_TEST(d->changes().size() == 0u);

      std::vector<Entry> shuffled = keep;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      std::vector<Entry> mixed = keep;
      mixed.insert(mixed.end(), extra.begin(), extra.end());
      std::shuffle(mixed.begin(), mixed.end(), rng);
      Store other;
      upsert_all(other, mixed, 13);
      delete_all(other, extra);
      Store reversed;
      upsert_all(reversed, std::vector<Entry>(keep.rbegin(), keep.rend()), 1000);
      Store by_shuffle;
      upsert_all(by_shuffle, shuffled, 3);

      const std::vector<Visit> want = IterationOrder(plain);
      BOOST_TEST(want.size() == keep.size());
      BOOST_TEST((IterationOrder(returned) == want));
      BOOST_TEST((IterationOrder(other.Current()) == want));
      BOOST_TEST((IterationOrder(reversed.Current()) == want));
      BOOST_TEST((IterationOrder(by_shuffle.Current()) == want));
      BOOST_TEST((NamespaceOrder(other.Current()) == NamespaceOrder(plain)));
      BOOST_TEST((NamespaceOrder(reversed.Current()) == NamespaceOrder(plain)));
    }
  }
}

}  // namespace
}  // namespace kubefold::state
