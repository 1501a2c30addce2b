// A small Prometheus client: counters, gauges and histograms with fixed label
// names, scrape-time collectors, and the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
//   Registry registry;
//   auto* applies = *registry.AddCounterFamily(
//       "kubefold_failover_applies_total", "Applies sent by failovers.", {"cluster"});
//   Counter* east = *applies->WithLabels({"east"});  // cache this pointer
//   east->Inc();                                     // lock-free
//   std::string body = registry.Expose();            // serve with kContentType
//
// Errors: registration never throws. A bad name, label name or bucket layout,
// a counter not named `*_total`, or a name already taken is a programming
// error reported as a non-OK Status naming the offending name
// (kInvalidArgument, or kAlreadyExists for a clash); nothing is registered.
// WithLabels with the wrong number of values is kInvalidArgument.
//
// Thread-safety: everything may be called from any thread. Counter, Gauge
// and Histogram updates are lock-free and never allocate. What they cost,
// uncontended (measured single-threaded on the 2-core x86-64 build machine,
// -O2; under contention the cache line bounces, as for any shared atomic):
//   Counter::Inc(integral v, e.g. 1)   one relaxed fetch_add             ~9 ns
//   Counter::Inc(fractional v)         one compare-exchange loop         ~13 ns
//   Gauge::Set                         one relaxed store                 ~2 ns
//   Gauge::Inc / Dec / Add             one compare-exchange loop         ~14 ns
//   Histogram::Observe (11 buckets)    binary search of the bounds, one
//                                      fetch_add and one compare-exchange
//                                      loop for the sum                  ~17 ns
// Registration and the first WithLabels of a label set take a mutex and
// allocate; a scrape holds a family's mutex only while formatting that
// family into a buffer, never while writing out, and never blocks updates.
//
// A scrape reads every value with relaxed loads, without stopping writers: a
// histogram's buckets and _count always agree (the count is summed from the
// buckets read), but its _sum may miss or include an observation that is in
// flight at that moment.
//
// Lifetimes: the Registry owns its families, and a family its children;
// pointers handed out stay valid until the Registry is destroyed. Children
// are never removed: a label set that comes and goes (a member cluster)
// belongs in a collector, which recomputes its samples on every scrape.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/status.h"

namespace kubefold::metrics {

// The Content-Type of what Registry::Expose returns.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// A value that only goes up (requests served, applies sent).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds v. A negative or NaN v is ignored (a counter never goes down;
  // client_golang panics instead). Lock-free, no allocation.
  void Inc(double v = 1) noexcept;
  double Value() const noexcept;

 private:
  // Why two atomics? Integral increments, by far the most common, take a
  // single fetch_add on int_; only fractional ones pay for a CAS loop on
  // the double. The value is their sum (client_golang does the same).
  std::atomic<std::uint64_t> int_{0};
  std::atomic<std::uint64_t> float_bits_{0};  // bit pattern of a double
};

// A value that goes up and down (queue length, clusters ready).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  // All lock-free, no allocation.
  void Set(double v) noexcept;
  void Add(double v) noexcept;
  void Inc() noexcept { Add(1); }
  void Dec() noexcept { Add(-1); }
  double Value() const noexcept;

 private:
  std::atomic<std::uint64_t> bits_{0};  // bit pattern of a double
};

// Observations counted into buckets with fixed upper bounds (inclusive,
// as Prometheus' `le`), plus their sum and count.
class Histogram {
 public:
  // `bounds`: strictly increasing finite upper bounds, without +Inf; they
  // must outlive the histogram (the family owns them). Use
  // Registry::AddHistogram*, which checks them, rather than this directly.
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Counts v into the first bucket whose bound is >= v (or +Inf). NaN is
  // ignored. Lock-free, no allocation, O(log buckets).
  void Observe(double v) noexcept;

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf
    std::uint64_t count = 0;                // == cumulative.back()
    double sum = 0;
  };
  // What a scrape would expose. Allocates; O(buckets).
  Snapshot Read() const;
  std::span<const double> bounds() const { return bounds_; }

 private:
  const std::span<const double> bounds_;
  // Per bucket, not cumulative (one fetch_add per observation); bounds_.size()+1.
  const std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_bits_{0};  // bit pattern of a double
};

