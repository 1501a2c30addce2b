#include "controllers/metrics.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <ostream>
#include <type_traits>
#include <utility>

namespace kubefold::metrics {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

// Adds v to the double whose bits `bits` holds. Lock-free CAS loop.
void AtomicAdd(std::atomic<std::uint64_t>& bits, double v) noexcept {
  std::uint64_t old = bits.load(kRelaxed);
  while (!bits.compare_exchange_weak(
      old, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v), kRelaxed)) {
  }
}

double LoadDouble(const std::atomic<std::uint64_t>& bits) noexcept {
  return std::bit_cast<double>(bits.load(kRelaxed));
}

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [](char c) { return IsNameStart(c) || IsDigit(c) || c == ':'; });
}

// [a-zA-Z_][a-zA-Z0-9_]*, and no `__` prefix (reserved for Prometheus).
bool IsValidLabelName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0]) || name.starts_with("__")) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [](char c) { return IsNameStart(c) || IsDigit(c); });
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// `\` and newline escaped (HELP text).
void AppendEscapedHelp(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// `\`, `"` and newline escaped (label values).
void AppendEscapedLabelValue(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help,
                  MetricType type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendEscapedHelp(out, help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += TypeName(type);
  out += '\n';
}

// Checks a family's name and label names (see Registry::AddCounterFamily).
Status CheckFamily(MetricType type, std::string_view name,
                   const std::vector<std::string>& label_names) {
  const std::string what = std::string(TypeName(type)) + " " + Quote(name);
  if (!IsValidMetricName(name)) {
    return InvalidArgument(what + ": invalid metric name (must match [a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  if (type == MetricType::kCounter && !name.ends_with("_total")) {
    return InvalidArgument(what + ": a counter's name must end in _total");
  }
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!IsValidLabelName(l)) {
      return InvalidArgument(what + ": invalid label name " + Quote(l) +
                             " (must match [a-zA-Z_][a-zA-Z0-9_]* without a __ prefix)");
    }
    if (type == MetricType::kHistogram && l == "le") {
      return InvalidArgument(what + ": label name \"le\" is reserved in histograms");
    }
    if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i),
                  l) != label_names.begin() + static_cast<std::ptrdiff_t>(i)) {
      return InvalidArgument(what + ": label name " + Quote(l) + " appears twice");
    }
  }
  return Status::Ok();
}

// The sample names a family exposes: its name, and for a histogram the
// _bucket, _sum and _count series.
std::vector<std::string> SampleNames(MetricType type, std::string_view name) {
  std::vector<std::string> names{std::string(name)};
  if (type == MetricType::kHistogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) names.push_back(std::string(name) + suffix);
  }
  return names;
}

// Checks histogram bounds: finite and strictly increasing.
Status CheckBounds(std::string_view what, std::span<const double> bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return InvalidArgument(std::string(what) + ": bucket bound " + FormatValue(bounds[i]) +
                             " is not finite");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      return InvalidArgument(std::string(what) + ": bucket bounds must be strictly increasing (" +
                             FormatValue(bounds[i - 1]) + " then " + FormatValue(bounds[i]) + ")");
    }
  }
  return Status::Ok();
}

// Appends `name suffix{labels,le="le"} value\n`; `labels` is rendered
// already (without braces), `le` empty for none.
void AppendSeries(std::string& out, std::string_view name, std::string_view suffix,
                  std::string_view labels, std::string_view le, double value) {
  out += name;
  out += suffix;
  if (!labels.empty() || !le.empty()) {
    out += '{';
    out += labels;
    if (!le.empty()) {
      if (!labels.empty()) out += ',';
      out += "le=\"";
      out += le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  AppendValue(out, value);
  out += '\n';
}

}  // namespace

// ---------------------------------------------------------------------------
// Values

void Counter::Inc(double v) noexcept {
  if (!(v >= 0)) return;  // negative or NaN
  if (v < 0x1p63) {
    const auto i = static_cast<std::uint64_t>(v);
    if (static_cast<double>(i) == v) {
      int_.fetch_add(i, kRelaxed);
      return;
    }
  }
  AtomicAdd(float_bits_, v);
}

double Counter::Value() const noexcept {
  return static_cast<double>(int_.load(kRelaxed)) + LoadDouble(float_bits_);
}

void Gauge::Set(double v) noexcept { bits_.store(std::bit_cast<std::uint64_t>(v), kRelaxed); }
void Gauge::Add(double v) noexcept { AtomicAdd(bits_, v); }
double Gauge::Value() const noexcept { return LoadDouble(bits_); }

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double v) noexcept {
  if (std::isnan(v)) return;
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[static_cast<std::size_t>(bucket)].fetch_add(1, kRelaxed);
  AtomicAdd(sum_bits_, v);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(kRelaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = LoadDouble(sum_bits_);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  if (!(start > 0) || !(factor > 1) || count < 1) return b;
  b.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    b.push_back(start);
    start *= factor;
  }
  return b;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> b;
  if (!(width > 0) || count < 1) return b;
  b.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) b.push_back(start + width * i);
  return b;
}

std::vector<double> DefaultBuckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  // Integers as plain digits while a double holds them exactly.
  if (std::fabs(v) < 0x1p53 && v == std::trunc(v)) {
    const auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    out.append(buf, r.ptr);
    return;
  }
  // Go's 'g' with the shortest precision: %e when the decimal exponent is
  // < -4 or >= 6 (Go fixes 6 for this decision when the precision is the
  // shortest), else %f; both with the shortest digits that round-trip.
  // to_chars' %e matches Go's (at least two exponent digits, "e+06").
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
  int exponent = 0;
  const auto e = sci.find('e');
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  if (exponent < -4 || exponent >= 6) {
    out += sci;
    return;
  }
  r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  out.append(buf, r.ptr);
}

std::string FormatValue(double v) {
  std::string s;
  AppendValue(s, v);
  return s;
}

// ---------------------------------------------------------------------------
// Families

namespace internal {

FamilyBase::FamilyBase(MetricType type, std::string name, std::string help,
                       std::vector<std::string> label_names)
    : type_(type), name_(std::move(name)), help_(std::move(help)),
      label_names_(std::move(label_names)) {}

void FamilyBase::RenderHeader(std::string& out) const { AppendHeader(out, name_, help_, type_); }

void FamilyBase::RenderSample(std::string& out, std::string_view suffix,
                              const std::vector<std::string>& values, std::string_view extra_name,
                              std::string_view extra_value, double value) const {
  out += name_;
  out += suffix;
  if (!values.empty() || !extra_name.empty()) {
    out += '{';
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      out += label_names_[i];
      out += "=\"";
      AppendEscapedLabelValue(out, values[i]);
      out += '"';
    }
    if (!extra_name.empty()) {
      if (!values.empty()) out += ',';
      out += extra_name;
      out += "=\"";
      AppendEscapedLabelValue(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  AppendValue(out, value);
  out += '\n';
}

}  // namespace internal

template <class M>
Family<M>::Family(MetricType type, std::string name, std::string help,
                  std::vector<std::string> label_names, std::vector<double> bounds)
    : FamilyBase(type, std::move(name), std::move(help), std::move(label_names)),
      bounds_(std::move(bounds)) {
  if (label_names_.empty()) {
    const Result<M*> child = WithLabels({});
    static_cast<void>(child);  // cannot fail: zero values for zero names
  }
}

template <class M>
Result<M*> Family<M>::WithLabels(std::initializer_list<std::string_view> values) {
  return Lookup(values);
}

template <class M>
Result<M*> Family<M>::WithLabels(std::span<const std::string> values) {
  return Lookup(values);
}

template <class M>
template <class Values>
Result<M*> Family<M>::Lookup(const Values& values) {
  if (values.size() != label_names_.size()) {
    std::string names;
    for (const auto& n : label_names_) names += (names.empty() ? "" : ",") + n;
    return InvalidArgument(std::string(TypeName(type_)) + " " + Quote(name_) + ": " +
                           std::to_string(values.size()) + " label values given for " +
                           std::to_string(label_names_.size()) + " label names (" + names + ")");
  }
  std::lock_guard lock(mu_);
  if (auto it = children_.find(values); it != children_.end()) return it->second.get();
  std::unique_ptr<M> child;
  if constexpr (std::is_same_v<M, Histogram>) {
    child = std::make_unique<Histogram>(std::span<const double>(bounds_));
  } else {
    child = std::make_unique<M>();
  }
  M* const result = child.get();
  std::vector<std::string> key;
  key.reserve(values.size());
  for (const auto& v : values) key.emplace_back(v);
  children_.emplace(std::move(key), std::move(child));
  return result;
}

template <class M>
void Family<M>::Render(std::string& out) const {
  std::lock_guard lock(mu_);
  if (children_.empty()) return;
  RenderHeader(out);
  std::string le;
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<M, Histogram>) {
      const Histogram::Snapshot s = child->Read();
      for (std::size_t i = 0; i < bounds_.size(); ++i) {
        le.clear();
        AppendValue(le, bounds_[i]);
        RenderSample(out, "_bucket", values, "le", le, static_cast<double>(s.cumulative[i]));
      }
      RenderSample(out, "_bucket", values, "le", "+Inf", static_cast<double>(s.count));
      RenderSample(out, "_sum", values, {}, {}, s.sum);
      RenderSample(out, "_count", values, {}, {}, static_cast<double>(s.count));
    } else {
      RenderSample(out, {}, values, {}, {}, child->Value());
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---------------------------------------------------------------------------
// Collector

void Collector::AddCounter(std::string_view name, std::string_view help,
                           std::initializer_list<Label> labels, double value) {
  if (!(value >= 0)) {
    Fail("collector counter " + Quote(name) + ": value " + FormatValue(value) +
         " is negative or NaN");
    return;
  }
  if (Sample* s = Add(MetricType::kCounter, name, help, labels)) s->value = value;
}

void Collector::AddGauge(std::string_view name, std::string_view help,
                         std::initializer_list<Label> labels, double value) {
  if (Sample* s = Add(MetricType::kGauge, name, help, labels)) s->value = value;
}

void Collector::AddHistogram(std::string_view name, std::string_view help,
                             std::initializer_list<Label> labels, std::span<const double> bounds,
                             std::span<const std::uint64_t> cumulative, std::uint64_t count,
                             double sum) {
  const std::string what = "collector histogram " + Quote(name);
  if (Status s = CheckBounds(what, bounds); !s.ok()) {
    Fail(s.message());
    return;
  }
  if (cumulative.size() != bounds.size()) {
    Fail(what + ": " + std::to_string(cumulative.size()) + " cumulative counts for " +
         std::to_string(bounds.size()) + " bounds");
    return;
  }
  if (!std::is_sorted(cumulative.begin(), cumulative.end()) ||
      (!cumulative.empty() && cumulative.back() > count)) {
    Fail(what + ": cumulative counts must not decrease, and not exceed the count " +
         std::to_string(count));
    return;
  }
  Sample* s = Add(MetricType::kHistogram, name, help, labels);
  if (s == nullptr) return;
  s->buckets.reserve(bounds.size());
  for (std::size_t i = 0; i < bounds.size(); ++i) s->buckets.emplace_back(bounds[i], cumulative[i]);
  s->count = count;
  s->value = sum;
}

void Collector::Fail(std::string message) { errors_.push_back(std::move(message)); }

Collector::Sample* Collector::Add(MetricType type, std::string_view name, std::string_view help,
                                  std::initializer_list<Label> labels) {
  std::vector<Label> sorted(labels);
  std::sort(sorted.begin(), sorted.end(),
            [](const Label& a, const Label& b) { return a.name < b.name; });
  std::vector<std::string> label_names;
  label_names.reserve(sorted.size());
  for (const Label& l : sorted) label_names.emplace_back(l.name);
  if (Status s = CheckFamily(type, name, label_names); !s.ok()) {
    Fail("collector " + s.message());
    return nullptr;
  }
  const std::string what = "collector " + std::string(TypeName(type)) + " " + Quote(name);
  auto it = families_.find(name);
  if (it == families_.end()) {
    const std::vector<std::string> names = SampleNames(type, name);
    for (const std::string& n : names) {
      if (auto taken = sample_names_.find(n); taken != sample_names_.end()) {
        Fail(what + ": metric name " + Quote(n) + " is already used by collector " +
             std::string(TypeName(families_.find(taken->second)->second.type)) + " " +
             Quote(taken->second));
        return nullptr;
      }
    }
    for (const std::string& n : names) sample_names_.emplace(n, std::string(name));
    it = families_.emplace(std::string(name), CollectedFamily{type, std::string(help), {}}).first;
  } else if (it->second.type != type || it->second.help != help) {
    Fail(what + ": already emitted as a " + std::string(TypeName(it->second.type)) +
         (it->second.type == type ? " with another help text" : ""));
    return nullptr;
  }
  Sample& sample = it->second.samples.emplace_back();
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) sample.labels += ',';
    sample.labels += sorted[i].name;
    sample.labels += "=\"";
    AppendEscapedLabelValue(sample.labels, sorted[i].value);
    sample.labels += '"';
  }
  return &sample;
}

void Collector::Render(std::string& out, const std::string& name,
                       const CollectedFamily& family) const {
  AppendHeader(out, name, family.help, family.type);
  std::string le;
  for (const Sample& s : family.samples) {
    if (family.type != MetricType::kHistogram) {
      AppendSeries(out, name, {}, s.labels, {}, s.value);
      continue;
    }
    for (const auto& [bound, cumulative] : s.buckets) {
      le.clear();
      AppendValue(le, bound);
      AppendSeries(out, name, "_bucket", s.labels, le, static_cast<double>(cumulative));
    }
    AppendSeries(out, name, "_bucket", s.labels, "+Inf", static_cast<double>(s.count));
    AppendSeries(out, name, "_sum", s.labels, {}, s.value);
    AppendSeries(out, name, "_count", s.labels, {}, static_cast<double>(s.count));
  }
}

// ---------------------------------------------------------------------------
// Registry

Registry::Registry() = default;
Registry::~Registry() = default;

Status Registry::Register(std::unique_ptr<internal::FamilyBase> family) {
  const std::vector<std::string> names = SampleNames(family->type(), family->name());
  std::lock_guard lock(mu_);
  for (const std::string& n : names) {
    if (auto it = sample_names_.find(n); it != sample_names_.end()) {
      const internal::FamilyBase& other = *it->second;
      return Status(StatusCode::kAlreadyExists,
                    std::string(TypeName(family->type())) + " " + Quote(family->name()) +
                        ": metric name " + Quote(n) + " is already used by " +
                        std::string(TypeName(other.type())) + " " + Quote(other.name()));
    }
  }
  for (const std::string& n : names) sample_names_.emplace(n, family.get());
  const std::string name = family->name();
  families_.emplace(name, std::move(family));
  return Status::Ok();
}

Result<CounterFamily*> Registry::AddCounterFamily(std::string_view name, std::string_view help,
                                                  std::vector<std::string> label_names) {
  if (Status s = CheckFamily(MetricType::kCounter, name, label_names); !s.ok()) return s;
  auto family = std::make_unique<CounterFamily>(MetricType::kCounter, std::string(name),
                                                std::string(help), std::move(label_names),
                                                std::vector<double>{});
  CounterFamily* const result = family.get();
  if (Status s = Register(std::move(family)); !s.ok()) return s;
  return result;
}

Result<GaugeFamily*> Registry::AddGaugeFamily(std::string_view name, std::string_view help,
                                              std::vector<std::string> label_names) {
  if (Status s = CheckFamily(MetricType::kGauge, name, label_names); !s.ok()) return s;
  auto family = std::make_unique<GaugeFamily>(MetricType::kGauge, std::string(name),
                                              std::string(help), std::move(label_names),
                                              std::vector<double>{});
  GaugeFamily* const result = family.get();
  if (Status s = Register(std::move(family)); !s.ok()) return s;
  return result;
}

Result<HistogramFamily*> Registry::AddHistogramFamily(std::string_view name,
                                                      std::string_view help,
                                                      std::vector<double> bounds,
                                                      std::vector<std::string> label_names) {
  if (Status s = CheckFamily(MetricType::kHistogram, name, label_names); !s.ok()) return s;
  if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity()) bounds.pop_back();
  if (Status s = CheckBounds("histogram " + Quote(name), bounds); !s.ok()) return s;
  auto family = std::make_unique<HistogramFamily>(MetricType::kHistogram, std::string(name),
                                                  std::string(help), std::move(label_names),
                                                  std::move(bounds));
  HistogramFamily* const result = family.get();
  if (Status s = Register(std::move(family)); !s.ok()) return s;
  return result;
}