// `count` bounds start, start*factor, start*factor^2, ... REQUIRES: start > 0,
// factor > 1, count >= 1 (else the result is empty, which Add* accepts as
// "only +Inf").
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// `count` bounds start, start+width, ... REQUIRES: width > 0, count >= 1
// (else empty).
std::vector<double> LinearBuckets(double start, double width, int count);
// client_golang's DefBuckets: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (seconds).
std::vector<double> DefaultBuckets();

// Formats v as Prometheus (and Go's strconv.FormatFloat(v, 'g', -1, 64))
// would, except that an integral |v| < 2^53 is written as plain digits
// ("1000000", not "1e+06"): "0", "0.25", "1.5e-07", "1e+20", "+Inf", "-Inf",
// "NaN". Appends to out; no allocation beyond out's growth.
void AppendValue(std::string& out, double v);
std::string FormatValue(double v);

enum class MetricType { kCounter, kGauge, kHistogram };

namespace internal {

// Orders label-value lists (vector<string>, initializer_list<string_view>,
// span<const string>) lexicographically, so a lookup needs no copy.
struct LabelValuesLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    auto ai = a.begin();
    auto bi = b.begin();
    for (; ai != a.end() && bi != b.end(); ++ai, ++bi) {
      const int c = std::string_view(*ai).compare(std::string_view(*bi));
      if (c != 0) return c < 0;
    }
    return ai == a.end() && bi != b.end();
  }
};

// What the Registry needs of every family, whatever its child type.
class FamilyBase {
 public:
  FamilyBase(MetricType type, std::string name, std::string help,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  MetricType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends HELP, TYPE and every child's samples; nothing if there is no
  // child yet. Takes the family's mutex while it runs.
  virtual void Render(std::string& out) const = 0;

 protected:
  // Appends `# HELP` and `# TYPE`.
  void RenderHeader(std::string& out) const;
  // Appends `name{l1="v1",...,extra_name="extra_value"} value\n`.
  void RenderSample(std::string& out, std::string_view suffix,
                    const std::vector<std::string>& values, std::string_view extra_name,
                    std::string_view extra_value, double value) const;

  // Constant after construction
  const MetricType type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
};

}  // namespace internal

// A family of children of type M (Counter, Gauge or Histogram), one per set
// of label values. Made by the Registry; thread-safe.
template <class M>
class Family final : public internal::FamilyBase {
 public:
  // For the Registry; `bounds` only for histograms. A family without label
  // names gets its only child here, so it is exposed (as 0) from the start.
  Family(MetricType type, std::string name, std::string help,
         std::vector<std::string> label_names, std::vector<double> bounds);

  // Returns the child for these label values (in label-name order), created
  // at first use. kInvalidArgument if the number of values differs from the
  // number of label names. Takes the family's mutex, and allocates the first
  // time: O(log children). Cache the pointer; it is valid as long as the
  // Registry.
  Result<M*> WithLabels(std::initializer_list<std::string_view> values);
  Result<M*> WithLabels(std::span<const std::string> values);

  void Render(std::string& out) const override;

 private:
  template <class Values>
  Result<M*> Lookup(const Values& values);

  const std::vector<double> bounds_;  // Constant after construction; histograms only
  mutable std::mutex mu_;
  // Guarded by mu_ (the map; children update themselves lock-free).
  std::map<std::vector<std::string>, std::unique_ptr<M>, internal::LabelValuesLess> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// What a collector function writes into on each scrape: counter, gauge and
// histogram samples, grouped by family name. Only the scrape that made it
// uses it (not thread-safe, and need not be).
class Collector {
 public:
  struct Label {
    std::string_view name;
    std::string_view value;
  };

  // Adds one sample to family `name`, creating the family with this help
  // and type on first use. Labels may come in any order (they are exposed
  // sorted by name). A problem drops the sample and is reported by the
  // scrape (Registry::WriteTo): an invalid metric or label name, a counter
  // name without `_total`, a name already used here with another type or
  // help (or clashing with a histogram's _bucket/_sum/_count), a label set
  // already used in this family, a negative counter. Allocates.
  void AddCounter(std::string_view name, std::string_view help,
                  std::initializer_list<Label> labels, double value);
  void AddGauge(std::string_view name, std::string_view help,
                std::initializer_list<Label> labels, double value);
  // One histogram series computed elsewhere (e.g. a store's own buckets):
  // `bounds` strictly increasing and finite (the +Inf bucket is implied),
  // `cumulative[i]` the observations <= bounds[i] (non-decreasing, as many
  // as bounds), `count` all observations (>= the last cumulative). Besides
  // the problems above, a mismatch in these, or an `le` label, drops it.
  void AddHistogram(std::string_view name, std::string_view help,
                    std::initializer_list<Label> labels, std::span<const double> bounds,
                    std::span<const std::uint64_t> cumulative, std::uint64_t count, double sum);