Result<Counter*> Registry::AddCounter(std::string_view name, std::string_view help) {
  Result<CounterFamily*> family = AddCounterFamily(name, help, {});
  if (!family.ok()) return family.status();
  return (*family)->WithLabels({});
}

Result<Gauge*> Registry::AddGauge(std::string_view name, std::string_view help) {
  Result<GaugeFamily*> family = AddGaugeFamily(name, help, {});
  if (!family.ok()) return family.status();
  return (*family)->WithLabels({});
}

Result<Histogram*> Registry::AddHistogram(std::string_view name, std::string_view help,
                                          std::vector<double> bounds) {
  Result<HistogramFamily*> family = AddHistogramFamily(name, help, std::move(bounds), {});
  if (!family.ok()) return family.status();
  return (*family)->WithLabels({});
}

void Registry::AddCollector(std::function<void(Collector&)> collect) {
  auto fn = std::make_unique<std::function<void(Collector&)>>(std::move(collect));
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(fn));
}

Status Registry::WriteTo(const std::function<void(std::string_view)>& write) const {
  // What is registered now; entries are never removed, so the pointers stay
  // valid after the lock is released.
  std::vector<const internal::FamilyBase*> families;
  std::vector<const std::function<void(Collector&)>*> collectors;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
    collectors.reserve(collectors_.size());
    for (const auto& c : collectors_) collectors.push_back(c.get());
  }

  Collector collected;
  for (const auto* collect : collectors) {
    try {
      (*collect)(collected);
    } catch (const std::exception& e) {
      collected.Fail(std::string("a collector threw: ") + e.what());
    } catch (...) {
      collected.Fail("a collector threw a non-std::exception");
    }
  }
  if (!collected.families_.empty()) {
    std::lock_guard lock(mu_);
    for (auto it = collected.families_.begin(); it != collected.families_.end();) {
      const internal::FamilyBase* clash = nullptr;
      std::string clash_name;
      for (const std::string& n : SampleNames(it->second.type, it->first)) {
        if (auto taken = sample_names_.find(n); taken != sample_names_.end()) {
          clash = taken->second;
          clash_name = n;
          break;
        }
      }
      if (clash != nullptr) {
        collected.Fail("collector " + std::string(TypeName(it->second.type)) + " " +
                       Quote(it->first) + ": dropped, the name " + Quote(clash_name) +
                       " is used by registered " + std::string(TypeName(clash->type())) + " " +
                       Quote(clash->name()));
        it = collected.families_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [name, family] : collected.families_) {
    auto& samples = family.samples;
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Collector::Sample& a, const Collector::Sample& b) {
                       return a.labels < b.labels;
                     });
    auto dup = std::adjacent_find(samples.begin(), samples.end(),
                                  [](const Collector::Sample& a, const Collector::Sample& b) {
                                    return a.labels == b.labels;
                                  });
    while (dup != samples.end()) {
      collected.Fail("collector " + std::string(TypeName(family.type)) + " " + Quote(name) +
                     ": label set {" + dup->labels + "}" +
                     " emitted twice; the later sample is dropped");
      samples.erase(dup + 1);
      dup = std::adjacent_find(dup, samples.end(),
                               [](const Collector::Sample& a, const Collector::Sample& b) {
                                 return a.labels == b.labels;
                               });
    }
  }

  // Merge the two sorted lists by name (the names are disjoint now).
  std::string buf;
  auto registered = families.begin();
  auto collected_it = collected.families_.begin();
  while (registered != families.end() || collected_it != collected.families_.end()) {
    buf.clear();
    if (collected_it == collected.families_.end() ||
        (registered != families.end() && (*registered)->name() < collected_it->first)) {
      (*registered)->Render(buf);
      ++registered;
    } else {
      collected.Render(buf, collected_it->first, collected_it->second);
      ++collected_it;
    }
    if (!buf.empty()) write(buf);
  }

  if (collected.errors_.empty()) return Status::Ok();
  constexpr std::size_t kMaxListed = 10;
  std::string message = "metrics collectors: " + std::to_string(collected.errors_.size()) +
                        " problem(s): ";
  for (std::size_t i = 0; i < collected.errors_.size() && i < kMaxListed; ++i) {
    if (i > 0) message += "; ";
    message += collected.errors_[i];
  }
  if (collected.errors_.size() > kMaxListed) message += "; ...";
  return InvalidArgument(std::move(message));
}

Status Registry::WriteTo(std::ostream& out) const {
  return WriteTo([&out](std::string_view piece) {
    out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
  });
}

std::string Registry::Expose() const {
  std::string out;
  const Status status = WriteTo([&out](std::string_view piece) { out += piece; });
  static_cast<void>(status);  // documented: Expose drops collector problems
  return out;
}

}  // namespace kubefold::metrics