 private:
  friend class Registry;
  struct Sample {
    std::string labels;  // rendered and sorted, without braces: `a="x",b="y"`
    double value = 0;    // counter, gauge; a histogram's sum
    // Histograms only: (bound, cumulative count) per finite bound, and the count.
    std::vector<std::pair<double, std::uint64_t>> buckets;
    std::uint64_t count = 0;
  };
  struct CollectedFamily {
    MetricType type;
    std::string help;
    std::vector<Sample> samples;
  };
  // Checks the sample's family and labels, and returns where to append it
  // with its labels rendered, or nullptr (after Fail) if it is to be dropped.
  Sample* Add(MetricType type, std::string_view name, std::string_view help,
              std::initializer_list<Label> labels);
  void Fail(std::string message);
  // Appends the family's HELP, TYPE and samples (sorted, deduplicated).
  void Render(std::string& out, const std::string& name, const CollectedFamily& family) const;

  std::map<std::string, CollectedFamily, std::less<>> families_;
  // Sample names (a histogram's _bucket, _sum, _count too) -> family name.
  std::map<std::string, std::string, std::less<>> sample_names_;
  std::vector<std::string> errors_;
};

// Holds the families and collectors of one process and renders them for a
// scrape. Thread-safe; not copyable or movable (families point into it).
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Register a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]* (a
  // counter's must end in `_total`), each label name [a-zA-Z_][a-zA-Z0-9_]*
  // without a `__` prefix and not repeated (`le` is reserved in
  // histograms). Histogram `bounds` must be strictly increasing and not NaN;
  // a trailing +Inf is dropped (that bucket is always there). The name, and
  // a histogram's name_bucket/_sum/_count, must not clash with any sample
  // name registered before: kAlreadyExists. Other problems:
  // kInvalidArgument. Allocates; O(log families). The family is owned by
  // the Registry.
  Result<CounterFamily*> AddCounterFamily(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names);
  Result<GaugeFamily*> AddGaugeFamily(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names);
  Result<HistogramFamily*> AddHistogramFamily(std::string_view name, std::string_view help,
                                              std::vector<double> bounds,
                                              std::vector<std::string> label_names);

  // Unlabelled shorthands: a family without labels and its only child,
  // which is exposed (as 0) from the start.
  Result<Counter*> AddCounter(std::string_view name, std::string_view help);
  Result<Gauge*> AddGauge(std::string_view name, std::string_view help);
  Result<Histogram*> AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<double> bounds);

  // Adds a function called on every scrape to emit samples computed then.
  // It runs on the scraping thread, without any Registry lock held, and may
  // run concurrently with itself if two scrapes overlap. An exception it
  // throws is caught and reported like a collector problem. Collector
  // families are checked at each scrape: one whose name is a sample name of
  // a registered family is dropped (registered families win), and families
  // of the same name from several collectors are merged if their type and
  // help agree (else the later one is dropped).
  void AddCollector(std::function<void(Collector&)> collect);

  // Writes the exposition in pieces to `write` (one call per family):
  // families sorted by name, children by label values. Returns OK, or a
  // kInvalidArgument Status describing what collectors got wrong; what was
  // dropped is missing from the output, the rest is complete either way.
  // No Registry lock is held while `write` runs.
  Status WriteTo(const std::function<void(std::string_view)>& write) const;
  Status WriteTo(std::ostream& out) const;
  // The whole exposition as one string; collector problems are dropped
  // silently (use WriteTo to see them).
  std::string Expose() const;

 private:
  Status Register(std::unique_ptr<internal::FamilyBase> family);

  mutable std::mutex mu_;
  // Guarded by mu_. Entries are never removed, so pointers to families and
  // collectors stay valid without the lock.
  std::map<std::string, std::unique_ptr<internal::FamilyBase>, std::less<>> families_;
  std::map<std::string, const internal::FamilyBase*, std::less<>> sample_names_;  // incl. _bucket/_sum/_count
  std::vector<std::unique_ptr<std::function<void(Collector&)>>> collectors_;
};

}  // namespace kubefold::metrics
